import pytest


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A private single-node SLURM cluster (tests/slurm_cluster.py), up for the
    whole test session. Yields a ``SlurmCluster``: ``.partition``,
    ``.env_vars`` (``SLURM_CONF``, ``PATH``), ``.env()``, ``.run([...])`` for
    SLURM commands and ``.snakemake([...], cwd=...)`` to run snakemake with
    the project's SLURM profile. Skips unless root with the SLURM/munge
    binaries installed (``.ci/install-slurm.sh``)."""
    from slurm_cluster import missing_requirements, running_cluster

    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    with running_cluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster
