"""Training jobs, on the `gpu` queue (CUDA when the worker has it, else the CPU)."""

from __future__ import annotations

from celery import shared_task
from rest_framework import serializers

from jobs.models import Job
from jobs.registry import JobKind, register_job_kind
from jobs.runner import run_job
from jobs.services import JobReporter

NETWORK_CHOICES = ["classifier"]


class TrainParams(serializers.Serializer):
    network = serializers.ChoiceField(choices=NETWORK_CHOICES, default="classifier")
    epochs = serializers.IntegerField(min_value=1, max_value=500, required=False)
    snapshot = serializers.IntegerField(required=False, help_text="Train on this snapshot; default: a new one.")
    hparams = serializers.DictField(required=False, help_text="Hyper-parameter overrides, e.g. {'lr': 0.001}.")
    init_checkpoint = serializers.CharField(
        required=False, help_text="Start from these weights: a Cryolabel checkpoint (path, or relative to MEDIA_ROOT).")


def train_job(job: Job, reporter: JobReporter) -> dict:
    from training.services.train_run import train_run  # imports torch: workers only

    return train_run(job, reporter)


@shared_task(bind=True, name="training.train", queue="gpu", acks_late=True, reject_on_worker_lost=True)
def train_task(self, job_id: int) -> str:
    return run_job(job_id, train_job, worker=self.request.hostname or "")


register_job_kind(JobKind("train", "training.train", "gpu", "train", "Training", TrainParams, resumable=True))
