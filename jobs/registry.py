"""Which job kinds exist, the Celery task that runs each, its queue and who may start it.

Apps register their kinds at import time of their `tasks` module, so that `job_submit` and the
jobs API are written once for ingest, training, prediction and export.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rest_framework import serializers


@dataclass(frozen=True)
class JobKind:
    name: str
    task_name: str
    queue: str
    capability: str
    title: str
    params_serializer: type[serializers.Serializer] | None = field(default=None)
    # A resumable job (training, from its last checkpoint) runs again when the broker re-delivers
    # it after its worker was lost; any other kind stays failed.
    resumable: bool = False
    # Called with the failed row when the job's worker was lost mid-way: removes what it left half-done.
    on_lost: Callable[[Any], None] | None = None


_KINDS: dict[str, JobKind] = {}
_discovered = False


def _discover() -> None:
    """Import every app's `tasks` module once, so their kinds are known in the web process too
    (Celery's own autodiscovery is lazy there). Task modules import torch only inside functions."""
    global _discovered
    if not _discovered:
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("tasks")
        _discovered = True


def register_job_kind(kind: JobKind) -> JobKind:
    _KINDS[kind.name] = kind
    return kind


def job_kind(name: str) -> JobKind:
    _discover()
    try:
        return _KINDS[name]
    except KeyError:
        raise KeyError(f"unknown job kind {name!r}; known: {', '.join(sorted(_KINDS))}") from None


def job_kinds() -> dict[str, JobKind]:
    _discover()
    return dict(_KINDS)
