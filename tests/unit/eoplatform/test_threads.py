"""Thread sizing for workers (eoplatform.threads): the usable CPUs from the cgroup quota (v1 and v2), divided by
the worker's concurrency, the CRYOLABEL_TORCH_THREADS override, and the environment a worker hands its jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from eoplatform.threads import cgroup_cpu_limit, job_threads_plan, plan_threads, worker_threads_apply


def _cgroup(tmp_path: Path, files: dict[str, str], proc: str) -> float | None:
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (tmp_path / "proc-cgroup").write_text(proc)
    return cgroup_cpu_limit(root=root, proc_cgroup=tmp_path / "proc-cgroup")


@pytest.mark.parametrize(("files", "proc", "expected"), [
    ({"cpu.max": "max 100000\n"}, "0::/\n", None),  # v2, no quota
    ({"cpu.max": "150000 100000\n"}, "0::/\n", 1.5),  # v2 container: its cgroup is the root
    ({"svc.slice/cpu.max": "max 100000", "svc.slice/w.scope/cpu.max": "50000 100000"}, "0::/svc.slice/w.scope", 0.5),
    ({"svc.slice/cpu.max": "100000 100000", "svc.slice/w.scope/cpu.max": "max 100000"}, "0::/svc.slice/w.scope", 1),
    ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, "4:cpu,cpuacct:/\n0::/\n", None),  # v1
    ({"cpu,cpuacct/docker/x/cpu.cfs_quota_us": "250000", "cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000"},
     "4:cpu,cpuacct:/docker/x\n", 2.5),
    ({"cpu.max": "garbage"}, "nonsense", None),
])  # fmt: skip
def test_the_cgroup_cpu_quota_is_read_from_v1_and_v2(tmp_path, files, proc, expected) -> None:
    assert _cgroup(tmp_path, files, proc) == expected


@pytest.mark.parametrize(("cpus", "concurrency", "override", "intra"), [
    (2.0, 1, "", 2),
    (2.0, 2, "", 1),
    (2.0, 4, "", 1),  # never fewer than one
    (1.5, 1, "", 1),  # a quota of 1.5 CPUs: one thread, not two fighting over it
    (16.0, 3, "", 5),
    (2.0, 1, "3", 3),  # the setting wins
])  # fmt: skip
def test_threads_are_the_usable_cpus_divided_by_the_concurrency(cpus, concurrency, override, intra) -> None:
    plan = plan_threads(concurrency=concurrency, env={"CRYOLABEL_TORCH_THREADS": override}, cpus=(cpus, "test"))
    assert (plan.intra_op, plan.inter_op, plan.loader_workers) == (intra, 1, intra)
    assert plan.overridden == bool(override)
    assert ("set by CRYOLABEL_TORCH_THREADS" in plan.describe()) == bool(override)


@pytest.mark.parametrize("bad", ["0", "-2", "two", "1.5"])
def test_a_bad_setting_is_refused_with_its_name(bad) -> None:
    with pytest.raises(ValueError, match="CRYOLABEL_TORCH_THREADS"):
        plan_threads(concurrency=1, env={"CRYOLABEL_TORCH_THREADS": bad}, cpus=(2.0, "test"))


def test_a_worker_hands_its_jobs_the_thread_environment(monkeypatch) -> None:
    monkeypatch.setattr("eoplatform.threads.usable_cpus", lambda: (4.0, "affinity mask 4, no cgroup CPU quota"))
    env: dict[str, str] = {}
    plan = worker_threads_apply(concurrency=2, env=env)
    assert plan.intra_op == 2
    assert {k: env[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")} == dict.fromkeys(
        ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"), "2")
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["KMP_BLOCKTIME"] == "0"
    # A job's process reads the same plan back from what its worker set.
    again = job_threads_plan(env)
    assert (again.intra_op, again.concurrency, again.wait_policy) == (2, 2, "PASSIVE")
    assert "2 intra-op, 1 inter-op (4 usable CPU(s) / 2 job(s) at once" in again.describe()

    # An operator's own wait policy is kept; outside a worker a job counts as the only one.
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    worker_threads_apply(concurrency=1, env=env)
    assert env["OMP_WAIT_POLICY"] == "ACTIVE" and job_threads_plan({}).concurrency == 1
