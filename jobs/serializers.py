from rest_framework import serializers

from jobs.models import Job


class JobSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Job
        fields = [
            "id", "kind", "state", "progress", "message", "reason", "params", "metrics", "result",
            "error", "queue", "attempts", "warnings", "created_by", "created_at", "started_at", "finished_at",
            "updated_at", "heartbeat_at",
        ]
        read_only_fields = fields


class JobDetailSerializer(JobSerializer):
    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "log", "celery_task_id", "worker"]
        read_only_fields = fields


class JobSubmitSerializer(serializers.Serializer):
    kind = serializers.CharField()
    params = serializers.JSONField(required=False, default=dict)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)
