"""Altimetry tracks over REST (the track pages draw with these):

    GET    /api/v1/tracks/                         the tracks, newest first; ?bbox=&start=&end=&mission=, and
                                                   ?shape=geojson for a FeatureCollection of ground tracks (the map)
    GET    /api/v1/tracks/<id>/                    one track: metadata, the ground track, its collocation (the scenes
                                                   it crosses, with their tile URLs) and its label counts
    GET    /api/v1/tracks/<id>/waveforms.bin       the waveform viewer's data, binary (format below)
    GET    /api/v1/tracks/<id>/labels/             effective labels (base64 int8) and the live ranges
    POST   /api/v1/tracks/<id>/labels/             {start, stop, label} -> 201 with the range
    DELETE /api/v1/tracks/<id>/labels/<range_id>/  undo a range (its author, or an expert or admin)

Whoever may label may read and mark. A refused range answers 400 with the reason and changes nothing; undoing a
range undone already 409; undoing someone else's range as an annotator 403. The work is in
annotations.services.track_labels (marks, undo, effective labels); the views only check the input.

waveforms.bin, version 1 (all numbers little-endian):

    bytes 0-3    b"CRYW"
    bytes 4-7    uint32: H, the length of the JSON header
    bytes 8-8+H  the header, UTF-8 JSON, padded with spaces so that the first section starts at a multiple of 8
    then         the sections the header lists in "sections": {name, dtype, shape, offset (from byte 0), bytes},
                 each starting at a multiple of 8 (a Float32Array can view them in place):
                   time       float32 [N]     seconds since the header's "time0" (seconds since 1970, UTC)
                   lat, lon   float32 [N]     the nadir, degrees
                   peakiness  float32 [N]     pulse peakiness
                   image      uint8   [N, G]  echo power in dB, row i = waveform i, scaled linearly from the header's
                                              db_min (0) to db_max (255): dB = db_min + v * (db_max - db_min) / 255
                   label      int8    [N]     effective label: 1 lead, 0 not lead, -1 unknown
                   source     int8    [N]     where it came from: the header's "source_codes"

A 10 000-waveform pass of 128 gates is about 1.4 MB. The answer carries an ETag made from the arrays' identity
(size and mtime of each file) and the effective labels, and `Cache-Control: private, no-cache`: the browser keeps
it and asks again with If-None-Match, a 304 when neither the arrays nor the labels changed (bench/
bench_track_waveforms.py times it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import struct

import numpy as np
from django.db.models import Count, Q
from django.http import Http404, HttpResponse, HttpResponseNotModified
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from annotations.models import Scene, Track, TrackLabelRange
from annotations.models.track import LABEL_CODES, TrackLabel
from annotations.services.track_labels import (
    SOURCE_CODES,
    TrackLabelError,
    TrackRangeConflict,
    TrackRangeForbidden,
    track_labels,
    track_range_mark,
    track_range_undo,
)
from annotations.tiles import native_zoom
from annotations.track_arrays import track_folder
from eoplatform.pagination import PAGE_PARAMETERS, LimitOffsetPagination
from eoplatform.untrusted import MAX_ID, is_row_id

log = logging.getLogger(__name__)

CanLabel = HasCapability("label")
MAGIC = b"CRYW"
FORMAT_VERSION = 1
MAX_INDEX = 2**31 - 1
DB_SPAN = (10.0, 80.0)  # the image's dB window spans at least / at most this much below the track's brightest echo
# The files whose identity (size, mtime) goes into the ETag: what the payload is made of.
PAYLOAD_FILES = ("time", "lat", "lon", "waveforms", "features", "auto_label", "auto_distance")


# --- input ---------------------------------------------------------------------------------------------------------
class TrackFilter(serializers.Serializer):
    bbox = serializers.CharField(required=False, max_length=200,
                                 help_text="min_lon,min_lat,max_lon,max_lat: tracks whose bounding box meets it")
    start = serializers.DateTimeField(required=False, help_text="tracks that end at or after this time")
    end = serializers.DateTimeField(required=False, help_text="tracks that start at or before this time")
    mission = serializers.CharField(required=False, max_length=20)
    # Not `format`: DRF reads ?format= as the renderer to use.
    shape = serializers.ChoiceField(choices=["list", "geojson"], required=False, default="list",
                                    help_text="geojson: a FeatureCollection of the ground tracks (the map)")

    def validate_bbox(self, value: str) -> list[float]:
        try:
            numbers = [float(v) for v in value.split(",")]
        except ValueError:
            raise serializers.ValidationError("four numbers: min_lon,min_lat,max_lon,max_lat") from None
        if len(numbers) != 4 or not all(np.isfinite(numbers)):
            raise serializers.ValidationError("four numbers: min_lon,min_lat,max_lon,max_lat")
        min_lon, min_lat, max_lon, max_lat = numbers
        if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
            raise serializers.ValidationError("min below max, longitudes within +-180, latitudes within +-90")
        return numbers

    def validate_mission(self, value: str) -> str:
        if "\x00" in value:
            raise serializers.ValidationError("no NUL characters")
        return value


class TrackRangeIn(serializers.Serializer):
    start = serializers.IntegerField(min_value=0, max_value=MAX_INDEX, help_text="The first waveform (from 0).")
    stop = serializers.IntegerField(min_value=1, max_value=MAX_INDEX, help_text="One past the last waveform.")
    label = serializers.ChoiceField(choices=TrackLabel.choices)


# --- output --------------------------------------------------------------------------------------------------------
def _pole(track: Track) -> str:
    return "south" if (track.min_lat + track.max_lat) < 0 else "north"


class TrackSerializer(serializers.ModelSerializer):
    bbox = serializers.SerializerMethodField(help_text="[min_lon, min_lat, max_lon, max_lat]")
    pole = serializers.SerializerMethodField(help_text="north or south: which polar grid shows it")
    collocated = serializers.SerializerMethodField(help_text="How many scenes the collocation found (0: none yet).")

    class Meta:
        model = Track
        fields = ["id", "key", "mission", "instrument", "mode", "band", "rate_hz", "gates", "cycle", "pass_number",
                  "time_start", "time_stop", "n_waveforms", "bbox", "pole", "collocated"]

    def get_bbox(self, track: Track) -> list[float]:
        return [track.min_lon, track.min_lat, track.max_lon, track.max_lat]

    def get_pole(self, track: Track) -> str:
        return _pole(track)

    def get_collocated(self, track: Track) -> int:
        return len(track.collocation.scenes or []) if _has_collocation(track) else 0


def _has_collocation(track: Track) -> bool:
    try:
        return track.collocation is not None
    except Track.collocation.RelatedObjectDoesNotExist:
        return False


def _scene_summary(scene: Scene, lag_s) -> dict:
    return {"id": scene.pk, "key": scene.key, "lag_s": lag_s, "crs": scene.crs, "bounds": scene.bounds,
            "footprint": scene.footprint, "native_zoom": native_zoom(scene.pixel_size),
            "acquisition_start": scene.acquisition_start,
            "tiles": f"/api/v1/scenes/{scene.pk}/tiles/{{z}}/{{x}}/{{y}}.png"}


def track_detail(track: Track) -> dict:
    data = dict(TrackSerializer(track).data)
    data["geometry"] = track.geometry
    data["collocation"] = None
    if _has_collocation(track):
        c = track.collocation
        entries = [e for e in (c.scenes or []) if isinstance(e, dict) and isinstance(e.get("scene"), int)]
        scenes = Scene.objects.in_bulk([e["scene"] for e in entries])
        data["collocation"] = {
            "scenes": [_scene_summary(scenes[e["scene"]], e.get("lag_s")) for e in entries if e["scene"] in scenes],
            "window_s": c.window_s, "threshold_m": c.threshold_m, "counts": c.counts, "version": c.version,
            "updated_at": c.updated_at}
    ranges = TrackLabelRange.objects.filter(track=track)
    data["ranges"] = ranges.aggregate(live=Count("id", filter=Q(deleted_at__isnull=True)),
                                      undone=Count("id", filter=Q(deleted_at__isnull=False)))
    data["waveforms"] = f"/api/v1/tracks/{track.pk}/waveforms.bin"
    data["labels"] = f"/api/v1/tracks/{track.pk}/labels/"
    return data


_WHEN = serializers.DateTimeField()


def range_out(r: TrackLabelRange) -> dict:
    """A range as JSON-ready data (plain types: the track's websocket sends it as it is)."""
    return {"id": r.pk, "start": r.start, "stop": r.stop, "label": r.label, "source": r.source,
            "author": r.author.username if r.author_id and r.author else None, "author_id": r.author_id,
            "created_at": _WHEN.to_representation(r.created_at),
            "deleted_at": _WHEN.to_representation(r.deleted_at) if r.deleted_at else None}


def _track_or_404(pk: int, *fields: str) -> Track:
    query = Track.objects.all()
    if fields:
        query = query.only(*fields)
    track = query.filter(pk=pk).first() if is_row_id(pk) else None
    if track is None:
        raise Http404("no such track")
    return track


# --- the waveforms' binary payload ---------------------------------------------------------------------------------
def _file_identity(track: Track) -> list:
    folder = track_folder(track)
    out = []
    for name in PAYLOAD_FILES:
        try:
            st = (folder / f"{name}.npy").stat()
            out.append([name, st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([name, None, None])
    return out


def waveforms_etag(track: Track, label: np.ndarray, source: np.ndarray) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps([FORMAT_VERSION, track.pk, track.n_waveforms, track.gates, str(track.data),
                              _file_identity(track)]).encode())
    digest.update(label.tobytes())
    digest.update(source.tobytes())
    return f'"{digest.hexdigest()}"'


def db_window(waveforms: np.ndarray) -> tuple[float, float]:
    """The image's dB window: the track's brightest echo at the top; at the bottom the 1st percentile of a sample of
    waveforms (the noise floor), kept 10 to 80 dB below the top."""
    top = float(np.nanmax(waveforms)) if waveforms.size else 0.0
    if not np.isfinite(top) or top <= 0:
        return -1.0, 0.0
    db_max = 10 * np.log10(top)
    step = max(1, len(waveforms) // 256)
    sample = np.asarray(waveforms[::step], dtype=np.float32).ravel()
    sample = sample[np.isfinite(sample) & (sample > 0)]
    floor = 10 * np.log10(np.percentile(sample, 1)) if sample.size else db_max - DB_SPAN[1]
    db_min = min(max(floor, db_max - DB_SPAN[1]), db_max - DB_SPAN[0])
    return float(round(db_min, 3)), float(round(db_max, 3))


def waveform_image(waveforms: np.ndarray, db_min: float, db_max: float) -> np.ndarray:
    """uint8 [N, G]: each power in dB, scaled from db_min (0) to db_max (255); NaN and non-positive powers are 0."""
    scale = 255.0 / (db_max - db_min)
    work = np.fmax(np.asarray(waveforms, dtype=np.float32), np.float32(10 ** (db_min / 10)))  # NaN -> the floor
    np.log10(work, out=work)
    work *= np.float32(10 * scale)
    work -= np.float32(db_min * scale - 0.5)  # +0.5: rounded, not truncated
    np.clip(work, 0, 255, out=work)
    return work.astype(np.uint8)


def waveforms_payload(track: Track, label: np.ndarray, source: np.ndarray, last_range: int) -> bytes:
    """The viewer's binary (format in the module's docstring)."""
    folder = track_folder(track)
    n = int(track.n_waveforms)
    arrays = {}
    for name in ("time", "lat", "lon", "waveforms", "features"):
        file = folder / f"{name}.npy"
        if not file.is_file():
            raise FileNotFoundError(f"the track has no {name} array")
        arrays[name] = np.load(file, mmap_mode="r", allow_pickle=False)
    waveforms = arrays["waveforms"][:n]
    time = np.asarray(arrays["time"][:n], dtype=np.float64)
    time0 = float(time[0]) if n else 0.0
    db_min, db_max = db_window(waveforms)
    sections = [
        ("time", (time - time0).astype("<f4")),
        ("lat", np.asarray(arrays["lat"][:n], dtype="<f4")),
        ("lon", np.asarray(arrays["lon"][:n], dtype="<f4")),
        ("peakiness", np.ascontiguousarray(arrays["features"][:n, 0], dtype="<f4")),
        ("image", waveform_image(waveforms, db_min, db_max)),
        ("label", np.ascontiguousarray(label, dtype=np.int8)),
        ("source", np.ascontiguousarray(source, dtype=np.int8)),
    ]
    header = {"format": "cryolabel-waveforms", "version": FORMAT_VERSION, "track": track.pk, "n": n,
              "gates": int(waveforms.shape[1]) if waveforms.ndim == 2 else int(track.gates), "db_min": db_min,
              "db_max": db_max, "time0": time0, "rate_hz": track.rate_hz, "last_range": last_range,
              "label_codes": {str(k): v for k, v in LABEL_CODES.items()},
              "source_codes": {str(k): v for k, v in SOURCE_CODES.items()}, "sections": []}
    # The header's length decides the offsets, which are in the header: sized with room for the offsets' digits.
    total = sum(a.nbytes + 8 for _, a in sections)
    for name, a in sections:
        header["sections"].append({"name": name, "dtype": str(a.dtype.name), "shape": list(a.shape),
                                   "offset": total, "bytes": int(a.nbytes)})
    text = json.dumps(header, separators=(",", ":")).encode()
    start = _align(8 + len(text) + 64)
    offset = start
    for entry, (_, a) in zip(header["sections"], sections, strict=True):
        entry["offset"] = offset
        offset = _align(offset + a.nbytes)
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) <= start - 8, "the header outgrew the room made for it"
    text += b" " * (start - 8 - len(text))
    out = bytearray(offset)
    out[0:4] = MAGIC
    out[4:8] = struct.pack("<I", len(text))
    out[8:start] = text
    for entry, (_, a) in zip(header["sections"], sections, strict=True):
        out[entry["offset"]:entry["offset"] + a.nbytes] = a.tobytes()
    return bytes(out)


def _align(n: int) -> int:
    return (n + 7) // 8 * 8


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)


class _JsonErrors(BaseContentNegotiation):
    """The payload is binary whatever the Accept header says: errors are JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.int8).tobytes()).decode("ascii")


# --- views ---------------------------------------------------------------------------------------------------------
class TrackListApi(APIView):
    """The tracks, newest first; filtered by bounding box, time and mission. ?shape=geojson: a FeatureCollection of
    the ground tracks (LineStrings in lon/lat) with the track's fields as properties."""

    permission_classes = [CanLabel]

    @extend_schema(parameters=[TrackFilter, *PAGE_PARAMETERS], responses=TrackSerializer(many=True))
    def get(self, request):
        filters = TrackFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        tracks = Track.objects.select_related("collocation").defer("attributes").order_by("-time_start", "-id")
        if "bbox" in f:
            min_lon, min_lat, max_lon, max_lat = f["bbox"]
            tracks = tracks.filter(max_lon__gte=min_lon, min_lon__lte=max_lon, max_lat__gte=min_lat,
                                   min_lat__lte=max_lat)
        if "start" in f:
            tracks = tracks.filter(time_stop__gte=f["start"])
        if "end" in f:
            tracks = tracks.filter(time_start__lte=f["end"])
        if f.get("mission"):
            tracks = tracks.filter(mission__iexact=f["mission"])
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(tracks, request, view=self)
        if f["shape"] != "geojson":
            return paginator.get_paginated_response(TrackSerializer(page, many=True).data)
        features = [{"type": "Feature", "id": t.pk, "geometry": t.geometry, "properties": TrackSerializer(t).data}
                    for t in page]
        return Response({"type": "FeatureCollection", "features": features, "count": paginator.count,
                         "next": paginator.get_next_link()})


class TrackDetailApi(APIView):
    permission_classes = [CanLabel]

    @extend_schema(responses={200: dict})
    def get(self, request, pk: int):
        track = _track_or_404(pk)
        return Response(track_detail(track))


class TrackWaveformsApi(APIView):
    """The waveform viewer's data as one binary answer (the format: annotations.api_tracks). ETag; 304 for a
    matching If-None-Match."""

    permission_classes = [CanLabel]
    content_negotiation_class = _JsonErrors

    @extend_schema(operation_id="tracks_waveforms_retrieve", parameters=[
        OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, description="an ETag of this payload: 304")],
        responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
                   304: OpenApiResponse(description="not modified"),
                   404: OpenApiResponse(description="no such track, or its arrays are missing")})
    def get(self, request, pk: int):
        track = _track_or_404(pk, "id", "n_waveforms", "gates", "data", "rate_hz")
        try:
            labels = track_labels(track)
            etag = waveforms_etag(track, labels.label, labels.source)
            if _matches(request.headers.get("If-None-Match"), etag):
                response = HttpResponseNotModified()
            else:
                response = HttpResponse(waveforms_payload(track, labels.label, labels.source, labels.last_range),
                                        content_type="application/octet-stream")
        except (OSError, ValueError) as error:
            log.warning("track %s: %s", pk, error)
            return Response({"detail": "the track's arrays are missing or unreadable"}, status=404)
        response["ETag"] = etag
        response["Cache-Control"] = "private, no-cache"
        return response


