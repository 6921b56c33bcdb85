"""Annotation jobs: ingest (cpu) and consensus (cpu)."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from rest_framework import serializers

from annotations.services.consensus_run import consensus_run
from annotations.services.ingest import count_candidates, ingest_paths
from jobs.declare import job_kind_declare, job_params
from jobs.models import Job
from jobs.services import JobReporter


def import_roots() -> list[Path]:
    """Where a web request may point an ingest job: the upload folder, the demo's own data (`make demo` writes them
    under VAR_DIR/demo and queues their ingest) and the folders of CRYOLABEL_IMPORT_ROOTS. (The command line reads
    any path its user can.)"""
    return [Path(settings.MEDIA_ROOT) / "uploads", Path(settings.VAR_DIR) / "demo",
            *(Path(p) for p in settings.CRYOLABEL_IMPORT_ROOTS)]


def path_importable(path: str | Path) -> bool:
    resolved = Path(path).resolve()  # symlinks and .. resolved first: the real place counts
    return any(resolved == root.resolve() or resolved.is_relative_to(root.resolve()) for root in import_roots())


class IngestParams(serializers.Serializer):
    paths = serializers.ListField(child=serializers.CharField(max_length=4096), min_length=1, max_length=1000)
    delete_after = serializers.BooleanField(default=False, help_text="Remove the paths once ingested (uploads).")

    def validate_paths(self, paths: list[str]) -> list[str]:
        if self.context.get("command_line"):
            return paths
        refused = [p for p in paths if not Path(p).is_absolute() or not path_importable(p)]
        if refused:
            roots = ", ".join(str(r) for r in import_roots())
            raise serializers.ValidationError(
                f"not under an import root ({roots}; set CRYOLABEL_IMPORT_ROOTS to add folders): "
                f"{', '.join(refused[:5])}")
        return paths


class IngestRefusedAll(Exception):
    """Every file of the batch was refused: the job fails, with the reasons in its log."""


@job_kind_declare("ingest", queue="cpu", capability="ingest", title="Ingest", params=IngestParams)
def ingest_job(job: Job, reporter: JobReporter) -> dict:
    # Only the command line (which runs the job in its own process, on the "cli" queue) may read any path.
    params = job_params(job, context={"command_line": job.queue == "cli"})
    paths = [Path(p) for p in params["paths"]]
    try:
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
    finally:
        if params["delete_after"]:
            _remove_uploads(paths)  # an upload is removed whatever became of it: it was copied in or refused
    if report.errors and not report.taken and not report.duplicates:
        first = "; ".join(f"{Path(p).name}: {r}" for p, r in report.errors[:3])
        raise IngestRefusedAll(f"all {len(report.errors)} file(s) refused, nothing ingested ({first})")
    return {**report.as_dict(), "warnings": len(report.errors)}


def _remove_uploads(paths: list[Path]) -> None:
    upload_root = (Path(settings.MEDIA_ROOT) / "uploads").resolve()
    for path in paths:
        if upload_root in path.resolve().parents:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


class ConsensusParams(serializers.Serializer):
    method = serializers.ChoiceField(choices=["dawid_skene", "majority"], required=False)


@job_kind_declare("consensus", queue="cpu", capability="review", title="Consensus", params=ConsensusParams)
def consensus_job(job: Job, reporter: JobReporter) -> dict:
    method = job_params(job).get("method") or settings.CRYOLABEL_CONSENSUS_METHOD
    reporter.progress(0.1, f"computing {method} consensus", force=True)
    return consensus_run(method=method)
