"""One training epoch through the platform's job against a bare torch loop over the same tensors.

What it does:
  1. writes --n synthetic WV imagettes in the TenGeoP layout (labelled by folder) to a temporary folder, ingests
     them into a fresh embedded database (not measured);
  2. platform: runs the real training job function (`jobs.runner.run_job` + `training.tasks.train_job`) for
     --epochs epochs: snapshot, dataset read from the .npy files, augmentation, progress reports written to the
     Job row, validation, a checkpoint written atomically every epoch. Its per-epoch times come from the job's
     own history (`seconds_with_checkpoint`);
  3. bare: the same network, hyper-parameters, optimizer and schedule, trained over the same tensors held in
     memory (the job's datasets, read once beforehand), with the same batch augmentation and the same
     validation pass, and nothing else: no Job row, no progress, no checkpoint, no file reads;
  4. prints per-epoch seconds of both, the ratio of their steady epochs (the first one of each is left out:
     warm-up, and the job's first epoch also fills its pixel cache) and PASS/FAIL against the target: the job
     within 1.1x of the bare loop (its bookkeeping costs under 10 %).

Run from the repository root:  .venv/bin/python bench/bench_train_epoch.py [--n 600] [--epochs 3] [--size 64]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_platform_env, django_setup, exit_on_sigterm, load_line, machine_line, migrate, verdict  # noqa: E402,I001

TARGET = 1.1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=600, help="imagettes (default 600)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each run (default 3; >= 2)")
    parser.add_argument("--size", type=int, default=64, help="input size, px (default 64)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the recipe's (16 for the light option)")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first epoch is warm-up)")

    exit_on_sigterm()
    work = Path(tempfile.mkdtemp(prefix="cryolabel-bench-train-"))
    clean_platform_env(CRYOLABEL_VAR_DIR=str(work / "var"))
    try:
        print(machine_line())
        print(load_line())
        django_setup()
        migrate()
        return run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, work: Path) -> int:
    import torch

    from annotations.services.ingest import ingest_paths
    from demo.synthetic import write_demo_imagettes
    from jobs.models import Job
    from jobs.runner import run_job
    from training.augment import AugmentConfig, augment_batch
    from training.networks import get_network, pick_device, seed_everything
    from training.networks.classifier import DB_PER_UNIT
    from training.services.snapshots import snapshot_create
    from training.services.train_run import snapshot_samples
    from training.tasks import train_job

    files = work / "tengeop"
    write_demo_imagettes(files, args.n, seed=3, layout="tengeop", size=256)
    report = ingest_paths([files])
    assert not report.errors, report.errors
    device = pick_device()
    hparams_override = {"arch": "resnet18", "image_size": args.size, "epochs": args.epochs, "num_workers": 0,
                        **({"batch_size": args.batch_size} if args.batch_size else {})}
    print(f"{args.n} imagettes, resnet18 at {args.size} px, {args.epochs} epochs, "
          f"{device}, {torch.get_num_threads()} torch threads")

    # --- bare: the same work over tensors in memory ---------------------------------------------------------
    net = get_network("classifier")
    hparams = net.resolve_hparams(hparams_override, device)
    snapshot = snapshot_create(seed=0, note="bench_train_epoch")
    samples = snapshot_samples(snapshot)

    def tensors(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        dataset = net.dataset([s for s in samples if s.split == split], train=False, hparams=hparams)
        items = [dataset[i] for i in range(len(dataset))]
        return torch.stack([x for x, _, _ in items]).float(), torch.stack([y for _, y, _ in items]).float()

    train_x, train_y = tensors("train")
    val_x, val_y = tensors("val")
    batch = int(hparams["batch_size"])
    steps = (len(train_x) + batch - 1) // batch
    augment = AugmentConfig.from_hparams(hparams, db_per_unit=DB_PER_UNIT)

    def bare_run() -> list[float]:
        seed_everything(int(hparams["seed"]))
        model = net.build(hparams).to(device)
        optimizer = net.make_optimizer(model, hparams)
        scheduler = net.make_scheduler(optimizer, hparams, steps)
        generator = torch.Generator().manual_seed(0)
        times = []
        for _ in range(args.epochs):
            t0 = time.monotonic()
            model.train()
            order = torch.randperm(len(train_x), generator=generator)
            for step in range(steps):
                index = order[step * batch:(step + 1) * batch]
                x = augment_batch(train_x[index], augment, generator).to(device)
                y = train_y[index].to(device)
                with net.autocast(model, device):
                    loss, _ = net.compute_loss(model, (x, y), device)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
            model.eval()
            with torch.inference_mode(), net.autocast(model, device):
                for start in range(0, len(val_x), batch):
                    model(val_x[start:start + batch].to(device))
            float(loss.detach())  # one sync, as the job reads its loss back
            times.append(time.monotonic() - t0)
        return times

    # The baseline runs before and after the job (same tensors), so that a change of load during the run
    # weighs on both sides; medians of the steady epochs resist a neighbour's burst.
    bare_before = bare_run()
    # --- platform: the real job function, as a worker runs it ---------------------------------------------
    job = Job.objects.create(kind="train", queue="gpu", params={"network": "classifier", "hparams": hparams_override,
                                                               "snapshot": snapshot.pk})
    started = time.monotonic()
    run_job(job.pk, train_job, worker="bench")
    job_total = time.monotonic() - started
    job.refresh_from_db()
    if job.state != Job.State.SUCCEEDED:
        print(f"the training job failed: {job.error}")
        return 1
    history = job.metrics["history"]
    platform_epochs = [row["seconds_with_checkpoint"] for row in history]

    bare_after = bare_run()
    return _report(args, platform_epochs, bare_before, bare_after, job_total)


def _report(args, platform_epochs, bare_before, bare_after, job_total) -> int:
    import statistics

    bare_epochs = [(a + b) / 2 for a, b in zip(bare_before, bare_after, strict=True)]
    platform_steady = statistics.median(platform_epochs[1:])
    bare_steady = statistics.median(bare_before[1:] + bare_after[1:])
    ratio = platform_steady / bare_steady
    print(f"{'epoch':>5} {'platform s':>11} {'bare s':>8}")
    for i, (p, b) in enumerate(zip(platform_epochs, bare_epochs, strict=True), start=1):
        print(f"{i:>5} {p:>11.2f} {b:>8.2f}{'   (warm-up, left out)' if i == 1 else ''}")
    print(f"platform job in all: {job_total:.1f} s (snapshot, {args.epochs} epochs with validation and checkpoints, "
          f"test evaluation, registration)")
    print(f"steady epoch: platform {platform_steady:.2f} s, bare {bare_steady:.2f} s, ratio {ratio:.3f} "
          f"(target <= {TARGET})")
    print(load_line())
    ok = ratio <= TARGET
    print(verdict(ok))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
