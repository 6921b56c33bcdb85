"""Prediction jobs and their rows: POST /api/v1/predict/ queues the job, GET /api/v1/predictions/ lists rows.

Only queues and reads: the web process never imports torch (the job checks the checkpoint's contents itself)."""

from __future__ import annotations

from django.db.models import F
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from eoplatform.pagination import LimitOffsetPagination
from eoplatform.untrusted import MAX_ID, is_row_id
from inference.models import Prediction
from inference.serializers import PredictionRowSerializer, PredictRequestSerializer
from inference.services.predict import PredictRefused, predict_check
from jobs.serializers import JobDetailSerializer
from jobs.services import job_submit

CanReview, CanTrain = HasCapability("review"), HasCapability("train")

ORDERINGS = ("entropy", "margin", "confidence", "mutual_information", "created_at", "id")
ORDERING_CHOICES = [*ORDERINGS, *(f"-{name}" for name in ORDERINGS)]


class PredictApi(APIView):
    permission_classes = [CanTrain]

    @extend_schema(
        request=PredictRequestSerializer,
        responses={202: JobDetailSerializer, 400: OpenApiResponse(description="Why predicting cannot start, "
                                                                              "e.g. no active version.")},
        description="Queue a prediction job on the gpu queue: the network's active version over every imagette it "
                    "has not predicted yet (every imagette with `all`).",
    )  # fmt: skip
    def post(self, request):
        data = PredictRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        params = dict(data.validated_data)
        try:
            version = predict_check(network=params["network"])
        except PredictRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        job = job_submit(kind="predict", params=params, created_by=request.user, subject=version,
                         reason=f"Predict pressed by {request.user.username} ({version})")
        return Response(JobDetailSerializer(job).data, status=status.HTTP_202_ACCEPTED)


def _int_param(request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError:
        raise ValidationError({name: ["must be an integer id"]}) from None
    if not is_row_id(number):
        raise ValidationError({name: [f"must be an id, 1 to {MAX_ID}"]})
    return number


def _bool_param(request, name: str) -> bool | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise ValidationError({name: ["must be true or false"]})


class PredictionListApi(ListAPIView):
    """Predictions of every version (filter with `current=true` for the one row per imagette that counts)."""

    permission_classes = [CanReview]
    serializer_class = PredictionRowSerializer
    pagination_class = LimitOffsetPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("imagette", int, description="Predictions of this imagette."),
            OpenApiParameter("model_version", int, description="Predictions of this model version (id)."),
            OpenApiParameter("network", str, description="Predictions of this network's versions."),
            OpenApiParameter("current", bool, description="Only the current (or only the replaced) predictions."),
            OpenApiParameter("reviewed", bool),
            OpenApiParameter("disagrees", bool, description="Prediction differs from the imagette's label."),
            OpenApiParameter("ordering", str, enum=ORDERING_CHOICES,
                             description="Sort key; '-' for descending (e.g. -entropy: least sure first). "
                                         "Default: id."),
        ],
    )  # fmt: skip
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        request = self.request
        queryset = Prediction.objects.select_related("model_version")
        for name in ("imagette", "model_version"):
            if (value := _int_param(request, name)) is not None:
                queryset = queryset.filter(**{f"{name}_id": value})
        if network := request.query_params.get("network"):
            if "\x00" in network:  # PostgreSQL refuses NUL in text: a 500 unless refused here
                raise ValidationError({"network": ["must not contain NUL characters"]})
            queryset = queryset.filter(model_version__network=network)
        for name, field in (("current", "is_current"), ("reviewed", "reviewed"), ("disagrees", "disagrees")):
            if (value := _bool_param(request, name)) is not None:
                queryset = queryset.filter(**{field: value})
        ordering = request.query_params.get("ordering") or "id"
        if ordering not in ORDERING_CHOICES:
            raise ValidationError({"ordering": [f"one of: {', '.join(ORDERING_CHOICES)}"]})
        name = ordering.lstrip("-")
        key = F(name).desc(nulls_last=True) if ordering.startswith("-") else F(name).asc(nulls_last=True)
        # Rows without a score (no MC dropout) last either way; the id breaks ties, so that pages neither repeat
        # nor skip rows.
        return queryset.order_by(key, "id" if name != "id" else ordering)
