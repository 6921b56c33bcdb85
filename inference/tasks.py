"""Prediction jobs, on the `gpu` queue (CUDA when the worker has it, else the CPU)."""

from __future__ import annotations

from celery import shared_task
from rest_framework import serializers

from inference.services.predict import ITEM_SOURCES
from jobs.models import Job
from jobs.registry import JobKind, register_job_kind
from jobs.runner import run_job
from jobs.services import JobReporter

NETWORK_CHOICES = sorted(ITEM_SOURCES)  # the networks whose items the inference job knows
MAX_MC_DROPOUT = 100


class PredictParams(serializers.Serializer):
    network = serializers.ChoiceField(choices=NETWORK_CHOICES, default="classifier")
    mc_dropout = serializers.IntegerField(
        min_value=0, max_value=MAX_MC_DROPOUT, default=0,
        help_text="Passes with dropout on, for the mutual information (epistemic uncertainty); 0: one plain pass.",
    )  # fmt: skip
    all = serializers.BooleanField(
        default=False, help_text="Re-predict every item with the active version, not only those it has not seen.")


def predict_job(job: Job, reporter: JobReporter) -> dict:
    from inference.services.predict import predict_run  # torch is imported inside: workers only

    return predict_run(job, reporter)


# Resumable: a re-delivered job (its worker was lost) predicts what is still missing; whole batches are kept.
@shared_task(bind=True, name="inference.predict", queue="gpu", acks_late=True, reject_on_worker_lost=True)
def predict_task(self, job_id: int) -> str:
    return run_job(job_id, predict_job, worker=self.request.hostname or "")


register_job_kind(JobKind("predict", "inference.predict", "gpu", "train", "Prediction", PredictParams, resumable=True))
