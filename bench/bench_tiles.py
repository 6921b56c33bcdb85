"""Map tiles of a 10 000 x 10 000 Extra Wide scene through the platform's HTTP endpoint against rio-tiler in
process, in the same run; and the ingest of that scene (time and peak memory).

What it does:
  1. writes one synthetic EW GRDM product of --size x --size pixels (demo.synthetic.write_demo_scenes: the real
     SAFE layout, uint16 HH and HV) into a temporary folder (timed, for information);
  2. migrates an embedded SQLite database in that folder and ingests the product with
     annotations.services.ingest.ingest_paths in a child process of its own (spawned: a fresh interpreter that
     sets Django up and does nothing else), which reports its wall time and its peak resident memory,
     getrusage(RUSAGE_SELF).ru_maxrss (the kernel's high-water mark of the child's RSS, /proc VmHWM), read once
     after Django's set-up and the imports and once after the ingest: the second is the figure the target is about;
  3. creates an annotator and its API token and starts Daphne on that database (embedded mode: SQLite, the
     filesystem broker, channels in memory; DEBUG=0; CRYOLABEL_API_USER_RATE raised: one user asks for
     hundreds of tiles back to back);
  4. picks tiles of the scene on its polar grid (annotations.tiles): --per-zoom tiles at each of --zooms, low zooms
     (whole-scene views, read from the COG's overviews) and 10-12 (40, 20 and 10 m/px: full resolution), each
     inside the swath (at low zoom: touching it), each in every --layers (hh: one band; rgb: HH, HV and their
     ratio), PNG;
  5. warms both sides up (rio-tiler's imports, the first opens) on zoom-9 tiles, not measured;
  6. serves every tile both ways, alternated, and checks that both ways gave the same bytes:
       served   GET /api/v1/scenes/<id>/tiles/z/x/y.png?layer=... over one keep-alive HTTP/1.1 connection, token
                auth: routing, middleware, authentication, permission, rate limit, the Scene row, the ETag (a
                stat of the COG), the tile, the response;
       direct   in this process, what the endpoint's work comes down to: rio_tiler.io.Reader(cog, dataset=...,
                tms=...).tile() then annotations.tiles.render_tile() - a Reader per tile on the COG kept open (as
                the endpoint keeps its COGs open per thread), the same stretch and PNG encoder;
     in four passes over the same tiles:
       bursts      --burst tiles over HTTP in a row, then the same tiles direct (the next group direct first), as
                   a map asks for the tiles of its view: THE VERDICT'S PASS;
       opened      the same against rio-tiler opening the COG for each tile (as TiTiler does): what keeping it
                   open gains;
       one by one  alternated tile by tile: the server idles while this process works, and each request pays for
                   waking it (measured below with 304s after 25 ms idle);
       in process  Django's test client instead of HTTP (no server, no socket): what the platform's own code costs;
  7. sends every tile again with its ETag in If-None-Match: 304 without reading the COG (cached), back to back and
     after 25 ms idle; and GET /api/v1/scenes/<id>/ (JSON), the platform's floor for any request;
  8. prints the medians per zoom and overall and the ratios served/direct, PASS/FAIL against the targets (bursts:
     ratio of the medians <= 1.15; 304 median at most a quarter of the direct one; ingest peak RSS < 2 GiB; the
     same bytes every way), then removes Daphne and the temporary folder.

Run from the repository root:  .venv/bin/python bench/bench_tiles.py [--size 10000] [--per-zoom 16]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import resource
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    Server,
    clean_platform_env,
    django_close_connections,
    django_setup,
    exit_on_sigterm,
    load_line,
    machine_line,
    migrate,
    start_daphne,
    verdict,
)

MIB = 1024 * 1024


def _rss_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def _ingest_child(product: str, conn) -> None:
    """In a spawned child: set Django up, ingest the product, send back (seconds, peak before, peak after, error)."""
    try:
        django_setup()
        from annotations.services.ingest import ingest_paths

        before = _rss_peak_mib()
        t0 = time.perf_counter()
        report = ingest_paths([Path(product)])
        seconds = time.perf_counter() - t0
        conn.send((seconds, before, _rss_peak_mib(), [str(e) for e in report.errors]))
    except BaseException as exc:  # reported to the parent, never lost
        conn.send((0.0, 0.0, _rss_peak_mib(), [f"{type(exc).__name__}: {exc}"]))
    finally:
        conn.close()


def ingest_in_child(product: Path) -> tuple[float, float, float, list[str]]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_ingest_child, args=(str(product), child))
    process.start()
    child.close()
    try:
        result = parent.recv()
    except EOFError:
        process.join()
        result = (0.0, 0.0, 0.0, [f"the ingest process died (exit code {process.exitcode})"])
    process.join()
    return result


def gdal_cache_line() -> str:
    value = os.environ.get("GDAL_CACHEMAX")
    if value:
        return f"GDAL_CACHEMAX={value}"
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / MIB
    return f"GDAL_CACHEMAX unset: GDAL's default, 5 % of RAM = {0.05 * total:.0f} MiB"


# ================================================================================================================
# Tiles
# ================================================================================================================
def pick_tiles(scene, zooms: list[int], per_zoom: int, seed: int) -> list[tuple[int, int, int]]:
    """Tiles inside the swath (whole-scene zooms: touching it), `per_zoom` a zoom (repeated where fewer exist)."""
    from shapely.geometry import box

    from annotations.services.scene_polygons import footprint_in
    from annotations.tiles import tile_bounds

    swath = footprint_in(scene.crs, scene.footprint)
    rng = random.Random(seed)
    picked = []
    for z in zooms:
        side = 2 * 5_242_880 / 2**z
        xmin, ymin, xmax, ymax = swath.bounds
        cols = range(int((xmin + 5_242_880) // side), int((xmax + 5_242_880) // side) + 1)
        rows = range(int((5_242_880 - ymax) // side), int((5_242_880 - ymin) // side) + 1)
        inside = [(z, x, y) for x in cols for y in rows if swath.contains(box(*tile_bounds(z, x, y)))]
        touching = [(z, x, y) for x in cols for y in rows if swath.intersects(box(*tile_bounds(z, x, y)))]
        candidates = inside if len(inside) >= per_zoom else touching
        rng.shuffle(candidates)
        picked += [candidates[i % len(candidates)] for i in range(per_zoom)]
    return picked


class Client:
    """One keep-alive HTTP/1.1 connection (blocking http.client: cheap, the GIL is released on I/O)."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Token {token}"}

    def get(self, path: str, etag: str | None = None) -> tuple[int, bytes, str | None, float]:
        headers = dict(self.headers, **({"If-None-Match": etag} if etag else {}))
        t0 = time.perf_counter()
        self.conn.request("GET", path, headers=headers)
        response = self.conn.getresponse()
        body = response.read()
        return response.status, body, response.getheader("ETag"), time.perf_counter() - t0


