"""jobs/declare.py: a job kind in one declaration (task, registry entry, queue, checked parameters), and the
subject a job points at."""

import pytest
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from eoplatform.celery import app
from jobs import registry
from jobs.declare import job_kind_declare, job_params
from jobs.models import Job
from jobs.runner import run_job
from jobs.serializers import JobSerializer
from jobs.services import job_submit

pytestmark = pytest.mark.django_db


class ToyParams(serializers.Serializer):
    size = serializers.IntegerField(min_value=1, max_value=10, default=3)


@pytest.fixture
def toy_kind():
    @job_kind_declare("toy_declared", queue="cpu", capability="run_worker_check", title="Toy", params=ToyParams,
                      resumable=True)
    def toy_job(job, reporter):
        size = job_params(job)["size"]
        reporter.progress(1.0, f"made {size}", force=True)
        return {"size": size}

    yield toy_job
    registry._KINDS.pop("toy_declared", None)
    app.tasks.pop("tests.toy_declared", None)


def test_one_declaration_gives_the_task_the_registry_entry_and_checked_parameters(toy_kind):
    kind = registry.job_kind("toy_declared")
    assert (kind.task_name, kind.queue, kind.params_serializer, kind.resumable) == (
        "tests.toy_declared", "cpu", ToyParams, True)
    task = app.tasks["tests.toy_declared"]
    # Acknowledged late (settings), so a lost worker's job is delivered again; job_start lets a resumable one run.
    assert task.name == toy_kind.task.name and task.queue == "cpu" and task.acks_late and task.reject_on_worker_lost
    job = Job.objects.create(kind="toy_declared", params={})
    assert run_job(job.pk, toy_kind) == Job.State.SUCCEEDED
    job.refresh_from_db()
    assert job.result["size"] == 3  # the declaration's default


def test_the_platforms_kinds_are_declared_with_their_tasks():
    kinds = registry.job_kinds()
    assert {name: kind.task_name for name, kind in kinds.items()} == {
        "worker_check": "jobs.worker_check", "ingest": "annotations.ingest", "demo_ingest": "demo.demo_ingest",
        "consensus": "annotations.consensus", "train": "training.train", "export": "training.export",
        "predict": "inference.predict"}
    for kind in kinds.values():
        assert app.tasks[kind.task_name].queue == kind.queue
    assert {name for name, kind in kinds.items() if kind.resumable} == {"train", "predict", "demo_ingest"}


def test_parameters_the_declaration_refuses_write_no_job(admin_user):
    with pytest.raises(ValidationError) as refused:
        job_submit(kind="worker_check", params={"steps": 0}, created_by=admin_user)
    assert "steps" in refused.value.detail
    with pytest.raises(ValidationError):
        job_submit(kind="train", params={"network": "no-such-network"}, created_by=admin_user)
    assert not Job.objects.exists()


def test_a_job_points_at_what_it_concerns(admin_user):
    job = job_submit(kind="worker_check", params={"steps": 1}, created_by=admin_user, subject=admin_user)
    job = Job.objects.get(pk=job.pk)
    assert job.subject == admin_user
    assert JobSerializer(job).data["subject"] == {"type": "auth.user", "id": admin_user.pk}
    plain = job_submit(kind="worker_check", params={"steps": 1}, created_by=admin_user)
    assert JobSerializer(plain).data["subject"] is None
