"""/api/v1/jobs/: list and follow jobs, submit one of a registered kind, cancel."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.viewsets import ViewSet

from accounts.roles import perm
from eoplatform.pagination import PAGE_PARAMETERS, LimitOffsetPagination
from jobs.registry import job_kind, job_kinds
from jobs.selectors import jobs_visible_to
from jobs.serializers import JobDetailSerializer, JobFilterSerializer, JobSerializer, JobSubmitSerializer
from jobs.services import job_cancel, job_submit


class JobViewSet(ViewSet):
    """Background jobs (ingest, training, prediction, export, worker checks) and their progress."""

    @extend_schema(parameters=[JobFilterSerializer, *PAGE_PARAMETERS], responses=JobSerializer(many=True))
    def list(self, request):
        filters = JobFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        queryset = jobs_visible_to(request.user)
        for field, value in filters.validated_data.items():
            if value:
                queryset = queryset.filter(**{field: value})
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(JobSerializer(page, many=True).data)

    @extend_schema(responses=JobDetailSerializer)
    def retrieve(self, request, pk=None):
        job = get_object_or_404(jobs_visible_to(request.user), pk=_int_or_404(pk))
        return Response(JobDetailSerializer(job).data)

    @extend_schema(request=JobSubmitSerializer, responses={201: JobDetailSerializer})
    def create(self, request):
        submit = JobSubmitSerializer(data=request.data)
        submit.is_valid(raise_exception=True)
        try:
            spec = job_kind(submit.validated_data["kind"])
        except KeyError:
            raise ValidationError({"kind": [f"unknown job kind; known: {', '.join(sorted(job_kinds()))}"]}) from None
        if not request.user.has_perm(perm(spec.capability)):
            raise PermissionDenied(f"Your role may not start '{spec.name}' jobs.")
        params = submit.validated_data["params"]
        if not isinstance(params, dict):
            raise ValidationError({"params": ["must be a JSON object"]})
        if spec.params_serializer is not None:
            checked = spec.params_serializer(data=params)
            if not checked.is_valid():
                raise ValidationError({"params": checked.errors})
            params = checked.validated_data
        job = job_submit(
            kind=spec.name, params=dict(params), created_by=request.user, reason=submit.validated_data["reason"]
        )
        return Response(JobDetailSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=JobDetailSerializer)
    def cancel(self, request, pk=None):
        job = get_object_or_404(jobs_visible_to(request.user), pk=_int_or_404(pk))
        spec_capability = job_kinds().get(job.kind)
        allowed = job.created_by_id == request.user.id or (
            spec_capability is not None and request.user.has_perm(perm(spec_capability.capability))
        )
        if not allowed:
            raise PermissionDenied("Only who started a job, or a role that may start its kind, may cancel it.")
        try:
            job = job_cancel(job=job)
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(JobDetailSerializer(job).data)


def _int_or_404(pk) -> int:
    try:
        return int(pk)
    except (TypeError, ValueError):
        raise Http404("No job with this id.") from None


