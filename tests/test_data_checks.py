"""Bad input data is refused with a clear message, or warned about, never used in silence.

A corpus of bad files, built here (table-driven: one :class:`Case` per kind of fault), is fed to the
commands the rules run where data enters the DAG (``source``, ``benchmark``, ``translate`` with the
import backend, then ``qc``). Each case must end as intended: *refused* (exit status 2, an
``error:`` line naming the bad file and saying what is wrong, no traceback) or *warned* (it runs,
and a ``warning:`` line names the file). See docs/data-checks.md.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import REPO, write_config
from parallel_scaling.dataio import datafile
from parallel_scaling.dataio.jsonl import DataError
from parallel_scaling.data import benchmark, qc, source, translate


# --------------------------------------------------------------------------------------------------
# good data to spoil

def _questions(n: int = 24, seed: int = 3) -> list[tuple[str, str, int, int, int]]:
    """(English, German, a, b, answer) of ``n`` problems with varied numbers and lengths."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b, c = rng.randint(2, 400), rng.randint(2, 60), rng.randint(1, 9)
        extra_en = " Each of them costs $%d." % c if i % 2 else ""
        extra_de = " Jeder kostet %d $." % c if i % 2 else ""
        out.append((f"Tom has {a} apples and buys {b} more.{extra_en} How many apples does Tom have now?",
                    f"Tom hat {a} Äpfel und kauft {b} weitere.{extra_de} Wie viele Äpfel hat Tom jetzt?",
                    a, b, a + b))
    return out


QUESTIONS = _questions()
FRENCH = [f"Tom a {a} pommes et en achète {b} de plus. Combien de pommes Tom a-t-il maintenant ?"
          for _, _, a, b, _ in QUESTIONS]


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _bench_rows() -> list[dict]:
    return [{"id": f"b{i}", "question": en, "answer": ans} for i, (en, _, _, _, ans) in enumerate(QUESTIONS)]


def _source_rows() -> list[dict]:
    return [{"question": en, "answer": f"{a} + {b} = {ans}\n#### {ans}"} for en, _, a, b, ans in QUESTIONS]


def _translations(texts: list[str] | None = None) -> list[dict]:
    texts = texts or [de for _, de, _, _, _ in QUESTIONS]
    return [{"idx": i, "question": t} for i, t in enumerate(texts)]


# --------------------------------------------------------------------------------------------------
# the corpus


@dataclass
class Case:
    """One bad input: ``make(dir)`` writes it and returns its path; ``stage`` reads it."""

    name: str
    stage: str  # benchmark | source | import
    make: Callable[[Path], Path]
    expect: str  # refuse | warn
    says: str  # a fragment the message must hold


def text(name: str, content: str, encoding: str = "utf-8") -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        (d / name).write_bytes(content.encode(encoding))
        return d / name
    return make


def raw(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        (d / name).write_bytes(data)
        return d / name
    return make


def bench_with(name: str, **change: object) -> Callable[[Path], Path]:
    """The good benchmark with row 3's fields changed."""
    rows = _bench_rows()
    rows[3] = {**rows[3], **change}
    return text(name, _jsonl(rows))


def directory(d: Path) -> Path:
    (d / "bench_dir.jsonl").mkdir()
    return d / "bench_dir.jsonl"


def symlink_loop(d: Path) -> Path:
    os.symlink(d / "loop_b.jsonl", d / "loop_a.jsonl")
    os.symlink(d / "loop_a.jsonl", d / "loop_b.jsonl")
    return d / "loop_a.jsonl"


def broken_symlink(d: Path) -> Path:
    os.symlink(d / "gone.jsonl", d / "dangling.jsonl")
    return d / "dangling.jsonl"


def parquet_named_jsonl(d: Path) -> Path:
    import pandas as pd

    pd.DataFrame(_bench_rows()).to_parquet(d / "really.jsonl")
    return d / "really.jsonl"


def parquet_with_nan_answer(d: Path) -> Path:
    import pandas as pd

    frame = pd.DataFrame([{**r, "answer": float(r["answer"])} for r in _bench_rows()])
    frame.loc[2, "answer"] = float("nan")
    frame.to_parquet(d / "nan.parquet")
    return d / "nan.parquet"


def csv_text(rows: list[dict], sep: str = ",") -> str:
    buf = io.StringIO()
    import csv

    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), delimiter=sep, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def pandas_columns(d: Path) -> Path:
    import pandas as pd

    pd.DataFrame(_bench_rows()).to_json(d / "columns.json")  # pandas' default layout: one object of columns
    return d / "columns.json"


