"""The demo's imagettes: written in the real formats, then ingested through the `ingest` command, in parallel.

Two kinds of set, as a user starting from the published dataset would have: imagettes imported with their labels
(the TenGeoP-SARwv tree, 1 000 of them so that a snapshot's 5 % test split holds 50), and imagettes in the mixed
formats (SAFE folders and zips, GeoTIFF, PNG) left unlabelled for the crowd. The imported ones are 128 px imagettes
of 256 px scenes (multilooked, see `imagette_texture`): at the light classifier's 64 px they look like the 256 px
crowd imagettes, at half the cost to make and store; people label the crowd's at full resolution.

Each set is a folder under VAR_DIR/demo with its `ground_truth.csv` (which the platform never reads); it is
written to a scratch name and renamed when whole, and marked once ingested, so an interrupted first start picks
up where it stopped and a second start does nothing. Writing a set and ingesting it are two tasks for forked
worker processes, one per usable CPU (at most 4: SQLite takes one writer at a time): the writes need no database
and run while the parent migrates; each ingest is its own Job.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from django.core.management import call_command
from django.db import connections

__all__ = ["DemoSet", "demo_data_ensure", "demo_scenes_paths", "demo_scenes_write", "demo_sets", "usable_cpus"]

INGESTED = ".ingested"
MAX_WORKERS = 4


@dataclass(frozen=True)
class DemoSet:
    name: str  # folder under the demo root
    count: int
    layout: str  # "tengeop" (imported with labels) or "mixed" (for the crowd)
    seed: int
    size: int = 256
    scene_size: int | None = None

    @property
    def cost(self) -> float:
        """Relative time to write and ingest it (for the order of the tasks: longest first)."""
        return self.count * (2.0 if self.size >= 256 else 1.0)


def demo_sets(*, labelled: int, unlabelled: int, chunk: int = 250) -> list[DemoSet]:
    """The crowd's set (`unlabelled`, mixed formats, 256 px) and the imported set (`labelled`, TenGeoP tree,
    128 px of 256 px scenes) in parts of about `chunk`, so that the parts are written and ingested in parallel."""
    sets = [DemoSet("crowd", unlabelled, "mixed", 202)] if unlabelled > 0 else []
    parts = max(1, round(labelled / chunk)) if labelled > 0 else 0
    for part in range(parts):
        count = labelled // parts + (part < labelled % parts)
        sets.append(DemoSet(f"tengeop/part-{part + 1}", count, "tengeop", 101 + part, size=128, scene_size=256))
    return sets


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def demo_data_ensure(
    *, root: Path, sets: Sequence[DemoSet], workers: int | None = None, report: Callable[[str], None] = print,
    started: Callable[[], None] | None = None, prepare: Callable[[], None] | None = None,
    ingested: Callable[[DemoSet], None] | None = None,
) -> list[Path]:
    """Write and ingest every set not ingested yet; returns the ground_truth.csv of every set. `report` gets a
    line per set done. `prepare` (e.g. the migration) runs in this process while the worker processes write the
    files, before anything is ingested; `started` is called after it, once the worker processes run (so the caller
    may start threads then: forking a process that runs threads is unsafe). `ingested(set)` is called in this
    process as each set is in, while the worker processes go on with the others."""
    todo = sorted((s for s in sets if not (root / s.name / INGESTED).exists()), key=lambda s: -s.cost)
    workers = min(workers or usable_cpus(), MAX_WORKERS, len(todo))
    # Forked workers start at once with everything imported; fork is safe on Linux only (macOS frameworks are not).
    if workers > 1 and sys.platform.startswith("linux"):
        _close_connections()
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                 initializer=_forget_parent_connections) as pool:
            # Writing needs no database: it runs while this process migrates. Each set's ingest goes to the pool
            # once its files are whole and the schema is there, in the sets' order (the longest first).
            writes = [pool.submit(demo_set_write, root=root, demo_set=s) for s in todo]
            try:
                if prepare is not None:
                    prepare()
                if started is not None:
                    started()
                ingests = {}
                for demo_set, written in zip(todo, writes, strict=True):
                    written.result()
                    ingests[pool.submit(demo_set_ingest, root=root, demo_set=demo_set)] = demo_set
                for future in as_completed(ingests):
                    report(future.result())
                    if ingested is not None:
                        ingested(ingests[future])
            except BaseException:  # an error, Ctrl-C: nothing more is written or ingested
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    else:
        if prepare is not None:
            prepare()
        if started is not None:
            started()
        for demo_set in todo:
            demo_set_write(root=root, demo_set=demo_set)
            report(demo_set_ingest(root=root, demo_set=demo_set))
            if ingested is not None:
                ingested(demo_set)
    return [root / s.name / "ground_truth.csv" for s in sets]


def _close_connections() -> None:
    """A forked worker must share no connection with its parent: each opens its own. A PostgreSQL pool keeps its
    connections (and threads) open after close(), so the pool goes too; it comes back on the next query."""
    for connection in connections.all(initialized_only=True):
        connection.close()
        # Only a pool that exists: the `pool` property would open one (and its connecting threads) to close it.
        if connection.alias in getattr(connection, "_connection_pools", {}):
            connection.close_pool()


# What a forked worker inherited from its parent and must neither use nor let go: freeing a libpq connection
# sends the server a Terminate over the socket the parent still uses.
_INHERITED: list[object] = []


def _forget_parent_connections() -> None:
    """In a forked worker: drop (without closing) any connection or pool the parent still had at the fork (another
    thread of the parent may have opened one after _close_connections), so this process opens its own."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            _INHERITED.append(connection.connection)
            connection.connection = None
        pools = getattr(type(connection), "_connection_pools", None)
        if pools:
            _INHERITED.append(dict(pools))
            pools.clear()


