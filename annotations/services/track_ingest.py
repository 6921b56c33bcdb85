"""A track read from its file (annotations.readers.altimetry) becomes a Track: its arrays (time, nadir, waveforms,
the classic features, surface type) written to a folder of their own under MEDIA_ROOT/tracks/ first, the row last.
A refused or failed ingest leaves neither row nor folder; the same product (key) again is a no-op (None).

The row's geometry is the ground track for the map, decimated to at most MAX_VERTICES vertices, in lon/lat; a
track that crosses the antimeridian is split there into a MultiLineString (a LineString would run round the globe
the other way), and its bounding box then spans all longitudes.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction

from annotations.models import Track
from annotations.readers.altimetry import TrackProduct
from annotations.readers.base import IngestError
from annotations.track_arrays import arrays_write
from annotations.waveforms import waveform_features

__all__ = ["MAX_VERTICES", "track_geometry", "track_ingest"]

log = logging.getLogger(__name__)
MAX_VERTICES = 1000
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def track_geometry(lon: np.ndarray, lat: np.ndarray, *, max_vertices: int = MAX_VERTICES) -> dict:
    """The ground track as GeoJSON: a LineString of at most `max_vertices` vertices (evenly spaced waveforms, the
    first and last kept), or a MultiLineString split where it crosses the antimeridian."""
    n = len(lon)
    idx = np.unique(np.rint(np.linspace(0, n - 1, min(n, max_vertices))).astype(np.int64))
    x, y = np.round(np.asarray(lon)[idx], 5), np.round(np.asarray(lat)[idx], 5)
    jumps = np.flatnonzero(np.abs(np.diff(x)) > 180.0) + 1
    parts = [list(zip(px.tolist(), py.tolist(), strict=True)) for px, py in
             zip(np.split(x, jumps), np.split(y, jumps), strict=True)]
    parts = [p if len(p) > 1 else p * 2 for p in parts]  # a single vertex: a degenerate two-point line
    if len(parts) == 1:
        return {"type": "LineString", "coordinates": [list(c) for c in parts[0]]}
    return {"type": "MultiLineString", "coordinates": [[list(c) for c in p] for p in parts]}


def _bbox(lon: np.ndarray, lat: np.ndarray) -> dict:
    crosses = bool(np.any(np.abs(np.diff(lon)) > 180.0))
    return {"min_lat": float(lat.min()), "max_lat": float(lat.max()),
            "min_lon": -180.0 if crosses else float(lon.min()), "max_lon": 180.0 if crosses else float(lon.max())}


def _check_text(product: TrackProduct) -> None:
    for name in ("key", "source_format", "mission", "instrument", "mode", "band"):
        text, limit = getattr(product, name), Track._meta.get_field(name).max_length
        if len(text) > limit:
            raise IngestError(f"its {name} is {len(text)} characters long, more than the {limit} it may have "
                              f"({text[:40]!r}...)")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
            raise IngestError(f"its {name} holds control characters ({text[:40]!r})")


def track_ingest(product: TrackProduct, *, job=None) -> Track | None:
    """Ingest one track; None when a track of the same product is there already. Raises IngestError."""
    try:
        _check_text(product)
    except IngestError as exc:
        raise exc.at(product.path) from None
    if Track.objects.filter(key=product.key).exists():
        return None
    n = len(product.time)
    arrays = {"time": product.time, "lat": product.lat, "lon": product.lon, "waveforms": product.waveforms,
              "features": waveform_features(product.waveforms),
              "surface": product.surface if product.surface is not None else np.full(n, -1, np.int8)}
    media = Path(settings.MEDIA_ROOT)
    # A folder of this attempt's own: two ingests of one product at once never write over each other's files.
    folder = media / "tracks" / f"{_SAFE.sub('_', product.key)[:120]}-{secrets.token_hex(3)}"
    created = False
    try:
        size = arrays_write(folder, arrays)
        with transaction.atomic():
            track = Track.objects.create(
                key=product.key, source_path=str(product.path)[:1000], source_format=product.source_format,
                mission=product.mission, instrument=product.instrument, mode=product.mode, band=product.band,
                rate_hz=product.rate_hz, gates=product.gates, cycle=product.cycle, pass_number=product.pass_number,
                time_start=datetime.fromtimestamp(float(product.time[0]), UTC),
                time_stop=datetime.fromtimestamp(float(product.time[-1]), UTC), n_waveforms=n,
                geometry=track_geometry(product.lon, product.lat), **_bbox(product.lon, product.lat),
                data=folder.relative_to(media).as_posix(), size_bytes=size, attributes=dict(product.attributes),
                ingest_job=job,
            )
        created = True
    except IngestError:
        raise
    except IntegrityError:
        return None  # the same product ingested in parallel: theirs stays, ours goes (finally)
    except DatabaseError as exc:
        raise IngestError(f"the database refused its metadata: {str(exc).strip().splitlines()[0][:200]}",
                          product.path) from exc
    except (OSError, ValueError) as exc:
        raise IngestError(f"its arrays cannot be written: {exc}", product.path) from exc
    finally:
        if not created:
            shutil.rmtree(folder, ignore_errors=True)
    _collocate(track, job=job)
    return track


def _collocate(track: Track, *, job) -> None:
    """The automatic labels from the scenes the track crosses (annotations.services.collocation), when that
    service is there: it lands separately, and a track is ingested without it. A failing collocation never undoes
    the ingest: it can be run again on the track."""
    try:
        from annotations.services.collocation import track_collocate
    except ImportError:
        return
    try:
        track_collocate(track, job=job)
    except Exception:
        log.exception("collocation of track %s failed", track.pk)
