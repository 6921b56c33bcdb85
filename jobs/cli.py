"""Following a job from a management command: a progress bar on the terminal until it ends.

A job nobody takes would otherwise wait in silence: when it is still queued after a few seconds, the follower asks
Celery which workers consume the job's queue and says so, with the command that starts one, then keeps waiting
(until the job ends, or until `timeout`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from django.core.management.base import CommandError
from rest_framework.exceptions import ValidationError

from jobs.models import Job
from jobs.registry import job_kind
from jobs.runner import run_job
from jobs.services import job_submit

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


# --- the commands that start jobs ---------------------------------------------------------------------------
def wait_arguments(parser) -> None:
    """--wait and --timeout, as every command that queues a job takes them."""
    parser.add_argument("--wait", action="store_true", help="follow the job until it ends (exit 1 if it failed)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="with --wait: stop waiting after this long (exit 1); the job itself goes on")


def _first_error(detail) -> str:
    if isinstance(detail, dict):
        field, errors = next(iter(detail.items()))
        return f"{field}: {_first_error(errors)}"
    if isinstance(detail, list) and detail:
        return _first_error(detail[0])
    return str(detail)


def submit_and_follow(
    command, *, kind: str, params: dict, reason: str, queued: str, wait: bool, timeout: float | None = None,
    subject=None, done: Callable[[Job], str] | None = None, failed: Callable[[Job], str] | None = None,
) -> Job:
    """Queue a job from a management command and say so (`queued`, formatted with `job`); with `wait`, follow it
    to its end: exit 1 when it did not succeed (why on stderr), else print `done(job)`. Parameters the kind's
    declaration refuses are a CommandError, and nothing is queued."""
    if timeout is not None and (not wait or not 0 <= timeout < 1e9):
        raise CommandError("--timeout needs --wait and a number of seconds, 0 or more")
    try:
        job = job_submit(kind=kind, params=params, reason=reason, subject=subject)
    except ValidationError as exc:
        raise CommandError(f"{kind} refused: {_first_error(exc.detail)}") from None
    command.stdout.write(queued.format(job=job))
    if not wait:
        return job
    try:
        job = follow_job(job.pk, command.stdout, stderr=command.stderr, timeout=timeout)
    except TimeoutError as exc:
        raise CommandError(str(exc)) from exc
    if job.state != Job.State.SUCCEEDED:
        why = failed(job) if failed is not None else (job.error or job.message)
        command.stderr.write(f"{job_kind(kind).title.lower()} job {job.pk} {job.state}: {why}")
        sys.exit(1)
    command.stdout.write(command.style.SUCCESS(done(job) if done is not None else f"job {job.pk}: {job.message}"))
    return job


def run_here(command, *, kind: str, params: dict, reason: str, work: Callable[..., dict],
             forced_lines: bool = False) -> Job:
    """Run a job in this process (queue "cli": the command line may read what a worker may not), its progress
    bar on the command's terminal (see TerminalReporter); returns the finished row."""
    job = Job.objects.create(kind=kind, queue="cli", params=params, reason=reason,
                             message="started from the command line")
    run_job(job.pk, lambda j, r: work(j, TerminalReporter(r, command.stdout, forced_lines=forced_lines)),
            worker="cli")
    job.refresh_from_db()
    return job


class TerminalReporter:
    """Forwards to a job's reporter and draws a progress bar on a terminal (for a job a command runs itself);
    with `forced_lines`, the forced reports are written when the output is not a terminal too."""

    def __init__(self, reporter, stdout, *, forced_lines: bool = False) -> None:
        self.reporter, self.stdout, self.forced_lines = reporter, stdout, forced_lines

    def progress(self, fraction, message=None, *, force=False):
        self.reporter.progress(fraction, message, force=force)
        if self.stdout.isatty() or (force and self.forced_lines):
            bar = "#" * int(fraction * 30)
            self.stdout.write(f"\r[{bar:<30}] {fraction:4.0%} {message or ''}"[:120], ending="")
            self.stdout.flush()

    def __getattr__(self, name):
        return getattr(self.reporter, name)
