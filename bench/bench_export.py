"""Export throughput and memory: a snapshot of N imagettes written as ImageFolder, CSV and STAC, at two sizes,
each export in a fresh child process so that its peak RSS is its own.

What it does:
  1. migrates a fresh database: embedded SQLite in a temporary CRYOLABEL_VAR_DIR (default) or, with --postgres,
     a temporary PostgreSQL database `cryolabel_bench_export_<pid>` (dropped at the end);
  2. bulk-creates --n imagette rows (settled labels, a few multi-label, a third with crowd agreement; lat/lon,
     time, incidence, footprint) and their float16 dB .npy files (--side px) in a temporary MEDIA_ROOT (not
     measured), then one snapshot of them (snapshot_create: the real split);
  3. measures, each in a child process pinned to one core (--cpu):
       bare      np.load of every .npy and its float32 bytes written to a file: the pixel I/O alone, the baseline;
       export    export_create(fmt, out=...) for every format on the first --small items' snapshot and on all
                 --n (the snapshot of the small size is a second snapshot made of the first rows);
     and reports imagettes/s, the export/bare time ratio, and the child's peak RSS (VmHWM) next to its RSS
     after Django and the export module were imported (what the export itself adds);
  4. informational: the zip download of the largest STAC export streamed to nowhere (MB/s, peak RSS);
  5. PASS when every export of --n runs at >= --target imagettes/s and every peak RSS stays under --max-rss MB,
     and the peak at --n is within 25 MB of the peak at --small (memory does not grow with the size).

Run from the repository root:  .venv/bin/python bench/bench_export.py [--n 20000] [--small 5000] [--side 64]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
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
    pin_process,
    single_thread_env,
    verdict,
)

single_thread_env()

FORMATS = ("imagefolder", "csv", "stac")


def rss_mb() -> float:
    """This process's peak RSS (VmHWM) in MB. Not ru_maxrss: Linux carries that across exec from the parent,
    so a child would report the parent's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the child: one measured export ---------------------------------------------------------------------------
def child(args: argparse.Namespace) -> None:
    pin_process({args.cpu})
    django_setup()
    from django.conf import settings

    from training.models import Export, SnapshotItem
    from training.services import export as export_service

    if args.child == "bare":
        import numpy as np

        paths = list(SnapshotItem.objects.filter(snapshot_id=args.snapshot).order_by("imagette_id")
                     .values_list("imagette__data", flat=True).iterator(chunk_size=2000))
        out = Path(args.out)
        out.mkdir()
        before = rss_mb()
        t0 = time.perf_counter()
        media = Path(settings.MEDIA_ROOT)
        for i, rel in enumerate(paths):
            (out / f"{i}.raw").write_bytes(np.load(media / rel).astype(np.float32).tobytes())
        seconds = time.perf_counter() - t0
        print(json.dumps({"seconds": seconds, "items": len(paths), "rss_before": before, "rss_peak": rss_mb()}))
        return
    if args.child == "zip":
        export = Export.objects.get(pk=args.export)
        before = rss_mb()
        t0 = time.perf_counter()
        size = sum(len(chunk) for chunk in export_service.export_zip_chunks(export))
        seconds = time.perf_counter() - t0
        print(json.dumps({"seconds": seconds, "bytes": size, "rss_before": before, "rss_peak": rss_mb()}))
        return
    before = rss_mb()
    t0 = time.perf_counter()
    export = export_service.export_create(fmt=args.child, out=args.out, snapshot_id=args.snapshot)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "items": export.items, "files": export.files, "bytes": export.size_bytes,
                      "export": export.pk, "rss_before": before, "rss_peak": rss_mb()}))


