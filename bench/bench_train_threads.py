"""Training speed on a CPU that other processes keep busy: torch's default threads against the worker's sizing.

What it does:
  1. measures --steps training steps (after --warmup steps) of the platform's classifier (ResNet-18 at --size px,
     batch --batch-size, synthetic tensors in memory: no files, no database) in a fresh Python process per
     measurement, so that each starts torch with its own OpenMP environment:
       * before: torch's defaults (every core of the machine, OpenMP threads spinning while they wait; the
         OMP_*/MKL_* variables of this shell are removed);
       * after: the worker's sizing (eoplatform.threads.worker_threads_apply with --concurrency, as
         jobs.worker_hooks does on worker start, then eoplatform.threads.torch_threads_apply, as a training
         job does);
  2. each of them on the machine as it is ("quiet") and with --busy competing processes
     (`python -c "while True: pass"`, started by the bench and stopped after each measurement);
  3. repeats the four measurements --rounds times, interleaved (before/after, quiet/busy), and keeps the median;
  4. prints steps/s of each, the ratios, and PASS/FAIL against the targets: under load, after >= 1.3x before;
     on the quiet machine, after >= 0.9x before (the sizing must not cost when nobody competes).

The machine is shared: the "quiet" runs measure whatever else runs too (the load average is printed before and
after). Run from the repository root:
  .venv/bin/python bench/bench_train_threads.py [--steps 10] [--rounds 2] [--busy 2] [--size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import exit_on_sigterm, load_line, machine_line, verdict  # noqa: E402,I001

BUSY_TARGET = 1.3
QUIET_TARGET = 0.9
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME",
               "GOMP_SPINCOUNT", "CRYOLABEL_TORCH_THREADS", "CRYOLABEL_WORKER_CONCURRENCY")


def child(args) -> None:
    """One measurement, in its own process: set the threads as asked, then import torch and train."""
    sys.path.insert(0, str(ROOT))
    if args.child == "after":
        from eoplatform.threads import worker_threads_apply

        worker_threads_apply(concurrency=args.concurrency)  # before torch is imported, as in a worker
    import torch

    from training.networks import get_network

    threads = "torch defaults"
    if args.child == "after":
        from eoplatform.threads import torch_threads_apply

        threads = torch_threads_apply()["text"]
    network = get_network("classifier")
    hparams = network.resolve_hparams({"arch": "resnet18", "image_size": args.size, "batch_size": args.batch_size,
                                       "amp": False}, "cpu")  # fmt: skip
    torch.manual_seed(0)
    model = network.build(hparams).train()
    optimizer = network.make_optimizer(model, hparams)
    x = torch.randn(args.batch_size, 1, args.size, args.size)
    y = torch.nn.functional.one_hot(torch.arange(args.batch_size) % len(network.classes), len(network.classes))
    device = torch.device("cpu")

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss, _ = network.compute_loss(model, (x, y.float()), device)
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = time.perf_counter() - started
    print(json.dumps({"steps_per_s": args.steps / seconds, "intra": torch.get_num_threads(),
                      "inter": torch.get_num_interop_threads(), "threads": threads}))


def measure(mode: str, args, busy: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode, "--steps", str(args.steps), "--warmup", str(args.warmup),
             "--size", str(args.size), "--batch-size", str(args.batch_size), "--concurrency", str(args.concurrency)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600, check=False)  # fmt: skip
    finally:
        for hog in hogs:
            hog.terminate()
        for hog in hogs:
            hog.wait()
    if out.returncode != 0:
        raise SystemExit(f"measurement {mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="measured training steps per run (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured steps first (default 3)")
    parser.add_argument("--rounds", type=int, default=2, help="repeats of the four runs; the median is kept")
    parser.add_argument("--busy", type=int, default=2, help="competing busy processes under load (default 2)")
    parser.add_argument("--size", type=int, default=64, help="input size, px (default 64)")
    parser.add_argument("--batch-size", type=int, default=32, help="default 32")
    parser.add_argument("--concurrency", type=int, default=1, help="the worker's concurrency to size for (default 1)")
    parser.add_argument("--child", choices=["before", "after"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    if args.steps < 1 or args.rounds < 1 or args.busy < 0:
        parser.error("--steps and --rounds must be >= 1, --busy >= 0")

    exit_on_sigterm()
    print(machine_line())
    runs: dict[tuple[str, str], list[float]] = {}
    seen: dict[str, dict] = {}
    for round_ in range(args.rounds):
        for load, busy in (("quiet", 0), ("busy", args.busy)):
            for mode in (("before", "after") if round_ % 2 == 0 else ("after", "before")):
                result = measure(mode, args, busy)
                runs.setdefault((mode, load), []).append(result["steps_per_s"])
                seen[mode] = result
                print(f"  round {round_ + 1} {load:<5} {mode:<6} {result['steps_per_s']:6.2f} steps/s "
                      f"({result['intra']} intra-op, {result['inter']} inter-op)", flush=True)
    med = {key: statistics.median(values) for key, values in runs.items()}
    print(f"\nResNet-18 at {args.size} px, batch {args.batch_size}, {args.steps} steps per run, median of "
          f"{args.rounds}; busy = {args.busy} competing processes")
    print(f"  before: {seen['before']['threads']}")
    print(f"  after:  {seen['after']['threads']}")
    print(f"  {'':<8}{'quiet':>12}{'busy':>12}{'busy/quiet':>12}")
    for mode in ("before", "after"):
        q, b = med[(mode, "quiet")], med[(mode, "busy")]
        print(f"  {mode:<8}{q:>8.2f} s/s{b:>8.2f} s/s{b / q:>12.2f}")
    busy_ratio = med[("after", "busy")] / med[("before", "busy")]
    quiet_ratio = med[("after", "quiet")] / med[("before", "quiet")]
    print(f"  after/before under load: {busy_ratio:.2f}x (target >= {BUSY_TARGET})   "
          f"quiet: {quiet_ratio:.2f}x (target >= {QUIET_TARGET})")
    print(load_line())
    ok = busy_ratio >= BUSY_TARGET and quiet_ratio >= QUIET_TARGET
    print(verdict(ok))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