GOOD = _jsonl(_bench_rows())
HTML = "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not Found</body></html>\n"
LFS = ("version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
       "size 12345\n")

CORPUS: list[Case] = [
    # the file
    Case("utf16", "benchmark", text("u16.jsonl", GOOD, "utf-16"), "refuse", "UTF-16"),
    Case("utf16-no-bom", "benchmark", text("u16le.jsonl", GOOD, "utf-16-le"), "refuse", "UTF-16"),
    Case("latin1", "benchmark", text("l1.jsonl", GOOD.replace("apples", "pommes à"), "latin-1"), "refuse",
         "l1.jsonl:1: byte 0xe0 is not UTF-8"),
    Case("utf16-big-endian", "benchmark", text("u16be.jsonl", GOOD, "utf-16-be"), "refuse", "UTF-16"),
    Case("utf32", "benchmark", text("u32.jsonl", GOOD, "utf-32"), "refuse", "UTF-32"),
    Case("binary", "benchmark", raw("bin.jsonl", bytes(range(256)) * 4), "refuse", "binary"),
    Case("gzip", "benchmark", raw("gz.jsonl", gzip.compress(GOOD.encode())), "refuse", "gzip"),
    Case("zip", "benchmark", raw("z.jsonl", b"PK\x03\x04" + b"\x00" * 40), "refuse", "ZIP"),
    Case("lfs-pointer", "benchmark", text("lfs.jsonl", LFS), "refuse", "Git LFS pointer"),
    Case("lfs-pointer-parquet", "benchmark", text("lfs.parquet", LFS), "refuse", "Git LFS pointer"),
    Case("parquet-as-jsonl", "benchmark", parquet_named_jsonl, "refuse", "Parquet"),
    Case("empty-file", "benchmark", text("empty.jsonl", ""), "refuse", "empty (0 bytes)"),
    Case("blank-lines-only", "benchmark", text("blank.jsonl", "\n\n  \n"), "refuse", "holds no rows"),
    Case("directory", "benchmark", directory, "refuse", "is a directory"),
    Case("symlink-loop", "benchmark", symlink_loop, "refuse", "symlink loop"),
    Case("broken-symlink", "benchmark", broken_symlink, "refuse", "does not exist"),
    Case("missing-file", "benchmark", lambda d: d / "nowhere.jsonl", "refuse", "not found"),
    # the format
    Case("json-array-as-jsonl", "benchmark", text("arr.jsonl", json.dumps(_bench_rows(), indent=1)), "refuse",
         "one JSON array"),
    Case("pretty-printed-object", "benchmark", text("pretty.jsonl", json.dumps(_bench_rows()[0], indent=2)),
         "refuse", "pretty-printed"),
    Case("truncated-line", "benchmark", text("trunc.jsonl", GOOD[:-20]), "refuse", ":24: invalid JSON"),
    Case("truncated-json-array", "benchmark", text("cut.json", json.dumps(_bench_rows())[:-30]), "refuse",
         "invalid JSON"),
    Case("row-not-object", "benchmark", text("scalar.jsonl", GOOD + "42\n"), "refuse", "expected a JSON object"),
    Case("csv-short-row", "benchmark", text("short.csv", csv_text(_bench_rows()) + "b99,only two\n"), "refuse",
         "unreadable row"),
    Case("tsv-that-is-csv", "benchmark", text("commas.tsv", csv_text(_bench_rows())), "refuse",
         "comma-separated"),
    Case("csv-header-only", "benchmark", text("header.csv", "id,question,answer\n"), "refuse", "holds no rows"),
    # the values
    Case("gold-in-words", "benchmark", bench_with("words.jsonl", answer="twelve"), "refuse", "not a number"),
    Case("gold-null", "benchmark", bench_with("null.jsonl", answer=None), "refuse", "missing"),
    Case("gold-nan", "benchmark", text("nan.jsonl", GOOD.replace('"answer": %d}' % QUESTIONS[3][4],
                                                                 '"answer": NaN}', 1)), "refuse", "missing"),
    Case("gold-nan-parquet", "benchmark", parquet_with_nan_answer, "refuse", "missing"),
    Case("gold-none-string", "benchmark", bench_with("nonestr.jsonl", answer="None"), "refuse", "placeholder"),
    Case("gold-list", "benchmark", bench_with("list.jsonl", answer=[1, 2]), "refuse", "list"),
    Case("gold-empty", "benchmark", bench_with("emptygold.jsonl", answer="  "), "refuse", "empty"),
    Case("gold-bool", "benchmark", bench_with("bool.jsonl", answer=True), "refuse", "bool"),
    Case("gold-infinite", "benchmark", bench_with("inf.jsonl", answer=float("inf")), "refuse", "finite"),
    Case("question-empty", "benchmark", bench_with("q_empty.jsonl", question=" "), "refuse", "is empty"),
    Case("question-object", "benchmark", bench_with("q_obj.jsonl", question={"text": "2+2?"}), "refuse",
         "JSON object, not text"),
    Case("question-1MB", "benchmark", bench_with("q_big.jsonl", question="x" * 1_000_000), "refuse",
         "more than the limit"),
    Case("field-missing", "benchmark", text("nofield.jsonl", GOOD.replace('"answer"', '"answr"', 1)), "refuse",
         "has no field 'answer'"),
    Case("id-object", "benchmark", bench_with("id_obj.jsonl", id={"n": 3}), "refuse", "ids must be strings"),
    Case("duplicate-ids", "benchmark", bench_with("dup.jsonl", id="b0"), "refuse", "duplicate id"),
    # the English source (training labels)
    Case("source-answer-in-words", "source",
         text("src_words.jsonl", _jsonl(_source_rows()[:5] + [{"question": "How many?", "answer": "#### seven"}])),
         "refuse", "not a number"),
    Case("source-empty", "source", text("src_empty.jsonl", ""), "refuse", "empty (0 bytes)"),
    Case("source-latin1", "source", text("src_l1.jsonl", _jsonl(_source_rows()).replace("apples", "pommes à"),
                                         "latin-1"), "refuse", "not UTF-8"),
    Case("source-question-list", "source",
         text("src_qlist.jsonl", _jsonl([*_source_rows()[:3], {"question": ["a", "b"], "answer": "#### 1"}])),
         "refuse", "list, not text"),
    # imported translations
    Case("import-shifted-by-one", "import",
         text("shift.jsonl", _jsonl([{"idx": i + 1, "question": de} for i, (_, de, *_) in enumerate(QUESTIONS)])),
         "refuse", "shifted by 1 row"),
    Case("import-other-dataset", "import",
         text("other.jsonl", _jsonl(_translations([f"Lena läuft {7 * i + 13} Meter in {i + 101} Sekunden. Wie "
                                                    "schnell ist sie?" for i in range(len(QUESTIONS))]))),
         "refuse", "do not match the English items"),
    Case("import-french-as-german", "import", text("fr_as_de.jsonl", _jsonl(_translations(FRENCH))), "refuse",
         "identified as 'fr'"),
    Case("import-sixth-coverage", "import", text("sixth.jsonl", _jsonl(_translations()[:4])), "refuse",
         "only 4 of 24 English items"),
    Case("import-three-quarters-coverage", "import", text("most.jsonl", _jsonl(_translations()[:18])), "warn",
         "only 18 of 24"),
    Case("import-empty-translation", "import",
         text("emptytr.jsonl", _jsonl([{**r, "question": ""} if r["idx"] == 5 else r for r in _translations()])),
         "warn", "empty 'question'"),
    Case("import-question-object", "import",
         text("trobj.jsonl", _jsonl([{**r, "question": {"de": "x"}} if r["idx"] == 5 else r
                                      for r in _translations()])), "refuse", "JSON object, not text"),
    Case("import-duplicate-ids", "import",
         text("trdup.jsonl", _jsonl([*_translations(), _translations()[0]])), "refuse", "duplicate id"),
    Case("import-utf16", "import", text("tr16.jsonl", _jsonl(_translations()), "utf-16"), "refuse", "UTF-16"),
    # translation prompt files
    Case("prompts-latin1", "prompts", text("p_l1.yaml", "languages: {de: Deutsch}\ndefault: {user: 'Übersetze {text}'}\n",
                                           "latin-1"), "refuse", "not UTF-8"),
    Case("prompts-bad-yaml", "prompts", text("p_bad.yaml", "languages: {de: Deutsch\ndefault:\n  user: x\n"),
         "refuse", "not valid YAML"),
    Case("prompts-a-list", "prompts", text("p_list.yaml", "- de\n- fr\n"), "refuse", "must be a mapping"),
    Case("prompts-no-user", "prompts", text("p_nouser.yaml", "languages: {de: Deutsch}\ndefault: {system: x}\n"),
         "refuse", "default.user"),
    Case("import-ids-as-objects", "import",
         text("trid.jsonl", _jsonl([{**r, "idx": {"i": r["idx"]}} for r in _translations()])), "refuse",
         "ids must be strings"),
    # --- what users bring (issue 39): files that are not what they seem ---
    Case("html-error-page", "benchmark", text("page.jsonl", HTML), "refuse", "an HTML or XML page"),
    Case("git-conflict-markers", "benchmark", text("conflict.jsonl", f"<<<<<<< HEAD\n{GOOD}=======\n{GOOD}>>>>>>> b\n"),
         "refuse", "Git merge conflict marker"),
    Case("rows-encoded-twice", "benchmark", text("twice.jsonl", "".join(json.dumps(json.dumps(r)) + "\n"
                                                                      for r in _bench_rows())),
         "refuse", "JSON-encoded twice"),
    Case("trailing-commas", "benchmark", text("commas.jsonl", "".join(json.dumps(r) + ",\n" for r in _bench_rows())),
         "refuse", "a comma after the object"),
    Case("objects-on-one-line", "benchmark", text("oneline.jsonl", "".join(json.dumps(r) for r in _bench_rows())),
         "refuse", "several objects on one line"),
    Case("byte-order-marks-inside", "benchmark", text("boms.jsonl", "".join("\ufeff" + json.dumps(r) + "\n"
                                                                          for r in _bench_rows())),
         "refuse", "byte-order mark starts this line"),
    Case("windows-1252-quotes", "benchmark", text("cp.jsonl", GOOD.replace("apples", "\u201capples\u201d"), "cp1252"),
         "refuse", "not UTF-8 (the file looks Latin-1 / Windows-1252)"),
    Case("semicolon-csv", "benchmark", text("semi.csv", csv_text(_bench_rows(), ";")), "refuse",
         "semicolon-separated"),
    Case("rows-under-data-key", "benchmark", text("wrapped.json", json.dumps({"data": _bench_rows()})), "refuse",
         "jq -c '.data[]'"),
    Case("one-list-per-split", "source", text("splits.json", json.dumps({"train": _source_rows(), "test": []})),
         "refuse", "the rows are wrapped"),
    Case("pandas-columns-json", "benchmark", pandas_columns, "refuse", "orient='records', lines=True"),
    Case("excel-workbook-as-csv", "benchmark", raw("book.csv", b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40),
         "refuse", "Excel workbook"),
    Case("source-chat-messages", "source",
         text("chat.jsonl", _jsonl([{"question": [{"role": "user", "content": en}], "answer": f"#### {a}"}
                                    for en, _, _, _, a in QUESTIONS])), "refuse", "list, not text"),
    Case("source-boxed-answers", "source",
         text("boxed.jsonl", _jsonl([{"question": en, "answer": f"The answer is $\\boxed{{{a}}}$"}
                                     for en, _, _, _, a in QUESTIONS])), "refuse", "not a number"),
    Case("source-answers-with-units", "source",
         text("units.jsonl", _jsonl([{"question": en, "answer": f"#### {a} apples"} for en, _, _, _, a in QUESTIONS])),
         "refuse", "'#### 162 apples', which is not a number"),
    Case("import-english-copy", "import",
         text("encopy.jsonl", _jsonl([{"idx": i, "question": en} for i, (en, *_) in enumerate(QUESTIONS)])),
         "refuse", "identified as 'en', not 'de'"),
    Case("import-empty-file", "import", text("trempty.jsonl", ""), "refuse", "is empty (0 bytes)"),
    # --- refused while planning: the study's data cannot fill its mixtures (plan/data_sizes.py) ---
    Case("plan-source-of-a-handful-of-rows", "plan-source", text("few.jsonl", _jsonl(_source_rows()[:3])), "refuse",
         "mixtures.items: mixture k0 (en) asks for 8 items per language"),
    Case("plan-translations-of-a-sixth", "plan-import", text("sixth_de.jsonl", _jsonl(_translations()[:4])),
         "refuse", "only 4 of 24 English items"),
    Case("plan-translations-that-leave-mixtures-short", "plan-import",
         text("most_de.jsonl", _jsonl(_translations()[:13])), "refuse",
         "mixture k1 (en+de) asks for 16 items per language"),
]


