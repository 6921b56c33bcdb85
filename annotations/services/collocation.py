"""Automatic lead labels of a track from the scenes seen near it in time and space (issue 15, point 3).

For each waveform whose nadir lies in the footprint of a scene acquired within the time window:

- the distance (metres, in the scene's polar grid) from the nadir to the closest live lead polygon of that scene
  (0 inside one; NaN where the scene has no lead polygon);
- the SIC under the nadir: the live ice (its SIC) or water (0 %) polygon containing it, else the scene's current
  `sic` prediction sampled at the nadir, else unknown. The prediction's COG holds SIC and its uncertainty only
  (no class band), so it is a source of SIC, never of leads: a low-SIC pixel may be a lead or open water;
- the label: lead (1) closer than the threshold to a lead, not lead (0) on ice (SIC > 50 %) with no lead that
  near, unknown (-1) elsewhere (no scene, open water or low SIC without a lead, SIC unknown).

Stored as the track's `auto_*` arrays (annotations.track_arrays) and its TrackCollocation row, replaced as a whole
each time it runs. The lead polygons change as people draw: nothing re-runs it on its own; the `collocate`
command and POST /api/v1/tracks/<id>/collocate/ do.
"""

from __future__ import annotations

import logging
import math
import numbers
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from django.conf import settings
from django.db import transaction
from pyproj import Transformer
from shapely.geometry import shape

from annotations.models import Scene, ScenePolygon, Track, TrackCollocation
from annotations.services.scene_polygons import footprint_in
from annotations.track_arrays import AUTO_ARRAYS, arrays_read, arrays_write, track_folder

__all__ = ["MAX_THRESHOLD_M", "MAX_WINDOW_S", "CollocationError", "collocation_summary", "track_collocate"]

log = logging.getLogger(__name__)

LEAD, NOT_LEAD, UNKNOWN = 1, 0, -1
ICE_SIC = 50.0  # % above which a nadir with no lead near is "not lead"
MAX_WINDOW_S = 3 * 86400.0  # beyond a few days the ice has drifted kilometres: a scene says nothing of the track
MAX_THRESHOLD_M = 10_000.0  # a lead "closer than 10 km" is no longer a lead under the footprint
CHUNK = 512  # pixels a side of the prediction windows read along the track
# Which polygon gives the SIC where several cover a nadir: a person's over an accepted prediction's over a chart's,
# then the newest.
SOURCE_RANK = {ScenePolygon.Source.PERSON: 2, ScenePolygon.Source.PREDICTION: 1, ScenePolygon.Source.ICE_CHART: 0}


class CollocationError(ValueError):
    """A window or threshold that cannot be used; the message says why (answered 400)."""


