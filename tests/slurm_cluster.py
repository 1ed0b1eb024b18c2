"""A throw-away single-node SLURM cluster for tests.

Starts ``munged``, ``slurmctld`` and ``slurmd`` from Debian's packages
(``.ci/install-slurm.sh``) as children of the test process, with every file
(config, munge key and socket, state, spool, logs, PID files, fake GPU device
files) inside one private directory and the daemons listening on free
non-default ports on 127.0.0.1. Nothing system-wide is touched and only the
processes started here are ever stopped, each by its own PID.

The cluster:

* one partition (``SlurmCluster.partition``, the default partition) with one
  node advertising ``CPUS`` CPUs, ``REAL_MEMORY_MB`` memory and
  ``Gres=gpu:fake:2``. The numbers are declared, not measured
  (``SlurmdParameters=config_overrides``), so that the project's profile
  resource requests (e.g. 8 CPUs per GPU) fit on a small CI machine. A typed
  GPU accepts both ``--gpus=1`` and ``--gpus=fake:1``.
* ``select/cons_tres`` with ``CR_Core_Memory`` and ``DefMemPerCPU``, so that
  several jobs run side by side.
* no cgroups (``proctrack/linuxproc``, ``task/affinity``), no accounting
  (``jobacct_gather/none``, ``accounting_storage/none``, no slurmdbd), which
  is how the project's profile must also cope with clusters without slurmdbd.

Use the ``slurm_cluster`` session fixture from ``tests/conftest.py``, or
:func:`running_cluster` (a context manager), or :func:`start_cluster` and
then :meth:`SlurmCluster.stop`. Client commands reach the cluster through
``SlurmCluster.env()`` (SLURM_CONF, and PATH with wrappers that set it, see
:func:`_write_client_wrappers`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJECT_PROFILE = REPO_ROOT / "slurm"
WORKFLOW_PROFILE = REPO_ROOT / "profiles" / "default"
INSTALL_SCRIPT = ".ci/install-slurm.sh"

CLUSTER_NAME = "pstest"
PARTITION = "pstest"
NODE_NAME = "psnode"
GPU_TYPE = "fake"
GPU_COUNT = 2
CPUS = 64
REAL_MEMORY_MB = 512000
DEF_MEM_PER_CPU_MB = 100

# Daemons and client commands the cluster needs (sbin is often not on PATH).
_SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "srun", "scancel")
# Client commands that get a wrapper in <root>/bin (see _write_client_wrappers)
WRAPPED_CLIENTS = CLIENTS + (
    "sacct", "sacctmgr", "salloc", "sattach", "sbcast", "sdiag", "sprio",
    "sreport", "sshare", "sstat",
)

# Fast status polling for tests (the profile's values are for real clusters).
# Between status checks the SLURM plugin waits N s, then N+10, N+20, ... s
# while no job finishes, and N s again once one has. A toy job takes ~10-20 s here from sbatch to COMPLETED (snakemake
# starts twice inside it: batch step and srun step), so with N=8 the checks
# come at 8, 26 and 54 s; smaller N would only add useless early checks.
FAST_STATUS_SECONDS = 8
FAST_STATUS_ARGS = (
    "--seconds-between-status-checks",
    str(FAST_STATUS_SECONDS),
    "--slurm-init-seconds-before-status-checks",
    str(FAST_STATUS_SECONDS),
)


def _search_path() -> str:
    parts = os.environ.get("PATH", "").split(os.pathsep)
    parts += [d for d in _SBIN_DIRS if d not in parts]
    return os.pathsep.join(p for p in parts if p)


def which(name: str) -> str | None:
    return shutil.which(name, path=_search_path())


def missing_requirements() -> str | None:
    """Why the cluster cannot be started here, or None if it can."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "the SLURM test cluster needs a POSIX system"
    if os.geteuid() != 0:
        return "the SLURM test cluster must be started as root"
    missing = [b for b in DAEMONS + CLIENTS if which(b) is None]
    if missing:
        return (
            f"SLURM/munge binaries not found ({', '.join(missing)}); "
            f"install them with `sudo {INSTALL_SCRIPT}`"
        )
    return None


