"""The worker check: a small job that proves a worker consumes the queue and reports progress
through the same path every real job uses. Admins start it from the Jobs page."""

from __future__ import annotations

import time

from rest_framework import serializers

from jobs.declare import job_kind_declare, job_params
from jobs.models import Job
from jobs.services import JobReporter


class WorkerCheckParams(serializers.Serializer):
    steps = serializers.IntegerField(min_value=1, max_value=1000, default=5)
    step_seconds = serializers.FloatField(min_value=0.0, max_value=10.0, default=0.3)
    fail_at_step = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None,
        help_text="Raise an error at this step, to see how a failing job looks.",
    )


@job_kind_declare("worker_check", queue="cpu", capability="run_worker_check", title="Worker check",
                  params=WorkerCheckParams)
def worker_check(job: Job, reporter: JobReporter) -> dict:
    params = job_params(job)
    steps, pause, fail_at = (params[k] for k in ("steps", "step_seconds", "fail_at_step"))
    for step in range(1, steps + 1):
        time.sleep(pause)
        if fail_at is not None and step == fail_at:
            raise RuntimeError(f"worker check asked to fail at step {step}")
        reporter.progress(step / steps, f"step {step}/{steps}", force=True)
    return {"steps": steps, "message": f"worker answered {steps} steps"}
