"""Reads for the map of detections: every imagette as a point at its centre, with its predicted or curated class.

Built for tens of thousands of points: `values_list` into parallel arrays (no model instance or serializer per
row), and the density bins counted by the database (GROUP BY floor(lat / cell), floor(lon / cell)).

Sources: `predicted` is the active classifier's current prediction; `curated` is the settled label (imported, crowd
consensus, expert decision or accepted prediction); `any` is the curated label where there is one, else the
prediction. Confidence is the prediction's; `min_confidence` filters predicted points only (a curated label was
decided by people, and carries its crowd agreement instead, null for imported or expert labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Count, F, IntegerField, Q, QuerySet, Value
from django.db.models.functions import Floor, TruncMonth

from annotations.models import GoldLabel, Imagette
from annotations.wv_classes import WV_CLASSES
from inference.models import Prediction
from training.services.registry import active_version
from training.specs import IMAGETTE_NETWORK

SOURCES = ("predicted", "curated", "any")
# The `source` array's codes, in this order (also sent as `source_codes`).
SOURCE_CODES = ("curated", "predicted")
CURATED, PREDICTED = 0, 1
# Past this many points the answer is cut (and says so): the density view is the way to look at more.
MAX_POINTS = 200_000
COORD_DIGITS = 3  # ~100 m: an imagette is ~20 km wide


@dataclass(frozen=True, slots=True)
class MapFilters:
    """What the map shows. `class_mask` 0 means every class; `month` is (year, month) or None."""

    source: str = "any"
    class_mask: int = 0
    month: tuple[int, int] | None = None
    min_confidence: float | None = None
    # Annotators vote blind: items they may still be asked to vote on (open in the queue, gold) stay off their map.
    blind: bool = False


def _month_range(month: tuple[int, int]) -> tuple[datetime, datetime]:
    year, number = month
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC) if number == 12 else datetime(year, number + 1, 1, tzinfo=UTC)
    return start, end


def active_classifier():
    return active_version(IMAGETTE_NETWORK)


def _placed(queryset: QuerySet, prefix: str, filters: MapFilters) -> QuerySet:
    """Imagettes with a position, in the month asked for, and (for annotators) none they may still vote on."""
    queryset = queryset.filter(**{f"{prefix}center_lat__isnull": False, f"{prefix}center_lon__isnull": False})
    if filters.month:
        start, end = _month_range(filters.month)
        queryset = queryset.filter(**{f"{prefix}acquisition_time__gte": start, f"{prefix}acquisition_time__lt": end})
    if filters.blind:
        queryset = queryset.exclude(**{f"{prefix}queue_state": Imagette.QueueState.OPEN}).exclude(
            **{f"{prefix}id__in": GoldLabel.objects.values("imagette_id")}
        )
    return queryset


def _curated(filters: MapFilters) -> QuerySet[Imagette]:
    queryset = _placed(Imagette.objects.exclude(label_source="").filter(label_mask__isnull=False), "", filters)
    if filters.class_mask:
        queryset = queryset.alias(class_hit=F("label_mask").bitand(filters.class_mask)).filter(class_hit__gt=0)
    return queryset


def _predicted(filters: MapFilters, version):
    """The active version's current predictions (as the review queue reads them); with source `any`, only for
    items that have no curated label."""
    if version is None:
        return Prediction.objects.none()
    queryset = _placed(Prediction.objects.filter(model_version=version, is_current=True), "imagette__", filters)
    if filters.source == "any":
        queryset = queryset.filter(Q(imagette__label_source="") | Q(imagette__label_mask__isnull=True))
    if filters.min_confidence is not None:
        queryset = queryset.filter(confidence__gte=filters.min_confidence)
    if filters.class_mask:
        # A prediction with no class over its threshold still has its most probable class: the one it is drawn in.
        top1_in = [c.index for c in WV_CLASSES if filters.class_mask >> c.index & 1]
        queryset = queryset.alias(class_hit=F("label_mask").bitand(filters.class_mask)).filter(
            Q(class_hit__gt=0) | Q(label_mask=0, top1__in=top1_in)
        )
    return queryset


def _shown_classes(class_mask: int) -> list[int]:
    """For every mask, the class its point is drawn in: its lowest class among those filtered for (else its
    lowest class). A table, so 50 000 points cost one list lookup each."""
    table = []
    for mask in range(1 << len(WV_CLASSES)):
        wanted = (mask & class_mask if class_mask else mask) or mask
        table.append((wanted & -wanted).bit_length() - 1 if wanted else 0)
    return table


def map_points(*, filters: MapFilters) -> dict:
    """The points as parallel arrays: ids, lat, lon, class_index, mask, confidence, source (codes: SOURCE_CODES)."""
    version = active_classifier()
    table = _shown_classes(filters.class_mask)
    ids, lat, lon, class_index, masks, confidence, source = ([] for _ in range(7))

    def add(rows, source_code: int) -> None:
        """rows: (id, lat, lon, mask, top1 or None, confidence). Column by column: no Python work per field."""
        rows = list(rows)
        if not rows:
            return
        row_ids, row_lat, row_lon, row_masks, row_top1, row_confidence = zip(*rows, strict=True)
        ids.extend(row_ids)
        lat.extend([round(v, COORD_DIGITS) for v in row_lat])
        lon.extend([round(v, COORD_DIGITS) for v in row_lon])
        # A prediction with an empty mask is drawn in its most probable class.
        class_index.extend([table[m or (1 << t if t is not None else 0)] for m, t in zip(row_masks, row_top1,
                                                                                          strict=True)])
        masks.extend(row_masks)
        confidence.extend([None if v is None else round(v, 3) for v in row_confidence])
        source.extend([source_code] * len(rows))

    if filters.source in ("curated", "any"):
        add(_curated(filters).order_by("id").values_list(
            "id", "center_lat", "center_lon", "label_mask", Value(None, output_field=IntegerField()), "label_agreement"
        )[:MAX_POINTS + 1], CURATED)
    if filters.source in ("predicted", "any") and len(ids) <= MAX_POINTS:
        add(_predicted(filters, version).order_by("imagette_id").values_list(
            "imagette_id", "imagette__center_lat", "imagette__center_lon", "label_mask", "top1", "confidence"
        )[:MAX_POINTS + 1 - len(ids)], PREDICTED)
    truncated = len(ids) > MAX_POINTS
    for column in (ids, lat, lon, class_index, masks, confidence, source):
        del column[MAX_POINTS:]
    return {
        "count": len(ids), "truncated": truncated, "source_codes": list(SOURCE_CODES),
        "model_version": version.number if version else None,
        "ids": ids, "lat": lat, "lon": lon, "class_index": class_index, "mask": masks,
        "confidence": confidence, "source": source,
    }


def _bins(queryset: QuerySet, prefix: str, cell: float) -> QuerySet:
    return (
        queryset.annotate(lat_bin=Floor(F(f"{prefix}center_lat") / cell),
                          lon_bin=Floor(F(f"{prefix}center_lon") / cell))
        .values("lat_bin", "lon_bin").annotate(n=Count("pk")).order_by().values_list("lat_bin", "lon_bin", "n")
    )


def map_density(*, filters: MapFilters, cell: float) -> dict:
    """Points counted in cells of `cell` degrees: south-west corner of each non-empty cell and its count."""
    counts: dict[tuple[int, int], int] = {}
    querysets = []
    version = active_classifier()
    if filters.source in ("curated", "any"):
        querysets.append((_curated(filters), ""))
    if filters.source in ("predicted", "any"):
        querysets.append((_predicted(filters, version), "imagette__"))
    for queryset, prefix in querysets:
        for lat_bin, lon_bin, n in _bins(queryset, prefix, cell):
            key = (int(lat_bin), int(lon_bin))
            counts[key] = counts.get(key, 0) + n
    cells = sorted(counts.items())
    return {
        "cell": cell, "total": sum(counts.values()), "max": max(counts.values(), default=0),
        "model_version": version.number if version else None,
        "lat": [round(lat_bin * cell, 6) for (lat_bin, _), _ in cells],
        "lon": [round(lon_bin * cell, 6) for (_, lon_bin), _ in cells],
        "count": [n for _, n in cells],
    }


def map_months(*, blind: bool = False) -> list[str]:
    """The months (YYYY-MM) that have imagettes with a position, for the month filter."""
    queryset = _placed(Imagette.objects.filter(acquisition_time__isnull=False), "", MapFilters(blind=blind))
    months = queryset.annotate(month=TruncMonth("acquisition_time")).values_list("month", flat=True).distinct()
    return sorted({m.strftime("%Y-%m") for m in months if m is not None})