def _die_with_parent() -> None:
    """preexec_fn: have the kernel SIGTERM the daemon when the test process
    dies, so a killed pytest leaves no daemons behind (Linux only)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _free_ports(n: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (kept bound until all are chosen)."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            port = s.getsockname()[1]
            # slurmd listens on its port and slurmctld on a port range
            # starting at SlurmctldPort; keep them well apart.
            if all(abs(port - p) > 2 for p in ports):
                ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


def _clean_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment without any inherited SLURM job/client settings."""
    env = dict(os.environ if base is None else base)
    for key in list(env):
        if key.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_", "SQUEUE_")):
            del env[key]
    env["PATH"] = _search_path()
    return env


def _load_profile(profile_dir: Path) -> dict:
    for name in ("config.yaml", "profile.yaml"):
        path = profile_dir / name
        if path.is_file():
            return yaml.safe_load(path.read_text()) or {}
    raise FileNotFoundError(f"no config.yaml or profile.yaml in {profile_dir}")


def _resources_as_dict(entry) -> dict[str, str]:
    """A profile's ``default-resources`` as a dict (mapping or list form)."""
    if entry is None:
        return {}
    if isinstance(entry, Mapping):
        return {str(k): str(v) for k, v in entry.items()}
    result = {}
    for item in entry:
        key, _, value = str(item).partition("=")
        result[key.strip()] = value.strip()
    return result


