"""Reads on jobs: which ones a user may see."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from accounts.roles import perm
from jobs.models import Job


def jobs_visible_to(user) -> QuerySet[Job]:
    if not user.is_authenticated:
        return Job.objects.none()
    queryset = Job.objects.select_related("created_by")
    if user.has_perm(perm("view_all_jobs")):
        return queryset
    return queryset.filter(created_by=user)


def jobs_changed_since(user, since: datetime | None, limit: int = 100) -> list[Job]:
    queryset = jobs_visible_to(user)
    if since is None:
        return list(queryset.order_by("-created_at", "-id")[:limit])
    return list(queryset.filter(updated_at__gte=since).order_by("updated_at", "id")[:limit * 10])
