"""Prediction jobs, on the `gpu` queue (CUDA when the worker has it, else the CPU)."""

from __future__ import annotations

from rest_framework import serializers

from annotations.kinds import AVAILABLE
from inference.services.predict import predict_run
from jobs.declare import job_kind_declare
from jobs.models import Job
from jobs.services import JobReporter
from training.specs import IMAGETTE_NETWORK, network_names, network_spec

# The networks of the kinds this platform labels today (predict_check also asks the kind for its prediction store).
NETWORK_CHOICES = [name for name in network_names() if network_spec(name).item_kind in AVAILABLE]
MAX_MC_DROPOUT = 100


class PredictParams(serializers.Serializer):
    network = serializers.ChoiceField(choices=NETWORK_CHOICES, default=IMAGETTE_NETWORK)
    mc_dropout = serializers.IntegerField(
        min_value=0, max_value=MAX_MC_DROPOUT, default=0,
        help_text="Passes with dropout on, for the mutual information (epistemic uncertainty); 0: one plain pass.",
    )  # fmt: skip
    all = serializers.BooleanField(
        default=False, help_text="Re-predict every item with the active version, not only those it has not seen.")


# Resumable: a re-delivered job (its worker was lost) predicts what is still missing; whole batches are kept.
@job_kind_declare("predict", queue="gpu", capability="train", title="Prediction", params=PredictParams,
                  resumable=True)
def predict_job(job: Job, reporter: JobReporter) -> dict:
    return predict_run(job, reporter)  # torch is imported inside: workers only
