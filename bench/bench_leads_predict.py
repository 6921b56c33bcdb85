"""The `leads` LSTM's prediction of a whole track through the platform against a bare torch loop over the same
windows, in the same run; and the peak memory of the platform's path.

What it does:
  1. migrates an embedded SQLite database in a temporary folder and ingests one synthetic SARAL pass of --n
     waveforms (demo.synthetic.altimetry.write_demo_tracks, crossing a demo scene; `ingest_paths`: arrays as .npy
     files and the Track row, as the platform stores them);
  2. builds a `leads` model with the network's hyperparameters for this device (the CPU defaults: windows of 256
     waveforms, predicted every 128, batches of 8; or --window / --batch-size), initialised with a fixed seed (or a
     checkpoint given with --checkpoint), saves its checkpoint and loads it back as the prediction job does;
  3. times, alternately, --repeats times each after one unmeasured run of each:
     * **platform**: inference.services.track_predict.track_predict_item, the prediction job's per-track path:
       read the track's arrays, its inputs (every waveform in the network's input form: resampling, leading-edge
       alignment, scalars; kept beside the track's arrays once a training or a prediction computed them, which
       is how a track is predicted after the training that used it and by every later version; timed apart too
       with the inputs computed, the track's very first prediction), the overlapping windows through the model in
       batches, blend them (triangle weights), write the .npz (scratch file renamed into place), read the track's
       labels for the disagreement count;
     * **bare**: `model(x)` under torch.inference_mode over the very same windows in batches of the same size,
       stacked beforehand from inputs computed beforehand; no blending, no probability, no I/O;
  4. checks the .npz holds --n waveforms of finite probabilities equal (within 1e-5) to the blend of the bare
     loop's logits, and prints the medians, their ratio, where the platform's extra time goes (each step timed
     apart), the peak memory, PASS/FAIL against the target (platform / bare <= 1.1).

Peak memory: the process's resident high-water mark (getrusage ru_maxrss) before and after the platform runs, and
tracemalloc's peak of Python and numpy allocations during one platform run (torch's own buffers not included).

Run from the repository root:  .venv/bin/python bench/bench_leads_predict.py [--n 10000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_platform_env, django_setup, load_line, machine_line, migrate, verdict  # noqa: E402

TARGET = 1.1


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def make_track(out: Path, n: int):
    """One demo pass of `n` waveforms, ingested (no scene: its labels stay unknown, which the job reads anyway)."""
    from annotations.models import Track
    from annotations.services.ingest import ingest_paths
    from demo.synthetic.altimetry import write_demo_tracks

    write_demo_tracks(out, 1, seed=0, scenes=1, scene_size=400, waveforms=n)
    report = ingest_paths([out / "tracks"])
    if report.errors or len(report.tracks) != 1:
        raise SystemExit(f"the synthetic pass did not ingest: {report.as_dict()}")
    return Track.objects.get()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="waveforms in the pass")
    parser.add_argument("--repeats", type=int, default=7, help="measured runs of each (median)")
    parser.add_argument("--window", type=int, help="waveforms a window (default: the network's)")
    parser.add_argument("--batch-size", type=int, help="windows a batch (default: the network's)")
    parser.add_argument("--checkpoint", help="a leads checkpoint to predict with (default: initialised, seed 0)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--target", type=float, default=TARGET, help="maximum platform / bare ratio")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    print(f"bench_leads_predict: a pass of {args.n} waveforms; machine: {machine_line()}")
    tmp = Path(tempfile.mkdtemp(prefix="cryolabel-bench-leads-"))
    try:
        clean_platform_env(CRYOLABEL_VAR_DIR=str(tmp / "var"))
        django_setup()
        migrate()
        return _measure(args, tmp)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _measure(args, tmp: Path) -> int:
    import numpy as np
    import torch

    from annotations.models import Track
    from annotations.track_arrays import arrays_read, track_folder
    from inference.services.track_predict import track_predict_item, track_samples
    from training.models import ModelVersion
    from training.networks import get_network, read_checkpoint
    from training.networks.leads import _forward
    from training.networks.leads_data import INPUTS_VERSION, track_inputs, window_starts

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    track = make_track(tmp / "data", args.n)
    print(f"pass written and ingested in {time.perf_counter() - t0:.1f} s: {track.n_waveforms} waveforms of "
          f"{track.gates} gates")

    net = get_network("leads")
    if args.checkpoint:
        path = Path(args.checkpoint)
    else:
        overrides = {k: v for k, v in (("window", args.window), ("batch_size", args.batch_size)) if v}
        hparams = net.resolve_hparams(overrides, "cpu")
        torch.manual_seed(0)
        path = tmp / "leads.pt"
        torch.save(net.checkpoint_state(net.build(hparams), None, 1, hparams), path)
    model, hparams = net.model_from_checkpoint(read_checkpoint(path), "cpu")
    if args.window:
        hparams["window"] = args.window
    if args.batch_size:
        hparams["batch_size"] = args.batch_size
    version = ModelVersion(network="leads", kind="tracks", number=1)  # where the .npz goes; no row needed
    (sample,) = track_samples(Track.objects.filter(pk=track.pk))

    # --- the same windows, for the bare loop (computed beforehand, not measured) ------------------------------
    x_all = torch.from_numpy(track_inputs(arrays_read(track_folder(track), ["waveforms"])["waveforms"]))
    n = len(x_all)
    length = min(int(hparams["window"]), n)
    stride = int(hparams.get("predict_stride") or 0) or max(1, length // 2)
    starts = window_starts(n, length, stride)
    size = int(hparams.get("batch_size") or 16)
    batches = [torch.stack([x_all[s:s + length] for s in starts[i:i + size]]) for i in range(0, len(starts), size)]
    print(f"model: {net.arch_tag(hparams)}, {sum(p.numel() for p in model.parameters())} parameters; "
          f"{len(starts)} windows of {length} every {stride}, batches of {size} ({len(batches)}); torch "
          f"{torch.__version__}, {torch.get_num_threads()} thread(s)")

    def bare() -> float:
        model.eval()
        started = time.perf_counter()
        with torch.inference_mode():
            for x in batches:
                model(x)
        return time.perf_counter() - started

    def platform() -> float:
        started = time.perf_counter()
        rows = track_predict_item(network=net, model=model, hparams=hparams, sample=sample, device="cpu",
                                  mc_dropout=0, version=version)
        seconds = time.perf_counter() - started
        assert rows[0]["waveforms"] == n
        return seconds

    kept = track_folder(track) / f"leads_inputs_v{INPUTS_VERSION}.npy"

    def platform_cold() -> float:
        kept.unlink(missing_ok=True)  # the track's first prediction, before any training or prediction kept them
        return platform()

    bare()
    platform()  # warm-up: kernels, allocator, the arrays in the page cache, Django's query cache
    rss_before = _rss_mib()
    bare_s, platform_s, cold_s = [], [], []
    for _ in range(max(1, args.repeats)):
        bare_s.append(bare())
        cold_s.append(platform_cold())
        platform_s.append(platform())
    rss_after = _rss_mib()
    tracemalloc.start()
    platform()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    # --- where the platform's extra time goes (each step alone, medians of 3) --------------------------------
    def median_of(fn, k: int = 3) -> float:
        times = []
        for _ in range(k):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    arrays = arrays_read(track_folder(track), ("waveforms", "features"))
    steps = {
        "read arrays (.npy)": lambda: arrays_read(track_folder(track), ("waveforms", "features"))["waveforms"].sum(),
        "input form (track_inputs)": lambda: track_inputs(arrays["waveforms"]),
        "forward + probability/entropy (_forward)": lambda: [_forward(model, x, torch.device("cpu"), 0)
                                                            for x in batches],
        "whole predict_track (form, windows, forward, blend)": lambda: net.predict_track(model, arrays, hparams,
                                                                                          "cpu"),
    }
    parts = {name: median_of(fn) for name, fn in steps.items()}

    # --- checks: the file's probabilities are the blend of the bare loop's --------------------------------------
    problems = []
    from inference.services.track_predict import prediction_path

    with np.load(prediction_path(version, track.pk)) as data:
        probability = data["probability"]
    if len(probability) != n or not np.isfinite(probability).all():
        problems.append(f"the .npz holds {len(probability)} probabilities, finite: {np.isfinite(probability).all()}")
    else:
        centre = (length - 1) / 2
        weight = np.clip(1.0 - np.abs(np.arange(length) - centre) / (centre + 1), 1e-3, None)
        sums, total = np.zeros(n), np.zeros(n)
        with torch.inference_mode():
            logits = torch.cat([model(x)[0] for x in batches])
            p = model.probability(logits).double().numpy()
        for row, s in enumerate(starts):
            sums[s:s + length] += weight * p[row]
            total[s:s + length] += weight
        diff = float(np.abs(sums / total - probability).max())
        if diff > 1e-5:
            problems.append(f"the stored probabilities differ from the bare loop's blend by up to {diff:.2e}")

    bare_med, platform_med = statistics.median(bare_s), statistics.median(platform_s)
    ratio = platform_med / bare_med
    print(f"bare loop (model(x), same windows):      median {bare_med * 1000:7.1f} ms "
          f"(runs: {', '.join(f'{s * 1000:.0f}' for s in bare_s)})")
    print(f"platform (track_predict_item):           median {platform_med * 1000:7.1f} ms "
          f"(runs: {', '.join(f'{s * 1000:.0f}' for s in platform_s)})")
    cold_med = statistics.median(cold_s)
    print(f"platform, the track's first prediction:  median {cold_med * 1000:7.1f} ms, {cold_med / bare_med:.3f} x "
          f"(its inputs computed and kept: runs {', '.join(f'{s * 1000:.0f}' for s in cold_s)})")
    print("steps of the platform's path, timed apart (medians of 3):")
    for name, seconds in parts.items():
        print(f"  {name:<52} {seconds * 1000:7.1f} ms")
    print(f"peak RSS {rss_after:.0f} MiB ({rss_before:.0f} MiB after the warm-up runs); tracemalloc peak of one "
          f"platform run (Python and numpy, not torch) {traced_peak / 2**20:.1f} MiB")
    print(f"after the run: {load_line()}")
    for problem in problems:
        print(f"CHECK FAILED: {problem}")
    ok = ratio <= args.target and not problems
    print(json.dumps({"n": n, "windows": len(starts), "bare_ms": round(bare_med * 1000, 1),
                      "platform_ms": round(platform_med * 1000, 1), "ratio": round(ratio, 3),
                      "first_prediction_ms": round(cold_med * 1000, 1),
                      "first_prediction_ratio": round(cold_med / bare_med, 3),
                      "steps_ms": {k: round(v * 1000, 1) for k, v in parts.items()},
                      "peak_rss_mib": round(rss_after), "traced_peak_mib": round(traced_peak / 2**20, 1)}))
    print(f"target: platform / bare {ratio:.3f} <= {args.target:g} -> {verdict(ok)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
