"""`python manage.py predict {classifier} [--wait] [--mc-dropout T] [--all]`: queue a prediction job on the `gpu`
queue (the active version over every imagette it has not predicted yet); with --wait, follow it to the end (exit 1
if it failed)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from inference.services.predict import PredictRefused, predict_check
from inference.tasks import MAX_MC_DROPOUT, NETWORK_CHOICES
from jobs.cli import submit_and_follow, wait_arguments


class Command(BaseCommand):
    help = ("Queue a prediction job (on the gpu queue): the network's active version over every item it has not "
            "predicted yet; --wait follows it to the end.")

    def add_arguments(self, parser):
        parser.add_argument("network", help=f"one of: {', '.join(NETWORK_CHOICES)}")
        wait_arguments(parser)
        parser.add_argument("--mc-dropout", type=int, default=0, metavar="T",
                            help="T passes with dropout on, to add the mutual information (0: one plain pass)")
        parser.add_argument("--all", action="store_true", dest="redo",
                            help="re-predict every item with the active version, not only the new ones")

    def handle(self, *args, network: str, wait: bool, mc_dropout: int, redo: bool, timeout: float | None = None,
               **options):
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
        submit_and_follow(self, kind="predict", params=params, reason="command line: manage.py predict",
                          queued=f"queued prediction job {{job.pk}} ({network} v{version.number}) on the gpu queue",
                          wait=wait, timeout=timeout, subject=version)
