"""Whole-scene prediction of `sic` against the bare model forward over the same patches, in the same run; and the
peak memory of predicting a scene of --size x --size pixels.

What it does:
  1. writes a synthetic three-band float32 scene (HH, HV, incidence; speckled, with no data in two corners as a
     swath has) of --size x --size pixels on the polar grid, in windows (the bench itself stays small);
  2. builds a `sic` U-Net with the network's defaults for this device (or --patch / --base) and saves it;
  3. in a spawned child process (a fresh interpreter, so that its peak resident memory, getrusage ru_maxrss, is
     the prediction's alone): inference.services.scene_predict.scene_predict over the scene: strips of overlapping
     patches read in windows, normalised, predicted in batches, blended with the sin² window, written as a COG
     with overviews -- the platform's whole path, I/O and stitching included;
  4. in another spawned child, before and after the prediction (the mean is the baseline: the load of a shared
     machine drifts over minutes): the bare forward, `predict_patches` over as many batches of the same shape as the
     stitcher predicted (zeros: the cost of a forward does not depend on the values), nothing read or written;
  5. prints both times, their ratio and the peak RSS, PASS/FAIL against the targets (stitching and I/O add under
     15 % to the forward: ratio <= 1.15; peak RSS of the prediction under 2 GB for a 10 000² scene).

Run from the repository root:  .venv/bin/python bench/bench_sic_predict.py [--size 10000] [--patch 128] [--base 8]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup, load_line, machine_line, verdict  # noqa: E402

GB = 1e9


def _rss_peak_bytes() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes


def write_scene(path: Path, size: int, seed: int = 0) -> None:
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "float32", "crs": "EPSG:3413",
               "transform": from_origin(-800_000, -1_200_000, 40, 40), "nodata": np.nan, "tiled": True,
               "blockxsize": 512, "blockysize": 512, "compress": "deflate"}
    with rasterio.open(path, "w", **profile) as dst:
        for i, name in enumerate(("HH", "HV", "incidence"), start=1):
            dst.set_band_description(i, name)
        for row in range(0, size, 512):
            h = min(512, size - row)
            rows = np.arange(row, row + h)[:, None]
            cols = np.arange(size)[None, :]
            corner = (rows + cols < size // 6) | (rows + cols > 2 * size - size // 6)  # no data, as off a swath
            hh = -18 + 6 * np.sin(cols / 900.0) + rng.gamma(4, 0.25, (h, size)).astype(np.float32) * 3
            hv = hh - 8 + rng.normal(0, 1, (h, size))
            inc = np.broadcast_to(19 + 28 * cols / size, (h, size))
            block = np.stack([hh, hv, inc]).astype(np.float32)
            block[:, corner] = np.nan
            dst.write(block, window=Window(0, row, size, h))


def _stitch_child(scene: str, checkpoint: str, out: str, conn) -> None:
    try:
        django_setup()
        import torch

        from inference.services.scene_predict import scene_predict
        from training.contract import SampleRef
        from training.networks import get_network

        torch.set_num_threads(torch.get_num_threads())
        net = get_network("sic")
        model, hparams = net.model_from_checkpoint(torch.load(checkpoint, weights_only=False), "cpu")
        sample = SampleRef(item_id=1, split="test", path=scene, kind="scenes",
                           meta={"bands": ["HH", "HV", "incidence"]})
        before = _rss_peak_bytes()
        t0 = time.perf_counter()
        stats = scene_predict(network=net, model=model, hparams=hparams, sample=sample, device="cpu", out=Path(out))
        conn.send({"seconds": time.perf_counter() - t0, "rss_before": before, "rss_peak": _rss_peak_bytes(),
                   "stats": stats, "hparams": {k: hparams[k] for k in ("patch", "base", "levels")}})
    except BaseException as exc:  # reported to the parent, never lost
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


def _bare_child(checkpoint: str, patches: int, conn) -> None:
    try:
        django_setup()
        import torch

        from inference.services.scene_predict import BATCH
        from training.networks import get_network

        net = get_network("sic")
        model, hparams = net.model_from_checkpoint(torch.load(checkpoint, weights_only=False), "cpu")
        size = int(hparams["patch"])
        full, rest = divmod(patches, BATCH)
        batches = [BATCH] * full + ([rest] if rest else [])
        zeros = {n: torch.zeros((n, len(hparams["bands"]), size, size)) for n in set(batches)}
        t0 = time.perf_counter()
        with torch.no_grad():
            for n in batches:
                net.predict_patches(model, zeros[n], "cpu")
        conn.send({"seconds": time.perf_counter() - t0, "batches": len(batches)})
    except BaseException as exc:
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


def _patches_count(scene: Path, checkpoint: str) -> int:
    """How many patches the prediction sends to the model: those of the strips' patch grid with data under them
    (as inference.services.scene_predict chooses them), counted from the scene's mask in windows."""
    import numpy as np
    import rasterio
    import torch
    from rasterio.windows import Window

    from inference.services.scene_predict import patch_origins, patch_stride, patches_with_data

    patch = int(torch.load(checkpoint, weights_only=False)["hparams"]["patch"])
    stride = patch_stride(patch)
    count = 0
    with rasterio.open(scene) as src:
        cols = np.asarray(patch_origins(src.width, patch, stride))
        for r0 in patch_origins(src.height, patch, stride):
            valid = np.isfinite(src.read(window=Window(0, r0, src.width, min(patch, src.height - r0)))).all(axis=0)
            # past the scene's right edge: no data, as the prediction pads its strips
            valid = np.pad(valid, ((0, 0), (0, max(0, cols[-1] + patch - src.width))))
            count += len(patches_with_data(valid, cols, patch))
    return count