def run_child(what: str, *, cpu: int, **extra) -> dict:
    cmd = [sys.executable, __file__, "--child", what, "--cpu", str(cpu)]
    for key, value in extra.items():
        cmd += [f"--{key}", str(value)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
    if done.returncode != 0:
        raise RuntimeError(f"child {what} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the data -------------------------------------------------------------------------------------------------
def make_data(n: int, side: int, media: Path) -> None:
    """n imagette rows with settled labels and their .npy files (float16 dB), bulk-created."""
    import io
    from datetime import UTC, datetime, timedelta

    import numpy as np

    from annotations.models import Imagette

    rng = np.random.default_rng(0)
    base = rng.normal(-18, 3, size=(side, side)).astype(np.float16)
    start = datetime(2016, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        digest = f"{i:064x}"
        rel = f"imagettes/{digest[-2:]}/{digest}.npy"
        path = media / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.save(buffer, np.roll(base, i % side, axis=0), allow_pickle=False)
        path.write_bytes(buffer.getvalue())
        lat, lon = -60 + (i % 120), -170 + (i * 7 % 340)
        mask = 1 << (i % 10) | (1 << ((i + 4) % 10) if i % 9 == 0 else 0)
        consensus = i % 3 == 0
        rows.append(Imagette(
            key=f"bench/{i}.tif", content_hash=digest, source_product=f"S1A_WV_SLC__1SSV_{i // 40:06d}.SAFE",
            source_path=f"/bench/{i}.tif", source_format="geotiff", swath="WV1" if i % 2 else "WV2", polarisation="VV",
            acquisition_time=start + timedelta(minutes=i), center_lat=lat + 0.1, center_lon=lon + 0.1,
            incidence_angle=23.0 + (i % 2) * 13, pixel_spacing=5.0,
            footprint={"type": "Polygon", "coordinates": [[[lon, lat], [lon + 0.2, lat], [lon + 0.2, lat + 0.2],
                                                           [lon, lat + 0.2], [lon, lat]]]},
            min_lat=lat, max_lat=lat + 0.2, min_lon=lon, max_lon=lon + 0.2, width=side, height=side, is_db=True,
            data=rel, preview=rel.replace(".npy", ".png"), queue_state="settled" if not consensus else "complete",
            label_mask=mask, label_source="consensus" if consensus else "imported",
            label_agreement=0.6 + (i % 5) / 10 if consensus else None,
        ))
        if len(rows) == 2000:
            Imagette.objects.bulk_create(rows)
            rows = []
    Imagette.objects.bulk_create(rows)


def snapshot_of_first(n_small: int, big_snapshot):
    """A second snapshot holding the first n_small items of the big one (same splits)."""
    from training.models import Snapshot, SnapshotItem

    small = Snapshot.objects.create(kind="imagettes", number=big_snapshot.number + 1, seed=big_snapshot.seed,
                                    fractions=big_snapshot.fractions,
                                    agreement_threshold=big_snapshot.agreement_threshold, size=n_small,
                                    note="bench: the first rows")
    items = SnapshotItem.objects.filter(snapshot=big_snapshot).order_by("imagette_id")[:n_small]
    SnapshotItem.objects.bulk_create([
        SnapshotItem(snapshot=small, imagette_id=i.imagette_id, label_mask=i.label_mask, label_source=i.label_source,
                     agreement=i.agreement, split=i.split) for i in items], batch_size=2000)
    return small


# --- main -----------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Export throughput (target >= 500 imagettes/s) and peak memory (< 400 MB whatever the size).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000, help="imagettes in the big snapshot")
    parser.add_argument("--small", type=int, default=5_000, help="imagettes in the small snapshot (memory check)")
    parser.add_argument("--side", type=int, default=64, help="imagette side in pixels")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--postgres", action="store_true", help="a temporary PostgreSQL database instead of SQLite")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--cpu", type=int, default=0, help="the core the measured children are pinned to")
    parser.add_argument("--target", type=float, default=500.0, help="minimum imagettes/s for PASS")
    parser.add_argument("--max-rss", type=float, default=400.0, help="maximum peak RSS in MB for PASS")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder to look at")
    # The measured children (internal).
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--export", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    exit_on_sigterm()
    formats = [f for f in args.formats.split(",") if f]
    if not set(formats) <= set(FORMATS) or not 0 < args.small < args.n:
        parser.error("--formats must name imagefolder, csv, stac; and 0 < --small < --n")

    tmp = Path(tempfile.mkdtemp(prefix="cryolabel-bench-export-"))
    var_dir, out_dir = tmp / "var", tmp / "out"
    out_dir.mkdir()
    db_name = f"cryolabel_bench_export_{os.getpid()}"
    created_db = False
    try:
        env = {"CRYOLABEL_VAR_DIR": str(var_dir), "MEDIA_ROOT": str(var_dir / "media")}
        if args.postgres:
            env["DATABASE_URL"] = pg_create_database(args.pg_url, db_name)
            env["DATABASE_POOL_SIZE"] = "2"
            created_db = True
        clean_platform_env(**env)
        print(f"bench_export: {args.n} and {args.small} imagettes of {args.side}x{args.side} px, formats "
              f"{', '.join(formats)}; database: {'PostgreSQL ' + db_name if args.postgres else 'embedded SQLite'}")
        print(f"machine: {machine_line()}")
        django_setup()
        print(f"migrated in {migrate():.1f} s")
        t0 = time.perf_counter()
        make_data(args.n, args.side, var_dir / "media")
        from training.services.snapshots import snapshot_create

        big = snapshot_create(seed=0, note="bench")
        small = snapshot_of_first(args.small, big)
        django_close_connections()
        print(f"made {args.n} rows + .npy files and 2 snapshots in {time.perf_counter() - t0:.1f} s")

        results: dict[tuple[str, int], dict] = {}
        bare = run_child("bare", cpu=args.cpu, snapshot=big.pk, out=out_dir / "bare")
        shutil.rmtree(out_dir / "bare")
        bare_rate = bare["items"] / bare["seconds"]
        print()
        print("results (each in its own process, one core):")
        print(f"  bare    np.load + float32 bytes written  {bare['items']:6d} in {bare['seconds']:6.2f} s = "
              f"{bare_rate:7.0f} imagettes/s; peak RSS {bare['rss_peak']:.0f} MB")
        for fmt in formats:
            for snap, n in ((small, args.small), (big, args.n)):
                r = run_child(fmt, cpu=args.cpu, snapshot=snap.pk, out=out_dir / f"{fmt}-{n}")
                results[(fmt, n)] = r
                rate = r["items"] / r["seconds"]
                ratio = r["seconds"] / (bare["seconds"] * n / bare["items"])
                print(f"  export  {fmt:<11} {n:6d} imagettes in {r['seconds']:6.2f} s = {rate:7.0f} imagettes/s "
                      f"({ratio:4.2f}x bare); {r['files']} files, {r['bytes'] / 1e6:.0f} MB; peak RSS "
                      f"{r['rss_peak']:.0f} MB (after imports {r['rss_before']:.0f} MB, export +"
                      f"{r['rss_peak'] - r['rss_before']:.0f} MB)")
        if "stac" in formats:
            z = run_child("zip", cpu=args.cpu, export=results[("stac", args.n)]["export"])
            print(f"  zip     stac {args.n} streamed: {z['bytes'] / 1e6:.0f} MB in {z['seconds']:.2f} s = "
                  f"{z['bytes'] / 1e6 / z['seconds']:.0f} MB/s; peak RSS {z['rss_peak']:.0f} MB "
                  f"(+{z['rss_peak'] - z['rss_before']:.0f} MB: one chunk, and the central directory spooled past "
                  "4 MB)")
        print(f"after: {load_line()}")

        problems = []
        for fmt in formats:
            big_r, small_r = results[(fmt, args.n)], results[(fmt, args.small)]
            rate = big_r["items"] / big_r["seconds"]
            if big_r["items"] != args.n or small_r["items"] != args.small:
                problems.append(f"{fmt}: exported {big_r['items']}/{small_r['items']} items")
            if rate < args.target:
                problems.append(f"{fmt}: {rate:.0f} imagettes/s < {args.target:.0f}")
            for n, r in ((args.small, small_r), (args.n, big_r)):
                if r["rss_peak"] >= args.max_rss:
                    problems.append(f"{fmt} {n}: peak RSS {r['rss_peak']:.0f} MB >= {args.max_rss:.0f}")
            if big_r["rss_peak"] - small_r["rss_peak"] > 25:
                problems.append(f"{fmt}: peak RSS grew {big_r['rss_peak'] - small_r['rss_peak']:.0f} MB from "
                                f"{args.small} to {args.n} imagettes")
        print()
        print(f"target: >= {args.target:.0f} imagettes/s for {args.n} imagettes, peak RSS < {args.max_rss:.0f} MB "
              f"at both sizes and flat between them: {verdict(not problems)}")
        for problem in problems:
            print(f"  {problem}")
        return 0 if not problems else 1
    finally:
        django_close_connections()
        if created_db:
            pg_drop_database(args.pg_url, db_name)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
