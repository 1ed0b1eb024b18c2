"""Warm start for local runs: jobs forked from a process that has already imported torch & co.

Why: every job of this workflow is a fresh ``python -m parallel_scaling <command>``; before any
work, a training or prediction job spends about 5 CPU-seconds importing torch, transformers and
TRL (transformers' import scans package versions and pulls in ``torch._dynamo``), and an analysis
job 1-2 s importing pandas, scipy and matplotlib. On a laptop's 2 cores that is a fifth of the
default study, and most of the test suite. With ``PARALLEL_SCALING_WARM=1`` in the environment, the
command-line entry point hands its command to a *server* that imported all of that once; the server
forks one worker per command, the worker takes over the client's descriptors (stdin, stdout,
stderr, the console), environment, working directory and arguments, runs the command exactly as
the client would have, and ends with its exit status, which the client returns. Nothing else
changes: the same code runs on the same files, and the job's own process (the client) lives as long
as the command, so Snakemake and a job's kill work as before:

* a signal the client receives (SIGTERM from Snakemake or SLURM, SIGINT) is passed on to the
  worker's process group;
* when the client dies without a word (SIGKILL), the worker's watchdog sees its connection close
  and kills the worker's process group at once.

The server imports third-party libraries only; each worker imports this package afresh from the
client's ``PYTHONPATH``, so an edited module or another checkout runs its own code, and one server
serves every checkout of one environment. One server per *key*: the Python executable, this
module's own bytes and the environment (without ``PYTHONPATH``'s entries that hold this package,
nor variables that change from shell to shell); another ``ATEN_CPU_CAPABILITY`` or
``OMP_NUM_THREADS`` (read when torch is imported) gets a server of its own, never a worker with
other numerics. A server exits after ``PARALLEL_SCALING_WARM_IDLE`` seconds (default 60) without a
command. A server whose imports started a Python thread refuses to serve (a fork could copy a held
lock), and the client then runs the command itself, as it does whenever no server can be reached.
The server never runs a torch operation, so no OpenMP pool exists to fork.

Not for multi-process launches (``WORLD_SIZE`` > 1: ``accelerate launch`` starts the ranks) and not
under SLURM (``SLURM_JOB_ID``): each rank and each cluster job starts fresh. Snakemake's
``benchmark:`` files measure the job's process tree, i.e. the client: with a warm start they do not
count the worker's CPU time or memory (docs/performance.md).
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import importlib
import importlib.util
import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ENABLE = "PARALLEL_SCALING_WARM"
IDLE = "PARALLEL_SCALING_WARM_IDLE"
SERVER = "PARALLEL_SCALING_WARM_SERVER"
#: variables that differ between two shells of one run without changing what a command computes
_VOLATILE = {"_", "SHLVL", "OLDPWD", "PWD", "PYTHONPATH", "PARALLEL_SCALING_CONSOLE_FD", SERVER,
             "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_TESTRUNUID", "PYTEST_XDIST_WORKER_COUNT"}
PACKAGE = "parallel_scaling"
#: what the client passes on to its worker: the signals that stop or pre-empt a job
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
#: imported by the server, before any fork: the slow imports of the commands (measured with
#: ``python -X importtime``); a command that needs more imports it in the worker, as it would anyway
PRELOAD = (
    "torch",
    "numpy",
    "pandas",
    "yaml",
    "scipy.optimize",
    "scipy.stats",
    "transformers",
    "transformers.models.qwen2.modeling_qwen2",
    "transformers.generation.utils",
    "datasets",
    "accelerate",
    "trl",
    "trl.trainer.grpo_trainer",
    "trl.trainer.sft_trainer",
    "math_verify",
    "matplotlib.pyplot",
    "snakemake.cli",
    "snakemake.api",
    "snakemake_executor_plugin_slurm",
)


def eligible(environ: os._Environ | dict[str, str] | None = None) -> bool:
    """Whether this command may run in a warm worker: asked for, a single process, not under SLURM."""
    env = os.environ if environ is None else environ
    if env.get(ENABLE, "") in {"", "0"}:
        return False
    if environ is None and forked_from() is not None:
        return False  # already a warm worker: run the command here
    if int(env.get("WORLD_SIZE", "1") or 1) > 1 or "SLURM_JOB_ID" in env:
        return False
    return True


def forked_from() -> int | None:
    """The pid of the warm server this process was forked from to run a command, else None (a
    process a warm job starts inherits the variable but is no child of the server)."""
    return os.getppid() if os.environ.get(SERVER) == str(os.getppid()) else None


def foreign_path(environ: dict[str, str]) -> list[str]:
    """``PYTHONPATH``'s entries other than a folder holding this package (a checkout's
    ``workflow/``): those could change what the server's imports find."""
    return [p for p in environ.get("PYTHONPATH", "").split(os.pathsep)
            if p and not (Path(p) / PACKAGE / "__init__.py").is_file()]


