"""Monitoring runs: a GRPO job with ``grpo.report_to: [tensorboard, wandb]`` writes TensorBoard events
and an offline Weights & Biases run, and both hold the loss and reward of every logged step that the
job's metrics file holds (docs/campaign.md, "Watch it"). Real TensorBoard and W&B (offline: no
account, no network), through a real Snakemake run of the default study's smallest GRPO job."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import REPO, copy_workflow, load_yaml, offline_env, write_config

TARGET = "results/tiny/checkpoints/tiny/grpo/k0/s0"
RUN = "logs/tiny/train_grpo/tiny/k0/s0"


def wandb_history(path: Path) -> Iterator[dict[str, object]]:
    """The history rows of an offline W&B run file (``run-<id>.wandb``): W&B writes its records as
    protobuf messages in LevelDB's log format (a 7-byte file header, then 32 KiB blocks of chunks,
    each with a 7-byte header: crc, length, type), which ``wandb sync`` reads; W&B ships no reader."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    ident, _magic, _version = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B", f"{path}: not a W&B run file"
    pos, block, record = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # too little room for a chunk header: the block is padded
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        record += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            message = wandb_internal_pb2.Record()
            message.ParseFromString(record)
            record = b""
            if message.WhichOneof("record_type") == "history":
                yield {item.key or "/".join(item.nested_key): json.loads(item.value_json)
                       for item in message.history.item}


@pytest.mark.slow
def test_report_to_writes_tensorboard_and_offline_wandb_with_the_metrics_file_values(tmp_path):
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    wd = copy_workflow(tmp_path / "wf")
    config = load_yaml(REPO / "config.yaml")
    config["grpo"].update(report_to=["tensorboard", "wandb"], max_steps=3, logging_steps=1)
    write_config(wd / "monitored.yaml", config)
    env = {**offline_env(), "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wandb"),
           "WANDB_PROJECT": "parallel-scaling-test"}
    (tmp_path / "wandb").mkdir()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", TARGET, "--configfile", "monitored.yaml"],
                          cwd=wd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    rows = [json.loads(line) for line in (wd / f"{RUN}.metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    expected = {r["step"]: (r["loss"], r["reward"]) for r in rows}

    # TensorBoard: beside the metrics file, where `tensorboard --logdir logs/<study>` finds it
    events = EventAccumulator(str(wd / f"{RUN}.tensorboard"))
    events.Reload()
    loss = {e.step: e.value for e in events.Scalars("train/loss")}
    reward = {e.step: e.value for e in events.Scalars("train/reward")}
    assert sorted(loss) == sorted(reward) == [1, 2, 3]
    for step, (want_loss, want_reward) in expected.items():  # events hold float32
        assert loss[step] == pytest.approx(want_loss, rel=1e-6, abs=1e-12)
        assert reward[step] == pytest.approx(want_reward, rel=1e-6)

    # W&B offline: one run under WANDB_DIR, which `wandb sync` uploads later
    runs = sorted((tmp_path / "wandb").glob("wandb/offline-run-*/run-*.wandb"))
    assert len(runs) == 1, list((tmp_path / "wandb").rglob("*"))
    logged = {int(h["train/global_step"]): (h["train/loss"], h["train/reward"])
              for h in wandb_history(runs[0]) if "train/loss" in h}
    assert logged.keys() == expected.keys()
    for step, (want_loss, want_reward) in expected.items():
        assert logged[step][0] == pytest.approx(want_loss, rel=1e-9, abs=1e-15)
        assert logged[step][1] == pytest.approx(want_reward, rel=1e-9)