# --------------------------------------------------------------------------------------------------
# running a case the way a rule does


def _run_benchmark(path: Path, d: Path) -> int:
    fmt = "auto"
    settings = {"kind": "file", "path": str(path), "format": fmt, "question_field": "question",
                "answer_field": "answer", "id_field": "id", "answer_type": "number"}
    return benchmark.main(["--name", "toy", "--settings", json.dumps(settings), "--lang", "en",
                           "--out", str(d / "out" / "bench.jsonl")])


def _run_source(path: Path, d: Path) -> int:
    settings = {"kind": "file", "train": str(path), "test_fraction": 0.0}
    return source.main(["--settings", json.dumps(settings), "--split", "train", "--out", str(d / "out" / "src.jsonl")])


def _run_import(path: Path, d: Path) -> int:
    src = d / "out" / "source.jsonl"
    src.parent.mkdir(exist_ok=True)
    src.write_text(_jsonl([{"id": f"s-{i}", "question": en, "answer": str(ans), "solution": None}
                           for i, (en, _, _, _, ans) in enumerate(QUESTIONS)]), encoding="utf-8")
    settings = {"backend": "import", "import": {"path": str(path), "id_field": "idx", "id_template": "s-{}",
                                                "question_field": "question"}}
    out = d / "out" / "de.jsonl"
    rc = translate.main(["--source", str(src), "--lang", "de", "--out", str(out), "--settings", json.dumps(settings)])
    if rc:
        return rc
    return qc.main(["--source", str(src), "--translated", str(out), "--lang", "de",
                    "--out", str(d / "out" / "kept.jsonl"), "--report", str(d / "out" / "qc.tsv")])