@dataclass
class SlurmCluster:
    """Handle on a running test cluster."""

    root: Path
    conf: Path
    partition: str = PARTITION
    node: str = NODE_NAME
    gpus: int = GPU_COUNT
    gpu_type: str = GPU_TYPE
    cpus: int = CPUS
    ports: dict[str, int] = field(default_factory=dict)
    #: runs started in the background for the tests that will need them (tests/conftest.py)
    background: dict[str, "BackgroundRun"] = field(default_factory=dict, repr=False)
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)
    _logs: list = field(default_factory=list, repr=False)

    # -- environment -------------------------------------------------------

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def env_vars(self) -> dict[str, str]:
        """Variables that point SLURM clients at this cluster: SLURM_CONF,
        and PATH with :attr:`bin_dir` first."""
        return {
            "SLURM_CONF": str(self.conf),
            "PATH": os.pathsep.join([str(self.bin_dir), _search_path()]),
        }

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A full environment for subprocesses that talk to this cluster."""
        env = _clean_env()
        env.update(self.env_vars)
        if extra:
            env.update(extra)
        return env

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    def logs(self) -> str:
        """Tail of the daemons' log files, for assertion messages."""
        out = []
        for path in sorted(self.log_dir.glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()[-30:]
            out.append(f"==> {path.name} <==\n" + "\n".join(lines))
        return "\n".join(out)

    # -- commands ----------------------------------------------------------

    def run(
        self, args: Sequence[str], timeout: float = 30, check: bool = True, **kwargs
    ) -> subprocess.CompletedProcess:
        """Run a SLURM client command (e.g. ``["squeue"]``) against this cluster."""
        return subprocess.run(
            list(args),
            env=self.env(kwargs.pop("extra_env", None)),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            **kwargs,
        )

    def _site_values(self, res: dict[str, str]) -> dict[str, str]:
        res = dict(res)
        # no accounting database to validate an account against
        res.pop("slurm_account", None)
        if "slurm_partition" in res:
            res["slurm_partition"] = self.partition
        if "gpu_model" in res:
            res["gpu_model"] = self.gpu_type
        return res

    def profile_default_resources(
        self, profile: Path = PROJECT_PROFILE, **overrides
    ) -> list[str]:
        """The profile's ``default-resources`` with the site values swapped.

        ``slurm_partition`` becomes this cluster's partition, ``gpu_model``
        its GPU type, and ``slurm_account`` is dropped (there is no
        accounting database to validate it against); ``overrides`` replace
        or add entries.
        """
        res = _resources_as_dict(_load_profile(profile).get("default-resources"))
        res = self._site_values(res)
        res["slurm_partition"] = self.partition
        res.update({k: str(v) for k, v in overrides.items()})
        return [f"{k}={v}" for k, v in res.items()]

    def profile_set_resources(self, profile: Path = PROJECT_PROFILE) -> list[str]:
        """The profile's ``set-resources`` (``rule:name=value`` items) with
        the same site values swapped as in :meth:`profile_default_resources`."""
        entry = _load_profile(profile).get("set-resources") or {}
        if not isinstance(entry, Mapping):
            # already in CLI form: ["rule:name=value", ...]
            per_rule: dict[str, dict[str, str]] = {}
            for item in entry:
                target, _, value = str(item).partition("=")
                rule, _, name = target.partition(":")
                per_rule.setdefault(rule.strip(), {})[name.strip()] = value.strip()
            entry = per_rule
        items = []
        for rule, res in entry.items():
            for name, value in self._site_values(_resources_as_dict(res)).items():
                items.append(f"{rule}:{name}={value}")
        return items

    def snakemake_command(
        self,
        args: Iterable[str] = (),
        *,
        profile: Path = PROJECT_PROFILE,
        workflow_profile: Path | None = WORKFLOW_PROFILE,
        timeout: int = 300,
        fast_status: bool = True,
        default_resources: Sequence[str] | None = None,
        set_resources: Sequence[str] | None = None,
    ) -> list[str]:
        """``timeout -k 10 <timeout> python -m snakemake --profile <profile> ...``.

        Only site values are overridden on the command line: the
        ``default-resources`` and ``set-resources`` (partition, account, GPU
        model; see :meth:`profile_default_resources`) and, with
        ``fast_status``, the status polling intervals.
        """
        cmd = [
            "timeout", "-k", "10", str(timeout),
            sys.executable, "-m", "snakemake",
            "--profile", str(profile),
        ]
        if workflow_profile is not None and Path(workflow_profile).exists():
            cmd += ["--workflow-profile", str(workflow_profile)]
        else:
            cmd += ["--workflow-profile", "none"]
        if default_resources is None:
            default_resources = self.profile_default_resources(profile)
        cmd += ["--default-resources", *default_resources]
        if set_resources is None:
            set_resources = self.profile_set_resources(profile)
        if set_resources:
            cmd += ["--set-resources", *set_resources]
        if fast_status:
            cmd += list(FAST_STATUS_ARGS)
        cmd += list(args)
        return cmd

    def snakemake(
        self,
        args: Iterable[str] = (),
        *,
        cwd: Path,
        timeout: int = 300,
        extra_env: Mapping[str, str] | None = None,
        **kwargs,
    ) -> subprocess.CompletedProcess:
        """Run snakemake through this cluster's sbatch; output is captured.

        ``cwd`` is the directory snakemake runs in (its ``.snakemake`` and
        the SLURM logs go there). Further keyword arguments go to
        :meth:`snakemake_command`.
        """
        cmd = self.snakemake_command(args, timeout=timeout, **kwargs)
        return subprocess.run(
            cmd,
            cwd=cwd,
            env=self.env(extra_env),
            capture_output=True,
            text=True,
            # the `timeout` wrapper ends snakemake; this is only a backstop
            timeout=timeout + 30,
        )

    def start_snakemake(
        self,
        args: Iterable[str] = (),
        *,
        cwd: Path,
        timeout: int = 300,
        extra_env: Mapping[str, str] | None = None,
        **kwargs,
    ) -> "BackgroundRun":
        """:meth:`snakemake` started without waiting for it: ``.result()``
        waits and returns what :meth:`snakemake` would have. A run that
        mostly waits on the scheduler's status checks can so go on while
        other tests use the cluster."""
        cmd = self.snakemake_command(args, timeout=timeout, **kwargs)
        out = cwd.parent / f"{cwd.name}.snakemake.out"
        err = cwd.parent / f"{cwd.name}.snakemake.err"
        with out.open("w") as stdout, err.open("w") as stderr:
            proc = subprocess.Popen(cmd, cwd=cwd, env=self.env(extra_env), stdin=subprocess.DEVNULL,
                                    stdout=stdout, stderr=stderr, text=True)
        return BackgroundRun(cmd, cwd, proc, out, err, timeout + 30)

    # -- lifecycle ---------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str]) -> None:
        log = open(self.log_dir / f"{name}.stdout", "ab")
        self._logs.append(log)
        self._procs[name] = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=self.root,
            # own session: a Ctrl-C in pytest must not kill the daemons before
            # the fixture's teardown has cancelled the jobs
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )

    def _check_alive(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.returncode} while starting the "
                    f"test cluster\n{self.logs()}"
                )

    def wait_idle(self, timeout: float = 60) -> None:
        """Wait until ``sinfo`` shows the node idle."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            self._check_alive()
            res = self.run(
                ["sinfo", "--noheader", "--nodes", self.node, "--format", "%t"],
                check=False,
                timeout=10,
            )
            state = res.stdout.strip()
            if res.returncode == 0 and state == "idle":
                return
            time.sleep(0.25)
        raise TimeoutError(
            f"node {self.node} not idle after {timeout}s (state {state!r})\n"
            f"{self.logs()}"
        )

    def stop(self) -> None:
        """Cancel all jobs, then stop each daemon by its PID."""
        if "slurmctld" in self._procs and self._procs["slurmctld"].poll() is None:
            try:
                self.run(["scancel", "--full", "--partition", self.partition],
                         check=False, timeout=10)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    res = self.run(["squeue", "--noheader", "--format", "%i"],
                                   check=False, timeout=10)
                    if res.returncode != 0 or not res.stdout.strip():
                        break
                    time.sleep(0.5)
            except (subprocess.SubprocessError, OSError):
                pass
        # slurmd first (it needs the controller to deregister), munged last.
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self._procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for log in self._logs:
            log.close()
        self._logs.clear()


def _write_config(root: Path, ports: dict[str, int]) -> Path:
    conf = root / "etc" / "slurm.conf"
    sock = root / "munge" / "munge.socket"
    gpu_files = [root / "dev" / f"nvidia{i}" for i in range(GPU_COUNT)]
    conf.write_text(
        f"""\
