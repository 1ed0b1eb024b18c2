"""Where input data enters the DAG: one reader and one set of checks for every data file.

Why one module: the source, the benchmarks, imported translations and every JSON Lines file are
read by different stages, and each stage used to decode and check on its own, so a UTF-16 file, a
Git LFS pointer or a gold answer written as ``twelve`` was refused by one stage, misreported by
another and silently used by a third. Here is, once:

* **the file** (:func:`check_path`, :func:`read_bytes`, :func:`decode`): it exists, is a regular
  file (a directory, a broken symlink or a symlink loop is named as such), is not empty, is not
  compressed, a Git LFS pointer or UTF-16 text (each recognised from its first bytes and named,
  with what to do), and decodes as UTF-8 (the error names the line and suggests the encoding it
  looks like);
* **the JSON Lines format** (:func:`parse_jsonl`): one object per line; a JSON array or a
  pretty-printed document given instead is recognised and named;
* **the values of a row** (:func:`check_text`, :func:`check_gold`, :func:`check_id`): a question
  is non-empty text within a size limit (a 1 MB question is refused here, not by an allocation of
  230 GB in prediction), a gold answer parses as the benchmark's answer type, an id is a string or
  an integer; :func:`check_unique` names duplicate ids with their rows.

Every error is a :class:`~parallel_scaling.dataio.jsonl.DataError` whose message starts with the
file (and line or row) and ends with what to do. Standard library only (imported when a rule runs
but also by light commands).
"""

from __future__ import annotations

import errno
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from parallel_scaling.dataio import schema
from parallel_scaling.dataio.console import warn


class DataError(ValueError):
    """A malformed input file: the message names the file (and line or field)."""

#: The default longest question or translation, in characters (the schema's
#: ``source.max_question_chars``). GSM8K's longest question has about 1,000 characters and MATH's
#: about 4,000; a field of a million characters is a broken file, and would be tokenized into an
#: allocation of hundreds of GB in prediction.
MAX_TEXT_CHARS: int = schema.defaults("source")["max_question_chars"]

#: What a gold answer must parse as, per answer type (``choice``: a letter A-J, as grading reads it).
CHOICE_LETTERS = "ABCDEFGHIJ"

_LFS_POINTER = b"version https://git-lfs.github.com/spec/"
#: first bytes -> (what the file is, what to do)
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it first (gunzip -k FILE) and point the config at the result"),
    (b"BZh", "a bzip2-compressed file", "decompress it first (bunzip2 -k FILE)"),
    (b"\xfd7zXZ\x00", "an xz-compressed file", "decompress it first (unxz -k FILE)"),
    (b"(\xb5/\xfd", "a zstd-compressed file", "decompress it first (unzstd FILE)"),
    (b"PK\x03\x04", "a ZIP archive (or an Excel workbook)", "unpack it, or export the sheet as CSV"),
    (_LFS_POINTER, "a Git LFS pointer, not the data itself",
     "fetch the data with `git lfs pull` (or download the file) and rerun"),
    (b"\xff\xfe\x00\x00", "UTF-32 text", "re-save it as UTF-8 (iconv -f UTF-32 -t UTF-8)"),
    (b"\xff\xfe", "UTF-16 text", "re-save it as UTF-8 (iconv -f UTF-16 -t UTF-8 FILE > FILE.utf8)"),
    (b"\xfe\xff", "UTF-16 text", "re-save it as UTF-8 (iconv -f UTF-16 -t UTF-8 FILE > FILE.utf8)"),
    (b"\x00\x00\xfe\xff", "UTF-32 text", "re-save it as UTF-8 (iconv -f UTF-32 -t UTF-8)"),
)
_PARQUET = b"PAR1"


def _fail(path: Path | str, message: str) -> DataError:
    return DataError(f"{path}: {message}")


# --------------------------------------------------------------------------------------------------
# the file


