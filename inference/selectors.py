"""Reads on predictions that other layers show (through annotations.hooks, registered in InferenceConfig.ready)."""

from __future__ import annotations

from django.db.models import Prefetch

from inference.models import Prediction
from training.services.registry import active_version
from training.specs import IMAGETTE_NETWORK


def active_prediction_prefetch() -> Prefetch:
    """Each imagette's current prediction by the active classifier, into `active_predictions` (a list of 0 or 1):
    one query for a whole page, never one per item."""
    version = active_version(IMAGETTE_NETWORK)
    queryset = (Prediction.objects.filter(model_version=version, is_current=True).select_related("model_version")
                if version is not None else Prediction.objects.none())
    return Prefetch("predictions", queryset=queryset, to_attr="active_predictions")
