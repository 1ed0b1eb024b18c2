"""sources: reading English sources into rows with stable ids and normalised answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from parallel_scaling.data import source as sources
from parallel_scaling.dataio.jsonl import read_jsonl

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(("raw", "expected"), [
    ("Natalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72", "72"),
    ("#### 1,234", "1234"),
    ("$1,000.00", "1000"),
    ("18.0", "18"),
    ("-3.50", "-3.5"),
    ("\u22125", "-5"),
    ("12.", "12"),
    (7, "7"),
    (7.0, "7"),
    (" yes ", "yes"),
])
def test_normalize_answer(raw, expected):
    assert sources.normalize_answer(raw) == expected


def _rows(n: int) -> list[dict]:
    return [{"question": f"What is {i} + 1?", "answer": f"{i} + 1 = {i + 1}\n#### {i + 1:,}"} for i in range(n)]


def test_jsonl_prefix_ids_hash_split_and_limit(tmp_path):
    path = _write_jsonl(tmp_path / "all.jsonl", _rows(2000))
    settings = {"kind": "file", "train": str(path), "id_prefix": "toy-{split}", "test_fraction": 0.2, "split_seed": 3}
    train = sources.load_split(settings, "train")
    test = sources.load_split(settings, "test")
    train_ids, test_ids = {r["id"] for r in train}, {r["id"] for r in test}
    assert not train_ids & test_ids
    assert len(train_ids | test_ids) == 2000
    assert 300 < len(test) < 500  # 20 % of 2000 by hash
    # ids are the original row positions, whatever the split
    row = next(r for r in train + test if r["id"] == "toy-train-1500")
    assert row["answer"] == "1501" and row["solution"] == "1500 + 1 = 1501"
    # the split depends only on the id: a different limit keeps membership
    limited = sources.load_split({**settings, "limit": 10}, "test")
    assert [r["id"] for r in limited] == [r["id"] for r in test[:10]]
    # another seed gives another split
    other = sources.load_split({**settings, "split_seed": 4}, "test")
    assert {r["id"] for r in other} != test_ids


def test_csv_tsv_parquet_and_id_field(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"uid": ["a", "b", "c"], "q": ["one?", "two?", "three?"], "a": [1, 2000, 3.0]})
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "t.tsv").write_text("".join(f"{q}\t{a:,}\n" for q, a in [('say "hi"', 1000), ("x", 2)]),
                                    encoding="utf-8")
    common = {"kind": "file", "question_field": "q", "answer_field": "a", "id_field": "uid", "test_fraction": 0.0}
    for name in ("t.parquet", "t.csv"):
        rows = sources.load_split({**common, "train": str(tmp_path / name)}, "train")
        assert [(r["id"], r["question"], r["answer"]) for r in rows] == [
            ("a", "one?", "1"), ("b", "two?", "2000"), ("c", "three?", "3")]
    rows = sources.load_split({"kind": "file", "train": str(tmp_path / "t.tsv"), "columns": ["q", "a"],
                               "question_field": "q", "answer_field": "a", "test_fraction": 0.0}, "train")
    assert [(r["id"], r["question"], r["answer"]) for r in rows] == [("item-train-0", 'say "hi"', "1000"),
                                                                     ("item-train-1", "x", "2")]


def test_one_json_array_per_file(tmp_path):
    rows = [{"problem": f"Wie viel ist {i} mal 3?", "solution": str(3 * i), "uid": f"u{i}"} for i in range(4)]
    array = tmp_path / "de.json"
    array.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")  # pretty-printed, multi-line
    lines = _write_jsonl(tmp_path / "lines.json", rows)  # JSON Lines under a .json name
    for path, fmt in ((array, "auto"), (array, "json"), (lines, "auto")):
        records = sources.read_records(path, fmt)
        assert [rec["uid"] for _, rec in records] == ["u0", "u1", "u2", "u3"], (path, fmt)
    assert sources.read_records(array)[2][0] == f"{array}:item 2"
    settings = {"kind": "file", "test": str(array), "train": str(array), "format": "json", "question_field": "problem",
                "answer_field": "solution", "id_field": "uid"}
    assert [(r["id"], r["answer"]) for r in sources.load_split(settings, "test")][-1] == ("u3", "9")


@pytest.mark.parametrize(("content", "message"), [
    ('{"problem": "1+1?", "solution": "2"}', r"expected one JSON array of objects, got a JSON dict"),
    ('[{"problem": "1+1?"}, 5]', r"bad\.json:item 1: expected a JSON object, got int"),
    ('[{"problem": "1+1?"},\n {"problem": }]', r"bad\.json:2: invalid JSON"),
])
def test_json_array_errors_name_file_and_item(tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(sources.SourceError, match=message):
        sources.read_records(bad, "json")


def test_huggingface_loader_with_local_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    train = _write_jsonl(tmp_path / "train.jsonl", _rows(30))
    test = _write_jsonl(tmp_path / "test.jsonl", _rows(5))
    settings = {"kind": "huggingface", "hf_name": "json",
                "hf_data_files": {"train": str(train), "test": str(test)}, "id_prefix": "hf-{split}"}
    assert [r["id"] for r in sources.load_split(settings, "test")] == [f"hf-test-{i}" for i in range(5)]
    assert len(sources.load_split(settings, "train")) == 30
    one = {**settings, "hf_data_files": {"train": str(train)}, "hf_splits": {"train": "train", "test": None},
           "test_fraction": 0.3}
    got = sources.load_split(one, "train") + sources.load_split(one, "test")
    assert sorted(r["id"] for r in got) == sorted(f"hf-train-{i}" for i in range(30))


def test_errors_name_file_field_and_count(tmp_path, capsys):
    rows = _rows(5)
    del rows[1]["answer"], rows[3]["answer"]
    bad_field = _write_jsonl(tmp_path / "missing.jsonl", rows)
    with pytest.raises(sources.SourceError, match=r"missing\.jsonl: field 'answer' missing or empty in 2 of 5 rows"):
        sources.load_split({"kind": "file", "train": str(bad_field)}, "train")

    dup = _write_jsonl(tmp_path / "dup.jsonl", [{"id": "x", "question": "q", "answer": "1"}] * 3
                       + [{"id": "y", "question": "q", "answer": "1"}])
    with pytest.raises(sources.SourceError, match=r"dup\.jsonl: 1 duplicate ids \(3 rows\), e\.g\. x"):
        sources.load_split({"kind": "file", "train": str(dup), "id_field": "id"}, "train")

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "q", "answer": "1"}\n{"question": \n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code = sources.main(["--settings", json.dumps({"kind": "file", "train": str(broken)}), "--split", "train",
                         "--out", str(out)])
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert f"{broken}:2: invalid JSON" in err


def test_source_command_synthetic(tmp_path):
    settings = {"kind": "synthetic", "synthetic": {"seed": 1, "min_number": 2, "max_number": 30, "max_factor": 9,
                                                   "templates": ["add", "sub", "mul", "addsub"],
                                                   "n_train": 40, "n_test": 10}}
    out = tmp_path / "train.jsonl"
    assert sources.main(["--settings", json.dumps(settings), "--split", "train", "--out", str(out)]) == 0
    rows = read_jsonl(out)
    assert len(rows) == 40 and all("spec" in r and r["answer"] for r in rows)


@pytest.mark.skipif(not (DATA / "gsm8k" / "train.jsonl").exists(), reason="shared GSM8K data not present")
def test_real_gsm8k_and_mgsm(tmp_path):
    gsm = {"kind": "file", "train": str(DATA / "gsm8k" / "train.jsonl"), "test": str(DATA / "gsm8k" / "test.jsonl"),
           "id_prefix": "gsm8k-{split}"}
    train = sources.load_split(gsm, "train")
    test = sources.load_split(gsm, "test")
    assert (len(train), len(test)) == (7473, 1319)  # SOURCE.md row counts
    assert train[0]["id"] == "gsm8k-train-0" and train[0]["answer"] == "72"
    assert all(re.fullmatch(r"-?\d+(\.\d+)?", r["answer"]) for r in train + test)
    assert all(r["solution"] and "####" not in r["solution"] for r in train)

    mgsm = sources.load_split({"kind": "file", "train": str(DATA / "mgsm" / "mgsm_en.tsv"), "columns": ["q", "a"],
                               "question_field": "q", "answer_field": "a", "id_prefix": "mgsm-en",
                               "test_fraction": 0.0}, "train")
    reference = {f"mgsm-en-{r['index']}": str(r["answer_number"])
                 for r in read_jsonl(DATA / "mgsm" / "mgsm_test.jsonl") if r["lang"] == "en"}
    assert len(mgsm) == 250
    assert {r["id"]: r["answer"] for r in mgsm} == reference  # commas in 2,125 etc. stripped
