"""Extract what the workflow relies on from the pinned vLLM wheel into tests/fixtures/vllm_api.json.

Why: vLLM only runs on a GPU build, so CI cannot import it; hand-written guesses of its API drift
with every release. This script reads the wheel's *source* (never importing it) with Python's ``ast``
and writes the facts the tests check the package's vLLM calls against (tests/test_vllm_api.py):

* ``LLM.__init__`` and ``LLM.generate`` parameters (vllm/entrypoints/llm.py); the ``EngineArgs``
  fields that ``LLM(**kwargs)`` forwards to (vllm/engine/arg_utils.py);
* ``SamplingParams`` fields and defaults, and its validation: every ``if <condition>: raise`` of
  ``_verify_args``, ``_verify_greedy_sampling`` and the module's ``_verify_num_sequences``, with the
  calls between them and the conditions under which ``__post_init__`` makes them, plus the module
  constants and ``VLLM_MAX_N_SEQUENCES``'s default (vllm/sampling_params.py, vllm/envs.py);
* the keys of the ``TokensPrompt`` and ``TextPrompt`` dicts (vllm/inputs/llm.py).

Run it when the vllm pin of envs/*.yaml moves (tests/test_vllm_api.py fails until the fixture's
version matches the pin):

    python tools/extract_vllm_api.py                      # the pin of envs/predict.yaml, from the registry
    python tools/extract_vllm_api.py --wheel vllm-0.30.0-cp38-abi3-manylinux_2_28_x86_64.whl

It downloads with ``pip download --no-deps --only-binary=:all: vllm==<pin>`` (about 300 MB, the
package registry only). Review the fixture's diff: a new or changed validation rule shows up there.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "vllm_api.json"
#: functions of vllm/sampling_params.py whose `if ...: raise` statements are the validation we mirror
VALIDATORS = ("__post_init__", "_verify_args", "_verify_greedy_sampling", "_verify_num_sequences")


def pinned_version(env_file: Path = ROOT / "envs" / "predict.yaml") -> str:
    """The vllm version pinned in a conda env file."""
    hit = re.search(r"^\s*-\s*vllm==([\w.]+)", env_file.read_text(), re.M)
    if not hit:
        raise ValueError(f"{env_file}: no vllm==<version> pin")
    return hit.group(1)


def download(version: str, folder: Path) -> Path:
    """The vllm wheel of ``version`` from the package registry (Linux x86_64)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--platform",
           "manylinux_2_28_x86_64", "--python-version", "3.11", "-d", str(folder), f"vllm=={version}"]
    subprocess.run(cmd, check=True)
    (wheel,) = folder.glob(f"vllm-{version}-*.whl")
    return wheel


def _class(tree: ast.Module, name: str) -> ast.ClassDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise ValueError(f"class {name} not found")


def _function(body: list[ast.stmt], name: str) -> ast.FunctionDef:
    for node in body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise ValueError(f"function {name} not found")


def _params(fn: ast.FunctionDef) -> dict[str, Any]:
    a = fn.args
    return {"positional": [p.arg for p in a.posonlyargs + a.args], "keyword_only": [p.arg for p in a.kwonlyargs],
            "var_keyword": a.kwarg is not None}


def _fields(cls: ast.ClassDef) -> dict[str, str | None]:
    """Annotated class attributes and the source of their defaults."""
    out: dict[str, str | None] = {}
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = ast.unparse(node.value) if node.value is not None else None
    return out


