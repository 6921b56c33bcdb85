"""Classifier inference through the platform's prediction job against a bare torch loop, in the same run.

What it does:
  1. writes --n synthetic imagettes (demo.synthetic.write_demo_imagettes, mixed layout, --size px) to a
     temporary folder and ingests them (annotations.services.ingest.ingest_paths) into a fresh database: embedded
     SQLite in a temporary CRYOLABEL_VAR_DIR (default) or, with --postgres, `cryolabel_bench_predict_<pid>`
     (dropped at the end); none of this is measured;
  2. registers an active classifier version (--arch at --image-size, the platform's defaults for this machine's
     device otherwise; random weights: the speed does not depend on them), its checkpoint saved as the training
     job saves one;
  3. measures, in this order:
       bare      the same forward passes over the same tensors, in memory (every imagette decoded, normalised and
                 resized beforehand by the classifier's own dataset, stacked in batches of the job's size):
                 `sigmoid(model(x))` under `inference_mode` (and the bf16 autocast the model runs with) - the
                 floor any inference code has to pay;
       platform  `jobs.runner.run_job` with the `predict` job's function, as the worker runs it: checks, checkpoint
                 load, the query for the imagettes to predict, reading and decoding every file, forward passes,
                 uncertainty scores (confidence, entropy, margin; MI with --mc-dropout), Prediction rows written
                 batch by batch in transactions, progress on the Job row;
       bare      again, after the platform run: the baseline is the mean of the two, so that a change of the
                 machine's load during the run weighs on both sides alike;
       files     (informational) a bare loop that also reads the files: np.load, normalise, resize, forward.
  4. checks that every imagette got exactly one row and that the stored probabilities are those of the bare loop,
     prints the platform/bare ratio and PASS/FAIL against the target (<= 1.1x), then removes everything it made.

Run from the repository root:  .venv/bin/python bench/bench_predict.py [--n 1000] [--size 256] [--postgres]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    DEFAULT_PG,
    clean_platform_env,
    django_close_connections,
    django_setup,
    exit_on_sigterm,
    load_line,
    machine_line,
    migrate,
    pg_create_database,
    pg_drop_database,
    verdict,
)


def _write_shard(args: tuple[str, int, int, int]) -> int:
    folder, n, seed, size = args
    from demo.synthetic import write_demo_imagettes

    write_demo_imagettes(folder, n, seed=seed, layout="mixed", size=size)
    return n


def generate(root: Path, n: int, size: int, seed: int, jobs: int) -> float:
    """n imagettes in `jobs` shards (sub-folders with their own seed), written in parallel."""
    jobs = max(1, min(jobs, n // 20 or 1))
    shares = [n // jobs + (1 if i < n % jobs else 0) for i in range(jobs)]
    work = [(str(root / f"shard{i}"), share, seed * 1000 + i, size) for i, share in enumerate(shares) if share]
    t0 = time.perf_counter()
    if len(work) == 1:
        _write_shard(work[0])
    else:
        with ProcessPoolExecutor(len(work)) as pool:
            list(pool.map(_write_shard, work))
    return time.perf_counter() - t0


class _DbClock:
    """Counts and times the queries of the default connection (execute_wrapper)."""

    def __init__(self) -> None:
        self.queries = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - t0
            self.queries += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Classifier inference through the platform's prediction job against a bare torch loop over "
        "the same tensors, measured in the same run (target: platform <= 1.1x bare).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--n", type=int, default=1000, help="imagettes to generate, ingest and predict")
    parser.add_argument("--size", type=int, default=256, help="imagette side on disk, pixels (multiple of 4)")
    parser.add_argument("--arch", choices=["resnet18", "inception_v3"], default=None,
                        help="classifier architecture (default: the platform's default for this device)")
    parser.add_argument("--image-size", type=int, default=None, help="network input side (default: the recipe's)")
    parser.add_argument("--batch", type=int, default=0, help="items per forward pass (0: the platform's default)")
    parser.add_argument("--mc-dropout", type=int, default=0, help="MC-dropout passes (the bare loop does as many)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--postgres", action="store_true", help="a temporary PostgreSQL database instead of SQLite")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="PostgreSQL server (no database name) for --postgres")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes writing the data")
    parser.add_argument("--target", type=float, default=1.1, help="maximum platform/bare time ratio for PASS")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (and database)")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    if args.n < 1:
        parser.error("--n must be at least 1")

    tmp = Path(tempfile.mkdtemp(prefix="cryolabel-bench-predict-"))
    data_dir, var_dir = tmp / "imagettes", tmp / "var"
    db_name = f"cryolabel_bench_predict_{os.getpid()}"
    created_db = False
    try:
        env = {"CRYOLABEL_VAR_DIR": str(var_dir), "MEDIA_ROOT": str(var_dir / "media")}
        if args.postgres:
            env["DATABASE_URL"] = pg_create_database(args.pg_url, db_name)
            env["DATABASE_POOL_SIZE"] = "2"
            created_db = True
        clean_platform_env(**env)
        os.environ["CRYOLABEL_PREDICT_BATCH"] = str(max(0, args.batch))

        print(f"bench_predict: {args.n} imagettes of {args.size}x{args.size} px; "
              f"database: {'PostgreSQL ' + db_name if args.postgres else 'embedded SQLite'}")
        print(f"machine: {machine_line()}")
        gen_s = generate(data_dir, args.n, args.size, args.seed, args.jobs)
        print(f"generated in {gen_s:.1f} s with {args.jobs} process(es)")
        django_setup()
        migrate()
        from annotations.models import Imagette
        from annotations.services.ingest import ingest_paths

        t0 = time.perf_counter()
        report = ingest_paths([data_dir])
        if report.errors:
            print(f"ingest errors: {report.errors[:3]}")
            return 1
        n = Imagette.objects.count()
        print(f"ingested {n} imagettes in {time.perf_counter() - t0:.1f} s (not measured)")
        return _measure(args, n)
    finally:
        django_close_connections()
        if created_db and not args.keep:
            pg_drop_database(args.pg_url, db_name)
        if args.keep:
            print(f"kept {tmp}" + (f" and database {db_name}" if created_db else ""))
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _measure(args, n: int) -> int:
    import numpy as np
    import torch
    from django.conf import settings
    from django.db import connection

    from inference.models import Prediction
    from inference.services.predict import imagette_samples, items_to_predict, predict_batch_size
    from inference.tasks import predict_job
    from jobs.models import Job
    from jobs.runner import run_job
    from training.models import ModelVersion, Snapshot
    from training.networks import get_network, pick_device, read_checkpoint
    from training.networks.classifier import load_imagette
    from training.services.registry import model_activate

    # --- the registered version -----------------------------------------------------------------------------
    net = get_network("classifier")
    device = pick_device()
    overrides = {k: v for k, v in (("arch", args.arch), ("image_size", args.image_size)) if v}
    hparams = net.resolve_hparams(overrides, device)
    torch.manual_seed(args.seed)
    relative = "models/classifier/v1.pt"
    path = Path(settings.MEDIA_ROOT) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.checkpoint_state(net.build(hparams), None, 1, hparams), path)
    snapshot = Snapshot.objects.create(kind="imagettes", number=1, seed=0, fractions={"train": 1.0},
                                       agreement_threshold=0.6)
    version = model_activate(version=ModelVersion.objects.create(network="classifier", number=1, snapshot=snapshot,
                                                                 checkpoint=relative), reason="bench")  # fmt: skip
    model, loaded = net.model_from_checkpoint(read_checkpoint(path), device)
    amp = bool(getattr(model, "_cryolabel_amp", False))
    batch = predict_batch_size(device.type)
    mc = max(0, args.mc_dropout)
    print(f"model: {loaded['arch']} at {loaded['image_size']} px on {device}, bf16 autocast {'on' if amp else 'off'}, "
          f"batch {batch}, MC dropout {mc or 'off'}, torch {torch.__version__} with {torch.get_num_threads()} "
          "thread(s)")

    # --- the same tensors, decoded beforehand by the classifier's own dataset (not measured) --------------------
    samples = imagette_samples(items_to_predict(version=version))
    dataset = net.dataset(samples, train=False, hparams={**loaded, "cache_mb": 0})
    tensors = [dataset[i][0] for i in range(len(dataset))]
    batches = [torch.stack(tensors[i:i + batch]) for i in range(0, len(tensors), batch)]
    ids = [s.item_id for s in samples]
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0]

    def bare() -> tuple[float, np.ndarray]:
        outputs = []
        t0 = time.perf_counter()
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            for x in batches:
                x = x.to(device, non_blocking=True)
                if mc and dropouts:
                    for m in dropouts:
                        m.train()
                    p = torch.stack([torch.sigmoid(model(x).float()) for _ in range(mc)]).mean(0)
                    for m in dropouts:
                        m.eval()
                else:
                    p = torch.sigmoid(model(x).float())
                outputs.append(p.cpu())
        return time.perf_counter() - t0, torch.cat(outputs).numpy()

    def files() -> float:
        t0 = time.perf_counter()
        size = int(loaded["image_size"])
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            for i in range(0, len(samples), batch):
                x = torch.stack([load_imagette(s.path, s.is_db, size) for s in samples[i:i + batch]])
                torch.sigmoid(model(x.to(device)).float()).cpu()
        return time.perf_counter() - t0

    # Warm-up: kernels chosen, allocator primed, files in the page cache, as the platform run will find them.
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        for x in batches[:3]:
            model(x.to(device))
    for s in samples:
        Path(s.path).read_bytes()
    bare_1, probabilities = bare()

    job = Job.objects.create(kind="predict", queue="gpu", params={"network": "classifier", "mc_dropout": mc})
    clock = _DbClock()
    with connection.execute_wrapper(clock):
        t0 = time.perf_counter()
        state = run_job(job.pk, predict_job, worker="bench")
        platform_s = time.perf_counter() - t0
    job.refresh_from_db()
    bare_2, _ = bare()
    files_s = files()
    bare_s = (bare_1 + bare_2) / 2

    # --- checks -----------------------------------------------------------------------------------------------
    problems = []
    if state != Job.State.SUCCEEDED:
        problems.append(f"the job ended {state}: {job.error or job.message}")
    stored = dict(Prediction.objects.filter(model_version=version).values_list("imagette_id", "probabilities"))
    if len(stored) != n or job.result.get("predicted") != n:
        problems.append(f"{len(stored)} rows stored ({job.result.get('predicted')} reported) for {n} imagettes")
    elif not mc:
        diff = float(np.abs(np.array([stored[i] for i in ids]) - probabilities).max())
        if diff > 2e-3:
            problems.append(f"stored probabilities differ from the bare loop's by up to {diff:.4f}")
    ratio = platform_s / bare_s if bare_s else float("nan")
    rate = lambda s: n / s if s else 0.0  # noqa: E731

    print()
    print(f"results ({n} imagettes):")
    print(f"  bare      forward over the tensors   {bare_s:7.2f} s = {rate(bare_s):7.1f} imagettes/s "
          f"(runs {bare_1:.2f} s and {bare_2:.2f} s, before and after the platform run)")
    print(f"  platform  predict job (run_job)      {platform_s:7.2f} s = {rate(platform_s):7.1f} imagettes/s; "
          f"of which database {clock.seconds:.2f} s in {clock.queries} queries")
    print(f"  files     bare loop reading files    {files_s:7.2f} s = {rate(files_s):7.1f} imagettes/s "
          "(informational: np.load + normalise + resize + forward)")
    print(f"  platform/bare ratio: {ratio:.3f}x; platform/files ratio: {platform_s / files_s:.3f}x")
    checked = "OK, one row per imagette, probabilities as the bare loop's" if not problems else "; ".join(problems)
    print(f"  check: {checked}")
    ok = ratio <= args.target and not problems
    print()
    print(f"after the run: {load_line()}")
    print(f"target: platform <= {args.target:g}x the bare torch loop; measured {ratio:.3f}x -> {verdict(ok)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
