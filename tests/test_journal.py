"""The prediction journal: finished prompts saved in any grouping, read back by a rerun of the
same job; another job's journal, an older format's, and a line cut off by a kill never mix in."""

from __future__ import annotations

import json

from parallel_scaling.evaluate.journal import FORMAT, Journal
from parallel_scaling.evaluate.samples import sample


def _samples(i: int, n: int = 2) -> list:
    return [sample(f"answer {i}.{k}", "eos" if k else "length", 10 + i, 3 + k) for k in range(n)]


def test_per_prompt_saves_in_any_order_and_grouping_are_read_back(tmp_path):
    """The streaming engine saves prompts as they finish: out of order, singly or in groups."""
    path = tmp_path / "run.journal.jsonl"
    journal = Journal(path, "sha256:a")
    journal.save({7: _samples(7)})
    journal.save({2: _samples(2), 0: _samples(0)})
    journal.save({})  # nothing finished: nothing written
    journal.save({5: _samples(5)})
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {"format": FORMAT, "identity": "sha256:a"} and len(lines) == 4
    done = Journal(path, "sha256:a").load()
    assert done == {i: _samples(i) for i in (0, 2, 5, 7)}
    assert done[7][0] == {"text": "answer 7.0", "finish_reason": "length", "prompt_tokens": 17, "completion_tokens": 3}


def test_a_line_cut_off_by_the_kill_is_ignored(tmp_path):
    path = tmp_path / "run.journal.jsonl"
    Journal(path, "sha256:a").save({0: _samples(0), 1: _samples(1)})
    whole = json.dumps({"responses": {"2": _samples(2), "3": _samples(3)}})
    with open(path, "a") as fh:
        fh.write(whole[: len(whole) // 2])
    assert Journal(path, "sha256:a").load() == {0: _samples(0), 1: _samples(1)}
    # the rerun's saves go after the cut line, not glued to it: they and the earlier ones count
    Journal(path, "sha256:a").save({2: _samples(2)})
    Journal(path, "sha256:a").save({3: _samples(3)})
    assert Journal(path, "sha256:a").load() == {i: _samples(i) for i in range(4)}


def test_journal_of_other_inputs_is_set_aside(tmp_path, capsys):
    """A journal whose header names other inputs is moved aside, never mixed in."""
    path = tmp_path / "run.journal.jsonl"
    Journal(path, "sha256:a").save({0: _samples(0)})
    assert Journal(path, "sha256:b").load() == {}
    assert "written for other inputs" in capsys.readouterr().err
    assert not path.exists() and (tmp_path / "run.journal.jsonl.stale").is_file()


def test_an_older_versions_journal_is_set_aside(tmp_path, capsys):
    """Format 1 held bare texts by batch: its responses lack finish reasons and token counts, so a
    job resumed from it would write rows without them. It is set aside like another job's."""
    path = tmp_path / "run.journal.jsonl"
    path.write_text(json.dumps({"format": "parallel-scaling prediction journal 1", "identity": "sha256:a"}) + "\n"
                    + json.dumps({"batch": 0, "responses": {"0": ["x"], "1": ["y"]}}) + "\n")
    assert Journal(path, "sha256:a").load() == {}
    err = capsys.readouterr().err
    assert "an older version's journal" in err and "moved to run.journal.jsonl.stale" in err
    assert not path.exists()
