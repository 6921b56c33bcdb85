from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotations.models import Imagette
from annotations.selectors import mask_to_slugs, with_active_prediction
from annotations.wv_classes import SLUGS
from eoplatform.untrusted import MAX_ID


class LabelsField(serializers.ListField):
    """Labels as a list of class slugs in the API; a bitmask in the database."""

    child = serializers.ChoiceField(choices=list(SLUGS))

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_empty", False)
        super().__init__(**kwargs)


def preview_url(imagette_id: int) -> str:
    return f"/api/v1/imagettes/{imagette_id}/preview/"


def consensus_summary(consensus) -> dict | None:
    """The crowd consensus of an imagette as the API shows it (None before any)."""
    if consensus is None:
        return None
    return {"labels": mask_to_slugs(consensus.label_mask), "agreement": consensus.agreement,
            "method": consensus.method, "n_votes": consensus.n_votes,
            "probabilities": dict(zip(SLUGS, consensus.probabilities, strict=False))}


class ImagetteCrowdSerializer(serializers.ModelSerializer):
    """What an annotator sees: the image and where it is, never labels or others' votes."""

    preview_url = serializers.SerializerMethodField()

    class Meta:
        model = Imagette
        fields = ["id", "preview_url", "width", "height", "swath", "acquisition_time", "center_lat", "center_lon",
                  "incidence_angle", "is_db"]

    def get_preview_url(self, obj) -> str:
        return preview_url(obj.pk)


class PredictionSerializer(serializers.Serializer):
    """The active classifier's prediction for an imagette (the badge on the grids, the suggestions)."""

    classes = serializers.ListField(child=serializers.CharField(), help_text="Predicted class slugs.")
    label_mask = serializers.IntegerField()
    top1 = serializers.CharField(help_text="The most probable class.")
    confidence = serializers.FloatField(help_text="Probability of the predicted classes being exactly right.")
    model_version = serializers.IntegerField(help_text="Number of the classifier version that predicted it.")


@extend_schema_field(PredictionSerializer(allow_null=True))
class ActivePredictionField(serializers.Field):
    """Reads `active_predictions` (selectors.active_prediction_prefetch); looks it up if a caller did not
    prefetch it, so a single item is right too."""

    def __init__(self, **kwargs):
        kwargs.update(source="*", read_only=True)
        super().__init__(**kwargs)

    def to_representation(self, obj) -> dict | None:
        if not hasattr(obj, "active_predictions"):
            with_active_prediction([obj])
        if not obj.active_predictions:
            return None
        prediction = obj.active_predictions[0]
        return {"classes": mask_to_slugs(prediction.label_mask), "label_mask": prediction.label_mask,
                "top1": SLUGS[prediction.top1] if prediction.top1 < len(SLUGS) else None,
                "confidence": round(prediction.confidence, 4), "model_version": prediction.model_version.number}


class ImagetteSuggestionSerializer(ImagetteCrowdSerializer):
    """What an annotator sees when they asked for model suggestions: the crowd view plus the prediction."""

    prediction = ActivePredictionField()

    class Meta(ImagetteCrowdSerializer.Meta):
        fields = [*ImagetteCrowdSerializer.Meta.fields, "prediction"]


class ImagetteSerializer(ImagetteCrowdSerializer):
    labels = serializers.SerializerMethodField()
    consensus = serializers.SerializerMethodField()
    prediction = ActivePredictionField()

    class Meta(ImagetteCrowdSerializer.Meta):
        fields = [*ImagetteCrowdSerializer.Meta.fields, "key", "source_product", "source_format", "polarisation",
                  "pixel_spacing", "footprint", "queue_state", "vote_count", "label_source", "label_agreement",
                  "label_version", "labels", "consensus", "prediction", "is_gold", "created_at"]

    is_gold = serializers.SerializerMethodField()

    def get_labels(self, obj) -> list[str]:
        return mask_to_slugs(obj.label_mask)

    def get_is_gold(self, obj) -> bool:
        return hasattr(obj, "gold")

    def get_consensus(self, obj) -> dict | None:
        return consensus_summary(getattr(obj, "consensus", None))


class VoteInSerializer(serializers.Serializer):
    # Bounded: the vote's raw SQL would fail on an id beyond 64 bits (SQLite: a 500).
    imagette = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    labels = LabelsField()
    seconds = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=86400)
    suggested = serializers.BooleanField(required=False, default=False,
                                         help_text="true when the model's suggestion was shown (not a blind vote)")


class VoteAmendSerializer(serializers.Serializer):
    labels = LabelsField()


class VoteOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    imagette = serializers.IntegerField(source="imagette_id")
    labels = serializers.SerializerMethodField()
    seconds = serializers.FloatField(allow_null=True)
    suggested = serializers.BooleanField()
    created_at = serializers.DateTimeField()

    def get_labels(self, obj) -> list[str]:
        return mask_to_slugs(obj.label_mask)


class DecisionSerializer(serializers.Serializer):
    labels = LabelsField()
    expected_version = serializers.IntegerField(required=False, allow_null=True,
                                                help_text="label_version you saw; refused if it moved meanwhile")
    note = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")


class GoldSerializer(serializers.Serializer):
    labels = LabelsField()


class ImagetteFilterSerializer(serializers.Serializer):
    class_ = serializers.ChoiceField(choices=list(SLUGS), required=False)
    agreement_min = serializers.FloatField(required=False, min_value=0, max_value=1)
    agreement_max = serializers.FloatField(required=False, min_value=0, max_value=1)
    status = serializers.ChoiceField(choices=Imagette.QueueState.values, required=False)
    label_source = serializers.ChoiceField(choices=["none", *[v for v in Imagette.LabelSource.values if v]],
                                           required=False)
    gold = serializers.BooleanField(required=False, allow_null=True, default=None)

    def to_internal_value(self, data):
        data = data.copy()
        if "class" in data:
            data["class_"] = data.get("class")
        values = super().to_internal_value(data)
        if "class_" in values:
            values["class"] = values.pop("class_")
        return values
