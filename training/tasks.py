"""Training jobs, on the `gpu` queue (CUDA when the worker has it, else the CPU)."""

from __future__ import annotations

from rest_framework import serializers

from annotations import kinds
from annotations.kinds import AVAILABLE, ItemKind
from jobs.declare import job_kind_declare, job_params
from jobs.models import Job
from jobs.services import JobReporter
from training.exports.common import CHIP_MAX, CHIP_MIN, CHIP_SIZE, ExportError
from training.services.export import (
    FORMATS,
    ExportExists,
    export_check,
    export_create,
    export_options,
    export_scratch_remove,
)
from training.specs import IMAGETTE_NETWORK, network_names

NETWORK_CHOICES = network_names()


class TrainParams(serializers.Serializer):
    network = serializers.ChoiceField(choices=NETWORK_CHOICES, default=IMAGETTE_NETWORK)
    epochs = serializers.IntegerField(min_value=1, max_value=500, required=False)
    snapshot = serializers.IntegerField(required=False, help_text="Train on this snapshot; default: a new one.")
    hparams = serializers.DictField(required=False, help_text="Hyper-parameter overrides, e.g. {'lr': 0.001}.")
    init_checkpoint = serializers.CharField(
        required=False, help_text="Start from these weights: a Cryolabel checkpoint (path, or relative to MEDIA_ROOT).")


# Resumable: a re-delivered job (its worker was lost) goes on from its last checkpoint.
@job_kind_declare("train", queue="gpu", capability="train", title="Training", params=TrainParams, resumable=True)
def train_job(job: Job, reporter: JobReporter) -> dict:
    from training.services.train_run import train_run  # imports torch: workers only

    return train_run(job, reporter)


# --- exports (cpu queue) --------------------------------------------------------------------------------------
class ExportParams(serializers.Serializer):
    format = serializers.ChoiceField(choices=list(FORMATS), help_text="One of its kind's formats.")
    kind = serializers.ChoiceField(choices=list(AVAILABLE), default=ItemKind.IMAGETTES)
    snapshot = serializers.IntegerField(required=False, help_text="Export this snapshot (id); default: a new one.")
    chip_size = serializers.IntegerField(required=False, min_value=CHIP_MIN, max_value=CHIP_MAX,
                                         help_text=f"Format chips: the chips' side in pixels (default {CHIP_SIZE}).")

    def validate(self, data):
        try:
            export_check(kind=data["kind"], fmt=data["format"], options=export_options(data))
        except ExportError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return data


def export_lost(job: Job) -> None:
    export_scratch_remove(job)


@job_kind_declare("export", queue="cpu", capability="export", title="Export", params=ExportParams, on_lost=export_lost)
def export_job(job: Job, reporter: JobReporter, *, out: str | None = None) -> dict:
    """Write the export under MEDIA_ROOT/exports (where its download finds it); only the command line, which
    runs the job in its own process, passes `out`: a job sent to a worker never writes elsewhere."""
    data = job_params(job)
    noun = kinds.kind_entry(data["kind"]).noun
    reporter.progress(0.0, f"exporting {data['kind']} as {data['format']}", force=True)

    def progress(done: int, total: int) -> None:
        reporter.progress(0.99 * done / max(total, 1), f"{done} of {total} {noun} written")

    try:
        export = export_create(fmt=data["format"], kind=data["kind"], out=out, snapshot_id=data.get("snapshot"),
                               created_by=job.created_by, job=job, progress=progress, options=export_options(data))
    except ExportExists as exists:
        # Nothing new to write: the job answers with the export that already holds this snapshot and format.
        return {**_export_result(exists.export), "existing": True, "message": f"nothing written: {exists}"}
    return {**_export_result(export), "existing": False,
            "message": f"export #{export.number}: {export.items} {noun} of snapshot #{export.snapshot.number} "
                       f"as {export.format}"}


def _export_result(export) -> dict:
    return {"export": export.pk, "number": export.number, "snapshot": export.snapshot_id, "format": export.format,
            "items": export.items, "size_bytes": export.size_bytes, "path": export.path,
            "download": f"/api/v1/exports/{export.pk}/download/"}
