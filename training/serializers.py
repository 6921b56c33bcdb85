from rest_framework import serializers

from training.models import ModelVersion, Snapshot


class SnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = Snapshot
        fields = ["id", "number", "kind", "seed", "fractions", "agreement_threshold", "counts", "size", "note",
                  "created_at"]


class ModelVersionSerializer(serializers.ModelSerializer):
    snapshot_number = serializers.IntegerField(source="snapshot.number")

    class Meta:
        model = ModelVersion
        fields = ["id", "network", "number", "snapshot", "snapshot_number", "hparams", "history", "val_metrics",
                  "test_metrics", "confusion", "val_score", "is_active", "activated_at", "activation_reason", "job",
                  "created_at"]


class TrainRequestSerializer(serializers.Serializer):
    network = serializers.ChoiceField(choices=["classifier"], default="classifier")
    epochs = serializers.IntegerField(min_value=1, max_value=500, required=False)
