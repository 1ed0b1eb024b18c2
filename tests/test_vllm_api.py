"""The package's vLLM calls against the pinned vLLM's own code, without a GPU or vLLM installed.

tests/fixtures/vllm_api.json is extracted from the pinned wheel's source by tools/extract_vllm_api.py
(``LLM`` and ``EngineArgs`` parameters, ``SamplingParams`` fields and every ``if ...: raise`` of its
validation, the prompt dict keys). Checked here:

* the fixture is of the version pinned in envs/*.yaml (regenerate it when the pin moves);
* every ``LLM(...)`` argument the package builds (prediction, translation) and every one TRL's
  colocated vLLM passes is a parameter of the pinned ``LLM`` or a field of ``EngineArgs``;
* every ``SamplingParams(...)`` argument is a field, and vLLM's validation conditions, evaluated on
  the arguments we build, reject exactly the decoding settings our config validation rejects;
* prompts go to ``LLM.generate`` as ``TokensPrompt`` dicts.

Pure Python, well under a second (plus two schema validations per grid point)."""

from __future__ import annotations

import ast
import copy
import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from parallel_scaling.common import decoding
from parallel_scaling.evaluate import predict
from parallel_scaling.data import translation_engines
from parallel_scaling.dataio.schema import trainer_keys
from parallel_scaling.train.grpo import grpo_config_kwargs
from parallel_scaling.train.shared import trl_args
from vllm_grid import GRID, config_errors, prediction_section

ROOT = Path(__file__).resolve().parents[1]
API = json.loads((ROOT / "tests/fixtures/vllm_api.json").read_text())
SCHEMA = ROOT / "workflow/schemas/config.schema.json"


# --------------------------------------------------------------------------------------------------
# vLLM's SamplingParams validation, evaluated from the extracted conditions


def _default(source: str | None):
    try:
        return ast.literal_eval(source) if source is not None else None
    except (ValueError, SyntaxError):
        return None


def _names(expr: str) -> set[str]:
    """`self.<field>` attributes and plain names an expression reads."""
    tree = ast.parse(expr, mode="eval")
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            out.add(node.attr)
        elif isinstance(node, ast.Name):
            out.add(node.id)
    return out


def vllm_rejections(kwargs: dict) -> list[str]:
    """The messages of the checks vLLM 0.30's ``SamplingParams(**kwargs)`` would fail.

    Runs ``__post_init__``'s validator calls as extracted (with their guards), and evaluates each check
    that reads one of the fields we pass (or a parameter bound to one): the other fields keep their
    defaults, which vLLM's own tests cover."""
    sp = API["SamplingParams"]
    unknown = set(kwargs) - set(sp["fields"])
    assert not unknown, f"not SamplingParams fields in vLLM {API['vllm_version']}: {sorted(unknown)}"
    values = {name: _default(src) for name, src in sp["fields"].items()}
    values.update(kwargs)
    env = {"math": math, "isinstance": isinstance, "int": int, "float": float, "all": all, "any": any,
           "envs": SimpleNamespace(**sp["envs"]), **sp["constants"], "self": SimpleNamespace(**values)}
    failed: list[str] = []

    def run(name: str, scope: dict, relevant: set[str]) -> None:
        v = sp["validators"][name]
        scope = dict(scope)
        for local in v["locals"]:
            scope[local["name"]] = eval(local["value"], {}, scope)  # noqa: S307 - extracted vLLM expressions
        for check in v["checks"]:
            reads = _names(check["condition"])
            if not reads & relevant:
                continue
            if all(eval(g, {}, scope) for g in check["guards"]) and eval(check["condition"], {}, scope):  # noqa: S307
                failed.append(f"{name}: {check['condition']}")
        for call in v["calls"]:
            if not all(eval(g, {}, scope) for g in call["guards"]):  # noqa: S307
                continue
            callee = sp["validators"][call["callee"]]
            bound = dict(zip(callee["params"], call["args"]))
            inner = dict(env, **{p: eval(a, {}, scope) for p, a in bound.items()})  # noqa: S307
            bound_relevant = {p for p, a in bound.items() if _names(a) & relevant}
            run(call["callee"], inner, relevant | bound_relevant)

    run("__post_init__", env, set(kwargs))
    return failed


def test_the_fixture_is_the_pinned_vllm():
    for env in ("predict", "train", "data"):
        text = (ROOT / f"envs/{env}.yaml").read_text()
        pin = re.search(r"-\s*vllm==([\w.]+)", text).group(1)
        assert pin == API["vllm_version"], (
            f"envs/{env}.yaml pins vllm {pin} but tests/fixtures/vllm_api.json is of {API['vllm_version']}: "
            "run `python tools/extract_vllm_api.py` and review the fixture's diff")


def test_the_evaluator_reads_vllms_rules():
    """The extracted checks are live: vLLM's own limits show up for obviously bad values."""
    assert vllm_rejections({"temperature": 0.0, "n": 2})
    assert vllm_rejections({"temperature": 2.5})
    assert vllm_rejections({"top_p": 0.0})
    assert vllm_rejections({"n": API["SamplingParams"]["envs"]["VLLM_MAX_N_SEQUENCES"] + 1, "temperature": 1.0})
    assert vllm_rejections({"repetition_penalty": 0.0})
    assert vllm_rejections({"max_tokens": 0})
    assert not vllm_rejections({"temperature": 0.6, "top_p": 0.95, "n": 4, "max_tokens": 10})


