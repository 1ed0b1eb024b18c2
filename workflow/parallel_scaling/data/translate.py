"""Make the parallel copies: the English source rendered in one target language.

Why several backends: the embedded study needs exact translations (``template``: the synthetic
generator renders the same spec in every language), a real-data reproduction reuses published
translations (``import``, e.g. MGSM8KInstruct joined to GSM8K by index), and new languages need
machine translation (``transformers`` on any machine, ``vllm`` on a GPU; its CPU build in the tests;
``served``: a model behind an OpenAI-compatible API, :mod:`parallel_scaling.common.served`). The LLM backends share
prompt building, sampling settings, output cleaning and row writing; only the engine object that
turns prompt strings into completions differs, so a CPU test of ``transformers`` exercises
everything ``vllm`` runs except vLLM's engine itself (one continuous stream, ``common.vllm_stream``).

Output rows: ``{"id", "lang", "question", "answer", "solution", "source_question"}``; the answer is
always the English answer (translation never changes what is verified). A sidecar
``OUT.meta.json`` (``de.jsonl`` -> ``de.meta.json``) records the backend and its settings.

Command ``translate``: ``translate --source SRC.jsonl --lang L --out OUT.jsonl --settings JSON``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parallel_scaling.common.decoding import strip_bos
from parallel_scaling.dataio.console import warn
from parallel_scaling.dataio.datafile import check_id, check_text, check_unique, coverage_warning
from parallel_scaling.dataio.jsonl import DataError, read_jsonl, read_jsonl_lines, write_json, write_jsonl
from parallel_scaling.dataio.jsonl import parse_settings
from parallel_scaling.dataio.paths import RESOURCE_DIR
from parallel_scaling.common.served import EndpointError, merge_transport
from parallel_scaling.data.translation_engines import (DEFAULTS, Engine, TranslationError, make_engine,
                                                       sampling_settings, section)

BACKENDS = ("template", "import", "transformers", "vllm", "served")

#: the prompt file shipped with the workflow (workflow/resources/translation_prompts.yaml)
DEFAULT_PROMPTS_FILE = RESOURCE_DIR / "translation_prompts.yaml"

#: what each translatable field is called in the prompt's ``{kind}``
FIELD_KINDS = {"question": "math word problem", "solution": "worked solution of a math word problem"}


def parallel_row(source: Mapping[str, Any], lang: str, question: str, solution: str | None) -> dict[str, Any]:
    """A parallel row: translated text, English answer, and the English question for audit and QC."""
    return {"id": str(source["id"]), "lang": lang, "question": question, "answer": source["answer"],
            "solution": solution, "source_question": source["question"]}


def identity_rows(source: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """English parallel rows are the source itself, labelled ``en``."""
    return [parallel_row(row, "en", row["question"], row.get("solution")) for row in source]


# --------------------------------------------------------------------------------------------------
# template backend


def template_rows(source: Sequence[Mapping[str, Any]], lang: str, origin: str) -> list[dict[str, Any]]:
    """Render each row's synthetic ``spec`` in ``lang`` (exact translation by construction)."""
    lacking = [str(row.get("id")) for row in source if not isinstance(row.get("spec"), Mapping)]
    if lacking:
        raise TranslationError(f"{origin}: backend 'template' needs field 'spec', missing in {len(lacking)} of "
                               f"{len(source)} rows (e.g. ids {', '.join(lacking[:3])}); use the synthetic source "
                               "or another translation backend")
    from parallel_scaling.data import synth

    out = []
    for row in source:
        rendered = synth.render(dict(row["spec"]), lang)
        out.append(parallel_row(row, lang, rendered["question"], rendered.get("solution")))
    return out


# --------------------------------------------------------------------------------------------------
# import backend


@dataclass
class ImportResult:
    """Joined rows plus the counts that the log line and the sidecar report."""

    rows: list[dict[str, Any]]
    path: Path
    n_file: int
    n_unknown: int
    n_missing: int
    unknown_examples: list[str] = field(default_factory=list)


