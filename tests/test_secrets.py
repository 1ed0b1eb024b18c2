"""Secrets in config values: recognised by kind, refused while planning naming the key (never the
value), and redacted wherever text is written (provenance records, archive scans)."""

from __future__ import annotations

import copy

import pytest

from helpers import REPO, load_yaml, snakemake, write_config
from parallel_scaling.jobs.redact import REDACTED, contains_secret, find_secrets, redact_text, redact_value
from parallel_scaling.plan import check_config as configcheck

# made-up values of the documented shapes (none is a real credential)
SECRETS = {
    "Hugging Face token": "hf_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z",
    "GitHub token": "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "GitHub fine-grained token": "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "OpenAI-style API key": "sk-proj-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe",
    "AWS access key id": "AKIA" + "IOSFODNN7EXAMPLE",
    "Slack token": "xoxb-" + "123456789012-abcdefABCDEF",
    "password in a URL": "https://alice:s3cr3t-pw@data.example.org/gsm8k.jsonl",
}
HARMLESS = ["max_new_tokens", "hf_hub_download", "https://example.org/a:b/c.jsonl", "task-number-twelve-of-many",
            "sk-learn", "Tom has 12 apples", "s3://bucket/path", "tokenizer.json"]


@pytest.mark.parametrize("kind", list(SECRETS))
def test_each_kind_is_recognised_and_redacted(kind):
    value = SECRETS[kind]
    assert contains_secret(f"see {value} here")
    redacted = redact_text(f"--model={value}")
    assert REDACTED in redacted
    secret_part = value.split(":")[-1].split("@")[0] if kind == "password in a URL" else value
    assert secret_part not in redacted
    assert secret_part not in str(redact_value({"settings": {"path": value}}))


@pytest.mark.parametrize("text", HARMLESS)
def test_ordinary_values_are_not_secrets(text):
    assert not contains_secret(text) and redact_text(text) == text


def test_find_secrets_names_keys_not_values():
    config = {"grpo": {"hub_token": "x", "learning_rate": 1e-5},
              "models": {"m": {"path": SECRETS["password in a URL"]}},
              "archive": {"agent": SECRETS["GitHub token"]}}
    found = find_secrets(config)
    assert [k for k, _ in found] == ["grpo.hub_token", "models.m.path", "archive.agent"]
    assert not any(v in str(found) for v in SECRETS.values())


@pytest.mark.parametrize("kind", ["GitHub token", "OpenAI-style API key", "password in a URL"])
def test_planning_refuses_a_secret_naming_file_line_and_key(tmp_path, kind):
    config = copy.deepcopy(load_yaml(REPO / "config.yaml"))
    config.setdefault("archive", {})["agent"] = SECRETS[kind]
    path = write_config(tmp_path / "study.yaml", config)
    study, origins = configcheck.load_study([path])
    errors = configcheck.check_config(study, origins)
    assert len(errors) == 1 and "archive.agent: holds a " + kind in errors[0]
    assert f"study.yaml:{_line_of(path, 'agent:')}:" in errors[0]
    assert SECRETS[kind] not in errors[0] and "s3cr3t" not in errors[0]


def _line_of(path, text):
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.slow
def test_snakemake_refuses_before_any_job_and_never_prints_it(tmp_path):
    config = copy.deepcopy(load_yaml(REPO / "config.yaml"))
    config["archive"] = {"agent": SECRETS["GitHub token"]}
    write_config(tmp_path / "s.yaml", config)
    proc = snakemake(REPO, "-n", "--configfile", str(tmp_path / "s.yaml"), "--directory", str(tmp_path),
                     check=False, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "archive.agent: holds a GitHub token" in out
    assert SECRETS["GitHub token"] not in out


def test_no_file_of_the_workflow_looks_like_a_secret():
    """The archive leaves out a file that looks like a secret (archive/members.py): a file of the
    workflow's own code that did (a docstring's sample URL with a password) would be missing from
    every archive's code."""
    from parallel_scaling.archive.members import has_secret_content, is_secret_name, source_files

    flagged = [str(p.relative_to(REPO)) for p in source_files(REPO / "Snakefile")
               if is_secret_name(p.name) or has_secret_content(p)]
    assert flagged == []
