"""`python manage.py predict {classifier} [--wait] [--mc-dropout T] [--all]`: queue a prediction job on the `gpu`
queue (the active version over every imagette it has not predicted yet); with --wait, follow it to the end (exit 1
if it failed)."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from inference.services.predict import PredictRefused, predict_check
from inference.tasks import MAX_MC_DROPOUT, NETWORK_CHOICES
from jobs.cli import follow_job
from jobs.services import job_submit


class Command(BaseCommand):
    help = ("Queue a prediction job (on the gpu queue): the network's active version over every item it has not "
            "predicted yet; --wait follows it to the end.")

    def add_arguments(self, parser):
        parser.add_argument("network", help=f"one of: {', '.join(NETWORK_CHOICES)}")
        parser.add_argument("--wait", action="store_true", help="follow the job until it ends")
        parser.add_argument("--mc-dropout", type=int, default=0, metavar="T",
                            help="T passes with dropout on, to add the mutual information (0: one plain pass)")
        parser.add_argument("--all", action="store_true", dest="redo",
                            help="re-predict every item with the active version, not only the new ones")

    def handle(self, *args, network: str, wait: bool, mc_dropout: int, redo: bool, **options):
        if network not in NETWORK_CHOICES:
            known = ", ".join(NETWORK_CHOICES)
            raise CommandError(f"unknown network {network!r}; this platform predicts with: {known}")
        if not 0 <= mc_dropout <= MAX_MC_DROPOUT:
            raise CommandError(f"--mc-dropout must be between 0 and {MAX_MC_DROPOUT}")
        try:
            version = predict_check(network=network)
        except PredictRefused as exc:
            raise CommandError(f"cannot predict: {exc}") from None
        params = {"network": network, "mc_dropout": mc_dropout, "all": redo}
        job = job_submit(kind="predict", params=params, reason="command line: manage.py predict")
        self.stdout.write(f"queued prediction job {job.pk} ({network} v{version.number}) on the gpu queue")
        if not wait:
            return
        job = follow_job(job.pk, self.stdout)
        if job.state != job.State.SUCCEEDED:
            self.stderr.write(f"prediction job {job.pk} {job.state}: {job.error or job.message}")
            sys.exit(1)
        self.stdout.write(self.style.SUCCESS(f"job {job.pk}: {job.message}"))