def import_rows(source: Sequence[Mapping[str, Any]], lang: str, cfg: Mapping[str, Any]) -> ImportResult:
    """Join an existing translation file to the source by item id.

    The translation file's ``id_field`` is mapped to source ids through ``id_template`` (e.g.
    ``gsm8k_train_index`` 17 with ``"gsm8k-train-{}"`` -> ``gsm8k-train-17``). Answers always come
    from the English source. Translation rows with ids not in the source are counted (they are
    expected when the source is limited); if none matches, the mapping is wrong and that is an error.
    """
    pattern = cfg.get("path")
    if not pattern:
        raise TranslationError("translation.import.path: required for backend 'import' (a pattern with {lang})")
    path = Path(str(pattern).format(lang=lang))
    what = f"translation file for language {lang!r}"
    id_field, qf, sf = cfg["id_field"], cfg["question_field"], cfg.get("solution_field")
    try:
        lines = read_jsonl_lines(path, what=what + f" (translation.import.path = {pattern!r})", allow_empty=False)
        if not lines:
            raise TranslationError(f"{path}: {what} holds no rows")
        for fld in [f for f in (id_field, qf, sf) if f]:
            missing = [n for n, row in lines if row.get(fld) is None]
            if missing:
                raise TranslationError(f"{path}:{missing[0]}: field {fld!r} missing in {len(missing)} of {len(lines)} "
                                       "rows (translation.import fields)")
        by_id: dict[str, Mapping[str, Any]] = {}
        where: list[tuple[str, str]] = []
        empty: list[str] = []
        for lineno, row in lines:
            loc = f"{path}:{lineno}"
            key = str(cfg["id_template"]).format(check_id(row[id_field], loc, id_field))
            where.append((key, loc))
            if isinstance(row[qf], str) and not row[qf].strip():
                empty.append(loc)  # kept: QC drops it as 'empty', with the other per-row checks
            else:
                check_text(row[qf], loc, qf)
            by_id[key] = row
        check_unique(where, f"{path} (ids: {id_field!r} through {cfg['id_template']!r})",
                     fix="fix the file, or translation.import.id_field / id_template")
    except TranslationError:
        raise
    except DataError as exc:
        raise TranslationError(str(exc)) from None
    if empty:
        warn(f"{path}: {len(empty)} of {len(lines)} rows have an empty {qf!r} (first at {empty[0]}); QC drops them")
    rows = [row for _, row in lines]
    source_ids = {str(row["id"]) for row in source}
    unknown = [key for key in by_id if key not in source_ids]
    if by_id and len(unknown) == len(by_id):
        raise TranslationError(f"{path}: none of the {len(by_id)} translation ids matches a source id "
                               f"(e.g. {unknown[0]!r} vs source {next(iter(source_ids), '<empty>')!r}); check "
                               "translation.import.id_field and id_template")
    out = []
    for src in source:
        hit = by_id.get(str(src["id"]))
        if hit is None:
            continue
        solution = str(hit[sf]) if sf and hit.get(sf) is not None else None
        out.append(parallel_row(src, lang, str(hit[qf]).strip(), solution))
    return ImportResult(rows=out, path=path, n_file=len(rows), n_unknown=len(unknown),
                        n_missing=len(source) - len(out), unknown_examples=unknown[:5])


def coverage_error(result: ImportResult, n_source: int, origin: str, min_coverage: float) -> str | None:
    """The message when fewer than ``min_coverage`` of the ``n_source`` English items have a row in
    the translation file (translation.import.min_coverage): a wrong file, or ids mapped wrongly,
    more often than a translation meant to cover a sliver of the source; None when enough do."""
    n = len(result.rows)
    if not n_source or n >= min_coverage * n_source:
        return None
    return (f"{result.path}: only {n} of {n_source} English items of {origin} have a translation in it "
            f"({100.0 * n / n_source:.0f}%, below translation.import.min_coverage = {min_coverage:g}); check "
            "that it is the right file and that translation.import.id_field / id_template map its ids onto "
            "the source's, or lower translation.import.min_coverage to use it as it is")


# --------------------------------------------------------------------------------------------------
# LLM backends: shared prompt building / sampling / cleaning, engine-specific generation