def _count_child(scene: str, checkpoint: str, conn) -> None:
    # In a child of its own: reading the whole scene fills GDAL's block cache, and a spawned process starts with
    # its parent's peak RSS (Linux keeps ru_maxrss across fork and exec), which would count in the prediction's.
    try:
        django_setup()
        conn.send({"patches": _patches_count(Path(scene), checkpoint)})
    except BaseException as exc:
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


def _in_child(target, *args) -> dict:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(*args, child))
    process.start()
    child.close()
    try:
        result = parent.recv()
    except EOFError:
        result = {"error": "the child process died"}
    process.join()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10_000, help="the scene's side, pixels")
    parser.add_argument("--patch", type=int, help="patch side (default: the network's for this device)")
    parser.add_argument("--base", type=int, help="channels of the first level (default: the network's)")
    parser.add_argument("--target", type=float, default=1.15, help="maximum whole / bare ratio")
    parser.add_argument("--max-rss-gb", type=float, default=2.0)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    print(f"bench_sic_predict: a {args.size} x {args.size} scene; machine: {machine_line()}")
    tmp = Path(tempfile.mkdtemp(prefix="cryolabel-bench-sic-"))
    try:
        django_setup()
        import torch

        from training.networks import get_network

        t0 = time.perf_counter()
        write_scene(tmp / "scene.tif", args.size)
        print(f"scene written in {time.perf_counter() - t0:.1f} s ({(tmp / 'scene.tif').stat().st_size / 1e6:.0f} MB)")
        net = get_network("sic")
        overrides = {k: v for k, v in (("patch", args.patch), ("base", args.base)) if v}
        hparams = net.resolve_hparams(overrides, "cpu")
        torch.manual_seed(0)
        torch.save(net.checkpoint_state(net.build(hparams), None, 1, hparams), tmp / "sic.pt")

        # The bare forward runs before and after the whole prediction and its mean is the baseline: on a shared
        # machine the load drifts over a run of minutes, and a baseline measured on one side only takes the drift
        # as a difference (two runs of the default model gave whole / bare 0.92 and 0.86 with the bare after).
        counted = _in_child(_count_child, str(tmp / "scene.tif"), str(tmp / "sic.pt"))
        if "error" in counted:
            print(f"FAIL: the patches could not be counted: {counted['error']}")
            return 1
        patches = counted["patches"]
        before = _in_child(_bare_child, str(tmp / "sic.pt"), patches)
        whole = _in_child(_stitch_child, str(tmp / "scene.tif"), str(tmp / "sic.pt"), str(tmp / "layer.tif"))
        if "error" in whole:
            print(f"FAIL: the prediction failed: {whole['error']}")
            return 1
        if whole["stats"]["patches"] != patches:
            print(f"FAIL: the prediction sent {whole['stats']['patches']} patches, the count said {patches}")
            return 1
        after = _in_child(_bare_child, str(tmp / "sic.pt"), patches)
        for bare_run in (before, after):
            if "error" in bare_run:
                print(f"FAIL: the bare forward failed: {bare_run['error']}")
                return 1
        bare = {"seconds": (before["seconds"] + after["seconds"]) / 2, "batches": before["batches"]}
        print(f"bare forward before / after the prediction: {before['seconds']:.1f} s / {after['seconds']:.1f} s")
        ratio = whole["seconds"] / bare["seconds"]
        peak = whole["rss_peak"]
        print(f"model: U-Net {whole['hparams']}; {patches} patches predicted (half-overlapping)")
        print(f"whole-scene prediction (read, normalise, forward, blend, write the COG): {whole['seconds']:.1f} s, "
              f"peak RSS {peak / 1e9:.2f} GB ({whole['rss_before'] / 1e9:.2f} GB before the prediction)")
        print(f"bare forward over the same number of patches: {bare['seconds']:.1f} s ({bare['batches']} batches)")
        print(f"after the run: {load_line()}")
        ok_ratio, ok_rss = ratio <= args.target, peak < args.max_rss_gb * GB
        print(json.dumps({"size": args.size, "patches": patches, "whole_s": round(whole["seconds"], 2),
                          "bare_s": round(bare["seconds"], 2), "ratio": round(ratio, 3),
                          "peak_rss_gb": round(peak / 1e9, 3)}))
        print(f"targets: whole / bare {ratio:.2f} <= {args.target:g} {verdict(ok_ratio)}; peak RSS "
              f"{peak / 1e9:.2f} < {args.max_rss_gb:g} GB {verdict(ok_rss)}")
        print(f"-> {verdict(ok_ratio and ok_rss)}")
        return 0 if ok_ratio and ok_rss else 1
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
