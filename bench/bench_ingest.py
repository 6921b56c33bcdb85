"""Ingest throughput on ONE core: synthetic WV imagettes in, Imagette rows + dB arrays + previews out.

What it does:
  1. writes --n synthetic imagettes (demo.synthetic.write_demo_imagettes, mixed layout: ~70 % in SAFE
     products, every third one zipped, ~15 % dB GeoTIFFs, ~15 % 8-bit PNGs) into a temporary folder, using every
     core (this part is not measured);
  2. migrates a fresh database: embedded SQLite in a temporary CRYOLABEL_VAR_DIR (default) or, with --postgres,
     a temporary PostgreSQL database `cryolabel_bench_ingest_<pid>` (dropped at the end);
  3. pins the process to one core (--cpu, default 0) and measures, in this order:
       bare      read_array() + preview_png() of every record: the pixel work alone, no database, no file written
                 (the records themselves are listed beforehand and that walk is timed on its own);
       platform  annotations.services.ingest.ingest_paths() on the folder: walk + metadata, sha256, pixels,
                 preview, .npy and .png written atomically under MEDIA_ROOT, one transaction per imagette;
       again     ingest_paths() on the same folder a second time: every imagette a duplicate (informational).
  4. prints imagettes/s, the platform/bare time ratio (what the bookkeeping costs) and PASS/FAIL against the
     target (>= 50 imagettes/s for the platform run), then removes everything it made.

Run from the repository root:  .venv/bin/python bench/bench_ingest.py [--n 2000] [--size 256] [--postgres]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
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

single_thread_env()  # before numpy / rasterio are imported anywhere


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Ingest throughput on one core (target >= 50 imagettes/s), against a bare read+preview "
        "baseline measured in the same run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--n", type=int, default=2000, help="imagettes to generate and ingest")
    parser.add_argument("--size", type=int, default=256, help="imagette side in pixels (multiple of 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--postgres", action="store_true",
                        help="ingest into a temporary PostgreSQL database instead of embedded SQLite")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="PostgreSQL server (no database name) for --postgres")
    parser.add_argument("--cpu", type=int, default=0, help="the one core the measured phases are pinned to")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="processes that generate the data (not measured)")
    parser.add_argument("--target", type=float, default=50.0, help="minimum imagettes/s for PASS")
    parser.add_argument("--profile", action="store_true",
                        help="also run cProfile over a third ingest (fresh rows) and print the top functions")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (and database) to look at")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    if args.n < 1:
        parser.error("--n must be at least 1")

    tmp = Path(tempfile.mkdtemp(prefix="cryolabel-bench-ingest-"))
    data_dir, var_dir = tmp / "imagettes", tmp / "var"
    db_name = f"cryolabel_bench_ingest_{os.getpid()}"
    created_db = False
    try:
        env = {"CRYOLABEL_VAR_DIR": str(var_dir), "MEDIA_ROOT": str(var_dir / "media")}
        if args.postgres:
            env["DATABASE_URL"] = pg_create_database(args.pg_url, db_name)
            env["DATABASE_POOL_SIZE"] = "2"
            created_db = True
        clean_platform_env(**env)

        print(f"bench_ingest: {args.n} imagettes of {args.size}x{args.size} px, mixed layout; "
              f"database: {'PostgreSQL ' + db_name if args.postgres else 'embedded SQLite'}")
        print(f"machine: {machine_line()}")
        gen_s = generate(data_dir, args.n, args.size, args.seed, args.jobs)
        size_mb = sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file()) / 1e6
        print(f"generated in {gen_s:.1f} s with {args.jobs} process(es): {size_mb:.0f} MB in {data_dir}")

        django_setup()
        print(f"migrated in {migrate():.1f} s")

        from annotations.models import Imagette
        from annotations.readers import IngestError, iter_records, preview_png
        from annotations.services.ingest import PREVIEW_MAX_SIDE, ingest_paths

        cpus = pin_process({args.cpu})
        print(f"pinned to CPU(s) {sorted(cpus)}")

        # --- the records (walk + SAFE manifests/annotations + GeoTIFF/PNG headers), timed on their own --------
        t0 = time.perf_counter()
        found = list(iter_records([data_dir]))
        walk_s = time.perf_counter() - t0
        records = [r for r in found if not isinstance(r, IngestError)]
        refused = [r for r in found if isinstance(r, IngestError)]
        kinds: dict[str, int] = {}
        for r in records:
            kind = "safe_zip" if r.kind == "safe" and r.source_path.lower().endswith(".zip") else r.kind
            kinds[kind] = kinds.get(kind, 0) + 1
        print(f"records: {len(records)} ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}), "
              f"{len(refused)} refused; listed in {walk_s:.2f} s")
        if refused:
            print(f"  first refusal: {refused[0].path}: {refused[0].reason}")

        # --- bare: pixels and preview only --------------------------------------------------------------------
        t0 = time.perf_counter()
        preview_bytes = 0
        for record in records:
            array = record.read_array()
            big = max(array.shape) > PREVIEW_MAX_SIDE
            preview_bytes += len(preview_png(array, size=PREVIEW_MAX_SIDE if big else None))
        bare_s = time.perf_counter() - t0

        # --- platform: ingest_paths (database time summed on the side) ----------------------------------------
        db_clock = _DbClock()
        with db_clock.installed():
            t0 = time.perf_counter()
            report = ingest_paths([data_dir])
            platform_s = time.perf_counter() - t0
        rows = Imagette.objects.count()

        # --- again: every imagette already known ------------------------------------------------------------
        t0 = time.perf_counter()
        again = ingest_paths([data_dir])
        again_s = time.perf_counter() - t0

        media = var_dir / "media"
        n_npy = sum(1 for _ in media.rglob("*.npy"))
        n_png = sum(1 for _ in media.rglob("*.png"))
        leftovers = sum(1 for _ in media.rglob(".tmp-*"))

        n = len(records)
        platform_rate = len(report.created) / platform_s if platform_s else 0.0
        bare_rate = n / bare_s if bare_s else 0.0
        ratio = platform_s / bare_s if bare_s else float("nan")
        per_item_ms = lambda s: 1000 * s / max(n, 1)  # noqa: E731
        print()
        print("results (one core):")
        print(f"  bare      read_array + preview_png   {n:6d} in {bare_s:7.2f} s  = {bare_rate:7.1f} imagettes/s "
              f"({per_item_ms(bare_s):.2f} ms each; previews {preview_bytes / max(n, 1) / 1024:.0f} KiB avg)")
        print(f"  walk      iter_records (metadata)    {n:6d} in {walk_s:7.2f} s  = "
              f"{n / walk_s if walk_s else 0:7.1f} imagettes/s ({per_item_ms(walk_s):.2f} ms each)")
        print(f"  platform  ingest_paths               {len(report.created):6d} in {platform_s:7.2f} s  = "
              f"{platform_rate:7.1f} imagettes/s ({per_item_ms(platform_s):.2f} ms each)")
        print(f"            of which database: {db_clock.queries} queries "
              f"{1000 * db_clock.query_s / max(n, 1):.2f} ms + "
              f"{db_clock.commits} commits {1000 * db_clock.commit_s / max(n, 1):.2f} ms per imagette "
              f"({db_clock.queries / max(n, 1):.1f} queries, {db_clock.commits / max(n, 1):.1f} commits each)")
        print(f"  again     ingest_paths, all known    {len(again.duplicates):6d} in {again_s:7.2f} s  = "
              f"{len(again.duplicates) / again_s if again_s else 0:7.1f} imagettes/s (duplicates skipped)")
        print(f"  platform/bare time ratio: {ratio:.2f}x  (bookkeeping beyond the pixel work: "
              f"{per_item_ms(platform_s - bare_s):.2f} ms per imagette, of which listing records "
              f"{per_item_ms(walk_s):.2f} ms)")

        problems = []
        if report.errors:
            problems.append(f"{len(report.errors)} ingest errors, e.g. {report.errors[0]}")
        if len(report.created) != n or rows != n:
            problems.append(f"created {len(report.created)} rows (table has {rows}) for {n} records")
        if len(again.created) or len(again.duplicates) != n:
            problems.append(f"re-ingest created {len(again.created)}, saw {len(again.duplicates)} duplicates")
        if n_npy != n or n_png != n or leftovers:
            problems.append(f"media holds {n_npy} .npy, {n_png} .png, {leftovers} temporary files for {n} rows")
        print(f"  check: {'OK, every record one row, one .npy and one .png' if not problems else '; '.join(problems)}")

        if args.profile:
            _profile(data_dir, Imagette)

        ok = platform_rate >= args.target and not problems
        print()
        print(f"after the run: {load_line()}")
        print(f"target: >= {args.target:g} imagettes/s on one core; measured {platform_rate:.1f} imagettes/s "
              f"(bare baseline {bare_rate:.1f}/s, ratio {ratio:.2f}x) -> {verdict(ok)}")
        return 0 if ok else 1
    finally:
        django_close_connections()
        if created_db and not args.keep:
            pg_drop_database(args.pg_url, db_name)
        if args.keep:
            print(f"kept {tmp}" + (f" and database {db_name}" if created_db else ""))
        else:
            shutil.rmtree(tmp, ignore_errors=True)


class _DbClock:
    """Counts and times the queries (execute_wrapper) and commits of the default connection."""

    def __init__(self) -> None:
        self.queries = self.commits = 0
        self.query_s = self.commit_s = 0.0

    def __call__(self, execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.query_s += time.perf_counter() - t0
            self.queries += 1

    @contextmanager
    def installed(self):
        from django.db import connection

        connection.ensure_connection()
        original = connection._commit

        def timed_commit():
            t0 = time.perf_counter()
            try:
                return original()
            finally:
                self.commit_s += time.perf_counter() - t0
                self.commits += 1

        connection._commit = timed_commit
        try:
            with connection.execute_wrapper(self):
                yield self
        finally:
            del connection._commit  # back to the class's method


def _profile(data_dir: Path, Imagette) -> None:  # noqa: N803
    """cProfile over one more full ingest (rows and files removed first, so the work is the same)."""
    import cProfile
    import io
    import pstats

    from django.conf import settings

    from annotations.services.ingest import ingest_paths

    Imagette.objects.all().delete()
    shutil.rmtree(Path(settings.MEDIA_ROOT) / "imagettes", ignore_errors=True)
    prof = cProfile.Profile()
    prof.enable()
    ingest_paths([data_dir])
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(20)
    print("\nprofile of one more ingest (by own time):")
    print("\n".join(out.getvalue().splitlines()[:45]))


if __name__ == "__main__":
    sys.exit(main())