_KEPT: dict = {}  # path -> the dataset rio-tiler reads from when "kept open"


def direct_tile(path: str, crs: str, z: int, x: int, y: int, params, kept: bool = True) -> tuple[bytes, float]:
    """rio-tiler in this process: with the COG kept open between tiles (`kept`, what the endpoint does since it
    keeps its COGs open per thread), or opened for each tile (as TiTiler does)."""
    import rasterio
    from rio_tiler.io import Reader

    from annotations.tiles import polar_tms, render_tile

    t0 = time.perf_counter()
    dataset = (_KEPT.get(path) or _KEPT.setdefault(path, rasterio.open(path))) if kept else None
    with Reader(path, dataset=dataset, tms=polar_tms()[crs]) as src:
        image = render_tile(src.tile(x, y, z, indexes=params.indexes), params)
    return image, time.perf_counter() - t0


class InProcess:
    """The endpoint without the HTTP server: Django's test client in this process (routing, middleware, DRF, the
    view), for the share of the overhead that is the platform's own code."""

    def __init__(self, token: str) -> None:
        from django.test import Client as DjangoClient

        self.client = DjangoClient(HTTP_AUTHORIZATION=f"Token {token}")

    def get(self, path: str, etag: str | None = None) -> tuple[int, bytes, str | None, float]:
        extra = {"HTTP_IF_NONE_MATCH": etag} if etag else {}
        t0 = time.perf_counter()
        response = self.client.get(path, **extra)
        return response.status_code, response.content, response.get("ETag"), time.perf_counter() - t0