def check_path(path: str | Path, what: str = "file", key: str | None = None, allow_empty: bool = False) -> Path:
    """``path`` as a readable regular file, or a :class:`DataError` saying what it is instead.

    ``what`` names the file's role (``"benchmark file"``), ``key`` the config key that points at it,
    so that the message says which setting to fix.
    """
    path = Path(path)
    hint = f" (set by {key})" if key else ""
    try:
        st = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _fail(path, f"{what}{hint} is a symlink loop; point the config at the real file") from None
        if path.is_symlink():
            target = os.readlink(path)
            raise _fail(path, f"{what}{hint} is a symlink to {target}, which does not exist") from None
        if exc.errno == errno.EACCES:
            raise _fail(path, f"{what}{hint} cannot be read: permission denied") from None
        raise _fail(path, f"{what}{hint} not found") from None
    if path.is_dir():
        raise _fail(path, f"{what}{hint} is a directory, not a file; name the file inside it")
    if not path.is_file():
        raise _fail(path, f"{what}{hint} is not a regular file (a device, socket or pipe)")
    if not os.access(path, os.R_OK):
        raise _fail(path, f"{what}{hint} cannot be read: permission denied")
    if st.st_size == 0 and not allow_empty:
        raise _fail(path, f"{what}{hint} is empty (0 bytes)")
    return path


def sniff(head: bytes) -> tuple[str, str] | None:
    """``(what the file is, what to do)`` when its first bytes show it is not plain UTF-8 text."""
    for magic, kind, todo in _MAGIC:
        if head.startswith(magic):
            return kind, todo
    if len(head) >= 4 and head[1:4:2] == b"\x00\x00" and head[0] and head[2]:
        return "UTF-16 text (no byte-order mark)", "re-save it as UTF-8 (iconv -f UTF-16LE -t UTF-8)"
    if len(head) >= 4 and head[0:4:2] == b"\x00\x00" and head[1] and head[3]:
        return "UTF-16 text (no byte-order mark)", "re-save it as UTF-8 (iconv -f UTF-16BE -t UTF-8)"
    return None


def is_parquet(head: bytes) -> bool:
    return head.startswith(_PARQUET)


def check_head(path: Path, head: bytes, what: str = "file", key: str | None = None, text: bool = True) -> None:
    """Refuse a file whose first bytes show it is compressed, an LFS pointer, UTF-16, or (when
    ``text``) Parquet; cheap enough to run while planning, for every file the config names."""
    what = f"{what} (set by {key})" if key else what
    found = sniff(head[:64])
    if found:
        kind, todo = found
        raise _fail(path, f"{what} is {kind}; {todo}")
    if text and is_parquet(head[:4]):
        raise _fail(path, f"{what} is a Parquet file, not text; give it a .parquet name or set its format to parquet")
    if text and b"\x00" in head[:64]:
        raise _fail(path, f"{what} is binary, not text (it holds NUL bytes); point the config at the data file itself")


def check_file(path: str | Path, what: str = "file", key: str | None = None) -> Path:
    """:func:`check_path` and :func:`check_head` (first bytes only): what planning checks of each
    data file the config names, so that such a file is refused before any job runs."""
    path = check_path(path, what, key)
    with path.open("rb") as handle:
        head = handle.read(64)
    check_head(path, head, what, key, text=not path.name.lower().endswith(".parquet"))
    return path


def read_bytes(path: str | Path, what: str = "file", key: str | None = None, allow_empty: bool = False) -> bytes:
    """The bytes of a checked text file (see :func:`check_path` and :func:`sniff`)."""
    path = check_path(path, what, key, allow_empty)
    data = path.read_bytes()
    check_head(path, data[:64], what, key)
    return data


def _encoding_guess(data: bytes) -> str:
    for name in ("cp1252", "latin-1"):
        try:
            data.decode(name)
            return "Latin-1 / Windows-1252"
        except UnicodeDecodeError:
            continue
    return "not UTF-8"


