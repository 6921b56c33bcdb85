"""Following a job from the command line (jobs.cli.follow_job): a job nobody takes is not waited on in silence.
The clock, the sleep and the question to Celery are injected: no test here waits for real seconds."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from jobs.cli import WORKER_COMMAND, follow_job
from jobs.models import Job


class FakeTime:
    """A clock that moves only when the follower sleeps; `at` runs actions when the clock reaches a time."""

    def __init__(self, at: dict[float, callable] | None = None) -> None:
        self.now = 100.0
        self.at = dict(at or {})

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        for when in [t for t in self.at if self.now >= 100.0 + t]:
            self.at.pop(when)()


def _finish(job: Job):
    return lambda: Job.objects.filter(pk=job.pk).update(state=Job.State.SUCCEEDED, progress=1.0, message="done")


@pytest.fixture
def job(db) -> Job:
    return Job.objects.create(kind="train", queue="gpu", params={"network": "classifier"})


def test_a_job_no_worker_takes_gets_one_note_and_the_wait_goes_on(job) -> None:
    fake = FakeTime(at={30: _finish(job)})
    asked: list[tuple[str, float]] = []

    def consumers(queue: str) -> list[str]:
        asked.append((queue, fake.now - 100.0))
        return []

    out, err = io.StringIO(), io.StringIO()
    done = follow_job(job.pk, out, stderr=err, poll=1.0, clock=fake.clock, sleep=fake.sleep, consumers=consumers)
    assert done.state == Job.State.SUCCEEDED  # it kept waiting after the note, to the end
    assert asked == [("gpu", 5.0)]  # asked once, after the quiet seconds
    note = err.getvalue()
    assert f"job {job.pk} is still queued after 5 s: no worker is consuming the 'gpu' queue" in note
    assert WORKER_COMMAND in note and "Still waiting" in note
    assert "queued" in out.getvalue() and "succeeded" in out.getvalue()


def test_a_job_taken_at_once_gets_no_note_and_a_busy_worker_is_named(job) -> None:
    running = lambda: Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING)  # noqa: E731
    fake = FakeTime(at={2: running, 30: _finish(job)})
    err = io.StringIO()
    follow_job(job.pk, io.StringIO(), stderr=err, poll=1.0, clock=fake.clock, sleep=fake.sleep,
               consumers=lambda queue: pytest.fail("asked although the job was taken"))  # fmt: skip
    assert err.getvalue() == ""

    Job.objects.filter(pk=job.pk).update(state=Job.State.QUEUED)
    fake = FakeTime(at={10: _finish(job)})
    follow_job(job.pk, io.StringIO(), stderr=err, poll=1.0, clock=fake.clock, sleep=fake.sleep,
               consumers=lambda queue: ["gpu@host"])  # fmt: skip
    assert "gpu@host consumes the 'gpu' queue; it starts when the jobs before it are done" in err.getvalue()


def test_a_timeout_stops_waiting_with_the_reason(job) -> None:
    fake = FakeTime()
    with pytest.raises(TimeoutError) as caught:
        follow_job(job.pk, io.StringIO(), poll=1.0, timeout=3, clock=fake.clock, sleep=fake.sleep,
                   consumers=lambda queue: None)  # fmt: skip
    text = str(caught.value)
    assert "the broker could not be asked which workers consume the 'gpu' queue" in text
    assert WORKER_COMMAND in text and "Stopped waiting after 3 s (--timeout); the job stays queued." in text


def test_train_wait_with_a_timeout_exits_with_the_note(db, monkeypatch) -> None:
    monkeypatch.setattr("jobs.cli.queue_consumers", lambda queue: [])
    with pytest.raises(CommandError, match="no worker is consuming the 'gpu' queue"):
        call_command("train", "classifier", "--wait", "--timeout", "0", stdout=io.StringIO())
    assert Job.objects.get(kind="train").state == Job.State.QUEUED  # the job itself is left alone
    with pytest.raises(CommandError, match="--timeout needs --wait"):
        call_command("train", "classifier", "--timeout", "5")
    assert Job.objects.filter(kind="train").count() == 1