def median_ms(values: list[float]) -> float:
    return 1000 * statistics.median(values) if values else float("nan")


@dataclass
class Pass:
    name: str
    served: dict[int, list[float]] = field(default_factory=dict)  # per zoom, seconds
    direct: dict[int, list[float]] = field(default_factory=dict)
    etags: list[str | None] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def ratio(self) -> float:
        return median_ms(sum(self.served.values(), [])) / median_ms(sum(self.direct.values(), []))


def run_pass(name: str, client, jobs, url, direct, burst: int) -> Pass:
    """Each job through `client` and directly, alternated: in groups of `burst` jobs, one side's group then the
    other's, the side that goes first swapping from one group to the next (burst 1: tile by tile)."""
    result = Pass(name)
    for start in range(0, len(jobs), burst):
        group = jobs[start:start + burst]
        served, images = {}, {}
        sides = ("served", "direct") if (start // burst) % 2 == 0 else ("direct", "served")
        for side in sides:
            for job in group:
                if side == "served":
                    served[job] = client.get(url(*job))
                else:
                    images[job] = direct(*job)
        for job in group:
            status, body, etag, seconds = served[job]
            image, direct_s = images[job]
            result.served.setdefault(job[0], []).append(seconds)
            result.direct.setdefault(job[0], []).append(direct_s)
            result.etags.append(etag)
            if status != 200 or body != image:
                result.problems.append(f"{name} {job}: {status}, {len(body)} bytes against {len(image)} direct")
    return result


def print_pass(result: Pass, zooms: list[int]) -> None:
    print(f"{result.name}:")
    print(f"  {'zoom':>4} {'m/px':>6} {'tiles':>6} {'served p50':>11} {'direct p50':>11} {'ratio':>6}")
    for z in zooms:
        h, d = median_ms(result.served[z]), median_ms(result.direct[z])
        print(f"  {z:>4} {40 * 2 ** (10 - z):>6g} {len(result.served[z]):>6} {h:>8.1f} ms {d:>8.1f} ms {h / d:>6.2f}")
    served, direct = sum(result.served.values(), []), sum(result.direct.values(), [])
    print(f"  {'all':>4} {'':>6} {len(served):>6} {median_ms(served):>8.1f} ms {median_ms(direct):>8.1f} ms "
          f"{result.ratio():>6.2f}")


# ================================================================================================================
# Main
# ================================================================================================================
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Tiles of a 10 000 x 10 000 scene through the platform's HTTP endpoint (Daphne) against "
        "rio-tiler in process, in the same run, and the ingest of that scene. Targets: http/direct median ratio "
        "<= 1.15, cached (304) median <= 1/4 of the direct one, ingest peak RSS < 2 GiB.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--size", type=int, default=10_000, help="the product's side, pixels")
    parser.add_argument("--zooms", default="3,5,7,10,11,12", help="comma-separated tile zooms")
    parser.add_argument("--per-zoom", type=int, default=16, help="tiles per zoom (each in every layer)")
    parser.add_argument("--layers", default="hh,rgb", help="comma-separated layers")
    parser.add_argument("--burst", type=int, default=8, help="tiles a side in a row, in the verdict's pass")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--target", type=float, default=1.15, help="maximum http/direct ratio of the medians")
    parser.add_argument("--max-rss-mib", type=float, default=2048, help="maximum ingest peak RSS, MiB")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    zooms = [int(z) for z in args.zooms.split(",")]
    layers = args.layers.split(",")

    tmp = Path(tempfile.mkdtemp(prefix="cryolabel-bench-tiles-"))
    server: Server | None = None
    t_all = time.perf_counter()
    try:
        var = tmp / "var"
        # The per-user rate limit raised (here and for Daphne): the bench's one user asks for tiles back to back.
        clean_platform_env(CRYOLABEL_VAR_DIR=str(var), MEDIA_ROOT=str(var / "media"),
                           CRYOLABEL_API_USER_RATE="1000000/minute")
        print(f"bench_tiles: one {args.size} x {args.size} EW product; zooms {zooms}, {args.per_zoom} tiles each, "
              f"layers {layers}; embedded mode (SQLite, filesystem broker)")
        print(f"machine: {machine_line()}")
        django_setup()
        from demo.synthetic import write_demo_scenes

        t0 = time.perf_counter()
        [product] = write_demo_scenes(tmp / "products", 1, seed=args.seed, size=args.size)
        print(f"product written in {time.perf_counter() - t0:.1f} s "
              f"({sum(f.stat().st_size for f in product.rglob('*') if f.is_file()) / MIB:.0f} MiB)")
        print(f"database migrated in {migrate():.1f} s")

        print(f"ingest in a child process ({gdal_cache_line()}) ...", flush=True)
        seconds, rss_before, rss_peak, errors = ingest_in_child(product)
        if errors:
            print(f"ingest FAILED: {errors}")
            return 1
        from annotations.models import Scene
        from annotations.tiles import cog_path, tile_params

        scene = Scene.objects.get()
        cog = cog_path(scene)
        print(f"ingest: {seconds:.1f} s; peak RSS {rss_peak:.0f} MiB ({rss_peak * MIB / 1e9:.2f} GB; "
              f"{rss_before:.0f} MiB after Django's set-up, before the ingest); COG {scene.width} x {scene.height} "
              f"px at {scene.pixel_size:g} m, {cog.stat().st_size / MIB:.0f} MiB")

        from accounts.roles import Role
        from accounts.services import token_for, user_create

        token = token_for(user=user_create(username=f"bench{os.getpid()}", password=secrets.token_urlsafe(12),
                                           role=Role.ANNOTATOR))
        django_close_connections()
        env = {**os.environ, "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1", "PYTHONUNBUFFERED": "1",
               "LOG_LEVEL": "WARNING"}
        server = start_daphne(env, tmp)
        print(f"daphne on 127.0.0.1:{server.port}, DEBUG=0, embedded mode")

        client = Client(server.port, token)
        tiles = pick_tiles(scene, zooms, args.per_zoom, args.seed)
        jobs = [(z, x, y, layer) for (z, x, y) in tiles for layer in layers]
        params = {layer: tile_params(scene, layer=layer) for layer in layers}

        def url(z, x, y, layer):
            return f"/api/v1/scenes/{scene.pk}/tiles/{z}/{x}/{y}.png?layer={layer}"

        def direct(z, x, y, layer):
            return direct_tile(str(cog), scene.crs, z, x, y, params[layer])

        def direct_opened(z, x, y, layer):
            return direct_tile(str(cog), scene.crs, z, x, y, params[layer], kept=False)

        for z, x, y in pick_tiles(scene, [9], 4, args.seed + 1):  # warm-up: imports, first opens
            for layer in layers:
                client.get(url(z, x, y, layer))
                direct(z, x, y, layer)
        bursts = run_pass(f"HTTP in bursts of {args.burst} (as a map asks for its tiles), alternated with direct",
                          client, jobs, url, direct, args.burst)
        per_tile = run_pass(f"HTTP in bursts of {args.burst}, against rio-tiler opening the COG for every tile "
                            "(as TiTiler does)", client, jobs, url, direct_opened, args.burst)
        one_by_one = run_pass("HTTP one tile at a time, alternated tile by tile with direct (the server idles "
                              "while this process works)", client, jobs, url, direct, 1)
        cached, cached_idle = [], []
        for job, etag in zip(jobs, bursts.etags, strict=True):
            code, body, _, took = client.get(url(*job), etag=etag)
            cached.append(took)
            if code != 304 or body:
                bursts.problems.append(f"{job}: {code} with If-None-Match, not 304")
        for job, etag in zip(jobs[:40], bursts.etags, strict=False):
            time.sleep(0.025)  # a tile's time: the server's threads go idle, as they do while a tile is read
            cached_idle.append(client.get(url(*job), etag=etag)[3])
        floor = [client.get(f"/api/v1/scenes/{scene.pk}/")[3] for _ in range(len(jobs))]
        proc = Path(f"/proc/{server.procs[0].pid}/status").read_text()
        daphne_hwm = next(int(ln.split()[1]) for ln in proc.splitlines() if ln.startswith("VmHWM")) / 1024
        client.conn.close()
        server.stop()
        log = server.log_tail(200_000)
        problems = bursts.problems + per_tile.problems + one_by_one.problems
        if "Traceback" in log:
            problems.append(f"daphne logged {log.count('Traceback')} tracebacks; last lines:\n{log[-1500:]}")
        in_process = run_pass("in process, no HTTP server (Django's test client: routing, middleware, DRF, the "
                              "view), alternated tile by tile with direct", InProcess(token), jobs, url, direct, 1)
        problems += in_process.problems
        print()
        for result in (bursts, per_tile, one_by_one, in_process):
            print_pass(result, zooms)
        d = median_ms(sum(bursts.direct.values(), []))
        c, ci, f = median_ms(cached), median_ms(cached_idle), median_ms(floor)
        print(f"cached (If-None-Match, 304): p50 {c:.1f} ms back to back ({c / d:.2f} of a direct tile), {ci:.1f} ms "
              f"after 25 ms idle; the platform's floor, GET /api/v1/scenes/<id>/ (JSON): p50 {f:.1f} ms")
        print(f"daphne peak RSS after serving them: {daphne_hwm:.0f} MiB")
        for problem in problems[:5]:
            print(f"  PROBLEM: {problem}")
        ratio = bursts.ratio()
        ok_ratio, ok_cached, ok_rss = ratio <= args.target, c <= d / 4, rss_peak < args.max_rss_mib
        print(f"after the run: {load_line()}")
        print(json.dumps({"ingest_s": round(seconds, 1), "ingest_peak_rss_mib": round(rss_peak),
                          "ratio_bursts": round(ratio, 3), "ratio_bursts_vs_opened": round(per_tile.ratio(), 3),
                          "ratio_one_by_one": round(one_by_one.ratio(), 3),
                          "ratio_in_process": round(in_process.ratio(), 3), "direct_p50_ms": round(d, 2),
                          "cached_p50_ms": round(c, 2)}))
        print(f"targets: http/direct (bursts) {ratio:.2f} <= {args.target:g} {verdict(ok_ratio)} (against a COG "
              f"opened per tile {per_tile.ratio():.2f}; one by one {one_by_one.ratio():.2f}); 304 {c:.1f} ms <= "
              f"{d / 4:.1f} ms {verdict(ok_cached)}; ingest peak "
              f"{rss_peak:.0f} < {args.max_rss_mib:.0f} MiB {verdict(ok_rss)}; same bytes every way "
              f"{verdict(not problems)}")
        ok = ok_ratio and ok_cached and ok_rss and not problems
        print(f"-> {verdict(ok)}  (whole bench {time.perf_counter() - t_all:.0f} s)")
        return 0 if ok else 1
    finally:
        if server is not None:
            server.stop()
        django_close_connections()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
