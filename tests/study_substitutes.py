"""Tiny substitutes of the shipped studies: each study's DAG, run end to end on a CPU in minutes.

A shipped study (``config.yaml``, ``configs/*.yaml``) names 7B models on the hub, hub datasets,
vLLM engines and GPU settings; planning it proves little about whether it can *finish*. Here a
test-side override keeps what decides the shape of its DAG and of its outputs, and swaps what only
decides its size:

kept        every rule it runs; its paradigms, never-trained and evaluated languages; each model
            *role* (built here, pretrained, public RL checkpoint; trained or evaluate-only) with
            its prompt set; mixtures k0..K (K capped at 3, the law's minimum, when the study fits
            a law) and the monolingual controls; the translation backend's kind and fields; each
            benchmark's preset with its field names and answer type; every GRPO/SFT setting that
            runs on a CPU (loss type, KL beta, group size, steps per generation, gradient
            checkpointing, ...); the analysis (y, law or no law)
swapped     models of one role collapse into one, pointing at a tiny random Qwen2 built once per
            test session (with a chat template); hub datasets become small generated JSON Lines
            files with the same fields; vLLM becomes transformers (``use_vllm``, engines, devices
            -> CPU, no accelerate/DeepSpeed, one process per training job: the ``gpus`` section
            goes; multi-process launch is tested in test_multiprocess.py); sizes: a few items, one optimizer step, a few tokens;
            one seed (a second seed only repeats the same jobs; the law on seed means is tested in
            test_analysis.py / test_scaling_law.py); QC is off for LLM-translated and imported data
            (a random model's translations would all be dropped: QC itself is tested in test_qc.py)

so a study that cannot finish (an empty input list, a law without points, an option a trainer
rejects) fails here, not on the cluster.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]

#: every shipped study: its study name -> its config file (config.yaml and configs/*.yaml)
SHIPPED = {"tiny": "config.yaml"} | {
    p.stem: f"configs/{p.name}" for p in sorted((REPO / "configs").glob("*.yaml"))}

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

#: a gold answer of each answer type, and the text a choice question carries
ANSWERS = {"number": "12", "latex": "\\frac{1}{2}", "choice": "B"}


def build_tiny_hf_model(root: Path, corpus: list[str] | None = None) -> Path:
    """A random Qwen2 causal LM (two layers, width 32) with a byte-level BPE tokenizer (trained on
    ``corpus``, else on a few math lines) and a chat template, saved as a Hugging Face model
    directory: the stand-in for every hub model."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    root.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<pad>", "<eos>", "<|im_start|>",
                                                                  "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = corpus or ["Tom has 3 apples and buys 4 more. How many apples? \\boxed{7} #### 7",
                        "Translate the following math word problem into German: 12 + 5 = 17"] * 20
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(root)
    config = Qwen2Config(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, tie_word_embeddings=True)
    Qwen2ForCausalLM(config).save_pretrained(root)
    config_path = root / "tokenizer_config.json"  # transformers 5 writes its own backend class name
    tokenizer_config = json.loads(config_path.read_text())
    tokenizer_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(tokenizer_config))
    return root


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _problems(n: int, offset: int = 0) -> list[tuple[int, int]]:
    return [(3 + (i + offset) % 7, 2 + (i + offset) % 5) for i in range(n)]


def _source_rows(n: int, offset: int = 0) -> list[dict[str, Any]]:
    """GSM8K-shaped rows: a question and an answer with the worked solution before '####'."""
    return [{"question": f"Sam has {a} pens and buys {b} more. How many pens does Sam have?",
             "answer": f"{a} + {b} = {a + b}\n#### {a + b}"} for a, b in _problems(n, offset)]


def _benchmark_rows(spec: dict[str, Any], lang: str, n: int) -> list[dict[str, Any]]:
    """Rows in a benchmark preset's own field names, of its answer type."""
    answer_type = spec.get("answer_type", "number")
    rows = []
    for i, (a, b) in enumerate(_problems(n)):
        row = {spec["question_field"]: f"[{lang}] What is {a} times {b}?" + (
            "\n(A) 10\n(B) 12\n(C) 14\n(D) 16" if answer_type == "choice" else ""),
               spec["answer_field"]: a * b if answer_type == "number" else ANSWERS[answer_type]}
        if spec.get("id_field"):
            row[spec["id_field"]] = i
        if spec.get("lang_field"):
            row[spec["lang_field"]] = (spec.get("lang_codes") or {}).get(lang, lang)
        if spec.get("difficulty_field"):
            levels = sorted(spec.get("difficulty_weights") or {"low": 1})
            row[spec["difficulty_field"]] = levels[i % len(levels)]
        rows.append(row)
    return rows


