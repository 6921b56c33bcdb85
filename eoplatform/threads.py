"""How many threads torch may use in a worker: sized from the CPUs this process may really use.

torch's defaults take every core the machine has and let OpenMP threads spin while they wait. On a shared or
quota-limited machine that turns one training job into threads fighting each other and the neighbours for the
cores: measured on 2 cores with two busy neighbour processes, ResNet-18 at 64 px trained at 0.92 steps/s with 2
threads and 1.55 with 1 (and 3.63 vs 2.15 on the quiet machine). So a worker counts the CPUs it may use (its
affinity mask and its cgroup CPU quota), divides them by its concurrency (each prefork child runs one job), and
tells OpenMP to sleep instead of spin while it waits (OMP_WAIT_POLICY=PASSIVE, which torch's bundled libgomp
honours: its spin count then defaults to 0). `CRYOLABEL_TORCH_THREADS` overrides the count.

The environment must be set before torch (libgomp) is loaded: `worker_threads_apply` runs in the worker's main
process at start-up (jobs.worker_hooks), before the pool forks, and its children inherit it; a training job then
calls `torch_threads_apply`. Only that function imports torch: the web process may import this module.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import asdict, dataclass
from pathlib import Path

SETTING = "CRYOLABEL_TORCH_THREADS"
CONCURRENCY_ENV = "CRYOLABEL_WORKER_CONCURRENCY"  # set by the worker's main process for its children
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# libgomp (torch's bundled OpenMP) reads OMP_WAIT_POLICY; KMP_BLOCKTIME is the same for an Intel OpenMP build.
WAIT_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}


@dataclass(frozen=True)
class ThreadPlan:
    intra_op: int  # torch.set_num_threads, OMP_NUM_THREADS
    inter_op: int  # torch.set_num_interop_threads
    loader_workers: int  # at most this many DataLoader worker processes
    usable_cpus: float  # what this process may use: min(affinity, cgroup quota)
    concurrency: int  # jobs this worker runs at once
    cpus_found: str  # how usable_cpus was found
    overridden: bool  # CRYOLABEL_TORCH_THREADS gave intra_op
    wait_policy: str  # OMP_WAIT_POLICY as the job's process sees it

    def describe(self) -> str:
        why = (f"set by {SETTING}" if self.overridden else
               f"{_num(self.usable_cpus)} usable CPU(s) / {self.concurrency} job(s) at once")
        return (f"torch threads: {self.intra_op} intra-op, {self.inter_op} inter-op ({why}; {self.cpus_found}); "
                f"OMP_WAIT_POLICY={self.wait_policy or 'unset (OpenMP threads spin while waiting)'}")

    def as_dict(self) -> dict:
        return asdict(self)


def _num(value: float) -> str:
    return f"{value:g}"


def cgroup_cpu_limit(*, root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")
                     ) -> float | None:  # fmt: skip
    """The CPU quota of this process's cgroup (and of the cgroups above it), in CPUs; None when there is none.

    cgroup v2: `cpu.max` ("max 100000" or "<quota> <period>"); v1: `cpu.cfs_quota_us` / `cpu.cfs_period_us`
    (-1: no quota). The paths come from /proc/self/cgroup; inside a container its cgroup is usually the root."""
    limits: list[float] = []
    for directory in _cgroup_dirs(root, proc_cgroup):
        v2 = _read(directory / "cpu.max")
        if v2:
            parts = v2.split()
            if len(parts) == 2 and parts[0] != "max":
                limits.append(_ratio(parts[0], parts[1]))
            continue
        quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
        if quota and period and quota.strip() != "-1":
            limits.append(_ratio(quota, period))
    limits = [v for v in limits if v > 0]
    return min(limits) if limits else None


def _cgroup_dirs(root: Path, proc_cgroup: Path) -> list[Path]:
    """The cgroup folders that may hold this process's CPU quota: its own cgroup and those above it, on the v2
    hierarchy ("0::/path") and on the v1 `cpu` controller ("4:cpu,cpuacct:/path")."""
    mounts: list[tuple[Path, str]] = []
    for line in (_read(proc_cgroup) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            mounts.append((root, path))
        elif "cpu" in controllers.split(","):
            mounts += [(root / controllers, path), (root / "cpu", path)]
    mounts += [(root, "/"), (root / "cpu", "/")]  # a container whose own cgroup is mounted as the root
    dirs: list[Path] = []
    for mount, path in mounts:
        here = mount / path.strip("/")
        while True:
            if here not in dirs and here.is_dir():
                dirs.append(here)
            if here == mount or mount not in here.parents:
                break
            here = here.parent
    return dirs


def _ratio(quota: str, period: str) -> float:
    try:
        q, p = float(quota), float(period)
    except ValueError:
        return 0.0
    return q / p if q > 0 and p > 0 else 0.0


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def usable_cpus() -> tuple[float, str]:
    """The CPUs this process may use (its affinity mask, capped by its cgroup CPU quota), and how it was found."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        affinity = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    how = f"affinity mask {affinity}, " + ("no cgroup CPU quota" if quota is None else
                                           f"cgroup CPU quota {_num(round(quota, 2))}")
    return (min(float(affinity), quota) if quota is not None else float(affinity)), how


