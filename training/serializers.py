import re

from rest_framework import serializers

from eoplatform.untrusted import has_nul
from training.models import ModelVersion, Snapshot
from training.specs import IMAGETTE_NETWORK, SPECS, file_option_names, network_names


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


HPARAM_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_HPARAMS = 40


class TrainRequestSerializer(serializers.Serializer):
    network = serializers.ChoiceField(choices=network_names(), default=IMAGETTE_NETWORK)
    epochs = serializers.IntegerField(min_value=1, max_value=500, required=False)
    hparams = serializers.DictField(
        required=False, help_text='Hyper-parameter overrides, e.g. {"image_size": 64, "batch_size": 16}.')
    from_version = serializers.IntegerField(
        min_value=1, required=False, help_text="Start from the weights of this version (its number) of the network.")

    def validate(self, attrs: dict) -> dict:
        number = attrs.pop("from_version", None)
        if number is not None:
            network = attrs.get("network", IMAGETTE_NETWORK)
            version = ModelVersion.objects.filter(network=network, number=number).first()
            if version is None:
                raise serializers.ValidationError({"from_version": f"{network} has no version {number}"})
            attrs["init_checkpoint"] = version.checkpoint
        return attrs

    def validate_hparams(self, value: dict) -> dict:
        """The shape only: the web process never imports torch, so the network's own check (unknown keys,
        values that cannot work) runs on the worker before the first epoch and fails the job with its reason."""
        if len(value) > MAX_HPARAMS:
            raise serializers.ValidationError(f"at most {MAX_HPARAMS} hyper-parameters")
        if has_nul(value):  # the job's params are jsonb, which refuses it (a 500 on PostgreSQL)
            raise serializers.ValidationError("text must not contain NUL characters")
        for key, item in value.items():
            if key in file_option_names():  # a path on the worker's disk is the operator's choice, not a request's
                settings = ", ".join(sorted(s for spec in SPECS.values() for k, s in spec.file_options.items()
                                            if k == key))
                raise serializers.ValidationError(f"{key} comes from {settings} on the worker")
            if not HPARAM_KEY.match(key):
                raise serializers.ValidationError(f"{key!r} is not a hyper-parameter name (lower_case_words)")
            items = item if isinstance(item, list) else [item]
            if len(items) > 16 or not all(v is None or isinstance(v, (bool, int, float, str)) for v in items):
                raise serializers.ValidationError(f"{key}: a number, text, true/false, null or a short list of them")
        return value
