"""REST endpoints for imagettes, the crowd queue, votes, consensus, decisions and gold."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db.models import F
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from annotations import selectors
from annotations.models import Imagette, Vote
from annotations.serializers import (
    DecisionSerializer,
    GoldSerializer,
    ImagetteCrowdSerializer,
    ImagetteFilterSerializer,
    ImagetteSerializer,
    ImagetteSuggestionSerializer,
    VoteAmendSerializer,
    VoteInSerializer,
    VoteOutSerializer,
)
from annotations.services import labels as label_services
from annotations.services.queue import next_items
from annotations.services.votes import VoteRefused, annotator_stats, vote_submit
from eoplatform.pagination import PAGE_PARAMETERS, LimitOffsetPagination
from jobs.serializers import JobDetailSerializer
from jobs.services import job_submit

CanLabel, CanReview, CanIngest = HasCapability("label"), HasCapability("review"), HasCapability("ingest")


def _paginate(request, view, queryset, serializer_class):
    paginator = LimitOffsetPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


class ImagetteListApi(APIView):
    """Imagettes with their settled label and crowd consensus (experts and admins)."""

    permission_classes = [CanReview]

    @extend_schema(parameters=[ImagetteFilterSerializer, *PAGE_PARAMETERS], responses=ImagetteSerializer(many=True))
    def get(self, request):
        filters = ImagetteFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return _paginate(request, self, selectors.imagette_list(filters=filters.validated_data), ImagetteSerializer)


class ImagetteDetailApi(APIView):
    permission_classes = [CanReview]

    @extend_schema(responses=ImagetteSerializer)
    def get(self, request, pk: int):
        item = get_object_or_404(selectors.with_prediction_prefetch(
            Imagette.objects.select_related("consensus", "gold")), pk=pk)
        return Response(ImagetteSerializer(item).data)


class ImagettePreviewApi(APIView):
    """The display preview (PNG, robust stretch). Cached by browsers: it never changes."""

    permission_classes = [CanLabel]

    @extend_schema(responses={(200, "image/png"): bytes})
    def get(self, request, pk: int):
        item = get_object_or_404(Imagette.objects.only("preview"), pk=pk)
        path = Path(settings.MEDIA_ROOT) / item.preview
        if not path.is_file():
            raise Http404("preview file missing")
        response = FileResponse(open(path, "rb"), content_type="image/png")  # noqa: SIM115 (FileResponse closes)
        response["Cache-Control"] = "private, max-age=31536000, immutable"
        return response


class NextItemsApi(APIView):
    """The next imagettes for the calling annotator (held for them for a while). Never shows votes; shows the
    model's prediction only to an annotator who asked for suggestions (blind voting is the default)."""

    permission_classes = [CanLabel]

    @extend_schema(parameters=[OpenApiParameter("count", int, description="1 to 10 (preloading)"),
                               OpenApiParameter("suggestions", bool, description="1: add the model's prediction")],
                   responses=ImagetteSuggestionSerializer(many=True))
    def get(self, request):
        try:
            count = int(request.query_params.get("count", 1))
        except ValueError:
            return Response({"count": ["must be an integer"]}, status=400)
        if not 1 <= count <= 10:
            return Response({"count": ["must be between 1 and 10"]}, status=400)
        suggestions = request.query_params.get("suggestions", "0").lower()
        if suggestions not in ("0", "1", "true", "false", ""):
            return Response({"suggestions": ["must be 0 or 1"]}, status=400)
        items = next_items(annotator=request.user, count=count)
        if suggestions in ("1", "true"):
            return Response(ImagetteSuggestionSerializer(selectors.with_active_prediction(items), many=True).data)
        return Response(ImagetteCrowdSerializer(items, many=True).data)


