from collections import Counter

import pytest


@pytest.fixture(scope="session")
def slurm_cluster(request, tmp_path_factory):
    """A private single-node SLURM cluster (tests/slurm_cluster.py), up for the
    whole test session. Yields a ``SlurmCluster``: ``.partition``,
    ``.env_vars`` (``SLURM_CONF``, ``PATH``), ``.env()``, ``.run([...])`` for
    SLURM commands and ``.snakemake([...], cwd=...)`` to run snakemake with
    the project's SLURM profile. Skips unless root with the SLURM/munge
    binaries installed (``.ci/install-slurm.sh``).

    When a test of the session needs the SLURM smoke run (tests/slurm_smoke.py),
    it starts at once, in ``.background``: it mostly waits on the scheduler's
    status checks, and the cluster's other tests run meanwhile."""
    from slurm_cluster import missing_requirements, running_cluster

    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    with running_cluster(tmp_path_factory.mktemp("slurm")) as cluster:
        import slurm_smoke

        if any(slurm_smoke.FIXTURE in item.fixturenames for item in request.session.items):
            wd = tmp_path_factory.mktemp("slurm-smoke") / "wf"
            cluster.background[slurm_smoke.FIXTURE] = slurm_smoke.start(cluster, wd)
        try:
            yield cluster
        finally:
            for run in cluster.background.values():
                run.stop()


#: the SLURM cluster's work unit (one cluster per session, i.e. per worker)
CLUSTER_UNIT = "slurm-cluster"


def _one_core(item: pytest.Item) -> bool:
    """A slow test that keeps one core busy and no more (``pytest.mark.slow(cores=1)``)."""
    marker = item.get_closest_marker("slow")
    return marker is not None and marker.kwargs.get("cores") == 1


def _group(item: pytest.Item) -> str:
    marker = item.get_closest_marker("xdist_group")
    if marker is not None:
        return str(marker.args[0] if marker.args else marker.kwargs.get("name", "default"))
    if "slurm_cluster" in item.fixturenames or _one_core(item):
        return CLUSTER_UNIT
    return item.nodeid.split("::", 1)[0]


#: what a test is expected to cost when ordering the work units (seconds on 2 busy cores): a slow
#: test (an end-to-end run through Snakemake) that names no cost of its own, and any other test. A
#: slow test far above the default names its cost: ``pytest.mark.slow(seconds=130)``.
SLOW_SECONDS = 10.0
QUICK_SECONDS = 0.05


def _cost(item: pytest.Item) -> float:
    marker = item.get_closest_marker("slow")
    if marker is None:
        return QUICK_SECONDS
    return float(marker.kwargs.get("seconds", SLOW_SECONDS))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Work units for `pytest -n N --dist loadgroup` (how `make test` runs the suite).

    A test module is one unit, so its module-scoped fixture (a finished study, a dry run) is built
    once, on one worker; the tests of the SLURM cluster form one unit, since the cluster is one per
    session, i.e. per worker. A test may name its own unit (``pytest.mark.xdist_group``): each
    shipped study's substitute is one. The units expected to take longest go first (the sum of
    their tests' costs, :func:`_cost`), so that the longest ones start at once and the quick ones
    fill in at the end: a long unit started late would run on alone while the other workers idle.
    The SLURM cluster's unit goes first of all, as most of its time is spent waiting on the
    scheduler, so the other workers' studies have the cores meanwhile (`make test` runs one worker
    more than the cores for that). A long test that keeps only one core busy
    (``pytest.mark.slow(cores=1)``: the released model's build, one thread by its recipe) joins
    that unit after the cluster's tests: beside the cluster's waits it would leave a core idle
    (with two workers), after them it runs beside studies that use both. The same order in a
    serial run."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(_group(item)))
    cost: Counter[str] = Counter()
    for item in items:
        cost[_group(item)] += _cost(item)
    cost[CLUSTER_UNIT] = float("inf")
    items.sort(key=lambda item: (-cost[_group(item)], _one_core(item)))


def pytest_configure(config: pytest.Config) -> None:
    """Stops a `--dist loadgroup` run whose work units would not form: pytest-xdist (3.8) marks a
    test's unit in its node id, which pytest 9.2 no longer lets it change (pytest-xdist issue
    #1386); each unit's module-scoped study would then run once per worker, silently."""
    distributed = getattr(config.option, "dist", "no") == "loadgroup" and getattr(config.option, "tx", None)
    if distributed and pytest.version_tuple[:2] >= (9, 2):
        import xdist

        if tuple(int(p) for p in xdist.__version__.split(".")[:2]) <= (3, 8):
            raise pytest.UsageError(
                f"pytest-xdist {xdist.__version__} does not group tests (--dist loadgroup) under pytest "
                f"{pytest.__version__} (pytest-xdist issue #1386): install the pins of envs/requirements-cpu.txt")
