"""/admin/ page for jobs: read-only (a job's row is written by its worker through jobs.services; cancel from the
Jobs page or the API)."""

from django.contrib import admin

from eoplatform.admin_base import ReadOnlyAdmin
from jobs.models import Job


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "state", "progress", "message", "worker", "created_by", "created_at", "finished_at")
    list_filter = ("kind", "state", "queue")
    search_fields = ("=id", "message", "reason", "celery_task_id")
    list_select_related = ("created_by",)
    raw_id_fields = ("created_by",)
