"""The light classifier on the demo data, as `make demo` trains it: accuracy against the target, and time.

What it does: in a temporary CRYOLABEL_VAR_DIR, migrates, runs `demo_setup` (1 000 imagettes imported with their
TenGeoP labels, 300 for the crowd, of which the simulated crowd labels about 200 to a consensus), then runs the
training job function with the defaults for this machine (no overrides: on a CPU, ResNet-18 at 64 px for at least
500 optimizer steps), exactly what the Train button queues. Prints the snapshot's make-up, the per-epoch history,
the test-split top-1 (at least 50 test imagettes) and PASS/FAIL against the target (>= 90 %).

Run from the repository root:  .venv/bin/python bench/bench_demo_accuracy.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_platform_env, django_setup, exit_on_sigterm, load_line, machine_line, migrate, verdict  # noqa: E402,I001

TARGET = 0.90


def main() -> int:
    exit_on_sigterm()
    work = Path(tempfile.mkdtemp(prefix="cryolabel-bench-accuracy-"))
    clean_platform_env(CRYOLABEL_VAR_DIR=str(work / "var"))
    try:
        print(machine_line())
        print(load_line())
        django_setup()
        migrate()
        from django.core.management import call_command

        from jobs.models import Job
        from jobs.runner import run_job
        from training.models import ModelVersion
        from training.tasks import train_job

        call_command("demo_setup", verbosity=0)
        started = time.monotonic()
        job = Job.objects.create(kind="train", queue="gpu", params={"network": "classifier"})
        run_job(job.pk, train_job, worker="bench")
        job.refresh_from_db()
        seconds = time.monotonic() - started
        if job.state != Job.State.SUCCEEDED:
            print(f"training failed: {job.error}")
            return 1
        print(f"{'epoch':>5} {'loss':>7} {'val loss':>8} {'val top-1':>9} {'s':>6}")
        for row in job.metrics["history"]:
            print(f"{row['epoch']:>5} {row['train_loss']:>7.4f} {row['val_loss']:>8.4f} {row['val_top1']:>9.3f} "
                  f"{row['seconds']:>6.2f}")
        version = ModelVersion.objects.get(job=job)
        top1 = version.test_metrics["top1"]
        counts = version.snapshot.counts
        print(f"{version.hparams['arch']} at {version.hparams['image_size']} px, {version.hparams['epochs']} epochs, "
              f"{seconds:.0f} s in all; snapshot of {version.snapshot.size} imagettes: {counts['per_source']}, "
              f"splits {counts['per_split']}")
        print(f"test top-1 {top1:.3f} on {version.test_metrics['n_items']} test imagettes "
              f"(val {version.val_score:.3f}); target >= {TARGET}")
        print(load_line())
        print(verdict(top1 >= TARGET))
        return 0 if top1 >= TARGET else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