class TrackLabelsApi(APIView):
    permission_classes = [CanLabel]

    @extend_schema(responses={200: dict})
    def get(self, request, pk: int):
        track = _track_or_404(pk, "id", "n_waveforms", "data")
        try:
            labels = track_labels(track)
        except (OSError, ValueError) as error:
            log.warning("track %s: %s", pk, error)
            return Response({"detail": "the track's collocation arrays are unreadable"}, status=404)
        ranges = (TrackLabelRange.objects.filter(track=track, deleted_at__isnull=True).select_related("author")
                  .order_by("id"))
        return Response({
            "track": track.pk, "n": int(track.n_waveforms), "encoding": "base64 int8",
            "labels": _b64(labels.label), "sources": _b64(labels.source), "last_range": labels.last_range,
            "label_codes": {str(k): v for k, v in LABEL_CODES.items()},
            "source_codes": {str(k): v for k, v in SOURCE_CODES.items()},
            "ranges": [range_out(r) for r in ranges]})

    @extend_schema(request=TrackRangeIn, responses={201: dict, 400: dict})
    def post(self, request, pk: int):
        track = _track_or_404(pk, "id", "n_waveforms")
        data = TrackRangeIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            row = track_range_mark(track, author=request.user, **data.validated_data)
        except TrackLabelError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        row.author = request.user
        return Response(range_out(row), status=status.HTTP_201_CREATED)


class TrackLabelRangeApi(APIView):
    permission_classes = [CanLabel]

    @extend_schema(parameters=[OpenApiParameter("range_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                                                OpenApiParameter.PATH)], responses={204: None, 403: dict, 409: dict})
    def delete(self, request, pk: int, range_id: int):
        row = TrackLabelRange.objects.filter(pk=range_id, track_id=pk).first() \
            if is_row_id(pk) and is_row_id(range_id) else None
        if row is None:
            raise Http404("no such range on this track")
        try:
            track_range_undo(row, by=request.user)
        except TrackRangeForbidden as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        except TrackRangeConflict as exc:
            return Response({"detail": str(exc), "code": "conflict"}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("tracks/", TrackListApi.as_view(), name="track-list"),
    path("tracks/<int:pk>/", TrackDetailApi.as_view(), name="track-detail"),
    path("tracks/<int:pk>/waveforms.bin", TrackWaveformsApi.as_view(), name="track-waveforms"),
    path("tracks/<int:pk>/labels/", TrackLabelsApi.as_view(), name="track-labels"),
    path("tracks/<int:pk>/labels/<int:range_id>/", TrackLabelRangeApi.as_view(), name="track-label-range"),
]