def demo_set_write(*, root: Path, demo_set: DemoSet) -> None:
    """Write one set's files, unless they are there, whole (written to a scratch name, renamed when done)."""
    from demo.synthetic import write_demo_imagettes

    folder = root / demo_set.name
    if (folder / "ground_truth.csv").exists():
        return
    scratch = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)  # a set half written by an interrupted start
    write_demo_imagettes(scratch, demo_set.count, seed=demo_set.seed, layout=demo_set.layout,
                         size=demo_set.size, scene_size=demo_set.scene_size)
    scratch.rename(folder)


def demo_set_ingest(*, root: Path, demo_set: DemoSet) -> str:
    """Ingest one written set and mark it ingested; returns what the ingest said."""
    folder = root / demo_set.name
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("ingest", str(folder), stdout=out, stderr=err)
    except SystemExit as exc:  # `ingest` exits 1 when it refused a file: demo files never should be
        raise RuntimeError(f"ingest of {folder} refused files:\n{err.getvalue()}") from exc
    (folder / INGESTED).touch()
    summary = out.getvalue().strip().splitlines()[-1]
    return f"{demo_set.name}: {demo_set.count} imagettes ({demo_set.layout}, {demo_set.size} px); {summary}"


DEMO_SCENE_SIZE = 2000  # px; ~4 s of ingest each on one core, done by the worker after the platform is up


DEMO_TRACKS = 4


def demo_scenes_paths(root: Path) -> tuple[Path, Path, Path]:
    """Where `demo_scenes_write` puts the scenes, their chart and the tracks."""
    from demo.synthetic.ice_chart import CHART_NAME

    return root / "scenes", root / "charts" / CHART_NAME, root / "tracks"


def demo_scenes_write(*, root: Path, count: int, size: int = DEMO_SCENE_SIZE,
                      tracks: int = DEMO_TRACKS) -> tuple[Path, Path, Path | None]:
    """The demo's EW scenes (`root/scenes/`, same bytes every time), the synthetic ice chart of them
    (`root/charts/`) and `tracks` SARAL/AltiKa passes crossing them (`root/tracks/`, ~0.5 s each); written once.
    Returns (scenes folder, chart, tracks folder or None)."""
    from demo.synthetic import write_demo_scenes
    from demo.synthetic.altimetry import write_demo_tracks
    from demo.synthetic.ice_chart import write_demo_chart

    scenes, chart, track_folder = demo_scenes_paths(root)
    if not (scenes / ".truth" / "scenes.json").exists():  # written last: a set cut short is written again
        write_demo_scenes(root, count, seed=0, size=size)
    if not chart.exists():
        write_demo_chart(scenes, chart)
    if tracks and not (track_folder / ".truth" / "tracks.json").exists():  # likewise
        shutil.rmtree(track_folder, ignore_errors=True)
        write_demo_tracks(root, tracks, seed=0, scenes=count, scene_size=size)
    return scenes, chart, track_folder if tracks else None