# --------------------------------------------------------------------------------------------------
# LLM(...) and generate(...)


def llm_parameters() -> set[str]:
    init = API["LLM.__init__"]
    assert init["var_keyword"], "LLM(**kwargs) no longer forwards to EngineArgs"
    return set(init["positional"][1:]) | set(init["keyword_only"]) | set(API["EngineArgs"])


PAPER = yaml.safe_load((ROOT / "configs/parallel_paper.yaml").read_text())


def test_prediction_llm_and_sampling_arguments():
    s = {**PAPER["prediction"], "top_k": 20, "repetition_penalty": 1.1, "vllm_enforce_eager": True}

    class Tok:
        def __call__(self, texts, add_special_tokens):
            assert add_special_tokens
            return {"input_ids": [[1, 2, 3] for _ in texts]}

    llm, sampling, prompts = predict.vllm_arguments("/models/x", ["a", "b"], s, Tok())
    assert set(llm) <= llm_parameters(), set(llm) - llm_parameters()
    assert llm["generation_config"] == "vllm" and llm["max_model_len"] == 12288
    assert not vllm_rejections(sampling)
    assert sampling == {"n": 4, "temperature": 0.6, "top_p": 0.95, "top_k": 20, "repetition_penalty": 1.1,
                        "max_tokens": 8192, "seed": 0}
    keys = API["prompts"]["TokensPrompt"]
    for p in prompts:
        assert set(keys["required"]) <= set(p) <= set(keys["required"]) | set(keys["optional"])
    # generate(prompts, sampling_params): the two positional parameters the engines use
    assert API["LLM.generate"]["positional"][:3] == ["self", "prompts", "sampling_params"]


def test_translation_llm_and_sampling_arguments():
    model_cfg = translation_engines.section(PAPER["translation"], "model")
    llm, sampling = translation_engines.vllm_arguments(model_cfg, translation_engines.section(PAPER["translation"], "vllm"))
    assert set(llm) <= llm_parameters(), set(llm) - llm_parameters()
    assert llm["tensor_parallel_size"] == 4 and llm["max_model_len"] == 4096
    assert not vllm_rejections(sampling)
    assert sampling["temperature"] == 0.0 and sampling["n"] == 1


def test_trl_colocated_vllm_arguments_exist_in_the_pinned_vllm():
    """TRL 1.16 builds the colocated engine itself (trl/generation/vllm_generation.py); its keyword
    arguments must exist in the vLLM we pin beside it."""
    import trl.generation.vllm_generation as vg

    tree = ast.parse(Path(vg.__file__).read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "LLM"]
    assert calls, "TRL no longer calls vllm.LLM"
    for call in calls:
        names = {k.arg for k in call.keywords if k.arg}
        assert names <= llm_parameters(), f"TRL passes {sorted(names - llm_parameters())} unknown to vLLM"
        assert "max_model_len" in names  # where grpo.vllm_max_model_length arrives


def test_grpo_config_vllm_fields_exist_in_trl():
    """Every GRPOConfig argument the workflow builds is a field of TRL's GRPOConfig, and the
    colocated engine gets a context length (not the model's own 131072 tokens for Llama 3.1)."""
    import dataclasses

    from trl import GRPOConfig

    config = copy.deepcopy(PAPER["grpo"])
    from parallel_scaling.plan.cost_plan import load_config

    s = load_config([ROOT / "configs/parallel_paper.yaml"])["grpo"]
    kwargs = grpo_config_kwargs(s, trl_args(s, trainer_keys("grpo"), "cuda", Path("x"), 0), [1.0], "bfloat16",
                                prompt_lengths=[80, 312, 95])
    fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    assert set(kwargs) <= fields, set(kwargs) - fields
    assert set(trainer_keys("grpo")) <= set(kwargs)
    assert kwargs["vllm_mode"] == "colocate" == config["vllm_mode"]
    assert kwargs["vllm_max_model_length"] == 312 + s["max_completion_length"]
    assert grpo_config_kwargs({**s, "vllm_max_model_length": 4096}, {}, [1.0], "bfloat16", [80])[
        "vllm_max_model_length"] == 4096
    assert grpo_config_kwargs({**s, "use_vllm": False}, {}, [1.0], "float32", [])["vllm_max_model_length"] is None


# --------------------------------------------------------------------------------------------------
# our config validation rejects what vLLM rejects


@pytest.mark.parametrize("temperature,n,top_p,top_k,rep", GRID)
def test_config_accepts_exactly_what_vllm_accepts(temperature, n, top_p, top_k, rep):
    prediction = prediction_section(temperature, n, top_p, top_k, rep)
    ours = config_errors(prediction)
    theirs = vllm_rejections(decoding.vllm_sampling_kwargs(prediction))
    assert bool(ours) == bool(theirs), f"config: {ours}; vLLM: {theirs}"


def test_translation_and_grpo_temperatures_are_capped_like_vllm():
    schema = json.loads(SCHEMA.read_text())["properties"]
    assert schema["translation"]["properties"]["model"]["properties"]["temperature"]["maximum"] == 2
    assert schema["grpo"]["properties"]["temperature"]["maximum"] == 2
    assert vllm_rejections({"temperature": 2.0 + 1e-9})
    assert schema["grpo"]["properties"]["vllm_mode"]["enum"] == ["colocate"]
