"""An export whose worker was lost mid-way leaves nothing behind once the sweep fails it (issue 10 §14)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from jobs.services import jobs_sweep_stale
from training.services.export import exports_root

pytestmark = pytest.mark.django_db


def test_the_sweep_removes_a_lost_exports_scratch_and_unrecorded_folders(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    lost = Job.objects.create(kind="export", state=Job.State.RUNNING, worker="gone@container-1",
                              params={"format": "csv"})
    Job.objects.filter(pk=lost.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    other = Job.objects.create(kind="export", state=Job.State.SUCCEEDED)
    root = exports_root()
    scratch = root / f".snapshot3-csv-20261202T101010-job{lost.pk}.partial-x1y2"
    unrecorded = root / f"snapshot3-csv-20261202T101010-job{lost.pk}"
    kept = root / f"snapshot2-csv-20261201T090909-job{other.pk}"
    for folder in (scratch, unrecorded, kept):
        (folder / "images").mkdir(parents=True)
        (folder / "manifest.csv").write_text("imagette\n")

    assert jobs_sweep_stale(lost_seconds=90) == 1
    lost.refresh_from_db()
    assert lost.state == Job.State.FAILED and lost.error.startswith("worker lost")
    assert not scratch.exists() and not unrecorded.exists() and kept.is_dir()
