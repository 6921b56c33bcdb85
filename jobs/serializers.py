from rest_framework import serializers

from eoplatform.untrusted import has_nul
from jobs.models import Job


class JobSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    subject = serializers.SerializerMethodField(help_text="What the job concerns: {type: app.model, id}, or null.")

    class Meta:
        model = Job
        fields = [
            "id", "kind", "state", "progress", "message", "reason", "params", "metrics", "result",
            "error", "queue", "attempts", "warnings", "created_by", "created_at", "started_at", "finished_at",
            "updated_at", "heartbeat_at", "subject",
        ]
        read_only_fields = fields

    def get_subject(self, job) -> dict | None:
        if not job.subject_type or job.subject_id is None:
            return None
        return {"type": job.subject_type, "id": job.subject_id}


class JobDetailSerializer(JobSerializer):
    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "log", "celery_task_id", "worker"]
        read_only_fields = fields


class JobFilterSerializer(serializers.Serializer):
    """The job list's query parameters (a blank one filters nothing; text with NUL is a 400, not a 500 from
    PostgreSQL)."""

    state = serializers.ChoiceField(choices=Job.State.choices, required=False, allow_blank=True)
    kind = serializers.CharField(required=False, allow_blank=True, max_length=40)


class JobSubmitSerializer(serializers.Serializer):
    kind = serializers.CharField()
    params = serializers.JSONField(required=False, default=dict)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)

    def validate_params(self, value):
        if has_nul(value):  # stored as jsonb, which refuses it (a 500 on PostgreSQL)
            raise serializers.ValidationError("text in params must not contain NUL characters")
        return value
