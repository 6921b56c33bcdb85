from django.apps import apps
from django.conf import settings
from django.db import models


class Job(models.Model):
    """One background job. The row is the single source of truth for its progress: the worker
    writes it, the Jobs page and /ws/jobs/ read it."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED_STATES = (State.SUCCEEDED, State.FAILED, State.CANCELLED)

    kind = models.CharField(max_length=40, db_index=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0)  # 0..1
    message = models.CharField(max_length=500, blank=True, default="")
    params = models.JSONField(default=dict, blank=True)
    reason = models.CharField(max_length=300, blank=True, default="", help_text="Why the job started.")
    metrics = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    log = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    queue = models.CharField(max_length=20, default="cpu")
    celery_task_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    worker = models.CharField(max_length=200, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of the process running it (jobs.runner's heartbeat).")
    warnings = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Things a succeeded job could not do (e.g. files an ingest refused).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    # What the job concerns, of any kind (the model version a prediction runs, ...); set by job_submit. By model
    # label ("training.modelversion") and id rather than a content-type key: jobs sit below the apps whose rows
    # they point at, and a label never goes stale in another process's cache.
    subject_type = models.CharField(max_length=100, blank=True, default="")
    subject_id = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "updated_at"]),
                   models.Index(fields=["subject_type", "subject_id"], name="job_subject")]

    def __str__(self) -> str:
        return f"Job {self.pk} {self.kind} {self.state}"

    @property
    def subject(self) -> models.Model | None:
        """The row the job concerns, None when it has none or it is gone."""
        if not self.subject_type or self.subject_id is None:
            return None
        try:
            model = apps.get_model(self.subject_type)
        except (LookupError, ValueError):
            return None
        return model._default_manager.filter(pk=self.subject_id).first()

    @property
    def is_finished(self) -> bool:
        return self.state in self.FINISHED_STATES
