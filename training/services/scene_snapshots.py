"""Curated snapshots of scenes: every scene with live polygons, frozen with the revision each polygon had (geometry,
class, SIC, stage: immutable rows) and where it came from, and the scene's split; and the samples the `sic`
network trains on. Both are the scenes' parts in the kinds registry (annotations.kinds).

What a scene's label is: its polygons, drawn by people, imported from ice charts (as the AutoICE / AI4Arctic data
take their SIC from charts: kept apart by `source`, which the loss weighs), or accepted from a prediction. A split
holds whole scenes, never part of one: neighbouring patches of one scene look alike and would flatter the score.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Max, OuterRef, Subquery

from annotations.kinds import ItemKind
from annotations.models import Scene, ScenePolygon, ScenePolygonRevision
from training.contract import SampleRef
from training.models import Snapshot, SnapshotPolygon, SnapshotScene
from training.services.snapshots import SnapshotError
from training.splits import DEFAULT_FRACTIONS, grouped_stratified_split

__all__ = ["scene_snapshot_create", "scene_snapshot_latest_if_unchanged", "scene_snapshot_samples", "scene_splits"]

LABEL_BITS = {ScenePolygon.Label.ICE: 1, ScenePolygon.Label.LEAD: 2, ScenePolygon.Label.WATER: 4}


def scene_splits(scenes: list[tuple[int, int]], *, fractions: dict, seed: int) -> dict[int, str]:
    """(scene id, mask of the classes it holds) -> scene id -> split, stratified by class (training.splits), with
    at least one training scene, and one validation scene as soon as there are two scenes (a version is judged on
    its validation split)."""
    splits = grouped_stratified_split([(pk, pk, mask) for pk, mask in scenes], fractions=fractions, seed=seed)
    order = sorted(splits)
    if "train" not in splits.values():
        splits[order[0]] = "train"
    if len(order) >= 2 and "val" not in splits.values():
        spare = [pk for pk in order if splits[pk] == "test"] or [pk for pk in order if splits[pk] == "train"][1:]
        if spare:
            splits[spare[0]] = "val"
    return splits


def _live_revisions():
    """(polygon id, scene id, revision id, label, source) of every live polygon, the revision its version wrote."""
    latest = ScenePolygonRevision.objects.filter(polygon=OuterRef("pk"), version=OuterRef("version")).values("pk")
    return (ScenePolygon.objects.filter(deleted_at__isnull=True).annotate(revision_id=Subquery(latest[:1]))
            .values_list("pk", "scene_id", "revision_id", "label", "source").order_by("scene_id", "pk"))


def scene_snapshot_latest_if_unchanged() -> Snapshot | None:
    """The scenes' part "snapshot_unchanged" (annotations.kinds): the latest snapshot of scenes when the live
    polygons are still exactly those it froze (the same revisions, from the same sources), else None; an export
    of an unchanged set reuses it rather than freezing an identical one."""
    latest = Snapshot.objects.filter(kind=ItemKind.SCENES).order_by("-number").first()
    if latest is None or latest.size == 0:
        return None
    now = sorted((revision, source) for _, _, revision, _, source in _live_revisions())
    then = sorted(SnapshotPolygon.objects.filter(snapshot=latest).values_list("revision_id", "source"))
    return latest if now == then else None


@transaction.atomic
def scene_snapshot_create(*, created_by=None, seed: int = 0, fractions: dict | None = None, note: str = "",
                          agreement_threshold: float | None = None) -> Snapshot:
    """Freeze every scene with live polygons. `agreement_threshold` is the imagettes' (crowd consensus): polygons
    have no crowd, so it is recorded as 0."""
    fractions = dict(fractions or DEFAULT_FRACTIONS)
    rows = list(_live_revisions())
    if not rows:
        raise SnapshotError("no scene has polygons yet: draw some on the polar map or import an ice chart")
    missing = [pk for pk, _, revision, *_ in rows if revision is None]
    if missing:  # every change writes its revision in the same transaction: a gap is a bug, not a user's doing
        raise SnapshotError(f"polygons without the revision of their version: {missing[:5]}")
    masks: dict[int, int] = {}
    per_scene: Counter = Counter()
    for _, scene_id, _, label, _ in rows:
        masks[scene_id] = masks.get(scene_id, 0) | LABEL_BITS.get(label, 1)
        per_scene[scene_id] += 1
    splits = scene_splits(sorted(masks.items()), fractions=fractions, seed=seed)
    number = (Snapshot.objects.select_for_update().aggregate(n=Max("number"))["n"] or 0) + 1
    per_label: dict[str, Counter] = {}
    for _, scene_id, _, label, _ in rows:
        per_label.setdefault(label, Counter())[splits[scene_id]] += 1
    snapshot = Snapshot.objects.create(
        number=number, kind=ItemKind.SCENES, seed=seed, fractions=fractions, agreement_threshold=0.0,
        size=len(masks),
        counts={"per_class": {label: dict(c) for label, c in per_label.items()},
                "per_split": dict(Counter(splits.values())),
                "per_source": dict(Counter(source for *_, source in rows)), "polygons": len(rows)},
        created_by=created_by, note=note,
    )
    SnapshotScene.objects.bulk_create([SnapshotScene(snapshot=snapshot, scene_id=scene_id, split=split,
                                                     polygons=per_scene[scene_id])
                                       for scene_id, split in sorted(splits.items())])
    SnapshotPolygon.objects.bulk_create(
        [SnapshotPolygon(snapshot=snapshot, scene_id=scene_id, revision_id=revision, source=source)
         for _, scene_id, revision, _, source in rows], batch_size=2000)
    return snapshot


def scene_snapshot_samples(snapshot: Snapshot) -> list[SampleRef]:
    """One sample per scene: its COG (path), the frozen polygons in the scene's grid (target), what the network
    needs of the grid (meta: bands, pixel size, size, transform, CRS); the scene's key as its group."""
    media = Path(settings.MEDIA_ROOT)
    polygons: dict[int, list[dict]] = {}
    frozen = (SnapshotPolygon.objects.filter(snapshot=snapshot).select_related("revision")
              .order_by("revision__polygon_id"))
    for row in frozen:
        rev = row.revision
        polygons.setdefault(row.scene_id, []).append(
            {"geometry": rev.geometry, "label": rev.label, "sic": rev.sic, "source": row.source})
    samples = []
    for entry in SnapshotScene.objects.filter(snapshot=snapshot).select_related("scene").order_by("scene_id"):
        scene: Scene = entry.scene
        samples.append(SampleRef(
            item_id=scene.pk, split=entry.split, target={"polygons": polygons.get(scene.pk, [])},
            path=str(media / scene.cog), kind=ItemKind.SCENES, group=scene.key, meta=scene_meta(scene)))
    return samples


def scene_meta(scene: Scene) -> dict:
    """What a network of scenes needs to know of a scene's grid, from its row (no file opened)."""
    minx, _, _, maxy = scene.bounds
    res = scene.pixel_size
    return {"bands": list(scene.bands), "pixel_size": res, "width": scene.width, "height": scene.height,
            "transform": [res, 0.0, minx, 0.0, -res, maxy], "crs": scene.crs}
