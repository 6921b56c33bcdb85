"""The /api/v1/ root: a map of the resources, as DRF's routers give it."""

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse


@extend_schema(exclude=True)
@api_view(["GET"])
@permission_classes([AllowAny])
def api_root(request, format=None):
    return Response(
        {
            "jobs": reverse("job-list", request=request, format=format),
            "imagettes": reverse("imagette-list", request=request, format=format),
            "next_items": reverse("queue-next", request=request, format=format),
            "votes": reverse("vote-list", request=request, format=format),
            "consensus": reverse("consensus-list", request=request, format=format),
            "overview": reverse("overview", request=request, format=format),
            "uploads": reverse("upload", request=request, format=format),
            "snapshots": reverse("snapshot-list", request=request, format=format),
            "models": reverse("model-list", request=request, format=format),
            "train": reverse("train", request=request, format=format),
            "predict": reverse("predict", request=request, format=format),
            "predictions": reverse("prediction-list", request=request, format=format),
            "review_next": reverse("review-next", request=request, format=format),
            "exports": reverse("export-list", request=request, format=format),
            "map_points": reverse("map-points", request=request, format=format),
            "me": reverse("me", request=request, format=format),
            "token": reverse("token", request=request, format=format),
            "schema": reverse("schema", request=request, format=format),
            "docs": reverse("api-docs", request=request, format=format),
        }
    )
