"""Reads on imagettes, votes and labels, and on a scene's polygons."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet, prefetch_related_objects

from annotations import hooks
from annotations.consensus import annotator_accuracy
from annotations.models import Consensus, ConsensusRun, GoldLabel, Imagette, ScenePolygon, Vote
from annotations.wv_classes import WV_CLASSES, class_by_slug


def mask_to_slugs(mask: int | None) -> list[str]:
    if not mask:
        return []
    return [c.slug for c in WV_CLASSES if mask >> c.index & 1]


def slugs_to_mask(slugs) -> int:
    mask = 0
    for slug in slugs:
        mask |= 1 << class_by_slug(slug).index
    return mask


def imagette_list(*, filters: dict | None = None) -> QuerySet[Imagette]:
    """Imagettes filtered by class (settled label, else consensus), agreement, status, label source."""
    filters = filters or {}
    queryset = with_prediction_prefetch(Imagette.objects.select_related("consensus", "gold"))
    queryset = queryset.order_by("id")
    if cls := filters.get("class"):
        bit = 1 << class_by_slug(cls).index
        queryset = queryset.alias(
            settled_bit=_bitand("label_mask", bit), crowd_bit=_bitand("consensus__label_mask", bit)
        ).filter(Q(settled_bit=bit) | Q(label_mask__isnull=True, crowd_bit=bit))
    if (low := filters.get("agreement_min")) is not None:
        queryset = queryset.filter(consensus__agreement__gte=low)
    if (high := filters.get("agreement_max")) is not None:
        queryset = queryset.filter(consensus__agreement__lte=high)
    if status := filters.get("status"):
        queryset = queryset.filter(queue_state=status)
    if source := filters.get("label_source"):
        queryset = queryset.filter(label_source="" if source == "none" else source)
    if filters.get("gold") is not None:
        queryset = queryset.filter(gold__isnull=not filters["gold"])
    return queryset


def _bitand(field: str, bit: int):
    from django.db.models import F

    return F(field).bitand(bit)


def curation_queue() -> QuerySet[Consensus]:
    """Items for experts, lowest crowd agreement first; items an expert already decided go last."""
    return (
        Consensus.objects.select_related("imagette")
        .exclude(imagette__label_source=Imagette.LabelSource.EXPERT)
        .order_by("agreement", "imagette_id")
    )


def annotator_ranking() -> list[dict]:
    """Annotators ranked by their accuracy on gold items (exact match), with their vote counts."""
    from django.contrib.auth import get_user_model

    gold = dict(GoldLabel.objects.values_list("imagette_id", "label_mask"))
    gold_votes = Vote.objects.filter(imagette_id__in=list(gold)).values_list(
        "imagette_id", "annotator_id", "label_mask"
    )
    accuracy = annotator_accuracy(list(gold_votes), gold) if gold else {}
    counts = dict(Vote.objects.values("annotator_id").annotate(n=Count("id")).values_list("annotator_id", "n"))
    names = dict(get_user_model().objects.filter(pk__in=list(counts)).values_list("pk", "username"))
    rows = []
    for annotator_id, n_votes in counts.items():
        stats = accuracy.get(annotator_id)
        rows.append({
            "annotator": names.get(annotator_id, str(annotator_id)), "votes": n_votes,
            "gold_votes": stats[0] if stats else 0,
            "gold_accuracy": round(stats[1], 4) if stats else None,
            "gold_jaccard": round(stats[2], 4) if stats else None,
        })
    rows.sort(key=lambda r: (r["gold_accuracy"] is None, -(r["gold_accuracy"] or 0), -r["votes"]))
    return rows


def overview() -> dict:
    items = Imagette.objects.aggregate(
        total=Count("id"),
        open=Count("id", filter=Q(queue_state=Imagette.QueueState.OPEN)),
        complete=Count("id", filter=Q(queue_state=Imagette.QueueState.COMPLETE)),
        settled=Count("id", filter=~Q(label_source="")),
        imported=Count("id", filter=Q(label_source=Imagette.LabelSource.IMPORTED)),
        expert=Count("id", filter=Q(label_source=Imagette.LabelSource.EXPERT)),
        consensus=Count("id", filter=Q(label_source=Imagette.LabelSource.CONSENSUS)),
    )
    distribution = {}
    for c in WV_CLASSES:
        bit = 1 << c.index
        distribution[c.slug] = {
            "settled": Imagette.objects.alias(b=_bitand("label_mask", bit)).filter(b=bit).count(),
            "consensus": Consensus.objects.alias(b=_bitand("label_mask", bit)).filter(b=bit).count(),
        }
    last = ConsensusRun.objects.order_by("-created_at", "-id").first()
    return {
        "imagettes": items,
        "votes": Vote.objects.count(),
        "gold_items": GoldLabel.objects.count(),
        "class_distribution": distribution,
        "agreement_per_class": last.alpha_per_class if last else {},
        "consensus_method": last.method if last else None,
        "consensus_at": last.created_at.isoformat() if last else None,
        "annotators": annotator_ranking(),
        "classes": [{"slug": c.slug, "name": c.name, "color": c.color, "key": c.key} for c in WV_CLASSES],
    }


def active_prediction_prefetch():
    """The Prefetch of each imagette's current prediction by the active model into `active_predictions` (a list
    of 0 or 1): one query for a whole page, never one per item. None when no prediction layer is installed
    (inference provides it: annotations.hooks)."""
    return hooks.prediction_prefetch()


def with_prediction_prefetch(queryset: QuerySet[Imagette]) -> QuerySet[Imagette]:
    """The queryset with the active prediction prefetched (see active_prediction_prefetch), where there is one."""
    prefetch = active_prediction_prefetch()
    return queryset.prefetch_related(prefetch) if prefetch is not None else queryset


def with_active_prediction(items: list[Imagette]) -> list[Imagette]:
    """The same imagettes, their active prediction attached (see active_prediction_prefetch)."""
    prefetch = active_prediction_prefetch()
    if prefetch is None:
        for item in items:
            item.active_predictions = []
    else:
        prefetch_related_objects(items, prefetch)
    return items


def polygon_feature(polygon: ScenePolygon) -> dict:
    """A scene polygon as the map draws it: a GeoJSON Feature in lon/lat with its label, SIC, stage, source and
    version (the API and the /ws/scenes/<id>/ socket send the same; `deleted` only on the socket)."""
    return {
        "type": "Feature", "id": polygon.pk, "geometry": polygon.geometry_lonlat,
        "properties": {"label": polygon.label, "sic": polygon.sic, "stage": polygon.stage, "source": polygon.source,
                       "version": polygon.version, "author": polygon.author.username if polygon.author else None,
                       "chart": polygon.chart_id, "area_m2": polygon.area_m2,
                       "updated_at": polygon.updated_at.isoformat()},
    }


def scene_polygons_changed(scene_id: int, since) -> list[ScenePolygon]:
    """The scene's polygons created, edited or deleted at or after `since` (deleted ones included: a soft delete
    bumps updated_at), oldest change first."""
    return list(ScenePolygon.objects.filter(scene_id=scene_id, updated_at__gte=since).select_related("author")
                .order_by("updated_at", "pk"))
