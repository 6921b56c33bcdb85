from rest_framework import serializers

from annotations.models import Imagette
from annotations.selectors import mask_to_slugs
from annotations.wv_classes import SLUGS


class LabelsField(serializers.ListField):
    """Labels as a list of class slugs in the API; a bitmask in the database."""

    child = serializers.ChoiceField(choices=list(SLUGS))

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_empty", False)
        super().__init__(**kwargs)


class ImagetteCrowdSerializer(serializers.ModelSerializer):
    """What an annotator sees: the image and where it is, never labels or others' votes."""

    preview_url = serializers.SerializerMethodField()

    class Meta:
        model = Imagette
        fields = ["id", "preview_url", "width", "height", "swath", "acquisition_time", "center_lat", "center_lon",
                  "incidence_angle", "is_db"]

    def get_preview_url(self, obj) -> str:
        return f"/api/v1/imagettes/{obj.pk}/preview/"


class ImagetteSerializer(ImagetteCrowdSerializer):
    labels = serializers.SerializerMethodField()
    consensus = serializers.SerializerMethodField()

    class Meta(ImagetteCrowdSerializer.Meta):
        fields = [*ImagetteCrowdSerializer.Meta.fields, "key", "source_product", "source_format", "polarisation",
                  "pixel_spacing", "footprint", "queue_state", "vote_count", "label_source", "label_agreement",
                  "label_version", "labels", "consensus", "is_gold", "created_at"]

    is_gold = serializers.SerializerMethodField()

    def get_labels(self, obj) -> list[str]:
        return mask_to_slugs(obj.label_mask)

    def get_is_gold(self, obj) -> bool:
        return hasattr(obj, "gold")

    def get_consensus(self, obj) -> dict | None:
        consensus = getattr(obj, "consensus", None)
        if consensus is None:
            return None
        return {"labels": mask_to_slugs(consensus.label_mask), "agreement": consensus.agreement,
                "method": consensus.method, "n_votes": consensus.n_votes,
                "probabilities": dict(zip(SLUGS, consensus.probabilities, strict=False))}


class VoteInSerializer(serializers.Serializer):
    imagette = serializers.IntegerField()
    labels = LabelsField()
    seconds = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=86400)


class VoteAmendSerializer(serializers.Serializer):
    labels = LabelsField()


class VoteOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    imagette = serializers.IntegerField(source="imagette_id")
    labels = serializers.SerializerMethodField()
    seconds = serializers.FloatField(allow_null=True)
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