def _run_prompts(path: Path, d: Path) -> int:
    """The LLM backends read the prompt file before they load a model: its errors come first."""
    src = d / "out" / "source.jsonl"
    src.parent.mkdir(exist_ok=True)
    src.write_text(_jsonl([{"id": "s-0", "question": QUESTIONS[0][0], "answer": "1"}]), encoding="utf-8")
    settings = {"backend": "transformers", "model": {"path": str(d / "no-model"), "prompts_file": str(path)}}
    return translate.main(["--source", str(src), "--lang", "de", "--out", str(d / "out" / "de.jsonl"),
                           "--settings", json.dumps(settings)])


def _plan(source_file: Path, translations: str, d: Path, items: int) -> int:
    """The planning checks (what `snakemake` runs before any job) of a small file-based study
    (English + German trained, French and Spanish evaluated, mixtures of ``items``), printing each
    problem as an ``error:`` line."""
    from parallel_scaling.plan import check_config as configcheck
    from parallel_scaling.plan import study

    config = configcheck.load_yaml(REPO / "config.yaml")
    bench = d / "bench_{lang}.jsonl"
    for lg in ("en", "de", "fr", "es"):
        Path(str(bench).format(lang=lg)).write_text(GOOD, encoding="utf-8")
    config.update(languages={"parallel_order": ["de"], "K": 1, "evaluate": ["en", "de", "fr", "es"]},
                  source={"kind": "file", "train": str(source_file), "test": str(Path(str(bench).format(lang="en")))},
                  translation={"backend": "import", "import": {"path": translations, "id_field": "idx",
                                                              "id_template": "item-train-{}"}},
                  mixtures={"budget": "additive", "items": items, "policy": "drop_everywhere", "seed": 0},
                  benchmarks={"b": {"kind": "file", "path": str(bench), "question_field": "question",
                                    "answer_field": "answer", "id_field": "id"}},
                  analysis={"law": False}, qc={"enabled": False})
    path = write_config(d / "study.yaml", config)
    merged, origins = configcheck.load_study([str(path)], {})
    errors = configcheck.check_config(study.resolve_model_paths(merged, REPO), origins)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    return 2 if errors else 0