# Generated by tests/slurm_cluster.py: private single-node test cluster.
ClusterName={CLUSTER_NAME}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ports['slurmctld']}
SlurmdPort={ports['slurmd']}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={sock}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups (task/affinity copes with the declared CPUs exceeding the real
# ones; task/none would do as well, srun then warns about --cpu-bind)
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
MpiDefault=none
MailProg=/bin/true
# consumable cores, memory and GPUs
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
DefMemPerCPU={DEF_MEM_PER_CPU_MB}
SchedulerType=sched/backfill
# accept the declared (not detected) node size
SlurmdParameters=config_overrides
ReturnToService=2
# no accounting, no slurmdbd
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# keep finished jobs visible to squeue/scontrol for 5 min (SLURM default)
MinJobAge=300
InactiveLimit=0
KillWait=5
MessageTimeout=10
NodeName={NODE_NAME} NodeAddr=127.0.0.1 NodeHostname={NODE_NAME} CPUs={CPUS} \
RealMemory={REAL_MEMORY_MB} Gres=gpu:{GPU_TYPE}:{GPU_COUNT} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE_NAME} Default=YES MaxTime=INFINITE \
State=UP
"""
    )
    (conf.parent / "gres.conf").write_text(
        "AutoDetect=off\n"
        + "".join(
            f"NodeName={NODE_NAME} Name=gpu Type={GPU_TYPE} File={f}\n"
            for f in gpu_files
        )
    )
    # Fake GPU device files: character devices with /dev/null's numbers, or
    # symlinks to /dev/null where mknod is not permitted.
    for f in gpu_files:
        try:
            os.mknod(f, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except OSError:
            f.symlink_to("/dev/null")
    return conf


def _write_client_wrappers(root: Path, conf: Path) -> None:
    """``<root>/bin/<client>`` scripts that run the real client with
    SLURM_CONF set to this cluster's config.

    SLURM_CONF alone is not enough: inside a job, the slurm-jobstep plugin
    (0.6) removes every SLURM_* variable except the job's identity before it
    calls ``srun``, so a nested ``srun`` would look for /etc/slurm/slurm.conf
    (or a configless setup), i.e. for a real cluster's config. The wrappers,
    first on PATH (which is kept), stand in for that system-wide config
    without touching /etc.
    """
    bin_dir = root / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in WRAPPED_CLIENTS:
        real = which(name)
        if real is None:
            continue
        wrapper = bin_dir / name
        wrapper.write_text(
            "#!/bin/sh\n"
            "# generated by tests/slurm_cluster.py\n"
            f"SLURM_CONF={shlex.quote(str(conf))}\n"
            "export SLURM_CONF\n"
            f'exec {shlex.quote(real)} "$@"\n'
        )
        wrapper.chmod(0o755)


def start_cluster(root: Path, timeout: float = 60) -> SlurmCluster:
    """Bring up the cluster with all its files under ``root`` (must be empty
    or missing). Raises if it does not come up; the daemons that did start
    are stopped again in that case."""
    reason = missing_requirements()
    if reason:
        raise RuntimeError(reason)
    root = Path(root)
    for sub in ("etc", "munge", "state", f"spool/{NODE_NAME}", "run", "log", "dev"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    # munged insists on private directories for its key and socket
    os.chmod(root, 0o755)
    os.chmod(root / "munge", 0o700)

    ports = dict(zip(("slurmctld", "slurmd"), _free_ports(2)))
    conf = _write_config(root, ports)
    _write_client_wrappers(root, conf)
    cluster = SlurmCluster(root=root, conf=conf, ports=ports)
    env = cluster.env()

    key = root / "munge" / "munge.key"
    # a fresh random key (what `mungekey --create` writes), readable by root only
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(os.urandom(1024))

    try:
        cluster._spawn("munged", [
            which("munged"), "--foreground", "--force",
            f"--socket={root / 'munge' / 'munge.socket'}",
            f"--key-file={key}",
            f"--pid-file={root / 'run' / 'munged.pid'}",
            f"--log-file={root / 'log' / 'munged.log'}",
            f"--seed-file={root / 'munge' / 'munged.seed'}",
        ], env)
        sock = root / "munge" / "munge.socket"
        deadline = time.monotonic() + 15
        while not sock.exists():
            cluster._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"munged socket not created\n{cluster.logs()}")
            time.sleep(0.05)
        cluster._spawn("slurmctld",
                       [which("slurmctld"), "-D", "-i", "-f", str(conf)], env)
        cluster._spawn("slurmd",
                       [which("slurmd"), "-D", "-f", str(conf), "-N", NODE_NAME],
                       env)
        cluster.wait_idle(timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


# munged's and slurmd's UNIX socket paths must stay below 108 bytes
_MAX_ROOT_LEN = 60


@dataclass
class BackgroundRun:
    """A snakemake run through the cluster that goes on in the background
    (:meth:`SlurmCluster.start_snakemake`)."""

    cmd: list[str]
    cwd: Path
    proc: subprocess.Popen
    stdout: Path
    stderr: Path
    timeout: int

    def result(self) -> subprocess.CompletedProcess:
        """Wait for the run; its exit status and output, as
        :meth:`SlurmCluster.snakemake` returns them."""
        try:
            self.proc.wait(timeout=self.timeout)
        finally:
            self.stop()
        return subprocess.CompletedProcess(self.cmd, self.proc.returncode, self.stdout.read_text(),
                                           self.stderr.read_text())

    def stop(self) -> None:
        """End the run if it still goes on (the `timeout` wrapper passes the
        signal on to snakemake, which cancels its SLURM jobs)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def running_cluster(base_dir: Path) -> Iterator[SlurmCluster]:
    """Start a cluster under ``base_dir`` and stop it on exit.

    ``base_dir`` is used unless its path is too long for the daemons' UNIX
    sockets; then a short directory under the system temp dir is used and
    removed afterwards.
    """
    base_dir = Path(base_dir)
    own_dir = None
    if len(str(base_dir)) > _MAX_ROOT_LEN:
        own_dir = Path(tempfile.mkdtemp(prefix="ps-slurm-"))
        base_dir = own_dir
    cluster = start_cluster(base_dir / "cluster")
    try:
        yield cluster
    finally:
        cluster.stop()
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)


def describe_command(cmd: Sequence[str]) -> str:
    return shlex.join(str(c) for c in cmd)
