from rest_framework import serializers

from annotations.selectors import mask_to_slugs
from annotations.wv_classes import SLUGS
from inference.models import Prediction
from inference.tasks import PredictParams


class PredictRequestSerializer(PredictParams):
    """POST /api/v1/predict/: what to predict with (the network's active version) and how."""


class PredictionRowSerializer(serializers.ModelSerializer):
    """One stored prediction (a model version on an imagette), as GET /api/v1/predictions/ lists them."""

    network = serializers.CharField(source="model_version.network", read_only=True)
    model_version_number = serializers.IntegerField(source="model_version.number", read_only=True)
    classes = serializers.SerializerMethodField(help_text="Predicted class slugs (the label mask's classes).")
    top1_class = serializers.SerializerMethodField(help_text="Slug of the most probable class.")

    class Meta:
        model = Prediction
        fields = ["id", "imagette", "model_version", "network", "model_version_number", "job", "probabilities",
                  "label_mask", "classes", "top1", "top1_class", "confidence", "entropy", "margin",
                  "mutual_information", "disagrees", "is_current", "reviewed", "created_at"]
        read_only_fields = fields

    def get_classes(self, obj: Prediction) -> list[str]:
        return mask_to_slugs(obj.label_mask)

    def get_top1_class(self, obj: Prediction) -> str | None:
        return SLUGS[obj.top1] if 0 <= obj.top1 < len(SLUGS) else None
