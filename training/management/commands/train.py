"""`python manage.py train {classifier,sic,leads} [--epochs N] [--wait [--timeout S]]`: queue a training job on the
`gpu` queue; with --wait, follow it to the end (exit 1 if it failed), saying so when no worker takes it."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from jobs.cli import submit_and_follow, wait_arguments
from training.specs import network_spec
from training.tasks import NETWORK_CHOICES


class Command(BaseCommand):
    help = "Queue a training job for a network (on the gpu queue); --wait follows it to the end."

    def add_arguments(self, parser):
        parser.add_argument("network", help=f"one of: {', '.join(NETWORK_CHOICES)}")
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--snapshot", type=int, help="train on this snapshot id (default: a new snapshot)")
        parser.add_argument("--init-checkpoint", metavar="PATH",
                            help="start from the weights of this Cryolabel checkpoint (e.g. var/media/models/...)")
        wait_arguments(parser)

    def handle(self, *args, network: str, epochs: int | None, snapshot: int | None, wait: bool,
               init_checkpoint: str | None = None, timeout: float | None = None, **options):
        if network not in NETWORK_CHOICES:
            raise CommandError(f"unknown network {network!r}; this platform trains: {', '.join(NETWORK_CHOICES)}")
        if epochs is not None and not 1 <= epochs <= 500:
            raise CommandError("--epochs must be between 1 and 500")
        if init_checkpoint:
            if not Path(init_checkpoint).is_file():
                raise CommandError(f"--init-checkpoint {init_checkpoint}: no such file")
            init_checkpoint = str(Path(init_checkpoint).resolve())
        # The network's own file options (e.g. the classifier's pretrained weights), set on this machine.
        for setting in network_spec(network).file_options.values():
            path = os.environ.get(setting)
            if path and not Path(path).is_file():
                raise CommandError(f"{setting}={path}: no such file (unset it to train from scratch)")
        params = {"network": network, **({"init_checkpoint": init_checkpoint} if init_checkpoint else {}),
                  **({"epochs": epochs} if epochs else {}),
                  **({"snapshot": snapshot} if snapshot else {})}
        submit_and_follow(self, kind="train", params=params, reason="command line: manage.py train",
                          queued=f"queued training job {{job.pk}} ({network}) on the gpu queue", wait=wait,
                          timeout=timeout)
