"""Following a job from a management command: a progress bar on the terminal until it ends."""

from __future__ import annotations

import time

from jobs.models import Job


def follow_job(job_id: int, stdout, *, poll: float = 0.5, timeout: float | None = None) -> Job:
    """Print the job's progress until it finishes; return the finished row."""
    started = time.monotonic()
    last_line = ""
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
        if timeout is not None and time.monotonic() - started > timeout:
            raise TimeoutError(f"job {job_id} did not finish in {timeout:.0f} s")
        time.sleep(poll)