def load_prompts(prompts_file: str | Path | None) -> dict[str, Any]:
    """Read the translation prompt file (default: the one shipped in workflow/resources)."""
    import yaml

    from parallel_scaling.dataio.datafile import read_text

    path = Path(prompts_file) if prompts_file else DEFAULT_PROMPTS_FILE
    try:
        data = yaml.safe_load(read_text(path, "translation prompt file", "translation.model.prompts_file")) or {}
    except DataError as exc:
        raise TranslationError(str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise TranslationError(f"{where}: translation prompt file is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise TranslationError(f"{path}: translation prompt file must be a mapping (languages, default, overrides)")
    for key in ("languages", "default"):
        if not isinstance(data.get(key), Mapping):
            raise TranslationError(f"{path}: field {key!r} missing or not a mapping")
    if "user" not in data["default"]:
        raise TranslationError(f"{path}: field 'default.user' missing")
    data["_path"] = str(path)
    return data


def prompt_templates(prompts: Mapping[str, Any], lang: str) -> dict[str, str]:
    """The system/user templates for ``lang`` with ``{language}`` filled in (``{kind}``, ``{text}`` left)."""
    name = prompts["languages"].get(lang)
    if not name:
        raise TranslationError(f"{prompts.get('_path')}: no language name for {lang!r} under 'languages' "
                               f"(known: {', '.join(sorted(prompts['languages']))})")
    merged = {**prompts["default"], **(prompts.get("overrides") or {}).get(lang, {})}
    out = {}
    for role in ("system", "user"):
        template = merged.get(role)
        if template:
            out[role] = str(template).replace("{language}", str(name))
    return out


def build_messages(templates: Mapping[str, str], text: str, kind: str) -> list[dict[str, str]]:
    """Chat messages for one text (placeholders replaced literally, so braces in problems are safe)."""
    messages = []
    for role in ("system", "user"):
        if role in templates:
            content = templates[role].replace("{kind}", kind).replace("{text}", text)
            messages.append({"role": role, "content": content})
    return messages


def render_prompt(tokenizer: Any, messages: Sequence[Mapping[str, str]],
                  chat_template_kwargs: Mapping[str, Any] | None = None) -> str:
    """Prompt string for a model: its chat template when it has one, else system and user as plain text.
    A chat template's leading BOS is left out when the tokenizer adds BOS itself: both engines
    tokenize the text with special tokens (``decoding.encode_prompts``), so each sees one BOS."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True,
                                             **dict(chat_template_kwargs or {}))
        return strip_bos(text, tokenizer)
    return "\n\n".join(m["content"] for m in messages) + "\n\n"


_THINK = re.compile(r"<think>.*?</think>", flags=re.DOTALL)


def clean_output(text: str, strip_thinking: bool = True) -> str:
    """Completion -> translation: drop reasoning blocks (an unfinished one leaves nothing) and whitespace."""
    if strip_thinking:
        text = _THINK.sub("", text)
        if "<think>" in text:
            text = text.split("<think>", 1)[0]
    return text.strip()


def llm_rows(source: Sequence[Mapping[str, Any]], lang: str, engine: Engine, templates: Mapping[str, str],
             fields: Sequence[str], model_cfg: Mapping[str, Any], prompt_file: str = "translation prompts",
             ) -> list[dict[str, Any]]:
    """Translate ``fields`` of every row with ``engine`` and build the parallel rows (shared by both LLMs).
    A prompt longer than the engine's context is refused before any generation, naming
    ``prompt_file`` (``decoding.check_prompt_lengths``)."""
    from parallel_scaling.common.decoding import check_prompt_lengths, encode_prompts

    jobs: list[tuple[int, str]] = []
    prompts: list[str] = []
    for index, row in enumerate(source):
        for fld in fields:
            text = row.get(fld)
            if text:
                messages = build_messages(templates, str(text), FIELD_KINDS[fld])
                chat = getattr(engine, "takes_messages", False)  # served, chat API: the server's template
                prompts.append(messages if chat else render_prompt(engine.tokenizer, messages,
                                                                   model_cfg.get("chat_template_kwargs")))
                jobs.append((index, fld))
    context, where = engine.context
    if prompts and engine.tokenizer is not None:
        check_prompt_lengths(encode_prompts(engine.tokenizer, prompts), context, prompt_file=prompt_file,
                             source=f"{where} of {model_cfg['path']}" if "config" in where else where,
                             labels=[f"the {fld} of row {source[i].get('id')!r} into {lang!r}" for i, fld in jobs])
    completions = engine.generate(prompts) if prompts else []
    if len(completions) != len(prompts):
        raise TranslationError(f"engine returned {len(completions)} completions for {len(prompts)} prompts")
    translated: dict[tuple[int, str], str] = {}
    for job, text in zip(jobs, completions):
        translated[job] = clean_output(text, bool(model_cfg.get("strip_thinking", True)))
    return [parallel_row(row, lang, translated.get((i, "question"), ""), translated.get((i, "solution")))
            for i, row in enumerate(source)]


# --------------------------------------------------------------------------------------------------
# driver


def translate(source: Sequence[Mapping[str, Any]], lang: str, settings: Mapping[str, Any], origin: str = "source",
              engine_factory: Callable[[str, Mapping[str, Any]], Engine] = make_engine,
              ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Translate ``source`` into ``lang``; returns the rows and the sidecar metadata."""
    backend = settings.get("backend", DEFAULTS["backend"])
    meta: dict[str, Any] = {"lang": lang, "source": origin, "n_source": len(source)}
    if lang == "en":
        rows = identity_rows(source)
        meta["backend"] = "identity"
    elif backend == "template":
        rows = template_rows(source, lang, origin)
        meta["backend"] = "template"
    elif backend == "import":
        cfg = section(settings, "import")
        result = import_rows(source, lang, cfg)
        rows = result.rows
        meta.update(backend="import", settings=cfg, file=str(result.path), n_file=result.n_file,
                    n_unknown_ids=result.n_unknown, n_missing=result.n_missing)
        if result.n_unknown:
            # expected when the source is limited: the log says so, the console needs not
            print(f"note: {result.path}: {result.n_unknown} of {result.n_file} translation rows have ids not in "
                  f"{origin} (e.g. {', '.join(result.unknown_examples)}); ignored", file=sys.stderr)
        print(f"translate: {lang}: {len(rows)} of {len(source)} source items have a translation in {result.path}, "
              f"{result.n_missing} have none", file=sys.stderr)
        problem = coverage_error(result, len(source), origin, float(cfg["min_coverage"]))
        if problem:
            raise TranslationError(problem)
        coverage_warning(str(result.path), len(rows), len(source), f"English items of {origin} have a translation")
    elif backend in {"transformers", "vllm", "served"}:
        fields = list(settings.get("fields") or DEFAULTS["fields"])
        unknown = sorted(set(fields) - set(FIELD_KINDS))
        if unknown:
            raise TranslationError(f"translation.fields: unknown {unknown}; choose from {sorted(FIELD_KINDS)}")
        model_cfg = section(settings, "model")
        prompts = load_prompts(model_cfg.get("prompts_file"))
        templates = prompt_templates(prompts, lang)
        engine = engine_factory(backend, settings)
        rows = llm_rows(source, lang, engine, templates, fields, model_cfg, prompt_file=prompts["_path"])
        meta.update(backend=backend, model=model_cfg["path"], fields=fields, prompts_file=prompts["_path"],
                    prompt_template=templates, chat_template=bool(getattr(engine.tokenizer, "chat_template", None)),
                    chat_template_kwargs=model_cfg.get("chat_template_kwargs") or {},
                    sampling=sampling_settings(model_cfg), batch_size=int(model_cfg["batch_size"]),
                    strip_thinking=bool(model_cfg.get("strip_thinking", True)))
        if backend == "vllm":
            meta["vllm"] = section(settings, "vllm")
        if backend == "served":  # what answered: the URL without credentials, the server's own words
            meta.update(model=getattr(engine, "model", meta["model"]), served=getattr(engine, "record", {}))
    else:
        raise TranslationError(f"translation.backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    meta["n_written"] = len(rows)
    return rows, meta


def sidecar_path(out: str | Path) -> Path:
    """``.../de.jsonl`` -> ``.../de.meta.json``."""
    out = Path(out)
    return out.with_name(out.name[: -len(out.suffix)] + ".meta.json" if out.suffix else out.name + ".meta.json")


def main(argv: list[str] | None = None) -> int:
    """Command ``translate``: write one language's parallel rows and the ``.meta.json`` sidecar."""
    parser = argparse.ArgumentParser(prog="translate", description="Translate English source rows into one language.")
    parser.add_argument("--source", required=True, type=Path, help="English source JSONL")
    parser.add_argument("--lang", required=True, help="target language code (en = identity)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--settings", default="{}", help="the config's translation section, as JSON (or a JSON file)")
    parser.add_argument("--served", default=None,
                        help="backend served: base_url and transport settings, as JSON (kept out of --settings)")
    args = parser.parse_args(argv)
    try:
        settings = merge_transport(parse_settings(args.settings), parse_settings(args.served) if args.served else None)
        source = read_jsonl(args.source, required=("id", "question", "answer"))
        if not source:
            raise TranslationError(f"{args.source}: no rows to translate")
        rows, meta = translate(source, args.lang, settings, origin=str(args.source))
    except (DataError, ValueError, EndpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_jsonl(args.out, rows)
    write_json(sidecar_path(args.out), meta)
    print(f"translate: wrote {len(rows)} {args.lang} rows to {args.out}", file=sys.stderr)
    return 0
