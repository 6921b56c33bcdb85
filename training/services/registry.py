"""The model registry: which version of each network is active. No torch here (the web uses it)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from training.models import ModelVersion


def model_activate(*, version: ModelVersion, reason: str) -> ModelVersion:
    """Make `version` the active one of its network (the partial unique index allows one)."""
    with transaction.atomic():
        ModelVersion.objects.select_for_update().filter(network=version.network).exists()
        ModelVersion.objects.filter(network=version.network, is_active=True).update(is_active=False)
        ModelVersion.objects.filter(pk=version.pk).update(is_active=True, activated_at=timezone.now(),
                                                          activation_reason=reason[:200])
    version.refresh_from_db()
    return version


def active_version(network: str) -> ModelVersion | None:
    return ModelVersion.objects.filter(network=network, is_active=True).first()
