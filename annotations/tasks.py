"""Annotation jobs: ingest (cpu) and consensus (cpu)."""

from __future__ import annotations

import shutil
from pathlib import Path

from celery import shared_task
from django.conf import settings
from rest_framework import serializers

from jobs.models import Job
from jobs.registry import JobKind, register_job_kind
from jobs.runner import run_job
from jobs.services import JobReporter


class IngestParams(serializers.Serializer):
    paths = serializers.ListField(child=serializers.CharField(), min_length=1)
    delete_after = serializers.BooleanField(default=False, help_text="Remove the paths once ingested (uploads).")


def ingest_job(job: Job, reporter: JobReporter) -> dict:
    from annotations.services.ingest import count_candidates, ingest_paths

    params = IngestParams(data=job.params)
    params.is_valid(raise_exception=True)
    paths = [Path(p) for p in params.validated_data["paths"]]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"no such file or folder: {', '.join(missing)}")
    total = max(count_candidates(paths), 1)
    reporter.progress(0.0, f"reading {total} files", force=True)

    def progress(done: int, summary: str) -> None:
        reporter.progress(min(done / max(total, done), 0.99), summary)

    report = ingest_paths(paths, job=job, author=job.created_by, progress=progress)
    for path, reason in report.errors[:200]:
        reporter.log(f"refused {path}: {reason}")
    if params.validated_data["delete_after"]:
        upload_root = Path(settings.MEDIA_ROOT) / "uploads"
        for path in paths:
            if upload_root in path.resolve().parents:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    return report.as_dict()


@shared_task(bind=True, name="annotations.ingest", queue="cpu")
def ingest_task(self, job_id: int) -> str:
    return run_job(job_id, ingest_job, worker=self.request.hostname or "")


class ConsensusParams(serializers.Serializer):
    method = serializers.ChoiceField(choices=["dawid_skene", "majority"], required=False)


def consensus_job(job: Job, reporter: JobReporter) -> dict:
    from annotations.services.consensus_run import consensus_run

    params = ConsensusParams(data=job.params)
    params.is_valid(raise_exception=True)
    method = params.validated_data.get("method") or settings.CRYOLABEL_CONSENSUS_METHOD
    reporter.progress(0.1, f"computing {method} consensus", force=True)
    return consensus_run(method=method)


@shared_task(bind=True, name="annotations.consensus", queue="cpu")
def consensus_task(self, job_id: int) -> str:
    return run_job(job_id, consensus_job, worker=self.request.hostname or "")


register_job_kind(JobKind("ingest", "annotations.ingest", "cpu", "ingest", "Ingest", IngestParams))
register_job_kind(JobKind("consensus", "annotations.consensus", "cpu", "review", "Consensus", ConsensusParams))
