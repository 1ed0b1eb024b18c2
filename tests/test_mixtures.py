"""mixtures: parallel, nested, correctly sized and deterministic mixtures for k = 0..7."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from parallel_scaling.data import mixture as mixtures
from parallel_scaling.data import qc
from parallel_scaling.data import source as sources
from parallel_scaling.data import translate
from parallel_scaling.dataio.jsonl import read_jsonl, write_jsonl

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MGSM8K = DATA / "mgsm8kinstruct_questions"
ORDER = ["zh", "ja", "ru", "de", "es", "fr", "sw"]  # k = 1..7 adds these in turn


@pytest.fixture(scope="module")
def qc_files(tmp_path_factory) -> dict[str, Path]:
    """GSM8K train (first 500 items) + MGSM8KInstruct imported and QC'd, one kept file per language."""
    if not (MGSM8K.exists() and (DATA / "gsm8k" / "train.jsonl").exists()):
        pytest.skip("shared GSM8K / MGSM8KInstruct data not present")
    root = tmp_path_factory.mktemp("mix")
    source = sources.load_split({"kind": "file", "train": str(DATA / "gsm8k" / "train.jsonl"), "test_fraction": 0.0,
                                 "id_prefix": "gsm8k-{split}", "limit": 500}, "train")
    settings = {"backend": "import", "import": {"path": str(MGSM8K / "train_{lang}.jsonl"),
                                                "id_field": "gsm8k_train_index", "id_template": "gsm8k-train-{}"}}
    files = {}
    for lang in ["en", *ORDER]:
        rows, _ = translate.translate(source, lang, settings)
        kept = qc.run_qc(source, rows, lang, {}).kept
        files[lang] = root / f"{lang}.jsonl"
        write_jsonl(files[lang], kept)
    return files


def _build(files, tmp_path, k, budget, items, policy="drop_everywhere", extra=()):
    out, comp = tmp_path / f"{budget}-{policy}-k{k}.jsonl", tmp_path / f"{budget}-{policy}-k{k}.json"
    argv = ["--english", str(files["en"]), "--parallel", *[str(files[lang]) for lang in ORDER[:k]],
            "--name", f"k{k}", "--budget", budget, "--items", str(items), "--policy", policy, "--seed", "7",
            "--out", str(out), "--composition", str(comp), *extra]
    assert mixtures.main(argv) == 0
    return read_jsonl(out), json.loads(comp.read_text()), out


def test_k0_to_k7_parallel_and_sized(qc_files, tmp_path):
    eligible = set(r["id"] for r in read_jsonl(qc_files["en"]))
    previous: list[str] | None = None
    for k in range(8):
        if k:
            eligible &= {r["id"] for r in read_jsonl(qc_files[ORDER[k - 1]])}
        langs = ["en", *ORDER[:k]]
        rows, comp, _ = _build(qc_files, tmp_path, k, "additive", 120)
        by_lang = {lang: sorted(r["id"] for r in rows if r["lang"] == lang) for lang in langs}
        assert all(ids == by_lang["en"] for ids in by_lang.values())  # parallel: same ids in every language
        assert len(rows) == 120 * (k + 1) and comp["rows_per_language"] == {lang: 120 for lang in langs}
        assert set(by_lang["en"]) <= eligible  # passed QC everywhere in this mixture
        ranked = sorted(eligible, key=lambda i: mixtures.item_rank(i, 7))
        assert by_lang["en"] == sorted(ranked[:120])  # first N of the k-independent order
        if previous is not None:  # nesting: k's items that are still eligible stay in k+1
            assert set(previous) & eligible <= set(by_lang["en"])
        previous = by_lang["en"]

        rows, comp, _ = _build(qc_files, tmp_path, k, "fixed", 240)
        counts = Counter(r["lang"] for r in rows)
        assert counts == {lang: 240 // (k + 1) for lang in langs}
        assert 240 - k <= len(rows) <= 240
        by_lang = {lang: sorted(r["id"] for r in rows if r["lang"] == lang) for lang in langs}
        assert all(ids == by_lang["en"] for ids in by_lang.values())
        for row in rows:
            assert set(row) == {"id", "lang", "question", "answer", "solution"}


def test_keep_available_and_monolingual(qc_files, tmp_path):
    english = None
    for k in (0, 3, 7):
        rows, comp, _ = _build(qc_files, tmp_path, k, "additive", 480, policy="keep_available")
        ids = sorted(r["id"] for r in rows if r["lang"] == "en")
        english = english or ids
        assert ids == english  # the same English items for every k
        assert comp["rows_per_language"]["en"] == 480
        assert all(comp["rows_per_language"][lang] <= 480 for lang in ORDER[:k])
    assert comp["rows_per_language"]["fr"] < 480  # fr lost untranslated rows in QC; keep_available keeps the rest

    out, comp_path = tmp_path / "mono-zh.jsonl", tmp_path / "mono-zh.json"
    assert mixtures.main(["--parallel", str(qc_files["zh"]), "--no-english", "--name", "mono-zh", "--items", "50",
                          "--out", str(out), "--composition", str(comp_path)]) == 0
    rows = read_jsonl(out)
    assert len(rows) == 50 and {r["lang"] for r in rows} == {"zh"}


def test_deterministic_bytes_and_shortfall(qc_files, tmp_path, capsys):
    _, _, first = _build(qc_files, tmp_path / "a", 3, "additive", 60)
    _, _, second = _build(qc_files, tmp_path / "b", 3, "additive", 60)
    assert first.read_bytes() == second.read_bytes()
    rows = read_jsonl(first)
    assert rows != sorted(rows, key=lambda r: (r["lang"], r["id"]))  # shuffled, not grouped by language
    assert rows != sorted(rows, key=lambda r: (r["id"], r["lang"]))

    rows, comp, _ = _build(qc_files, tmp_path, 7, "additive", 100000)
    assert comp["shortfall"] > 0 and comp["ids"] == comp["eligible_ids"]
    assert f"only {comp['ids']} of the 100000 requested items" in capsys.readouterr().err


def test_zero_items_is_an_error(tmp_path, capsys):
    en = tmp_path / "en.jsonl"
    write_jsonl(en, [{"id": "a", "lang": "en", "question": "q", "answer": "1"}])
    de = tmp_path / "de.jsonl"
    write_jsonl(de, [{"id": "b", "lang": "de", "question": "q", "answer": "1"}])
    assert mixtures.main(["--english", str(en), "--parallel", str(de), "--name", "m", "--items", "5",
                          "--out", str(tmp_path / "m.jsonl"), "--composition", str(tmp_path / "m.json")]) == 2
    assert "0 items available in all of en, de" in capsys.readouterr().err
