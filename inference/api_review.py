"""The review queue's endpoints (experts): the next predictions to review, accept one, correct one."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from annotations.models import Imagette
from annotations.selectors import mask_to_slugs, slugs_to_mask
from annotations.serializers import LabelsField, consensus_summary, preview_url
from annotations.wv_classes import ALL_CLASSES_MASK, SLUGS
from eoplatform.untrusted import MAX_ID, is_row_id
from inference.services.review import (
    MAX_COUNT,
    MEASURES,
    STRATEGIES,
    LabelConflict,
    ReviewError,
    queue_version,
    review_accept,
    review_correct,
    review_next,
)
from training.specs import IMAGETTE_NETWORK, network_names

CanReview = HasCapability("review")
MAX_EXCLUDE = 500


class CommaIntegers(serializers.CharField):
    """`1,2,3` in a query string; at most MAX_EXCLUDE ids."""

    def to_internal_value(self, data) -> list[int]:
        text = super().to_internal_value(data)
        parts = [p for p in text.split(",") if p.strip()]
        if len(parts) > MAX_EXCLUDE:
            raise serializers.ValidationError(f"at most {MAX_EXCLUDE} ids")
        try:
            ids = [int(p) for p in parts]
        except ValueError:
            raise serializers.ValidationError("a comma-separated list of imagette ids") from None
        if not all(map(is_row_id, ids)):  # beyond 64 bits the database fails (a 500 unless refused here)
            raise serializers.ValidationError(f"imagette ids are 1 to {MAX_ID}")
        return ids


class ReviewNextQuery(serializers.Serializer):
    strategy = serializers.ChoiceField(choices=STRATEGIES, default="uncertain",
                                       help_text="uncertain: least sure first; disagreement: the model against "
                                       "the crowd consensus first, then uncertain; random: an unbiased audit.")
    measure = serializers.ChoiceField(choices=list(MEASURES), default="entropy",
                                      help_text="What 'uncertain' orders by.")
    count = serializers.IntegerField(min_value=1, max_value=MAX_COUNT, default=1)
    network = serializers.ChoiceField(choices=network_names(), default=IMAGETTE_NETWORK)
    exclude = CommaIntegers(required=False, allow_blank=True, default="",
                            help_text="Imagette ids the caller already holds or skipped, comma-separated.")


class ModelVersionBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    network = serializers.CharField()
    number = serializers.IntegerField()
    is_active = serializers.BooleanField()


class ReviewPredictionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model_version = ModelVersionBriefSerializer()
    labels = serializers.SerializerMethodField(help_text="Predicted classes.")
    label_mask = serializers.IntegerField()
    top1 = serializers.SerializerMethodField()
    probabilities = serializers.SerializerMethodField(help_text="Per class slug.")
    confidence = serializers.FloatField()
    entropy = serializers.FloatField()
    margin = serializers.FloatField()
    mutual_information = serializers.FloatField(allow_null=True)
    disagrees = serializers.BooleanField(help_text="Differs from the crowd consensus at prediction time.")
    created_at = serializers.DateTimeField()

    def get_labels(self, obj) -> list[str]:
        return mask_to_slugs(obj.label_mask)

    def get_top1(self, obj) -> str | None:
        return SLUGS[obj.top1] if 0 <= obj.top1 < len(SLUGS) else None

    def get_probabilities(self, obj) -> dict[str, float]:
        return {slug: round(float(p), 4) for slug, p in zip(SLUGS, obj.probabilities or [], strict=False)}


class ImagetteReviewSerializer(serializers.Serializer):
    """The imagette as the reviewer needs it: the image, its settled label and version, the crowd consensus.
    (Declared field by field: a ModelSerializer would re-read the model on every request of the queue.)"""

    id = serializers.IntegerField()
    preview_url = serializers.SerializerMethodField()
    key = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    swath = serializers.CharField()
    polarisation = serializers.CharField()
    acquisition_time = serializers.DateTimeField(allow_null=True)
    center_lat = serializers.FloatField(allow_null=True)
    center_lon = serializers.FloatField(allow_null=True)
    incidence_angle = serializers.FloatField(allow_null=True)
    queue_state = serializers.CharField()
    vote_count = serializers.IntegerField()
    label_source = serializers.CharField()
    label_agreement = serializers.FloatField(allow_null=True)
    label_version = serializers.IntegerField()
    labels = serializers.SerializerMethodField(help_text="The settled label, if any.")
    consensus = serializers.SerializerMethodField()

    def get_preview_url(self, obj) -> str:
        return preview_url(obj.pk)

    def get_labels(self, obj) -> list[str]:
        return mask_to_slugs(obj.label_mask)

    def get_consensus(self, obj) -> dict | None:
        return consensus_summary(getattr(obj, "consensus", None))


class ReviewItemSerializer(serializers.Serializer):
    """One item of the queue: the imagette and the prediction to review."""

    imagette = ImagetteReviewSerializer()
    prediction = ReviewPredictionSerializer(source="*")


class ReviewNextResponse(serializers.Serializer):
    strategy = serializers.CharField()
    measure = serializers.CharField()
    model = ModelVersionBriefSerializer(allow_null=True, help_text="The version whose predictions are reviewed.")
    items = ReviewItemSerializer(many=True)


class ReviewAcceptSerializer(serializers.Serializer):
    expected_version = serializers.IntegerField(min_value=0, help_text="The imagette's label_version you saw; "
                                                "refused (409) if someone decided it meanwhile.")
    prediction = serializers.IntegerField(required=False, allow_null=True,
                                          help_text="Id of the prediction you saw (default: the queue's).")


class ReviewCorrectSerializer(serializers.Serializer):
    labels = LabelsField(required=False)
    label_mask = serializers.IntegerField(required=False, min_value=1, max_value=ALL_CLASSES_MASK,
                                          help_text="Or the classes as a bitmask (bit i: class i).")
    expected_version = serializers.IntegerField(min_value=0)
    note = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")

    def validate(self, attrs):
        if ("labels" in attrs) == ("label_mask" in attrs):
            raise serializers.ValidationError({"labels": ["give either labels (class slugs) or label_mask"]})
        attrs["mask"] = attrs["label_mask"] if "label_mask" in attrs else slugs_to_mask(attrs["labels"])
        return attrs


def _conflict(exc: LabelConflict, imagette_id: int) -> Response:
    item = Imagette.objects.filter(pk=imagette_id).first()
    body = {"detail": str(exc), "code": "conflict"}
    if item is not None:
        body["imagette"] = {"id": item.pk, "labels": mask_to_slugs(item.label_mask), "label_source": item.label_source,
                            "label_version": item.label_version}
    return Response(body, status=status.HTTP_409_CONFLICT)


def _refused(exc: ReviewError) -> Response:
    return Response({exc.field: [str(exc)]} if exc.status == 400 else {"detail": str(exc)}, status=exc.status)


_DECIDED = {200: ImagetteReviewSerializer, 400: OpenApiResponse(description="bad labels or request"),
            404: OpenApiResponse(description="no such imagette (or nothing to accept)"),
            409: OpenApiResponse(description="someone decided the imagette since expected_version; nothing saved")}


class ReviewNextApi(APIView):
    """The next predictions to review, in the chosen strategy's order."""

    permission_classes = [CanReview]

    @extend_schema(parameters=[ReviewNextQuery], responses=ReviewNextResponse)
    def get(self, request):
        query = ReviewNextQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        try:
            predictions = review_next(reviewer=request.user, strategy=params["strategy"], network=params["network"],
                                      measure=params["measure"], count=params["count"], exclude=params["exclude"])
        except ReviewError as exc:
            return _refused(exc)
        version = predictions[0].model_version if predictions else queue_version(params["network"])
        model = None if version is None else ModelVersionBriefSerializer(version).data
        return Response({"strategy": params["strategy"], "measure": params["measure"], "model": model,
                         "items": ReviewItemSerializer(predictions, many=True).data})


