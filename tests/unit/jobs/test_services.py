"""jobs/services.py and jobs/runner.py: the path every job reports through."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from jobs.runner import run_job
from jobs.services import (
    JobCancelled,
    JobReporter,
    job_cancel,
    job_report,
    job_start,
    job_submit,
    jobs_sweep_stale,
)

pytestmark = pytest.mark.django_db


def queued(**fields) -> Job:
    return Job.objects.create(kind="worker_check", **fields)


def test_submit_queues_the_task_after_commit(admin_user, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    from eoplatform.celery import app

    monkeypatch.setattr(app, "send_task", lambda name, **kw: sent.append((name, kw)))
    with django_capture_on_commit_callbacks(execute=True):
        job = job_submit(kind="worker_check", params={"steps": 2}, created_by=admin_user)
    assert job.state == Job.State.QUEUED and job.reason == "started by adm"
    assert sent == [("jobs.worker_check", {"args": [job.pk], "queue": "cpu", "task_id": job.celery_task_id})]


def test_unknown_kind_is_refused_and_writes_nothing(admin_user):
    with pytest.raises(KeyError, match="unknown job kind"):
        job_submit(kind="no_such_kind", created_by=admin_user)
    assert Job.objects.count() == 0


def test_run_job_reports_progress_and_result():
    job = queued()
    seen = []

    def work(job, reporter):
        for i in range(1, 4):
            reporter.progress(i / 4, f"step {i}", force=True)
            seen.append(Job.objects.get(pk=job.pk).progress)
        reporter.metrics({"loss": 0.5})
        return {"message": "all good", "count": 3}

    assert run_job(job.pk, work, worker="w@test") == Job.State.SUCCEEDED
    job.refresh_from_db()
    assert seen == [0.25, 0.5, 0.75]
    assert job.state == Job.State.SUCCEEDED and job.progress == 1.0
    assert job.result == {"message": "all good", "count": 3} and job.message == "all good"
    assert job.metrics == {"loss": 0.5} and job.worker == "w@test" and job.attempts == 1
    assert job.started_at <= job.finished_at


def test_a_raising_job_ends_failed_with_the_error_text():
    job = queued()

    def work(job, reporter):
        reporter.progress(0.3, "halfway-ish", force=True)
        raise ValueError("band 2 is missing")

    assert run_job(job.pk, work) == Job.State.FAILED
    job.refresh_from_db()
    assert job.state == Job.State.FAILED
    assert job.error == "ValueError: band 2 is missing" and job.message == "ValueError: band 2 is missing"
    assert "Traceback" in job.log and job.finished_at is not None


def test_cancelled_job_stops_at_its_next_report(monkeypatch):
    from eoplatform.celery import app

    monkeypatch.setattr(app.control, "revoke", lambda task_id: None)
    job = queued()
    steps = []

    def work(job, reporter):
        reporter.progress(0.1, force=True)
        job_cancel(job=job)
        steps.append("cancelled")
        reporter.progress(0.2, force=True)
        steps.append("went on")  # never reached

    assert run_job(job.pk, work) == Job.State.CANCELLED
    job.refresh_from_db()
    assert steps == ["cancelled"] and job.state == Job.State.CANCELLED
    with pytest.raises(ValueError, match="already cancelled"):
        job_cancel(job=job)


def test_report_on_cancelled_job_raises():
    job = queued(state=Job.State.CANCELLED)
    with pytest.raises(JobCancelled):
        job_report(job_id=job.pk, progress=0.5)


def test_start_refuses_finished_jobs_and_counts_attempts():
    done = queued(state=Job.State.SUCCEEDED)
    assert job_start(job_id=done.pk) is None
    job = queued()
    assert job_start(job_id=job.pk, worker="a").attempts == 1
    assert job_start(job_id=job.pk, worker="b") is None  # a duplicate delivery while "a" runs it
    again = job_start(job_id=job.pk, worker="a")  # re-delivered to the same (restarted) worker
    assert again.attempts == 2 and "resumed" in again.message


def test_a_failed_job_runs_again_only_if_its_kind_is_resumable(monkeypatch):
    from jobs import registry

    failed = queued(state=Job.State.FAILED, attempts=1)
    assert job_start(job_id=failed.pk) is None
    resumable = registry.JobKind("resumable_test", "x", "gpu", "train", "Resumable", resumable=True)
    monkeypatch.setitem(registry._KINDS, "resumable_test", resumable)
    lost = queued(state=Job.State.FAILED, attempts=1)
    Job.objects.filter(pk=lost.pk).update(kind="resumable_test")
    restarted = job_start(job_id=lost.pk, worker="w")
    assert restarted.state == Job.State.RUNNING and restarted.attempts == 2 and "resumed" in restarted.message


def test_reporter_throttles_per_item_progress_with_or_without_a_message_but_not_forced_reports():
    job = queued(state=Job.State.RUNNING)
    reporter = JobReporter(job.pk, min_interval=60)
    reporter.progress(0.1)
    reporter.progress(0.2)  # within the interval: skipped
    reporter.progress(0.25, "3 of 12 files")  # a per-item message does not bypass the interval
    assert Job.objects.get(pk=job.pk).progress == 0.1
    reporter.progress(0.3, "epoch 2", force=True)
    job.refresh_from_db()
    assert (job.progress, job.message) == (0.3, "epoch 2")


def test_progress_is_clamped_to_0_1():
    job = queued(state=Job.State.RUNNING)
    job_report(job_id=job.pk, progress=7)
    assert Job.objects.get(pk=job.pk).progress == 1.0


def test_sweep_requeues_resumable_jobs(monkeypatch, django_capture_on_commit_callbacks):
    from eoplatform.celery import app

    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, **kw: sent.append((name, kw)))
    job = Job.objects.create(kind="train", state=Job.State.RUNNING, worker="gpu@host", queue="gpu",
                             celery_task_id="t-1")
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs_sweep_stale(worker_hostname="gpu@host") == 1
    job.refresh_from_db()
    assert job.state == Job.State.QUEUED and "requeued" in job.message
    assert sent == [("training.train", {"args": [job.pk], "queue": "gpu", "task_id": "t-1"})]


def test_sweep_fails_jobs_of_a_restarted_worker_and_stale_ones():
    mine = queued(state=Job.State.RUNNING, worker="w1@host")
    other = queued(state=Job.State.RUNNING, worker="w2@host")
    stale = queued(state=Job.State.RUNNING, worker="w3@host")
    Job.objects.filter(pk=stale.pk).update(updated_at=timezone.now() - timedelta(hours=7))
    finished = queued(state=Job.State.SUCCEEDED, worker="w1@host")

    assert jobs_sweep_stale(worker_hostname="w1@host", lost_seconds=6 * 3600) == 2
    states = dict(Job.objects.values_list("pk", "state"))
    assert states[mine.pk] == states[stale.pk] == Job.State.FAILED
    assert states[other.pk] == Job.State.RUNNING and states[finished.pk] == Job.State.SUCCEEDED
    assert "worker lost" in Job.objects.get(pk=mine.pk).error


def test_sweep_fails_jobs_whose_heartbeat_stopped_and_spares_the_beating_ones():
    lost = queued(state=Job.State.RUNNING, worker="old-container@a1b2")
    alive = queued(state=Job.State.RUNNING, worker="other@host")
    Job.objects.filter(pk=lost.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=120))
    Job.objects.filter(pk=alive.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=5),
                                           updated_at=timezone.now() - timedelta(hours=2))
    assert jobs_sweep_stale(worker_hostname="new-container@c3d4", lost_seconds=90) == 1
    assert Job.objects.get(pk=lost.pk).state == Job.State.FAILED
    assert Job.objects.get(pk=alive.pk).state == Job.State.RUNNING


def test_a_heartbeat_that_lands_before_the_sweep_locks_the_row_wins():
    from jobs.services import job_fail

    job = queued(state=Job.State.RUNNING, worker="slow@host")
    cutoff = timezone.now() - timedelta(seconds=90)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())  # it beat after the sweep read its row
    assert job_fail(job_id=job.pk, error="worker lost", only_if_stale=cutoff) is None
    assert Job.objects.get(pk=job.pk).state == Job.State.RUNNING
