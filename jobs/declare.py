"""A job kind in one declaration: the function that does the work, and around it everything else.

    @job_kind_declare("consensus", queue="cpu", capability="review", title="Consensus", params=ConsensusParams)
    def consensus_job(job: Job, reporter: JobReporter) -> dict: ...

gives the Celery task (named `<app>.<kind>`, on its queue; every task is acknowledged late, so the broker
delivers it again when its worker is lost, and then only a resumable kind runs again: `job_start`), the registry
entry that `job_submit`, the jobs API and the sweeper read, and the
parameters checked by one serializer: `job_submit` refuses a job whose parameters it refuses (nothing is
written), and the function reads them with `job_params`, which checks them once more against the same
declaration (a row may have been written by the admin or by an older version).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import shared_task
from rest_framework import serializers

from jobs.models import Job
from jobs.registry import JobKind, job_kind, register_job_kind
from jobs.runner import run_job
from jobs.services import JobReporter

JobFunction = Callable[[Job, JobReporter], dict]


def job_kind_declare(
    name: str, *, queue: str, capability: str, title: str,
    params: type[serializers.Serializer] | None = None, resumable: bool = False,
    on_lost: Callable[[Job], None] | None = None,
) -> Callable[[JobFunction], JobFunction]:
    """Declare the job kind `name` run by the decorated function (see the module's docstring). The function is
    returned as it is, with its Celery task as `.task`."""

    def declare(function: JobFunction) -> JobFunction:
        task_name = f"{function.__module__.split('.')[0]}.{name}"

        @shared_task(bind=True, name=task_name, queue=queue)
        def task(self, job_id: int) -> str:
            return run_job(job_id, function, worker=self.request.hostname or "")

        register_job_kind(JobKind(name, task_name, queue, capability, title, params, resumable=resumable,
                                  on_lost=on_lost))
        function.task = task  # type: ignore[attr-defined]
        return function

    return declare


def job_params(job: Job, *, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The job's parameters, checked by its kind's declaration (DRF's ValidationError when they are not valid)."""
    declared = job_kind(job.kind).params_serializer
    if declared is None:
        return dict(job.params or {})
    checked = declared(data=job.params or {}, context=context or {})
    checked.is_valid(raise_exception=True)
    return dict(checked.validated_data)