class VoteListCreateApi(APIView):
    permission_classes = [CanLabel]

    @extend_schema(parameters=PAGE_PARAMETERS, responses=VoteOutSerializer(many=True))
    def get(self, request):
        """The caller's own votes, newest first, with their count and pace."""
        votes = Vote.objects.filter(annotator=request.user).order_by("-created_at", "-id")
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(votes, request, view=self)
        response = paginator.get_paginated_response(VoteOutSerializer(page, many=True).data)
        response.data["stats"] = annotator_stats(annotator=request.user)
        return response

    @extend_schema(request=VoteInSerializer, responses={201: VoteOutSerializer, 200: VoteOutSerializer})
    def post(self, request):
        """Vote on an imagette the queue gave you. The same vote sent again (a double click, a retried request)
        answers 200 with the stored vote; a different one on the same item answers 409 (amend it with PATCH)."""
        data = VoteInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            vote, created = vote_submit(
                annotator=request.user, imagette_id=data.validated_data["imagette"],
                label_mask=selectors.slugs_to_mask(data.validated_data["labels"]),
                seconds=data.validated_data.get("seconds"), suggested=data.validated_data["suggested"],
            )
        except VoteRefused as refused:
            return Response(refused.as_dict(), status=refused.status)
        return Response(VoteOutSerializer(vote).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class VoteDetailApi(APIView):
    """Amend one's own vote (Backspace in the labelling page goes back to it)."""

    permission_classes = [CanLabel]

    @extend_schema(request=VoteAmendSerializer, responses=VoteOutSerializer)
    def patch(self, request, pk: int):
        vote = get_object_or_404(Vote, pk=pk, annotator=request.user)
        data = VoteAmendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        Vote.objects.filter(pk=vote.pk).update(label_mask=selectors.slugs_to_mask(data.validated_data["labels"]))
        vote.refresh_from_db()
        return Response(VoteOutSerializer(vote).data)


class CurationApi(APIView):
    """Imagettes by lowest crowd agreement, for experts."""

    permission_classes = [CanReview]

    @extend_schema(parameters=PAGE_PARAMETERS, responses=ImagetteSerializer(many=True))
    def get(self, request):
        queryset = (
            selectors.with_prediction_prefetch(
                Imagette.objects.select_related("consensus", "gold").filter(consensus__isnull=False))
            .exclude(label_source=Imagette.LabelSource.EXPERT)
            # Single-vote items have no agreement yet: after the disputed ones, on every database.
            .order_by(F("consensus__agreement").asc(nulls_last=True), "id")
        )
        return _paginate(request, self, queryset, ImagetteSerializer)


class ImagetteVotesApi(APIView):
    """All votes on one imagette (experts only: annotators vote blind)."""

    permission_classes = [CanReview]

    @extend_schema(responses=VoteOutSerializer(many=True))
    def get(self, request, pk: int):
        item = get_object_or_404(Imagette, pk=pk)
        votes = item.votes.select_related("annotator").order_by("created_at")
        return Response([{**VoteOutSerializer(v).data, "annotator": v.annotator.username} for v in votes])


class DecisionApi(APIView):
    """An expert's decision: it overrides the crowd and enters the curated set."""

    permission_classes = [CanReview]

    @extend_schema(request=DecisionSerializer, responses=ImagetteSerializer)
    def post(self, request, pk: int):
        item = get_object_or_404(Imagette, pk=pk)
        data = DecisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            item = label_services.label_decide(
                imagette=item, label_mask=selectors.slugs_to_mask(data.validated_data["labels"]),
                source=Imagette.LabelSource.EXPERT, author=request.user, note=data.validated_data["note"],
                expected_version=data.validated_data.get("expected_version"),
            )
        except label_services.LabelConflict as conflict:
            return Response({"detail": str(conflict)}, status=status.HTTP_409_CONFLICT)
        return Response(ImagetteSerializer(Imagette.objects.select_related("consensus").get(pk=item.pk)).data)


class GoldApi(APIView):
    """Gold labels: admins mark imagettes with known classes."""

    permission_classes = [HasCapability("manage_users")]

    @extend_schema(request=GoldSerializer, responses=GoldSerializer)
    def put(self, request, pk: int):
        item = get_object_or_404(Imagette, pk=pk)
        data = GoldSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        gold = label_services.gold_set(imagette=item, label_mask=selectors.slugs_to_mask(data.validated_data["labels"]),
                                       created_by=request.user)
        return Response({"labels": selectors.mask_to_slugs(gold.label_mask)})

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        label_services.gold_remove(imagette=get_object_or_404(Imagette, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ConsensusRunApi(APIView):
    """Recompute the consensus now (otherwise it runs every N completed items)."""

    permission_classes = [CanReview]

    @extend_schema(request=None, responses={201: JobDetailSerializer})
    def post(self, request):
        method = request.data.get("method") if isinstance(request.data, dict) else None
        params = {"method": method} if method else {}
        if method not in (None, "dawid_skene", "majority"):
            return Response({"method": ["must be dawid_skene or majority"]}, status=400)
        job = job_submit(kind="consensus", params=params, created_by=request.user, reason="asked for by an expert")
        return Response(JobDetailSerializer(job).data, status=status.HTTP_201_CREATED)


class OverviewSerializer(serializers.Serializer):
    """The overview page's figures (annotations.selectors.overview)."""

    imagettes = serializers.DictField(child=serializers.IntegerField(),
                                      help_text="total, open, complete, settled, imported, expert, consensus")
    votes = serializers.IntegerField()
    gold_items = serializers.IntegerField()
    class_distribution = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()),
                                               help_text="per class slug: settled and consensus counts")
    agreement_per_class = serializers.DictField(child=serializers.FloatField(allow_null=True),
                                                help_text="Krippendorff's alpha per class slug, last consensus run")
    consensus_method = serializers.CharField(allow_null=True)
    consensus_at = serializers.DateTimeField(allow_null=True)
    annotators = serializers.ListField(child=serializers.DictField(), help_text="ranked by gold accuracy")
    classes = serializers.ListField(child=serializers.DictField())


class OverviewApi(APIView):
    """Counts, class distribution, agreement per class and the annotators ranked by gold accuracy (experts)."""

    permission_classes = [CanReview]

    @extend_schema(responses=OverviewSerializer)
    def get(self, request):
        return Response(selectors.overview())


class UploadApi(APIView):
    """Admins upload files (SAFE zips, GeoTIFF, PNG, ice charts); an ingest job takes them in."""

    permission_classes = [CanIngest]
    parser_classes = [MultiPartParser]

    @extend_schema(request={"multipart/form-data": {"type": "object", "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
        responses={201: JobDetailSerializer})
    def post(self, request):
        from annotations.services.uploads import UploadRefused, store_uploads

        files = request.FILES.getlist("files")
        try:
            folder = store_uploads(files)
        except UploadRefused as refused:
            return Response({"files": [str(refused)]}, status=400)
        job = job_submit(kind="ingest", params={"paths": [str(folder)], "delete_after": True},
                         created_by=request.user, reason=f"upload of {len(files)} file(s)")
        return Response(JobDetailSerializer(job).data, status=status.HTTP_201_CREATED)