def _raises(fn: ast.FunctionDef) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(checks, calls) of a function: each `if cond: raise X(msg)` with the enclosing conditions, and
    each call of another validator with the conditions it is made under."""
    checks: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []

    def walk(stmts: list[ast.stmt], guards: list[str]) -> None:
        for st in stmts:
            if isinstance(st, ast.If):
                cond = ast.unparse(st.test)
                direct = [s for s in st.body if isinstance(s, ast.Raise)]
                if direct and direct[0].exc is not None:
                    exc = direct[0].exc
                    msg = ast.unparse(exc.args[0]) if isinstance(exc, ast.Call) and exc.args else ""
                    checks.append({"guards": guards, "condition": cond, "message": msg})
                walk(st.body, [*guards, cond])
                walk(st.orelse, [*guards, f"not ({cond})"])
            elif isinstance(st, ast.Expr) and isinstance(st.value, ast.Call):
                f = st.value.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
                if name in VALIDATORS:
                    calls.append({"guards": guards, "callee": name,
                                  "args": [ast.unparse(x) for x in st.value.args]})
            elif isinstance(st, (ast.For, ast.While, ast.With, ast.Try)):
                walk(getattr(st, "body", []), guards)

    walk(fn.body, [])
    return checks, calls


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def sampling_params(source: str, envs_source: str) -> dict[str, Any]:
    tree = ast.parse(source)
    cls = _class(tree, "SamplingParams")
    constants = {t.id: _literal(n.value) for n in tree.body if isinstance(n, ast.Assign)
                 for t in n.targets if isinstance(t, ast.Name) and t.id.startswith("_")
                 and isinstance(_literal(n.value), (int, float))}
    validators: dict[str, Any] = {}
    for name in VALIDATORS:
        fn = _function(tree.body if name == "_verify_num_sequences" else cls.body, name)
        checks, calls = _raises(fn)
        # plain local names the checks use (e.g. `max_n = envs.VLLM_MAX_N_SEQUENCES`)
        local = [{"name": st.targets[0].id, "value": ast.unparse(st.value)} for st in fn.body
                 if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name)]
        validators[name] = {"params": [a.arg for a in fn.args.args if a.arg != "self"],
                            "locals": local, "checks": checks, "calls": calls}
    hit = re.search(r'"VLLM_MAX_N_SEQUENCES",\s*"(\d+)"', envs_source)
    return {"fields": _fields(cls), "constants": constants, "validators": validators,
            "envs": {"VLLM_MAX_N_SEQUENCES": int(hit.group(1)) if hit else None}}


def prompt_keys(source: str) -> dict[str, Any]:
    tree = ast.parse(source)

    def keys(name: str) -> tuple[list[str], list[str]]:
        cls = _class(tree, name)
        required, optional = [], []
        for base in cls.bases:
            if isinstance(base, ast.Name) and base.id not in ("TypedDict",):
                r, o = keys(base.id)
                required += r
                optional += o
        for node in cls.body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                ann = ast.unparse(node.annotation)
                (optional if ann.startswith("NotRequired[") else required).append(node.target.id)
        return required, optional

    return {name: dict(zip(("required", "optional"), keys(name))) for name in ("TokensPrompt", "TextPrompt")}


def extract(wheel: Path) -> dict[str, Any]:
    with zipfile.ZipFile(wheel) as zf:
        read = lambda name: zf.read(name).decode("utf-8")  # noqa: E731
        version = re.search(r"^Version: (.+)$", read(next(n for n in zf.namelist()
                                                          if n.endswith(".dist-info/METADATA"))), re.M).group(1)
        llm_tree = ast.parse(read("vllm/entrypoints/llm.py"))
        llm = _class(llm_tree, "LLM")
        engine = _class(ast.parse(read("vllm/engine/arg_utils.py")), "EngineArgs")
        sp = sampling_params(read("vllm/sampling_params.py"), read("vllm/envs.py"))
        prompts = prompt_keys(read("vllm/inputs/llm.py"))
    return {
        "generated_by": "tools/extract_vllm_api.py (do not edit by hand)",
        "vllm_version": version,
        "wheel": wheel.name,
        "wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
        "LLM.__init__": _params(_function(llm.body, "__init__")),
        "LLM.generate": _params(_function(llm.body, "generate")),
        "EngineArgs": sorted(_fields(engine)),
        "SamplingParams": sp,
        "prompts": prompts,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=Path, help="a downloaded vllm wheel (default: download the pin)")
    ap.add_argument("--version", help="vllm version to download (default: the pin of envs/predict.yaml)")
    ap.add_argument("--out", type=Path, default=FIXTURE)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download(args.version or pinned_version(), Path(tmp))
        data = extract(wheel)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out} (vllm {data['vllm_version']}, {len(data['SamplingParams']['fields'])} SamplingParams "
          f"fields, {sum(len(v['checks']) for v in data['SamplingParams']['validators'].values())} checks)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
