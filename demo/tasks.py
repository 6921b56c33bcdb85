"""The demo's ingest job: its scenes, their ice chart, the lead polygons its people trace on them, then its tracks,
in one job and in that order, so that the tracks' collocation finds leads and SIC on the scenes it crosses. With
`write`, the job first writes those files (demo.data.demo_scenes_write: seconds of CPU that `make demo` would
otherwise spend before the platform answers).

It is the generic ingest (annotations.services.ingest.ingest_paths: scenes and imagettes, then charts, then
tracks) with one step between the charts and the tracks: demo.scene_people lands the leads of the scenes' truth as
polygons drawn by a demo annotator. Paths may only lie in the demo's own folder (VAR_DIR/demo)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from rest_framework import serializers

from jobs.declare import job_kind_declare, job_params
from jobs.models import Job
from jobs.services import JobReporter


def _in_demo(path: str) -> bool:
    root = (Path(settings.VAR_DIR) / "demo").resolve()
    resolved = Path(path).resolve()
    return resolved == root or resolved.is_relative_to(root)


class DemoWriteParams(serializers.Serializer):
    scenes = serializers.IntegerField(min_value=1, max_value=20)
    size = serializers.IntegerField(min_value=64, max_value=10_000, help_text="Each scene's side in pixels.")
    tracks = serializers.IntegerField(min_value=0, max_value=20)


class DemoIngestParams(serializers.Serializer):
    paths = serializers.ListField(child=serializers.CharField(max_length=4096), min_length=1, max_length=10)
    leads = serializers.CharField(max_length=4096, help_text="The scenes' truth folder (scenes/.truth).")
    write = DemoWriteParams(required=False, help_text="Write the demo's scenes, chart and tracks first (unless "
                            "they are there): into VAR_DIR/demo, where `paths` point.")

    def validate(self, attrs: dict) -> dict:
        refused = [p for p in [*attrs["paths"], attrs["leads"]] if not Path(p).is_absolute() or not _in_demo(p)]
        if refused:
            raise serializers.ValidationError(f"not in the demo's folder: {', '.join(refused[:5])}")
        return attrs


# Resumable: a worker stopped mid-way (Ctrl-C during the first start) leaves the job to the next worker, which runs
# it again; every step skips what is in already (the files written, scenes and tracks by product, the chart by
# scene, the leads).
@job_kind_declare("demo_ingest", queue="cpu", capability="ingest", title="Demo ingest", params=DemoIngestParams,
                  resumable=True)
def demo_ingest_job(job: Job, reporter: JobReporter) -> dict:
    from annotations.services.ingest import count_candidates, ingest_paths
    from demo.data import demo_scenes_write
    from demo.scene_people import scene_leads_land

    params = job_params(job)
    if "write" in params:
        write = params["write"]
        reporter.progress(0.0, f"writing the demo's {write['scenes']} EW scenes, their ice chart and "
                          f"{write['tracks']} tracks", force=True)
        demo_scenes_write(root=Path(settings.VAR_DIR) / "demo", count=write["scenes"], size=write["size"],
                          tracks=write["tracks"])
    paths = [Path(p) for p in params["paths"] if Path(p).exists()]
    total = max(count_candidates(paths), 1)
    reporter.progress(0.0, f"reading {total} files", force=True)
    leads = []

    def progress(done: int, summary: str) -> None:
        reporter.progress(min(done / max(total, done), 0.99), summary)

    def trace_leads(report) -> None:
        leads.append(scene_leads_land(truth=Path(params["leads"])))
        reporter.log(f"{leads[-1]} lead polygons traced on the demo scenes")

    report = ingest_paths(paths, job=job, progress=progress, before_tracks=trace_leads)
    for path, reason in report.errors[:200]:
        reporter.log(f"refused {path}: {reason}")
    return {**report.as_dict(), "leads": sum(leads), "warnings": len(report.errors)}