def _run_plan_source(path: Path, d: Path) -> int:
    """The case's file is the English source; the German translations cover all 24 items."""
    (d / "tr_de.jsonl").write_text(_jsonl(_translations()), encoding="utf-8")
    return _plan(path, str(d / "tr_{lang}.jsonl"), d, items=8)


def _run_plan_import(path: Path, d: Path) -> int:
    """The case's file is the German translation of a source of 24 items; mixtures of 16."""
    src = d / "source.jsonl"
    src.write_text(_jsonl(_source_rows()), encoding="utf-8")
    return _plan(src, str(path).replace("_de.", "_{lang}."), d, items=16)


RUNNERS = {"benchmark": _run_benchmark, "source": _run_source, "import": _run_import, "prompts": _run_prompts,
           "plan-source": _run_plan_source, "plan-import": _run_plan_import}


def outcome(case: Case, d: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """``(refused | warned | silent | crashed, stderr)`` of one case."""
    path = case.make(d)
    try:
        rc = RUNNERS[case.stage](path, d)
    except Exception as exc:  # noqa: BLE001 - a crash is an outcome the corpus counts
        return "crashed", f"{type(exc).__name__}: {exc}"
    err = capsys.readouterr().err
    name = path.name
    errors = [line for line in err.splitlines() if line.startswith("error") and name in line]
    warnings = [line for line in err.splitlines() if line.startswith("warning") and name in line]
    if rc and errors and "Traceback" not in err:
        return "refused", errors[-1]
    if rc == 0 and warnings:
        return "warned", warnings[-1]
    return ("silent" if rc == 0 else "crashed"), err


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_bad_file_is_refused_or_warned(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    got, message = outcome(case, tmp_path, capsys)
    assert got == {"refuse": "refused", "warn": "warned"}[case.expect], message
    assert case.says in message, message


def test_corpus_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The goal of the issue, measured on the whole corpus: >= 95 % refused or warned cleanly as
    intended, and no case silent."""
    results = {}
    for i, case in enumerate(CORPUS):
        d = tmp_path / str(i)
        d.mkdir()
        results[case.name] = outcome(case, d, capsys)[0]
    intended = sum(results[c.name] == {"refuse": "refused", "warn": "warned"}[c.expect] for c in CORPUS)
    assert len(CORPUS) >= 50
    assert not [n for n, r in results.items() if r == "silent"], results
    assert intended / len(CORPUS) >= 0.95, results


# --------------------------------------------------------------------------------------------------
# the pieces, and the good data they must keep accepting


@pytest.mark.parametrize(("value", "kind", "expected"), [
    ("#### 1,234", "number", "1234"), (18.0, "number", "18"), ("$5", "number", "5"), ("3/4", "number", "3/4"),
    (-2, "number", "-2"), ("\\frac{1}{2}", "latex", "\\frac{1}{2}"), ("(B)", "choice", "(B)"), ("c", "choice", "c"),
])
def test_good_gold_answers_pass(value, kind, expected):
    assert datafile.check_gold(value, "f:1", "answer", kind) == expected


def test_good_files_pass(tmp_path, capsys):
    good = tmp_path / "good.jsonl"
    good.write_text(GOOD, encoding="utf-8")
    assert _run_benchmark(good, tmp_path) == 0
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())  # a UTF-8 byte-order mark is fine
    assert _run_benchmark(bom, tmp_path) == 0
    tr = tmp_path / "tr.jsonl"
    tr.write_text(_jsonl(_translations()), encoding="utf-8")
    assert _run_import(tr, tmp_path) == 0
    err = capsys.readouterr().err
    assert "warning" not in err and "kept 24 of 24" in err


def test_real_translations_are_aligned_and_a_shift_is_not(request):
    """MGSM8KInstruct (real machine translations of GSM8K) passes the alignment check in every
    language; the same file shifted by one row is refused, naming the shift."""
    data = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not (data / "mgsm8kinstruct_questions").exists():
        pytest.skip("shared GSM8K / MGSM8KInstruct data not present")
    english = [json.loads(line)["question"] for line in (data / "gsm8k/train.jsonl").open(encoding="utf-8")]
    cfg = qc.merged_settings({})["alignment"]
    for lang in ("de", "ja", "sw", "zh"):
        rows = [json.loads(line) for _, line in zip(range(200), (data / f"mgsm8kinstruct_questions/train_{lang}.jsonl")
                                                     .open(encoding="utf-8"))]
        pairs = [(str(r["gsm8k_train_index"]), english[r["gsm8k_train_index"]], r["question"]) for r in rows]
        assert qc.check_alignment(pairs, cfg, lang) is None
        shifted = [(i, e, pairs[(k + 1) % len(pairs)][2]) for k, (i, e, _) in enumerate(pairs)]
        problem = qc.check_alignment(shifted, cfg, lang)
        assert problem and "shifted by 1 row" in problem


def test_console_warning_reaches_the_adopted_descriptor(tmp_path, monkeypatch, capsys):
    """A rule's shell keeps the console on descriptor 3 while stderr goes to the job's log: a
    warning goes to both."""
    console = tmp_path / "console.txt"
    fd = os.open(console, os.O_WRONLY | os.O_CREAT)
    from parallel_scaling.dataio import console as con

    monkeypatch.setenv(con.CONSOLE_FD_VARIABLE, str(fd))
    monkeypatch.setattr(con, "_CONSOLE", None)
    con.adopt_console()
    assert con.CONSOLE_FD_VARIABLE not in os.environ  # children do not inherit the number
    datafile.warn("f.jsonl: only 4 of 24")
    os.close(fd)
    assert "warning: f.jsonl: only 4 of 24" in capsys.readouterr().err
    assert console.read_text() == "warning: f.jsonl: only 4 of 24\n"
    monkeypatch.setattr(con, "_CONSOLE", None)


def test_check_unique_names_both_rows():
    with pytest.raises(DataError, match=r"f: 1 duplicate ids; e\.g\. 'a' at f:1 and again at f:3"):
        datafile.check_unique([("a", "f:1"), ("b", "f:2"), ("a", "f:3")], "f")


def test_written_files_are_as_readable_as_the_folder(tmp_path):
    """mkstemp (atomic JSONL writes) and safetensors (checkpoint weights) create files with mode
    0600; the pipeline's outputs get the group/other bits the umask grants an ordinary file."""
    import stat

    import torch
    from safetensors.torch import save_file

    from parallel_scaling.dataio.jsonl import write_jsonl
    from parallel_scaling.dataio import permissions
    from parallel_scaling.dataio.permissions import share

    old = os.umask(0o022)
    try:
        permissions.umask.cache_clear()
        out = tmp_path / "rows.jsonl"
        write_jsonl(out, [{"a": 1}])
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
        ckpt = tmp_path / "ckpt"
        ckpt.mkdir()
        save_file({"w": torch.zeros(2)}, str(ckpt / "model.safetensors"))
        assert stat.S_IMODE((ckpt / "model.safetensors").stat().st_mode) == 0o600  # what safetensors does
        share(ckpt)
        assert stat.S_IMODE((ckpt / "model.safetensors").stat().st_mode) == 0o644
        os.umask(0o077)  # a user who wants private files keeps them private
        permissions.umask.cache_clear()
        save_file({"w": torch.zeros(2)}, str(ckpt / "private.safetensors"))
        share(ckpt)
        assert stat.S_IMODE((ckpt / "private.safetensors").stat().st_mode) == 0o600
    finally:
        os.umask(old)
        permissions.umask.cache_clear()


@pytest.mark.parametrize("make, says", [
    (text("lfs.jsonl", LFS), "Git LFS pointer"),
    (raw("gz.jsonl", gzip.compress(GOOD.encode())), "gzip"),
    (text("u16.jsonl", GOOD, "utf-16"), "UTF-16"),
    (directory, "is a directory"),
    (symlink_loop, "symlink loop"),
    (broken_symlink, "does not exist"),
    (text("empty.jsonl", ""), "empty (0 bytes)"),
], ids=["lfs", "gzip", "utf16", "directory", "symlink-loop", "broken-symlink", "empty"])
def test_planning_refuses_what_the_first_bytes_show(tmp_path, make, says):
    """While planning, before any job: a file the config names is there, a file, and its first
    bytes are data (what the jobs then check row by row needs the whole file)."""
    from parallel_scaling.plan.checks import _missing_file

    path = make(tmp_path)
    message = _missing_file("source.train", str(path))
    assert message and message.startswith(f"source.train: {path}") and says in message, message
    good = tmp_path / "good.jsonl"
    good.write_text(GOOD, encoding="utf-8")
    assert _missing_file("source.train", str(good)) is None
