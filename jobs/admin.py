from django.contrib import admin

from jobs.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "state", "progress", "message", "created_by", "created_at", "finished_at")
    list_filter = ("kind", "state", "queue")
    search_fields = ("message", "error", "celery_task_id")
    readonly_fields = ("created_at", "started_at", "finished_at", "updated_at")
