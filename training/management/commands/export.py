"""`python manage.py export {imagettes,scenes} --format F --out PATH [--snapshot N] [--chip-size PX] [--wait]`.

Each kind has its formats (imagettes: imagefolder, csv, stac; scenes: chips, geojson, stac): a format of the other
kind is refused with the reason, before anything is written. With --out the export runs here, in this process (as
a job row, so the Jobs page shows it), and writes the new folder PATH. Without --out it is queued on the `cpu`
queue and written under MEDIA_ROOT/exports, where the Export page and its download find it; --wait then follows
the job to its end (exit 1 if it failed). A snapshot already exported there in that format is not written again:
the job answers with the existing export."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from jobs.cli import run_here, submit_and_follow, wait_arguments
from jobs.models import Job
from training.exports.common import CHIP_MAX, CHIP_MIN, CHIP_SIZE
from training.services.export import (
    KINDS_AVAILABLE,
    KINDS_LATER,
    ExportError,
    export_check,
    export_destination_check,
    formats_text,
)
from training.tasks import export_job


class Command(BaseCommand):
    help = ("Export a curated snapshot with its dataset card: imagettes as ImageFolder, CSV manifest or STAC; "
            "scenes as GeoTIFF chips with SIC and class rasters, GeoJSON or STAC.")

    def add_arguments(self, parser):
        later = f" ({', '.join(KINDS_LATER)} are not available yet)" if KINDS_LATER else ""
        parser.add_argument("kind", help=f"what to export: {', '.join(KINDS_AVAILABLE)}{later}")
        parser.add_argument("--format", dest="fmt", required=True,
                            help=f"one of the kind's formats ({formats_text()})")
        parser.add_argument("--out", help="the folder to create (must not exist); without it the export is queued "
                                          "and lands under MEDIA_ROOT/exports")
        parser.add_argument("--snapshot", type=int, help="export this snapshot id (default: the current curated "
                                                         "set: its latest snapshot when no settled label changed "
                                                         "since, else a new one)")
        parser.add_argument("--chip-size", dest="chip_size", type=int,
                            help=f"--format chips: the chips' side in pixels of the scene's grid, {CHIP_MIN} to "
                                 f"{CHIP_MAX} (default {CHIP_SIZE})")
        wait_arguments(parser)

    def handle(self, *args, kind: str, fmt: str, out: str | None, snapshot: int | None, wait: bool,
               chip_size: int | None = None, timeout: float | None = None, **options):
        format_options = {"chip_size": chip_size} if chip_size is not None else {}
        try:
            export_check(kind=kind, fmt=fmt, options=format_options)
        except ExportError as exc:
            raise CommandError(str(exc).replace("chip_size", "--chip-size")) from None
        params = {"format": fmt, "kind": kind, **({"snapshot": snapshot} if snapshot is not None else {}),
                  **format_options}
        if out is None:
            self._queued(params, wait, timeout)
        else:
            self._here(params, out)

    def _here(self, params: dict, out: str) -> None:
        try:
            destination = export_destination_check(out)
        except ExportError as exc:
            raise CommandError(str(exc)) from None
        job = run_here(self, kind="export", params=params, reason="command line: manage.py export",
                       work=lambda j, r: export_job(j, r, out=str(destination)))
        if job.state != Job.State.SUCCEEDED:
            raise CommandError(f"export failed, nothing was written: {_reason(job)}")
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"job {job.pk}: {job.result['message']}, written to {destination}"))

    def _queued(self, params: dict, wait: bool, timeout: float | None) -> None:
        submit_and_follow(
            self, kind="export", params=params, reason="command line: manage.py export", wait=wait, timeout=timeout,
            queued=f"queued export job {{job.pk}} ({params['kind']} as {params['format']}) on the cpu queue; it "
                   "writes under MEDIA_ROOT/exports",
            done=lambda job: f"job {job.pk}: {job.result['message']} ({job.result['path']})", failed=_reason)


def _reason(job: Job) -> str:
    # run_job stores "ExportError: why"; the person needs the why.
    text = job.error or job.message
    return text.split(": ", 1)[1] if text.startswith(("ExportError: ", "ValidationError: ")) else text