def _positive(name: str, value: Any, upper: float, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or not 0 < value <= upper:
        raise CollocationError(f"{name} must be a number above 0 and at most {upper:g} {unit}, not {str(value)[:40]!r}")
    return float(value)


def _window_s(window_s: Any) -> float:
    if window_s is None:
        window_s = float(getattr(settings, "CRYOLABEL_COLLOCATION_WINDOW_H", 3.0)) * 3600.0
    return _positive("window_s", window_s, MAX_WINDOW_S, "s")


def _threshold_m(threshold_m: Any) -> float:
    if threshold_m is None:
        threshold_m = float(getattr(settings, "CRYOLABEL_LEAD_DISTANCE_M", 200.0))
    return _positive("threshold_m", threshold_m, MAX_THRESHOLD_M, "m")


@lru_cache(maxsize=8)
def _to_grid(crs: str) -> Transformer:
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


@dataclass
class _SceneResult:
    scene: Scene
    covered: np.ndarray  # bool [N]: nadir in the footprint and within the window
    lag: np.ndarray  # float64 [N]: waveform time minus the scene's mid-acquisition time, s
    distance: np.ndarray  # float32 [N]: to the closest live lead, m (NaN: no lead polygon)
    sic: np.ndarray  # float32 [N]: % (NaN: unknown)
    notes: list[str] = field(default_factory=list)


def _candidate_scenes(track: Track, window_s: float):
    """Scenes within the window of the track's time span whose bounding box meets the track's (an index look-up;
    the footprint test follows in shapely). A box crossing the antimeridian is stored as min/max of its ring's
    longitudes, a superset: it never excludes a scene it should keep."""
    window = timedelta(seconds=window_s)
    return (Scene.objects.filter(acquisition_start__lte=track.time_stop + window,
                                 acquisition_stop__gte=track.time_start - window,
                                 min_lat__lte=track.max_lat, max_lat__gte=track.min_lat,
                                 min_lon__lte=track.max_lon, max_lon__gte=track.min_lon)
            .only("pk", "key", "crs", "footprint", "acquisition_start", "acquisition_stop").order_by("pk"))


def _polygons(scene: Scene) -> tuple[list, list, np.ndarray, np.ndarray]:
    """The scene's live polygons in its grid: (leads, ice/water polygons, their SIC, their rank for overlaps)."""
    leads, cover, sic, rank = [], [], [], []
    rows = (ScenePolygon.objects.filter(scene=scene, deleted_at__isnull=True)
            .values_list("pk", "label", "sic", "source", "geometry").order_by("pk"))
    for pk, label, value, source, geometry in rows:
        try:
            geom = shape(geometry)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError, shapely.errors.GEOSException):
            log.warning("polygon %s of scene %s has an unreadable geometry: skipped", pk, scene.pk)
            continue
        if label == ScenePolygon.Label.LEAD:
            leads.append(geom)
        elif label == ScenePolygon.Label.WATER or value is not None:  # ice without a SIC cannot be stored
            cover.append(geom)
            sic.append(0.0 if label == ScenePolygon.Label.WATER else float(value))
            rank.append((SOURCE_RANK.get(source, 0), pk))
    order = np.array(sorted(range(len(rank)), key=rank.__getitem__), dtype=np.int64)
    priority = np.empty(len(rank), dtype=np.int64)
    priority[order] = np.arange(len(rank))
    return leads, cover, np.asarray(sic, dtype=np.float32), priority


def _prediction_path(scene: Scene) -> Path | None:
    """The COG of the scene's current `sic` prediction, if the inference app is there and one exists. Reached
    through the reverse relation inference declares (annotations never imports inference)."""
    related = getattr(scene, "predictions", None)
    if related is None:
        return None
    row = related.filter(is_current=True).order_by("-created_at", "-pk").values_list("cog", flat=True).first()
    if not row:
        return None
    path = Path(settings.MEDIA_ROOT) / row
    return path if path.is_file() else None