class ReviewAcceptApi(APIView):
    """Accept the model's prediction: its classes become the imagette's settled label (source `prediction`)."""

    permission_classes = [CanReview]

    @extend_schema(request=ReviewAcceptSerializer, responses=_DECIDED)
    def post(self, request, imagette_id: int):
        data = ReviewAcceptSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            item = review_accept(reviewer=request.user, imagette_id=imagette_id,
                                 expected_version=data.validated_data["expected_version"],
                                 prediction_id=data.validated_data.get("prediction"))
        except LabelConflict as exc:
            return _conflict(exc, imagette_id)
        except ReviewError as exc:
            return _refused(exc)
        return Response(ImagetteReviewSerializer(Imagette.objects.select_related("consensus").get(pk=item.pk)).data)


class ReviewCorrectApi(APIView):
    """Correct the prediction: the expert's classes become the imagette's settled label (source `expert`)."""

    permission_classes = [CanReview]

    @extend_schema(request=ReviewCorrectSerializer, responses=_DECIDED)
    def post(self, request, imagette_id: int):
        data = ReviewCorrectSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            values = data.validated_data
            item = review_correct(reviewer=request.user, imagette_id=imagette_id, label_mask=values["mask"],
                                  expected_version=values["expected_version"], note=values["note"])
        except LabelConflict as exc:
            return _conflict(exc, imagette_id)
        except ReviewError as exc:
            return _refused(exc)
        except ValueError as exc:
            return Response({"labels": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(ImagetteReviewSerializer(Imagette.objects.select_related("consensus").get(pk=item.pk)).data)
