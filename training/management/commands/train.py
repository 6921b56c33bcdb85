"""`python manage.py train {classifier,sic,leads} [--epochs N] [--wait [--timeout S]]`: queue a training job on the
`gpu` queue; with --wait, follow it to the end (exit 1 if it failed), saying so when no worker takes it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from jobs.cli import follow_job
from jobs.services import job_submit
from training.tasks import NETWORK_CHOICES


class Command(BaseCommand):
    help = "Queue a training job for a network (on the gpu queue); --wait follows it to the end."

    def add_arguments(self, parser):
        parser.add_argument("network", help=f"one of: {', '.join(NETWORK_CHOICES)}")
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--snapshot", type=int, help="train on this snapshot id (default: a new snapshot)")
        parser.add_argument("--init-checkpoint", metavar="PATH",
                            help="start from the weights of this Cryolabel checkpoint (e.g. var/media/models/...)")
        parser.add_argument("--wait", action="store_true", help="follow the job until it ends")
        parser.add_argument("--timeout", type=float, metavar="SECONDS",
                            help="with --wait: stop waiting after this long (exit 1); the job itself goes on")

    def handle(self, *args, network: str, epochs: int | None, snapshot: int | None, wait: bool,
               init_checkpoint: str | None = None, timeout: float | None = None, **options):
        if network not in NETWORK_CHOICES:
            raise CommandError(f"unknown network {network!r}; this platform trains: {', '.join(NETWORK_CHOICES)}")
        if epochs is not None and not 1 <= epochs <= 500:
            raise CommandError("--epochs must be between 1 and 500")
        if timeout is not None and (not wait or not 0 <= timeout < 1e9):
            raise CommandError("--timeout needs --wait and a number of seconds, 0 or more")
        if init_checkpoint:
            if not Path(init_checkpoint).is_file():
                raise CommandError(f"--init-checkpoint {init_checkpoint}: no such file")
            init_checkpoint = str(Path(init_checkpoint).resolve())
        weights = os.environ.get("CRYOLABEL_CLASSIFIER_WEIGHTS")
        if network == "classifier" and weights and not Path(weights).is_file():
            raise CommandError(f"CRYOLABEL_CLASSIFIER_WEIGHTS={weights}: no such file (unset it to train from scratch)")
        params = {"network": network, **({"init_checkpoint": init_checkpoint} if init_checkpoint else {}),
                  **({"epochs": epochs} if epochs else {}),
                  **({"snapshot": snapshot} if snapshot else {})}
        job = job_submit(kind="train", params=params, reason="command line: manage.py train")
        self.stdout.write(f"queued training job {job.pk} ({network}) on the gpu queue")
        if not wait:
            return
        try:
            job = follow_job(job.pk, self.stdout, stderr=self.stderr, timeout=timeout)
        except TimeoutError as exc:
            raise CommandError(str(exc)) from exc
        if job.state != job.State.SUCCEEDED:
            self.stderr.write(f"training job {job.pk} {job.state}: {job.error or job.message}")
            sys.exit(1)
        self.stdout.write(self.style.SUCCESS(f"job {job.pk}: {job.message}"))
