"""Snapshots, model versions (the registry) and training jobs."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from jobs.serializers import JobDetailSerializer
from jobs.services import job_submit
from training.models import ModelVersion, Snapshot
from training.serializers import ModelVersionSerializer, SnapshotSerializer, TrainRequestSerializer
from training.services.registry import model_activate
from training.services.snapshots import SnapshotError, snapshot_create

CanReview, CanTrain = HasCapability("review"), HasCapability("train")


class SnapshotListApi(APIView):
    def get_permissions(self):
        return [CanTrain()] if self.request.method == "POST" else [CanReview()]

    @extend_schema(responses=SnapshotSerializer(many=True))
    def get(self, request):
        return Response(SnapshotSerializer(Snapshot.objects.all()[:200], many=True).data)

    @extend_schema(request=None, responses={201: SnapshotSerializer})
    def post(self, request):
        try:
            snapshot = snapshot_create(created_by=request.user, note="made from the API")
        except SnapshotError as exc:
            return Response({"detail": str(exc)}, status=400)
        return Response(SnapshotSerializer(snapshot).data, status=status.HTTP_201_CREATED)


class ModelVersionListApi(APIView):
    permission_classes = [CanReview]

    @extend_schema(parameters=[OpenApiParameter("network", str, description="Versions of this network only.")],
                   responses=ModelVersionSerializer(many=True))
    def get(self, request):
        versions = ModelVersion.objects.select_related("snapshot")
        if network := request.query_params.get("network"):
            if "\x00" in network:  # PostgreSQL refuses NUL in text: a 500 unless refused here
                return Response({"network": ["must not contain NUL characters"]}, status=400)
            versions = versions.filter(network=network)
        return Response(ModelVersionSerializer(versions[:200], many=True).data)


class ModelActivateApi(APIView):
    permission_classes = [CanTrain]

    @extend_schema(request=None, responses=ModelVersionSerializer)
    def post(self, request, pk: int):
        version = get_object_or_404(ModelVersion, pk=pk)
        version = model_activate(version=version, reason=f"activated by {request.user.username}")
        return Response(ModelVersionSerializer(version).data)


class TrainApi(APIView):
    permission_classes = [CanTrain]

    @extend_schema(request=TrainRequestSerializer, responses={201: JobDetailSerializer})
    def post(self, request):
        data = TrainRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        params = {k: v for k, v in data.validated_data.items() if v is not None}
        job = job_submit(kind="train", params=params, created_by=request.user,
                         reason=f"Train pressed by {request.user.username}")
        return Response(JobDetailSerializer(job).data, status=status.HTTP_201_CREATED)
