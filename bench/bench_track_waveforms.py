"""The waveform viewer's data endpoint, GET /api/v1/tracks/<id>/waveforms.bin, for a pass of 10 000 waveforms.

What it does:
  1. migrates an embedded SQLite database in a temporary folder and writes one synthetic track of --n waveforms of
     --gates gates (annotations.track_arrays.arrays_write: time, lat, lon, waveforms, features; and the
     collocation's auto_label / auto_distance) with --ranges label ranges marked by a person;
  2. in this process, through Django's test client with an annotator's token (routing, middleware, authentication,
     permission, throttle, the Track row, the effective labels from the ranges, the ETag, the payload), times
     --runs requests after --warmup unmeasured ones: each reads the memory-mapped .npy files, scales the waveforms
     to a uint8 dB image and packs the binary (format: annotations/api_tracks.py);
  3. times the same requests with the ETag in If-None-Match (304: labels computed, nothing packed);
  4. decodes one payload and checks it against the arrays (the image within half a dB step, positions, labels);
  5. prints the medians, the payload size, PASS/FAIL against the target (median < 100 ms), then removes the folder.

Run from the repository root:  .venv/bin/python bench/bench_track_waveforms.py [--n 10000] [--gates 128] [--runs 50]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_platform_env, django_setup, load_line, machine_line, migrate, verdict  # noqa: E402

TARGET_MS = 100.0


def make_track(n: int, gates: int, ranges: int, seed: int = 3):
    from accounts.roles import Role
    from accounts.services import user_create
    from annotations.models import Track
    from annotations.services.track_labels import track_range_mark
    from annotations.track_arrays import AUTO_ARRAYS, arrays_write, track_folder

    rng = np.random.default_rng(seed)
    t0 = datetime(2021, 3, 4, 10, 0, tzinfo=UTC)
    i = np.arange(n)
    lat, lon = 72.0 + i * 0.00015, -150.0 + i * 0.0002
    g = np.arange(gates)
    diffuse = 1e-3 / (1 + np.exp(-(g - gates / 3) / 2.0)) * np.exp(-np.clip(g - gates / 3, 0, None) / 60)
    waveforms = (np.tile(diffuse, (n, 1)) * rng.uniform(0.8, 1.2, (n, 1)) + rng.uniform(0, 1e-5, (n, gates)))
    leads = rng.random(n) < 0.03
    waveforms[leads, int(gates / 3)] = 0.5
    waveforms = waveforms.astype(np.float32)
    features = np.stack([waveforms.max(1) / waveforms.mean(1), np.full(n, 3.0), np.full(n, 20.0), waveforms.max(1)], 1)
    track = Track.objects.create(
        key="bench-pass", source_path="/bench", source_format="saral_sgdr", mission="SARAL", instrument="AltiKa",
        band="Ka", rate_hz=40, gates=gates, time_start=t0, time_stop=t0 + timedelta(seconds=n / 40), n_waveforms=n,
        geometry={"type": "LineString", "coordinates": [[lon[0], lat[0]], [lon[-1], lat[-1]]]},
        min_lat=lat.min(), max_lat=lat.max(), min_lon=lon.min(), max_lon=lon.max(), data="tracks/bench-pass")
    folder = track_folder(track)
    arrays_write(folder, {"time": t0.timestamp() + i / 40, "lat": lat, "lon": lon, "waveforms": waveforms,
                          "features": features, "surface": np.full(n, 2)})
    arrays_write(folder, {"auto_label": leads.astype(np.int8), "auto_distance": np.where(leads, 50.0, 4000.0),
                          "auto_scene": np.zeros(n)}, kinds=AUTO_ARRAYS, replace=True)
    user = user_create(username="bench-annotator", password="bench-pw-12345", role=Role.ANNOTATOR)
    for k in range(ranges):
        start = int(rng.integers(0, n - 200))
        track_range_mark(track, start, start + int(rng.integers(1, 200)), ["lead", "not_lead", "unknown"][k % 3],
                         author=user)
    return track, user


def decode(payload: bytes) -> tuple[dict, dict]:
    assert payload[:4] == b"CRYW"
    (length,) = struct.unpack("<I", payload[4:8])
    header = json.loads(payload[8:8 + length])
    arrays = {s["name"]: np.frombuffer(payload, dtype=np.dtype(s["dtype"]).newbyteorder("<"),
                                       count=int(np.prod(s["shape"])), offset=s["offset"]).reshape(s["shape"])
              for s in header["sections"]}
    return header, arrays


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="waveforms in the pass")
    parser.add_argument("--gates", type=int, default=128)
    parser.add_argument("--ranges", type=int, default=200, help="label ranges marked on the track")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)

    print(machine_line())
    folder = Path(tempfile.mkdtemp(prefix="bench-track-"))
    try:
        clean_platform_env(CRYOLABEL_VAR_DIR=str(folder), MEDIA_ROOT=str(folder / "media"),
                           CRYOLABEL_API_USER_RATE="100000/minute", DEBUG="0", ALLOWED_HOSTS="testserver")
        django_setup()
        print(f"database migrated in {migrate():.1f} s")
        from django.test import Client

        from accounts.services import token_for
        from annotations.track_arrays import track_folder

        t = time.perf_counter()
        track, user = make_track(args.n, args.gates, args.ranges)
        print(f"track of {args.n} x {args.gates} waveforms and {args.ranges} ranges written in "
              f"{time.perf_counter() - t:.1f} s")
        client = Client(HTTP_AUTHORIZATION=f"Token {token_for(user=user)}")
        url = f"/api/v1/tracks/{track.pk}/waveforms.bin"

        def get(**extra):
            t0 = time.perf_counter()
            response = client.get(url, **extra)
            return response, time.perf_counter() - t0

        for _ in range(args.warmup):
            get()
        full, cached = [], []
        for _ in range(args.runs):
            response, seconds = get()
            assert response.status_code == 200, response.content[:300]
            full.append(seconds)
            etag = response["ETag"]
            again, seconds = get(HTTP_IF_NONE_MATCH=etag)
            assert again.status_code == 304
            cached.append(seconds)
        payload = response.content

        # The payload against the arrays.
        header, a = decode(payload)
        arrays = {name: np.load(track_folder(track) / f"{name}.npy") for name in ("lat", "lon", "waveforms")}
        step = (header["db_max"] - header["db_min"]) / 255
        decoded = header["db_min"] + a["image"].astype(np.float64) * step
        expected = np.clip(10 * np.log10(arrays["waveforms"].astype(np.float64)), header["db_min"], header["db_max"])
        problems = []
        if np.abs(decoded - expected).max() > step * 0.51 + 1e-4:
            problems.append("the image differs from the waveforms by more than half a step")
        if not np.allclose(a["lat"], arrays["lat"], atol=1e-5) or not np.allclose(a["lon"], arrays["lon"], atol=1e-5):
            problems.append("positions differ")

        median_full = 1000 * statistics.median(full)
        median_cached = 1000 * statistics.median(cached)
        json_floats = args.n * args.gates * 9  # what JSON lists of floats would weigh, at ~9 characters a number
        print(f"\nGET {url}: {args.n} waveforms x {args.gates} gates, {args.runs} runs, in process "
              "(Django test client)")
        print(f"  200 (packed)          median {median_full:7.1f} ms   p90 {1000 * np.percentile(full, 90):7.1f} ms   "
              f"min {1000 * min(full):7.1f} ms")
        print(f"  304 (If-None-Match)   median {median_cached:7.1f} ms   "
              f"p90 {1000 * np.percentile(cached, 90):7.1f} ms")
        print(f"  payload {len(payload) / 1e6:.2f} MB ({len(payload) / args.n:.0f} bytes a waveform; JSON lists of "
              f"floats would be ~{json_floats / 1e6:.1f} MB); "
              f"dB window {header['db_min']:.1f} to {header['db_max']:.1f}")
        for problem in problems:
            print(f"  PROBLEM: {problem}")
        ok = median_full < TARGET_MS and not problems
        print(f"\ntarget: median < {TARGET_MS:.0f} ms for the packed answer: {verdict(ok)}")
        print(f"after the run: {load_line()}")
        return 0 if ok else 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eoplatform.settings")
    sys.exit(main())
