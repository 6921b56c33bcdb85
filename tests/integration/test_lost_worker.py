"""A worker killed with kill -9 and replaced under another hostname (a container restart does exactly this):
its job does not stay `running`; the replacement's sweep fails it within a minute or two (issue 10 §14)."""

from __future__ import annotations

import signal
import time

import pytest

from jobs.models import Job
from tests.conftest import start_worker

pytestmark = [pytest.mark.services]


def _wait(job_id: int, done, timeout: float = 120) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if done(job):
            return job
        time.sleep(0.1)
    job = Job.objects.get(pk=job_id)
    raise AssertionError(f"job {job_id} still {job.state} ({job.message}) after {timeout} s:\n{job.log[-2000:]}")


def test_a_job_whose_worker_was_killed_and_replaced_elsewhere_is_failed(platform):
    from eoplatform.celery import app

    # On a queue of its own, so that the platform's main worker never takes it.
    doomed = start_worker(platform.log_dir, "doomed@container-1", queues="doomed-cpu",
                          CRYOLABEL_JOB_HEARTBEAT_SECONDS="0.5")
    replacement = None
    try:
        job = Job.objects.create(kind="worker_check", queue="doomed-cpu", celery_task_id="doomed-check-1",
                                 params={"steps": 1000, "step_seconds": 0.2})
        app.send_task("jobs.worker_check", args=[job.pk], queue="doomed-cpu", task_id=job.celery_task_id)
        running = _wait(job.pk, lambda j: j.state == Job.State.RUNNING and j.progress > 0 and j.heartbeat_at)
        assert running.worker == "doomed@container-1"
        doomed.stop(signal.SIGKILL)

        # The replacement comes up under another hostname: its start-up sweep cannot recognise the job as its
        # own, only the stopped heartbeat tells.
        replacement = start_worker(platform.log_dir, "replacement@container-2", queues="doomed-cpu",
                                   CRYOLABEL_JOB_LOST_SECONDS="3", CRYOLABEL_JOB_SWEEP_SECONDS="0.5")
        job = _wait(job.pk, lambda j: j.state != Job.State.RUNNING)
    finally:
        doomed.stop()
        if replacement is not None:
            replacement.stop()
    assert job.state == Job.State.FAILED, job.log[-2000:]
    assert job.error.startswith("worker lost") and "no sign of life" in job.error
    assert job.progress < 1.0
