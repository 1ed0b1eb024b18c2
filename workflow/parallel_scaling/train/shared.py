"""What GRPO and SFT runs share: device checks (:mod:`parallel_scaling.jobs.preflight`), resume
identities, resumable work directories, and the atomic hand-over of a finished checkpoint.

Why a separate work directory: Snakemake deletes a job's declared outputs before it reruns the
job, so intermediate trainer checkpoints cannot live in the output. They live in
``<workdir>/<key>/`` instead, where the key is the *content* of every input of the computation
(:func:`run_identity`: initial model files, data, settings, prompt text, code, process count),
never a path. A rerun after a kill resumes from the last saved step only when every input is the
same; a run with any other input starts afresh (and removes the dead state of other keys); a
finished run deletes its work directory, so nothing is left that another run could resume from.
The final model is copied into the declared output only once training has completed, with a
``_manifest.json`` of its files (:mod:`parallel_scaling.jobs.integrity`).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import importlib.util
import os
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

from parallel_scaling.jobs.integrity import add_token_argument
from parallel_scaling.jobs.preflight import PreflightError, check_model_path, resolve_device  # noqa: F401

#: a problem found before the long work starts (bad model path, GPU asked for on a CPU box); the
#: checks live in :mod:`parallel_scaling.jobs.preflight`, shared with prediction and translation
TrainingSetupError = PreflightError


def settings_hash(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable parts (settings, input checksums)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_identity(command: str, model: str | None, data: list[str], settings: dict[str, Any],
                 prompt_set: str, seed: int) -> dict[str, Any]:
    """Everything a training run's result depends on, by content: the initial model's files (or
    its hub id), each data file's sha256, the settings, the prompt set's text, the seed, the hash
    of the package code the command runs, and the number of processes (the effective batch)."""
    from parallel_scaling.jobs.codedeps import code_hash
    from parallel_scaling.jobs.integrity import digest, sha256_file
    from parallel_scaling.common.prompts import prompt_set as load_prompt_set

    return {
        "command": command,
        "initial_model": digest(model) if model else None,
        "data": {str(f): sha256_file(f) for f in data},
        "settings": settings,
        "prompt_set": {"name": prompt_set, "text": load_prompt_set(prompt_set)},
        "seed": seed,
        "code": code_hash(command),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
    }


def work_directory(root: str | Path, identity: dict[str, Any]) -> Path:
    """``root/<key of identity>``; the state of other keys (runs with other inputs that were
    killed) is deleted, since this output will never be resumed from them."""
    root = Path(root)
    key = settings_hash({k: v for k, v in identity.items() if k != "data"},
                        sorted(identity["data"].values()))
    if is_main_process() and root.is_dir():
        for stale in root.iterdir():
            if stale.name != key:
                print(f"removing {stale}: state of a run with other inputs", flush=True)
                shutil.rmtree(stale, ignore_errors=True)
    return root / key


def is_main_process() -> bool:
    """Rank 0 of an ``accelerate launch`` (or the only process)."""
    return int(os.environ.get("RANK", "0")) == 0


def last_checkpoint(workdir: Path) -> str | None:
    """The newest ``checkpoint-N`` directory that the trainer finished writing, if any."""
    if not workdir.exists():
        return None
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    done = [d for d in workdir.glob("checkpoint-*") if d.is_dir() and checkpoint_complete(d, world)]
    if not done:
        return None
    return str(max(done, key=lambda d: int(d.name.split("-")[-1])))


def checkpoint_complete(checkpoint: Path, world_size: int = 1) -> bool:
    """Whether every process of the run finished writing ``checkpoint``.

    The trainer writes ``trainer_state.json`` last, from the main process; with several processes
    each writes its own RNG state (``rng_state_<rank>.pth``) and the main process does not wait for
    the others, so a job killed then can leave a checkpoint with a state file and a truncated RNG
    file of another rank, which the resume would fail to read. A file of ``torch.save`` is a zip
    archive whose directory is written last: a truncated one is no zip."""
    if not (checkpoint / "trainer_state.json").is_file():
        return False
    if world_size <= 1:
        return True
    return all(zipfile.is_zipfile(checkpoint / f"rng_state_{rank}.pth") for rank in range(world_size))


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    """TRL's log keys, plus the plot's names: reward/<name>, completion_length, accuracy."""
    out = dict(row)
    for key, value in row.items():
        if key.startswith("rewards/") and key.endswith("/mean"):
            out["reward/" + key[len("rewards/"):-len("/mean")]] = value
        if key == "completions/mean_length":
            out["completion_length"] = value
    if "rewards/correctness/mean" in row:
        out["accuracy"] = row["rewards/correctness/mean"]
    if "mean_token_accuracy" in row and "accuracy" not in out:
        out["accuracy"] = row["mean_token_accuracy"]
    return out


def write_curves(log_history: list[dict[str, Any]], path: Path) -> None:
    """Training curves as CSV: one row per logged step, every logged metric a column."""
    rows = [_normalise(r) for r in log_history if "step" in r and "train_runtime" not in r]
    keys: list[str] = ["step"]
    for r in rows:
        keys += [k for k in r if k not in keys]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def finalize(trainer: Any, tokenizer: Any, out_dir: Path, record: dict[str, Any], workdir: Path,
             token: str) -> None:
    """Save the final model into ``out_dir`` atomically with its resolved settings and curves,
    write its manifest (with the rule's rebuild ``token``), then delete the run's work directory
    (nothing is left to resume from)."""
    from parallel_scaling.jobs.integrity import write_manifest
    from parallel_scaling.dataio.permissions import share

    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    main_process = trainer.is_world_process_zero()
    if main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    trainer.save_model(str(tmp))  # every rank takes part (ZeRO-3 gathers the weights)
    if not main_process:
        return
    tokenizer.save_pretrained(str(tmp))
    (tmp / "training_settings.json").write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
    write_curves(trainer.state.log_history, tmp / "curves.csv")
    share(tmp)  # safetensors writes weights with mode 0600: collaborators must read checkpoints
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    write_manifest(out_dir, token)
    shutil.rmtree(workdir, ignore_errors=True)


def trl_args(settings: dict[str, Any], keys: tuple[str, ...] | list[str], device: str, workdir: Path,
             seed: int) -> dict[str, Any]:
    """Arguments of TRL's config class for one run: the section's settings that go to TRL (``keys``,
    from the schema: :func:`parallel_scaling.dataio.schema.trainer_keys`), and what every run sets
    the same way (none left to the library's defaults). bf16 applies on a GPU only."""
    args = {k: settings[k] for k in keys if k in settings}
    if "bf16" in args:
        args["bf16"] = bool(args["bf16"]) and device == "cuda"
    args.update(output_dir=str(workdir), seed=seed, data_seed=seed, use_cpu=device == "cpu",
                report_to=list(settings.get("report_to") or []) or "none",
                save_strategy="steps", save_total_limit=2, disable_tqdm=True, dataloader_num_workers=0)
    return args


#: report_to integrations a config may name, and the package each needs in the training environment
REPORTERS = {"tensorboard": "tensorboard", "wandb": "wandb"}


def check_reporters(settings: dict[str, Any], key: str, metrics: str | None) -> None:
    """Before training starts: each ``report_to`` integration's package is installed (else a
    PreflightError naming the key and the package), and TensorBoard writes beside the job's logs
    (``<metrics file without .metrics.jsonl>.tensorboard/``, so ``tensorboard --logdir logs/<study>``
    shows every run) instead of the work directory that a finished run deletes."""
    for name in settings.get("report_to") or []:
        package = REPORTERS.get(name)
        if package is None:
            raise PreflightError(f"{key}.report_to: {name!r} is not one of {sorted(REPORTERS)}")
        if importlib.util.find_spec(package) is None:
            raise PreflightError(f"{key}.report_to: {name!r} needs the {package} package in the training "
                                 f"environment (pip install {package}); install it or remove {name!r}")
    if "tensorboard" in (settings.get("report_to") or []) and metrics:
        base = metrics[:-len(".metrics.jsonl")] if metrics.endswith(".metrics.jsonl") else metrics
        os.environ["TENSORBOARD_LOGGING_DIR"] = base + ".tensorboard"


def metrics_callback(path: str | Path) -> Any:
    """A transformers TrainerCallback that appends every logged step to ``path`` as one JSON line
    (step, epoch, wall time and TRL's metrics, with the names of curves.csv), flushed at once, so a
    run can be watched while it trains. The file is a Snakemake log, which Snakemake empties when it
    reruns the job: a resumed run first writes back the steps its checkpoint logged (its
    ``log_history``), so the file always holds the whole run."""
    from transformers import TrainerCallback

    path = Path(path)

    def line(row: dict[str, Any]) -> str:
        return json.dumps(_normalise(row), default=float) + "\n"

    class MetricsFile(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                path.parent.mkdir(parents=True, exist_ok=True)
                earlier = [r for r in state.log_history if "step" in r and "train_runtime" not in r]
                path.write_text("".join(line(r) for r in earlier), encoding="utf-8")

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            if not state.is_world_process_zero or not logs or "train_runtime" in logs:
                return
            row = {"step": state.global_step, "epoch": state.epoch, "time": round(time.time(), 3), **logs}
            with path.open("a", encoding="utf-8") as fh:
                fh.write(line(row))
                fh.flush()

    return MetricsFile()


def attention_kwargs(settings: dict[str, Any]) -> dict[str, Any]:
    """``from_pretrained`` arguments choosing the attention kernel (``attn_implementation``); none when
    the section leaves it to transformers (null)."""
    impl = settings.get("attn_implementation")
    return {"attn_implementation": impl} if impl else {}


def train_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """The arguments every post-training command takes (GRPO and SFT share them)."""
    p = argparse.ArgumentParser(prog=prog, description=doc)
    p.add_argument("--model", required=True, help="initial model directory or hub id")
    p.add_argument("--mixture", required=True, help="mixture JSONL (id, lang, question, answer[, solution])")
    p.add_argument("--settings", required=True, help="JSON of the config's section for this paradigm")
    p.add_argument("--prompt-set", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--workdir", required=True, help="root of resumable work directories")
    p.add_argument("--out", required=True, help="final checkpoint directory")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--metrics", default=None,
                   help="JSON Lines file that gets every logged step while training (watch it with tail -f)")
    add_token_argument(p)
    return p