def server_key(environ: dict[str, str], executable: str) -> str:
    """What a worker inherits from its server and could otherwise differ from a fresh process."""
    env = {k: v for k, v in environ.items() if k not in _VOLATILE}
    own = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    blob = json.dumps([executable, own, foreign_path(environ), sorted(env.items())])
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def runtime_dir() -> Path | None:
    """Where the servers' sockets live: a folder private to the user (a socket path must stay
    short), or None when the folder there is not this user's alone (then nothing runs warm)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    path = Path(base) / f"parallel-scaling-warm-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = path.lstat()
    except OSError:
        return None
    if not path.is_dir() or path.is_symlink() or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return path


# --- client -----------------------------------------------------------------------------------


def run_warm(argv: list[str], module: str = PACKAGE) -> int | None:
    """Run ``python -m <module> <argv>`` in a warm worker and return its exit status, or None when
    no server can be reached (the caller then runs the command itself). ``module`` is this package,
    or ``snakemake`` (the test suite runs Snakemake itself so: tests/warm_snakemake.py)."""
    env = dict(os.environ)
    folder = runtime_dir()
    if folder is None:
        return None
    sock_path = folder / f"{server_key(env, sys.executable)}.sock"
    if sock_path.with_suffix(".refused").exists():
        return None  # this key's server could not serve (its log says why): run it here, at once
    conn = _connect(sock_path) or _start_server(sock_path, env)
    if conn is None:
        return None
    fds = [0, 1, 2]
    console = env.get("PARALLEL_SCALING_CONSOLE_FD", "")
    if console.isdigit() and int(console) not in fds:
        fds.append(int(console))
    fds = [fd for fd in fds if _is_open(fd)]
    request = json.dumps({"argv": argv, "module": module, "env": env, "cwd": os.getcwd(), "fds": fds}).encode()
    with conn:
        socket.send_fds(conn, [len(request).to_bytes(8, "big") + request], fds)
        reader = conn.makefile("r", encoding="utf-8")
        hello = reader.readline()
        if not hello:
            return None  # the server refused (e.g. it is shutting down): run it here
        worker = int(json.loads(hello)["pid"])
        forwarded = _forward_signals(worker)
        status = reader.readline()
    if status:
        return int(json.loads(status)["exit"])
    if forwarded:  # the worker died of the signal passed on: so does the job, as a fresh process would
        signal.signal(forwarded[-1], signal.SIG_DFL)
        os.kill(os.getpid(), forwarded[-1])
    print(f"parallel_scaling: the warm worker (pid {worker}) of this job ended without an exit status "
          "(killed?)", file=sys.stderr)
    return 1


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def _connect(sock_path: Path) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(sock_path))
        return conn
    except OSError:
        conn.close()
        return None


def _start_server(sock_path: Path, env: dict[str, str]) -> socket.socket | None:
    """Start the key's server unless another client is starting it, and connect once it listens."""
    with open(sock_path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one starter per key; the others wait here, then connect
        conn = _connect(sock_path)
        if conn is not None:
            return conn
        log = open(sock_path.with_suffix(".log"), "ab")
        server = subprocess.Popen([sys.executable, "-m", "parallel_scaling.jobs.warm", str(sock_path)],
                                  env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                  start_new_session=True, close_fds=True)
        log.close()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and server.poll() is None:
            conn = _connect(sock_path)
            if conn is not None:
                return conn
            time.sleep(0.05)
        return None


def _forward_signals(worker: int) -> list[int]:
    """Pass the signals that stop a job on to the worker's process group; returns the list of the
    signals passed on so far."""
    forwarded: list[int] = []

    def forward(signum: int, frame: object) -> None:
        forwarded.append(signum)
        try:
            os.killpg(worker, signum)
        except ProcessLookupError:
            pass

    for signum in FORWARDED:
        signal.signal(signum, forward)
    return forwarded


# --- server -----------------------------------------------------------------------------------


def serve(sock_path: Path, idle: float) -> socket.socket | None:
    """Import :data:`PRELOAD`, listen on ``sock_path`` and fork a worker per connection. Returns
    None in the server when it has been idle for ``idle`` seconds, and the connection in a worker."""
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # an optional part of the stack: the command imports it (or fails) as usual
    if threading.active_count() != 1:
        # a Python thread could hold a lock the worker needs (the BLAS and allocator pools of numpy,
        # scipy and pyarrow are native and prepare for fork themselves, as multiprocessing relies on)
        reason = f"warm server: {threading.enumerate()} after the imports; forking would be unsafe, not serving"
        print(reason, file=sys.stderr)
        sock_path.with_suffix(".refused").write_text(reason + "\n")
        return None
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = sock_path.with_suffix(f".{os.getpid()}.tmp")
    listener.bind(str(tmp))
    listener.listen(64)
    os.replace(tmp, sock_path)  # clients connect only once the server is ready
    inode = os.stat(sock_path).st_ino
    listener.settimeout(1.0)
    workers: set[int] = set()
    last = time.monotonic()
    while True:
        for pid in list(workers):
            if os.waitpid(pid, os.WNOHANG)[0]:
                workers.discard(pid)
        if workers:
            last = time.monotonic()
        if time.monotonic() - last > idle or not _owns(sock_path, inode):
            break
        try:
            conn, _ = listener.accept()
        except (TimeoutError, socket.timeout):
            continue
        last = time.monotonic()
        for stream in (sys.stdout, sys.stderr):  # nothing of the server's may reach a job's output
            stream.flush()
        pid = os.fork()
        if pid == 0:
            listener.close()
            return conn
        conn.close()
        workers.add(pid)
    if _owns(sock_path, inode):
        sock_path.unlink(missing_ok=True)
    listener.close()
    return None


def _owns(sock_path: Path, inode: int) -> bool:
    """Whether the socket file is still this server's (not replaced by another)."""
    try:
        return os.stat(sock_path).st_ino == inode
    except OSError:
        return False


def work(conn: socket.socket) -> int:
    """In a forked worker: take over the client's descriptors, environment and directory, run the
    command, and send its exit status last (after the interpreter's own exit handlers)."""
    conn.setblocking(True)
    header, fds, _, _ = socket.recv_fds(conn, 8, 16)
    size = int.from_bytes(header, "big")
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return 1
        data += chunk
    request = json.loads(data)
    os.setpgid(0, 0)  # the job's own process group: what the watchdog and forwarded signals reach
    for target, fd in zip(request["fds"], fds):
        os.dup2(fd, target)
        os.close(fd)
    for signum in FORWARDED:  # as in a fresh interpreter (which also ignores SIGPIPE, as the server does)
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.clear()
    module = request.get("module", PACKAGE)
    os.environ.update(request["env"])
    if module == PACKAGE:
        os.environ[SERVER] = str(os.getppid())  # recorded in the job's provenance
    os.chdir(request["cwd"])
    _adopt_package(request["env"], request["cwd"])
    main_file = importlib.util.find_spec(f"{module}.__main__").origin
    sys.argv = [str(main_file), *request["argv"]]  # as `python -m <module>` sets it
    status = {"exit": 1}

    def report() -> None:  # registered first, so it runs after every handler the command registers
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        try:
            conn.sendall((json.dumps(status) + "\n").encode())
        except OSError:
            pass

    atexit.register(report)
    conn.sendall((json.dumps({"pid": os.getpid()}) + "\n").encode())
    threading.Thread(target=_watchdog, args=(conn,), daemon=True).start()
    try:
        # as `python -m <module>` runs it, from the job's checkout (its PYTHONPATH); for this package
        # the CLI sees it runs in a worker (eligible() is False) and runs the command itself
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        status["exit"] = 0
    except SystemExit as exc:
        code = exc.code
        status["exit"] = code if isinstance(code, int) else (0 if code is None else 1)
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
    return status["exit"]


#: the server's module search path without its script folder and its own ``PYTHONPATH`` entries
_BASE_PATH: list[str] = []


def _remember_base_path() -> None:
    own = {p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}
    own |= {os.path.abspath(p) for p in own}
    _BASE_PATH[:] = [p for p in sys.path[1:] if p not in own]


def _adopt_package(env: dict[str, str], cwd: str) -> None:
    """Search path of a fresh ``python -m`` in ``cwd`` with the client's ``PYTHONPATH``, and none
    of this package's modules loaded: the command imports them from the client's checkout."""
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]
    sys.path[:] = [cwd, *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p), *_BASE_PATH]
    importlib.invalidate_caches()


def _watchdog(conn: socket.socket) -> None:
    """Kill the worker's process group when the client goes away (SIGKILL leaves no other trace)."""
    try:
        while conn.recv(1):
            pass
    except OSError:
        pass
    os.killpg(0, signal.SIGKILL)


def _server_main(sock_path: str) -> int:
    _remember_base_path()
    conn = serve(Path(sock_path), float(os.environ.get(IDLE, "60")))
    if conn is None:
        return 0
    return work(conn)


if __name__ == "__main__":
    sys.exit(_server_main(sys.argv[1]))
