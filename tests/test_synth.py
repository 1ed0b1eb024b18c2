"""The embedded study's data: exact parallel renderings, disjoint held-out items."""

from __future__ import annotations

import re

from parallel_scaling.data import synth

SETTINGS = {"n_train": 300, "n_test": 60, "min_number": 1, "max_number": 20, "max_factor": 9,
            "templates": ["add", "sub", "mul", "addsub"], "seed": 3}


def test_test_items_are_held_out_from_train():
    train = synth.generate_split({"synthetic": SETTINGS}, "train")
    test = synth.generate_split({"synthetic": SETTINGS}, "test")
    assert len(train) == 300 and len(test) == 60
    assert not {r["id"] for r in train} & {r["id"] for r in test}
    assert len({r["id"] for r in train}) == 300


def test_every_language_renders_the_same_numbers_and_answer():
    for row in synth.generate_split({"synthetic": SETTINGS}, "test"):
        equation, answer = synth.solve(row["spec"])
        assert str(answer) == row["answer"] and equation.endswith(f"= {answer}")
        for lang in synth.LANGUAGES:
            text = synth.render(row["spec"], lang)["question"]
            assert sorted(map(int, re.findall(r"\d+", text))) == sorted(row["spec"]["nums"]), (lang, text)


def test_non_latin_scripts_are_rendered():
    spec = {"t": "add", "name": 0, "obj": 0, "nums": [3, 4]}
    assert re.search(r"[\u4e00-\u9fff]", synth.render(spec, "zh")["question"])
    assert re.search(r"[\u0e00-\u0e7f]", synth.render(spec, "th")["question"])
    assert re.search(r"[\u0400-\u04ff]", synth.render(spec, "ru")["question"])


def test_unknown_language_is_a_clear_error():
    import pytest

    with pytest.raises(ValueError, match="no templates for language 'xx'"):
        synth.render({"t": "add", "name": 0, "obj": 0, "nums": [1, 2]}, "xx")
