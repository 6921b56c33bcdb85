"""Helpers shared by the benchmarks in bench/ (not a benchmark itself: `make bench` runs bench_*.py only).

Everything here is import-safe before Django is configured: the benchmarks set their environment
(database, folders, broker) first and only then call `django_setup()`.
"""

from __future__ import annotations

import http.client
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_PG = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
DEFAULT_REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

# Environment variables of eoplatform.settings that a benchmark sets itself; any value inherited from the
# caller's shell is dropped first so that a bench never touches the caller's database, broker or var/.
PLATFORM_ENV = (
    "DATABASE_URL", "SQLITE_PATH", "SQLITE_TEST_PATH", "CELERY_BROKER_URL", "CELERY_BROKER_FOLDER", "REDIS_URL",
    "CELERY_KEY_PREFIX", "CHANNELS_PREFIX", "CRYOLABEL_VAR_DIR", "MEDIA_ROOT", "STATIC_ROOT", "DATABASE_POOL_SIZE",
    "CELERY_TASK_ALWAYS_EAGER",
)


def clean_platform_env(**values: str) -> None:
    """Drop inherited platform settings from os.environ, then set `values` (before django.setup())."""
    for name in PLATFORM_ENV:
        os.environ.pop(name, None)
    os.environ.update({k: v for k, v in values.items() if v is not None})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eoplatform.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # A bench's own key (a deployment with DEBUG off refuses to start without one); its Daphne inherits it.
    os.environ.setdefault("SECRET_KEY", f"bench-{os.getpid()}-{os.urandom(16).hex()}")


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so that the benchmark's `finally` blocks clean up (database, processes)."""
    import signal

    def _raise(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)


def django_setup() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eoplatform.settings")
    django.setup()


def migrate() -> float:
    """Apply every migration to the configured database; returns the seconds it took."""
    from django.core.management import call_command

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    return time.perf_counter() - t0


# --- PostgreSQL databases of a benchmark's own ------------------------------------------------------------------
def _admin_conn(server_url: str):
    import psycopg

    return psycopg.connect(f"{server_url.rstrip('/')}/postgres", autocommit=True)


def pg_create_database(server_url: str, name: str) -> str:
    """Create database `name` on the server (dropping a leftover of the same name); returns its URL."""
    from psycopg import sql

    with _admin_conn(server_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{server_url.rstrip('/')}/{name}"


def pg_copy(cursor, table: str, columns: list[str], rows) -> int:
    """COPY `rows` (tuples in `columns` order) into `table` through a psycopg cursor; returns how many."""
    n = 0
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server the bench starts)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_drop_database(server_url: str, name: str) -> None:
    from psycopg import sql

    with _admin_conn(server_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def django_close_connections() -> None:
    """Close every Django connection and its pool (so the database can be dropped)."""
    try:
        from django.db import connections
    except Exception:  # Django never configured
        return
    for conn in connections.all(initialized_only=True):
        try:
            conn.close()
            if hasattr(conn, "close_pool"):
                conn.close_pool()
        except Exception:
            pass


# --- CPU pinning ----------------------------------------------------------------------------------------------
def pin_process(cpus: Iterable[int]) -> set[int]:
    """Pin every thread of this process (and so what it starts later) to `cpus`; returns the set now in force.

    os.sched_setaffinity(0, ...) pins the calling thread only on Linux; the other threads (GDAL, numpy) are
    pinned through /proc/self/task."""
    cpus = set(cpus)
    for tid in os.listdir("/proc/self/task"):
        with suppress(OSError):
            os.sched_setaffinity(int(tid), cpus)
    os.sched_setaffinity(0, cpus)
    return os.sched_getaffinity(0)


def single_thread_env() -> None:
    """Keep numeric libraries to one thread each (set before importing numpy/rasterio)."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                 "GDAL_NUM_THREADS"):
        os.environ.setdefault(name, "1")


# --- numbers --------------------------------------------------------------------------------------------------
def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation): p95 of 2 000 samples is the 1 900th smallest."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_row(name: str, seconds: Sequence[float]) -> str:
    ms = [s * 1000 for s in seconds]
    if not ms:
        return f"  {name:<28} (no samples)"
    return (f"  {name:<28} n={len(ms):<6} p50 {percentile(ms, 50):7.1f} ms   p95 {percentile(ms, 95):7.1f} ms   "
            f"max {max(ms):7.1f} ms   mean {sum(ms) / len(ms):7.1f} ms")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


@contextmanager
def stopwatch():
    """`with stopwatch() as t: ...` then t() gives the seconds elapsed (frozen at the end of the block)."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


def machine_line() -> str:
    cpus = os.cpu_count()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        model = "?"
    return f"{cpus} CPU(s), {model}, Python {sys.version.split()[0]}; {load_line()}"


def load_line() -> str:
    """The load averages, with a warning when other work already keeps the cores busy: the numbers of a bench
    run on a busy machine measure the neighbours too."""
    one, five, _ = os.getloadavg()
    cpus = os.cpu_count() or 1
    text = f"load average {one:.2f} (1 min) {five:.2f} (5 min)"
    if one > 0.5 * cpus:
        text += f"  WARNING: the machine is busy ({one:.1f} runnable on {cpus} cores); expect slower, noisier numbers"
    return text


# --- Daphne ---------------------------------------------------------------------------------------------------
@dataclass
class Server:
    procs: list[subprocess.Popen]
    log_paths: list[Path]
    base_url: str
    listen_sock: socket.socket | None = None

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(p.read_text(errors="replace")[-chars:] for p in self.log_paths if p.exists())

    def threads(self) -> list[int]:
        out = []
        for proc in self.procs:
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
                out.append(int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:"))))
            except (OSError, StopIteration):
                out.append(0)
        return out

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if self.listen_sock is not None:
            self.listen_sock.close()


def start_daphne(env: dict[str, str], log_dir: Path, *, servers: int = 1, port: int = 0) -> Server:
    """Daphne on the platform's ASGI application with `env`, logging under `log_dir`: one process on `port` (0: a
    free one), or `servers` processes accepting on one shared listening socket (--fd). Returns once /healthz
    answers 200 and every process lives."""
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    procs, logs = [], []
    listen = None
    if servers > 1:
        listen = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listen.bind(("127.0.0.1", port))
        listen.listen(1024)
        listen.set_inheritable(True)
    for s in range(servers):
        if listen is None:
            cmd = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "eoplatform.asgi:application"]
            pass_fds: tuple[int, ...] = ()
        else:
            cmd = [sys.executable, "-m", "daphne", "--fd", str(listen.fileno()), "eoplatform.asgi:application"]
            pass_fds = (listen.fileno(),)
        log_path = log_dir / f"daphne{s}.log"
        with open(log_path, "ab") as handle:
            procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                          start_new_session=True, pass_fds=pass_fds))
        logs.append(log_path)
    server = Server(procs, logs, base_url, listen)
    deadline = time.monotonic() + 60
    while True:
        with suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            healthy = conn.getresponse().status == 200
            conn.close()
            if healthy:
                # each process answers once it is up: give the others a moment, then check they live
                time.sleep(1.0 if servers > 1 else 0)
                if all(p.poll() is None for p in procs):
                    return server
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            tail = server.log_tail()
            server.stop()
            raise RuntimeError(f"daphne did not come up:\n{tail}")
        time.sleep(0.2)