def decode(path: str | Path, data: bytes) -> str:
    """UTF-8 text of ``data`` (a UTF-8 byte-order mark dropped); an undecodable byte is named with
    its line, and the encoding the file looks like."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        guess = _encoding_guess(data)
        raise DataError(f"{path}:{line}: byte 0x{data[exc.start]:02x} is not UTF-8 (the file looks {guess}); "
                          "re-save it as UTF-8 (iconv -f LATIN1 -t UTF-8 FILE > FILE.utf8)") from None


def read_text(path: str | Path, what: str = "file", key: str | None = None, allow_empty: bool = False) -> str:
    """Checked, decoded text of a data file."""
    data = read_bytes(path, what, key, allow_empty)
    return decode(path, data)


# --------------------------------------------------------------------------------------------------
# JSON Lines


def _jsonl_hint(text: str, lineno: int, line: str) -> str:
    stripped = text.lstrip()
    if line.startswith(("<<<<<<<", "=======", ">>>>>>>")):
        return "a Git merge conflict marker: resolve the conflict in the file"
    if stripped.startswith("<"):
        return ("the file is an HTML or XML page, not data (a download that got a web page, e.g. a login or "
                "error page?): fetch the raw file")
    if line.startswith("\ufeff"):
        return ("a byte-order mark starts this line: files saved with one were joined; remove them "
                "(`sed -i 's/^\\xEF\\xBB\\xBF//' FILE`)")
    if line.rstrip().endswith("},"):
        return "a comma after the object: JSON Lines puts one object on each line, with nothing between them"
    if "}{" in line.replace(" ", ""):
        return "several objects on one line: JSON Lines puts one object on each line"
    if stripped.startswith("["):
        return ("the file is one JSON array, not JSON Lines (one object per line): set the format to json, "
                "or convert it with `jq -c '.[]' FILE > FILE.jsonl`")
    if lineno == 1 and line.strip() in {"{", "{\n"} or (stripped.startswith("{") and "\n" in stripped.split("}")[0]):
        return ("the file looks like pretty-printed JSON; JSON Lines needs one object per line "
                "(`jq -c . FILE > FILE.jsonl`)")
    return "every line must be one JSON object"


def parse_jsonl(path: str | Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` pairs of JSON Lines text; blank lines are skipped."""
    out: list[tuple[int, dict[str, Any]]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: invalid JSON: {exc.msg} (column {exc.colno}); "
                            f"{_jsonl_hint(text, lineno, line)}") from None
        if not isinstance(row, dict):
            if lineno == 1 and isinstance(row, list):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got a JSON array; JSON Lines hold one "
                                "object per line: set the format to json, or convert it with `jq -c '.[]'`")
            if isinstance(row, str) and row.lstrip().startswith("{"):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got a JSON string holding one: the rows "
                                "were JSON-encoded twice (json.dumps of a json.dumps); write each row once")
            raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
        out.append((lineno, row))
    if len(out) == 1:
        _check_wrapped(path, *out[0])
    return out


def _check_wrapped(path: str | Path, lineno: int, row: dict[str, Any]) -> None:
    """One object that holds the rows instead of being one: ``{"data": [...]}``, one list per split,
    or pandas' column layout (``DataFrame.to_json()``: ``{"question": {"0": ..., "1": ...}}``)."""
    values = list(row.values())
    if not values:
        return
    if any(values) and all(isinstance(v, list) and all(isinstance(x, dict) for x in v) for v in values):
        keys = ", ".join(repr(k) for k in list(row)[:3])
        raise DataError(f"{path}:{lineno}: one JSON object whose key(s) {keys} hold lists of rows: the rows are wrapped; "
                        f"extract them, e.g. `jq -c '.{list(row)[0]}[]' FILE > FILE.jsonl`")
    if len(values) > 1 and all(isinstance(v, dict) and v and all(str(k).isdigit() for k in v) for v in values):
        raise DataError(f"{path}:{lineno}: one JSON object of columns ({', '.join(map(repr, list(row)[:3]))} keyed by "
                        "row number): pandas' DataFrame.to_json() layout; write the rows with "
                        "to_json(FILE, orient='records', lines=True)")


# --------------------------------------------------------------------------------------------------
# values of a row


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def check_text(value: Any, where: str, field: str, max_chars: int = MAX_TEXT_CHARS,
               limit_key: str | None = None) -> str:
    """A question (or translation) as text: present, a string, not blank, not too long."""
    if _is_missing(value):
        raise DataError(f"{where}: field {field!r} is missing (null/NaN); give every row its text or remove the row")
    if isinstance(value, (dict, list, tuple)):
        kind = "JSON object" if isinstance(value, dict) else "list"
        raise DataError(f"{where}: field {field!r} is a {kind}, not text; it must be the problem's text as a string")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataError(f"{where}: field {field!r} is a {type(value).__name__}, not text")
    text = str(value).strip()
    if not text:
        raise DataError(f"{where}: field {field!r} is empty; give every row its text or remove the row")
    if len(text) > max_chars:
        how = f"raise {limit_key}" if limit_key else "shorten it"
        raise DataError(f"{where}: field {field!r} has {len(text):,} characters, more than the limit of "
                        f"{max_chars:,} (a broken row?); fix the row or {how}")
    return text


