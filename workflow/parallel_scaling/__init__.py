"""parallel-scaling: the logic behind the Snakemake pipeline.

Every Snakemake rule calls ``python -m parallel_scaling <command>``; each command lives in the
module named after what it does (see :mod:`parallel_scaling.cli`). Modules imported while the
Snakefile is parsed (``study``, ``prompts``, ``synth``) must stay light: no torch, no transformers.
"""

from pathlib import Path as _Path


def _release() -> str:
    """The release, kept in one place: ``pyproject.toml``'s ``version`` (CHANGELOG.md names each release).

    Read from the checkout's (or an archive's) ``pyproject.toml`` beside ``workflow/`` when there is
    one, so that the code that runs names its own release even when the installed metadata is older
    (an editable install made before the version moved); else from the installed distribution.
    """
    pyproject = _Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        import tomllib

        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        if project.get("name") == "parallel-scaling" and project.get("version"):
            return str(project["version"])
    except (OSError, ValueError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("parallel-scaling")
    except PackageNotFoundError:
        return "unknown"


__version__ = _release()
