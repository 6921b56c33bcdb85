"""Following a job from a management command: a progress bar on the terminal until it ends.

A job nobody takes would otherwise wait in silence: when it is still queued after a few seconds, the follower asks
Celery which workers consume the job's queue and says so, with the command that starts one, then keeps waiting
(until the job ends, or until `timeout`)."""

from __future__ import annotations

import time
from collections.abc import Callable

from jobs.models import Job

# How scripts/demo.sh (`make demo`) starts its worker: both queues, one job at a time.
WORKER_COMMAND = ".venv/bin/celery -A eoplatform worker -Q cpu,gpu --concurrency 1 --loglevel INFO"
QUIET_SECONDS = 5.0  # a job still queued after this long gets the check


def queue_consumers(queue: str, *, timeout: float = 1.0) -> list[str] | None:
    """The names of the running workers that consume `queue` (Celery's inspect, answered by each worker's main
    process, busy or not); None when the broker could not be asked."""
    from eoplatform.celery import app

    try:
        replies = app.control.inspect(timeout=timeout).active_queues() or {}
    except Exception:  # broker unreachable, or a transport without broadcast
        return None
    return sorted(name for name, queues in replies.items() if any(q.get("name") == queue for q in queues or ()))


def queued_job_note(job: Job, consumers: list[str] | None, waited: float) -> str:
    """What to tell someone whose job is still queued after `waited` seconds."""
    head = f"job {job.pk} is still queued after {waited:.0f} s"
    if consumers:
        return (f"{head}: {', '.join(consumers)} consume{'s' if len(consumers) == 1 else ''} the '{job.queue}' "
                "queue; it starts when the jobs before it are done.")
    start = (f"Start one in another terminal, from the repository root:\n  {WORKER_COMMAND}\n"
             "(`make demo` starts the web server and such a worker).")
    if consumers is None:
        return (f"{head}, and the broker could not be asked which workers consume the '{job.queue}' queue. "
                f"If no worker is running, that is why. {start}")
    return f"{head}: no worker is consuming the '{job.queue}' queue. {start}"


def follow_job(
    job_id: int,
    stdout,
    *,
    poll: float = 0.5,
    timeout: float | None = None,
    stderr=None,
    quiet_seconds: float = QUIET_SECONDS,
    consumers: Callable[[str], list[str] | None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Job:
    """Print the job's progress until it finishes; return the finished row. A job still queued after
    `quiet_seconds` gets one note on `stderr` (default: stdout) about who consumes its queue. Raises
    TimeoutError after `timeout` seconds, with that note when the job never left the queue."""
    stderr = stderr or stdout
    consumers = consumers or queue_consumers
    started = clock()
    last_line = ""
    checked = False
    while True:
        job = Job.objects.get(pk=job_id)
        bar = "#" * int(job.progress * 30)
        line = f"[{bar:<30}] {job.progress:4.0%} {job.state}: {job.message}"[:150]
        if line != last_line:
            stdout.write(f"\r{line:<150}" if stdout.isatty() else line)
            stdout.flush()
            last_line = line
        if job.is_finished:
            if stdout.isatty():
                stdout.write("")
            return job
        waited = clock() - started
        timed_out = timeout is not None and waited >= timeout
        if job.state == Job.State.QUEUED and not checked and (waited >= quiet_seconds or timed_out):
            checked = True
            note = queued_job_note(job, consumers(job.queue), waited)
            if timed_out:
                raise TimeoutError(f"{note}\nStopped waiting after {timeout:g} s (--timeout); the job stays queued.")
            stderr.write(f"\n{note}\nStill waiting; Ctrl-C stops waiting (the job stays queued).\n")
            stderr.flush()
        if timed_out:
            raise TimeoutError(f"job {job_id} is still {job.state} after {timeout:g} s (--timeout); it stays "
                               f"{job.state} without this command: follow or cancel it on the Jobs page")
        sleep(poll)