def plan_threads(*, concurrency: int, env: Mapping[str, str] | None = None,
                 cpus: tuple[float, str] | None = None) -> ThreadPlan:  # fmt: skip
    """The thread counts for one job process of a worker running `concurrency` jobs at once.

    intra-op: floor(usable CPUs / concurrency), at least 1 (`CRYOLABEL_TORCH_THREADS` when set); inter-op: 1 (the
    training loop runs one operator after another; a second pool only adds threads that compete); DataLoader
    workers: at most the intra-op count, so loading does not oversubscribe what the job was given either."""
    env = os.environ if env is None else env
    concurrency = max(1, int(concurrency))
    usable, how = cpus if cpus is not None else usable_cpus()
    override = (env.get(SETTING) or "").strip()
    if override:
        intra = int(override) if override.isdigit() else 0
        if intra < 1:
            raise ValueError(f"{SETTING}={override!r}: a whole number of threads, 1 or more")
    else:
        intra = max(1, math.floor(usable / concurrency + 1e-9))
    return ThreadPlan(intra_op=intra, inter_op=1, loader_workers=intra, usable_cpus=usable, concurrency=concurrency,
                      cpus_found=how, overridden=bool(override), wait_policy=env.get("OMP_WAIT_POLICY", ""))


def worker_threads_apply(*, concurrency: int, env: MutableMapping[str, str] | None = None) -> ThreadPlan:
    """Set the thread environment of a worker (before torch is imported): thread counts for OpenMP, MKL and
    OpenBLAS, OpenMP threads that sleep while they wait (unless the operator chose another policy), and the
    concurrency, which the job processes read back (`job_threads_plan`)."""
    env = os.environ if env is None else env
    for name, value in WAIT_ENV.items():
        env.setdefault(name, value)
    plan = plan_threads(concurrency=concurrency, env=env)
    for name in THREAD_ENV:
        env[name] = str(plan.intra_op)
    env[CONCURRENCY_ENV] = str(plan.concurrency)
    return plan


def job_threads_plan(env: Mapping[str, str] | None = None) -> ThreadPlan:
    """The plan in a job's process: the worker's concurrency as its main process recorded it (1 when the job
    runs elsewhere, e.g. in a test or a command's own process)."""
    env = os.environ if env is None else env
    try:
        concurrency = int(env.get(CONCURRENCY_ENV) or 1)
    except ValueError:
        concurrency = 1
    return plan_threads(concurrency=concurrency, env=env)


def torch_threads_apply(env: Mapping[str, str] | None = None) -> dict:
    """In a job's process: give torch the thread counts of `job_threads_plan` (imports torch: workers only).
    Returns the plan as torch now has it, with its description under "text". The inter-op count can only be set
    before inter-op work first ran in the process; after that it stays as it is."""
    import torch

    plan = job_threads_plan(env)
    torch.set_num_threads(plan.intra_op)
    with contextlib.suppress(RuntimeError):  # set already (an earlier job of this process) or used already
        torch.set_num_interop_threads(plan.inter_op)
    return {**plan.as_dict(), "intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads(),
            "text": plan.describe()}