def check_gold(value: Any, where: str, field: str, answer_type: str = "number", type_key: str | None = None) -> str:
    """A gold answer as its normalised string, refused unless it parses as ``answer_type``.

    ``number``: one number after :func:`~parallel_scaling.scoring.numbers.normalize_answer`
    (``"#### 1,234"``, ``18.0``, ``$5``, ``3/4``); ``latex``: non-empty text; ``choice``: a letter.
    ``type_key`` is the config key that declares the type, named in the message when there is one.
    """
    from parallel_scaling.scoring.numbers import normalize_answer, parse_number

    if _is_missing(value):
        raise DataError(f"{where}: gold answer {field!r} is missing (null/NaN); every item needs its answer")
    if isinstance(value, float) and math.isinf(value):
        raise DataError(f"{where}: gold answer {field!r} is {value}, not a finite number")
    if isinstance(value, bool) or isinstance(value, (dict, list, tuple)):
        raise DataError(f"{where}: gold answer {field!r} is a {type(value).__name__} ({_short(value)}), "
                        f"not a {answer_type} answer")
    answer = normalize_answer(value)
    if not answer:
        raise DataError(f"{where}: gold answer {field!r} is empty; every item needs its answer")
    if answer.lower() in {"nan", "none", "null", "inf", "-inf", "n/a"}:
        raise DataError(f"{where}: gold answer {field!r} is {answer!r}, a placeholder, not an answer")
    if answer_type == "number" and parse_number(answer) is None:
        other = f", or set {type_key}: latex" if type_key else ""
        raise DataError(f"{where}: gold answer {field!r} is {_short(value)}, which is not a number "
                        f"(answer_type number); write it in digits (e.g. 12, 3.5, 3/4){other}")
    if answer_type == "choice" and answer.strip("() .").upper() not in CHOICE_LETTERS:
        raise DataError(f"{where}: gold answer {field!r} is {_short(value)}, not a choice letter "
                        f"{CHOICE_LETTERS[0]}-{CHOICE_LETTERS[-1]} (answer_type choice)")
    return answer


def check_id(value: Any, where: str, field: str) -> str:
    """An item id as a string: a non-empty string or an integer (``17.0`` from a spreadsheet too)."""
    if _is_missing(value):
        raise DataError(f"{where}: id field {field!r} is missing (null/NaN)")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{where}: id field {field!r} is a {type(value).__name__} ({_short(value)}); "
                        "ids must be strings or integers")
    text = str(value).strip()
    if not text:
        raise DataError(f"{where}: id field {field!r} is empty")
    return text


def check_unique(ids: Iterable[tuple[str, str]], origin: str,
                 fix: str = "fix the file, or drop id_field to number rows by position") -> None:
    """Refuse repeated ids; ``ids`` are ``(id, location)`` pairs, and the message names both rows."""
    first: dict[str, str] = {}
    dupes: list[tuple[str, str, str]] = []
    counts: Counter[str] = Counter()
    for key, where in ids:
        counts[key] += 1
        if key in first:
            dupes.append((key, first[key], where))
        else:
            first[key] = where
    if dupes:
        key, a, b = dupes[0]
        n = sum(1 for c in counts.values() if c > 1)
        raise DataError(f"{origin}: {n} duplicate ids; e.g. {key!r} at {a} and again at {b}; "
                        f"ids must be unique ({fix})")


def _short(value: Any, n: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


# --------------------------------------------------------------------------------------------------
# suspicious but usable: warnings that reach the console (parallel_scaling.dataio.console)


def coverage_warning(origin: str, n_used: int, n_total: int, what: str, min_fraction: float = 0.9) -> None:
    """Warn when fewer than ``min_fraction`` of ``n_total`` items are usable."""
    if n_total and n_used < min_fraction * n_total:
        warn(f"{origin}: only {n_used} of {n_total} {what} ({100.0 * n_used / n_total:.0f}%); "
             "the rest is left out of the study")