def _sample_sic(path: Path, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Band 1 (SIC, %) of a prediction COG at grid points, NaN off the grid or where it has no value. Reads one
    CHUNK-square window per chunk the points fall in (a track crossing a 400 km scene touches a few dozen), never
    the whole raster."""
    import rasterio
    from rasterio.windows import Window

    out = np.full(len(x), np.nan, dtype=np.float32)
    if not len(x):
        return out
    with rasterio.open(path) as src:
        inv = ~src.transform
        cols = np.floor(inv.a * x + inv.b * y + inv.c).astype(np.int64)
        rows = np.floor(inv.d * x + inv.e * y + inv.f).astype(np.int64)
        inside = (cols >= 0) & (rows >= 0) & (cols < src.width) & (rows < src.height)
        idx = np.flatnonzero(inside)
        chunk = rows[idx] // CHUNK * (src.width // CHUNK + 1) + cols[idx] // CHUNK
        for key in np.unique(chunk):
            sel = idx[chunk == key]
            r0, c0 = int(rows[sel[0]] // CHUNK * CHUNK), int(cols[sel[0]] // CHUNK * CHUNK)
            window = Window(c0, r0, min(CHUNK, src.width - c0), min(CHUNK, src.height - r0))
            data = src.read(1, window=window, masked=True)
            values = np.ma.filled(data.astype(np.float32), np.nan)[rows[sel] - r0, cols[sel] - c0]
            out[sel] = values
    out[~np.isfinite(out)] = np.nan
    return out


def _scene_result(scene: Scene, lon: np.ndarray, lat: np.ndarray, time: np.ndarray,
                  window_s: float) -> _SceneResult | None:
    """What one scene says of each waveform; None when the track does not cross its footprint within the window."""
    n = len(time)
    mid = (scene.acquisition_start.timestamp() + scene.acquisition_stop.timestamp()) / 2
    lag = time - mid
    near = np.abs(lag) <= window_s
    if not near.any():
        return None
    x, y = _to_grid(scene.crs).transform(lon, lat)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    footprint = footprint_in(scene.crs, scene.footprint)
    covered = near & np.isfinite(x) & np.isfinite(y)
    covered[covered] = shapely.contains_xy(footprint, x[covered], y[covered])
    if not covered.any():
        return None
    idx = np.flatnonzero(covered)
    points = shapely.points(x[idx], y[idx])
    distance = np.full(n, np.nan, dtype=np.float32)
    sic = np.full(n, np.nan, dtype=np.float32)
    leads, cover, cover_sic, priority = _polygons(scene)
    if leads:
        _, d = shapely.STRtree(leads).query_nearest(points, return_distance=True, all_matches=False)
        distance[idx] = d  # one nearest lead per point (all_matches=False), 0 inside one
    if cover:
        pairs = shapely.STRtree(cover).query(points, predicate="intersects")  # [point, polygon] pairs
        if pairs.shape[1]:
            # Where several polygons hold a nadir, the highest priority wins: sort by it, the last write stays.
            order = np.argsort(priority[pairs[1]], kind="stable")
            sic[idx[pairs[0][order]]] = cover_sic[pairs[1][order]]
    notes = []
    missing = idx[np.isnan(sic[idx])]
    if len(missing):
        path = _prediction_path(scene)
        if path is not None:
            try:
                sic[missing] = _sample_sic(path, x[missing], y[missing])
            except Exception as exc:  # a broken prediction file leaves the SIC unknown, not the collocation failed
                log.warning("scene %s: prediction %s unreadable: %s", scene.pk, path, exc)
                notes.append(f"prediction unreadable: {str(exc)[:120]}")
    return _SceneResult(scene, covered, lag, distance, sic, notes)


def _labels(distance: np.ndarray, sic: np.ndarray, threshold_m: float) -> np.ndarray:
    label = np.full(len(distance), UNKNOWN, dtype=np.int8)
    with np.errstate(invalid="ignore"):  # NaN compares False: no lead / SIC unknown
        lead = distance < threshold_m
        label[(sic > ICE_SIC) & ~lead] = NOT_LEAD
    label[lead] = LEAD
    return label


@dataclass
class _Computed:
    arrays: dict[str, np.ndarray]
    scenes: list[dict[str, Any]]
    counts: dict[str, int]


def _compute(track: Track, window_s: float, threshold_m: float) -> _Computed:
    folder = track_folder(track)
    arrays = arrays_read(folder, ("time", "lat", "lon"))
    time = np.asarray(arrays["time"], dtype=np.float64)
    lat = np.asarray(arrays["lat"], dtype=np.float64)
    lon = np.asarray(arrays["lon"], dtype=np.float64)
    n = len(time)
    if len(lat) != n or len(lon) != n:
        raise CollocationError(f"track {track.pk}: its time, lat and lon arrays differ in length")
    label = np.full(n, UNKNOWN, dtype=np.int8)
    distance = np.full(n, np.nan, dtype=np.float32)
    scene_id = np.zeros(n, dtype=np.int32)
    best_lag = np.full(n, np.inf)
    results = [r for r in (_scene_result(s, lon, lat, time, window_s) for s in _candidate_scenes(track, window_s))
               if r is not None]
    # Several scenes covering a waveform: the one closest in time wins (the ice moved least in between); on a tie,
    # the first one (lowest id), as the loop keeps a strictly smaller lag only.
    for r in results:
        lag = np.where(r.covered, np.abs(r.lag), np.inf)
        wins = lag < best_lag
        best_lag[wins] = lag[wins]
        scene_id[wins] = r.scene.pk
        distance[wins] = r.distance[wins]
        label[wins] = _labels(r.distance[wins], r.sic[wins], threshold_m)
    scenes = []
    for r in results:
        own = scene_id == r.scene.pk
        lags = r.lag[r.covered]
        entry = {"scene": r.scene.pk, "key": r.scene.key, "lag_s": round(float(np.median(lags)), 1),
                 "waveforms": int(own.sum()), "lead": int((label[own] == LEAD).sum())}
        if r.notes:
            entry["notes"] = r.notes
        scenes.append(entry)
    counts = {"lead": int((label == LEAD).sum()), "not_lead": int((label == NOT_LEAD).sum()),
              "unknown": int((label == UNKNOWN).sum())}
    return _Computed({"auto_label": label, "auto_distance": distance, "auto_scene": scene_id}, scenes, counts)


def track_collocate(track: Track, *, window_s: float | None = None, threshold_m: float | None = None,
                    job=None) -> TrackCollocation:
    """Collocate `track` with the scenes near it (window_s: seconds either side, default the setting
    CRYOLABEL_COLLOCATION_WINDOW_H; threshold_m: lead distance, default CRYOLABEL_LEAD_DISTANCE_M), write its
    auto_* arrays and its TrackCollocation row (version bumped when it existed). CollocationError for a bad
    window or threshold (nothing changed); FileNotFoundError when the track's arrays are gone."""
    window_s, threshold_m = _window_s(window_s), _threshold_m(threshold_m)
    with transaction.atomic():
        # Two runs on one track at once (a rerun while the ingest's runs) take turns on the track's row: each
        # computes, writes the files and the row under the lock, so the last to commit wins both and they agree.
        # (SQLite's IMMEDIATE transactions serialise them the same way.) Computing under the lock also means the
        # last run reads the polygons as they were when it got the lock.
        track = Track.objects.select_for_update().get(pk=track.pk)
        computed = _compute(track, window_s, threshold_m)
        folder = track_folder(track)
        previous = _previous_arrays(folder)
        arrays_write(folder, computed.arrays, kinds=AUTO_ARRAYS, replace=True)
        try:
            with transaction.atomic():
                old = TrackCollocation.objects.filter(track=track).values_list("version", flat=True).first()
                collocation, _ = TrackCollocation.objects.update_or_create(
                    track=track, defaults={"scenes": computed.scenes, "window_s": window_s,
                                           "threshold_m": threshold_m, "counts": computed.counts,
                                           "version": (old or 0) + 1, "job": job})
        except Exception:
            _restore(folder, previous)  # the row stayed as it was: so do its files
            raise
    log.info("track %s collocated: %s with %d scene(s)", track.pk, computed.counts, len(computed.scenes))
    return collocation


def _previous_arrays(folder: Path) -> dict[str, np.ndarray] | None:
    try:
        return arrays_read(folder, AUTO_ARRAYS, mmap=False)
    except FileNotFoundError:
        return None


def _restore(folder: Path, previous: dict[str, np.ndarray] | None) -> None:
    try:
        if previous is None:
            for name in AUTO_ARRAYS:
                (folder / f"{name}.npy").unlink(missing_ok=True)
        else:
            arrays_write(folder, previous, kinds=AUTO_ARRAYS, replace=True)
    except OSError:
        log.exception("could not put back the auto arrays of %s", folder)


def collocation_summary(collocation: TrackCollocation) -> dict[str, Any]:
    """What the API and the command show of a collocation."""
    return {"track": collocation.track_id, "version": collocation.version, "scenes": collocation.scenes,
            "window_s": collocation.window_s, "threshold_m": collocation.threshold_m, "counts": collocation.counts,
            "job": collocation.job_id, "updated_at": collocation.updated_at.isoformat()}