def _roles(models: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One model per role: (built here or given, trained here or not, with a public checkpoint)."""
    kept: dict[tuple, str] = {}
    for name, m in models.items():
        role = (m["source"], m.get("train", True), bool(m.get("trained")))
        kept.setdefault(role, name)
    return {name: copy.deepcopy(models[name]) for name in kept.values()}


def substitute(config: dict[str, Any], data: Path, model_dir: Path) -> dict[str, Any]:
    """The tiny substitute of a shipped study (see the module's docstring); writes its local data
    under ``data`` and points every given model at copies of ``model_dir``."""
    from parallel_scaling.data import benchmark as bench_mod
    from parallel_scaling.plan import study

    c = copy.deepcopy(config)
    lang = c["languages"]
    law = (c.get("analysis") or {}).get("law", True)
    if law and lang["K"] > 3:
        lang["K"] = 3
    c["seeds"] = list(c.get("seeds", [0]))[:1]

    # models: one per role; given models -> the tiny local model (init and public as two copies)
    c["models"] = _roles(c["models"])
    for name, m in c["models"].items():
        if m["source"] == "pretrained":
            m["path"] = _copy_model(model_dir, data / "models" / name / "init")
        else:
            m["build"] = {"seed": 0, "vocab_size": 400, "warmup_items": 24,
                          "arch": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1,
                                   "intermediate_size": 64, "max_position": 128},
                          "pretrain": {"max_steps": 2, "per_device_train_batch_size": 8, "save_steps": 100,
                                       "logging_steps": 1},
                          "warmup": {"max_steps": 2, "per_device_train_batch_size": 8, "save_steps": 100,
                                     "logging_steps": 1}}
        if m.get("trained"):
            m["trained"] = _copy_model(model_dir, data / "models" / name / "public")

    # source: a few items; a hub or file source becomes two generated JSON Lines files
    src = c.setdefault("source", {"kind": "synthetic"})
    if src.get("kind", "synthetic") == "synthetic":
        src.setdefault("synthetic", {}).update(n_train=48, n_test=3)
    else:
        c["source"] = {"kind": "file", "train": _write_jsonl(data / "source" / "train.jsonl", _source_rows(24)),
                       "test": _write_jsonl(data / "source" / "test.jsonl", _source_rows(6, offset=50)),
                       "question_field": "question", "answer_field": "answer",
                       "id_prefix": src.get("id_prefix", "item-{split}"), "solution_field": src.get("solution_field")}

    # translation: template stays; import reads generated files; LLM backends run transformers
    t = c.setdefault("translation", {"backend": "template"})
    if t.get("backend") == "import":
        imp = t.setdefault("import", {})
        template = imp.get("id_template", "{}")
        source_ids = [f"{c['source'].get('id_prefix', 'item-{split}').format(split='train')}-{i}" for i in range(24)]
        for lg in lang["parallel_order"][: lang["K"]] + list(lang.get("monolingual") or []):
            rows = [{imp.get("id_field", "id"): sid.rsplit("-", 1)[-1] if template != "{}" else sid,
                     imp.get("question_field", "question"): f"({lg}) {q['question']}"}
                    for sid, q in zip(source_ids, _source_rows(24))]
            _write_jsonl(data / "translations" / f"train_{lg}.jsonl", rows)
        imp["path"] = str(data / "translations" / "train_{lang}.jsonl")
        c["qc"] = {"enabled": False}
    elif t.get("backend") in ("transformers", "vllm"):
        t["backend"] = "transformers"
        t["model"] = {**(t.get("model") or {}), "path": str(model_dir), "max_new_tokens": 8, "batch_size": 16,
                      "device": "auto", "dtype": "auto"}
        t.pop("vllm", None)
        c["qc"] = {"enabled": False}

    c["mixtures"] = {**(c.get("mixtures") or {}), "items": 8}

    # training: every setting that runs on a CPU, one optimizer step, tiny batches, one process
    c.pop("gpus", None)
    g = c.setdefault("grpo", {})
    g.update(device="auto", use_vllm=False, accelerate_config=None, max_steps=1, max_completion_length=8,
             num_generations=4, per_device_train_batch_size=4, save_steps=100, logging_steps=1)
    if g.get("gradient_accumulation_steps", 1) > 1:
        g["gradient_accumulation_steps"] = 2
    if g.get("steps_per_generation", 1) > 1:
        g["steps_per_generation"] = 2
    s = c.setdefault("sft", {})
    s.update(device="auto", accelerate_config=None, max_steps=1, per_device_train_batch_size=2, max_length=512,
             save_steps=100, logging_steps=1)
    if s.get("gradient_accumulation_steps", 1) > 1:
        s["gradient_accumulation_steps"] = 2

    # benchmarks: each preset keeps its fields and answer type, read from generated local files
    evaluated = lang["evaluate"]
    for name, spec in c.get("benchmarks", {"synth": {"kind": "synthetic"}}).items():
        if spec.get("kind") == "synthetic":
            continue
        resolved = bench_mod.resolve(name, spec)
        langs = spec.get("languages") or evaluated
        if resolved.get("lang_field"):
            rows = [r for lg in langs for r in _benchmark_rows(resolved, lg, 3)]
            path = _write_jsonl(data / "benchmarks" / name / "all.jsonl", rows)
        else:
            for lg in langs:
                code = (resolved.get("lang_codes") or {}).get(lg, lg)
                _write_jsonl(data / "benchmarks" / name / f"{code}.jsonl", _benchmark_rows(resolved, lg, 3))
            path = str(data / "benchmarks" / name / "{lang}.jsonl")
        keep = {k: v for k, v in spec.items() if k not in ("hf_name", "hf_config", "hf_split", "hf_revision",
                                                           "hf_data_files", "path", "format", "filter")}
        c["benchmarks"][name] = {**keep, "kind": "file", "path": path, "format": "jsonl", "limit": 3}

    p = c.setdefault("prediction", {})
    p.update(engine="transformers", device="auto", max_new_tokens=8, batch_size=64, limit=2)
    if p.get("n", 1) > 2:
        p["n"] = 2
    c.setdefault("analysis", {})["n_boot"] = 10
    assert study.ENGLISH in evaluated
    return c


def _copy_model(model_dir: Path, dest: Path) -> str:
    if not dest.exists():
        shutil.copytree(model_dir, dest)
    return str(dest)


def load_shipped(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / SHIPPED[name]).read_text(encoding="utf-8"))
