"""Whole-scene prediction of the `sic` network: overlapping patches blended into seamless SIC and uncertainty layers.

A scene is predicted in strips of patches, windows in and windows out, so memory stays flat in the scene's size:
the patches of one strip (rows [r, r + P), every column origin) are read, normalised (the network's own
`normalise_bands`), predicted in batches, and added into a rolling accumulator of P rows, each patch weighted by a
smooth window (sin², the Hann window, which is near zero at a patch's border and one at its centre); when the next
strip starts S rows lower, the S rows above it can receive nothing more: they are divided by their summed weights
and written. Patches overlap by half (S = P / 2), so every pixel away from the scene's edge is a blend of four
patches whose borders (where a convolution sees least context) weigh least: no seams. Where only one patch covers
a pixel (the scene's edges) its value is that patch's, whatever the weight. A constant scene therefore comes out
equal to the single-patch output everywhere (the network is built so that a constant patch gives a constant
output; tests check both).

The layers go to a Cloud-Optimised GeoTIFF on the scene's grid (band 1 SIC in %, band 2 uncertainty 0-1, NaN where
the scene has no data), written in a scratch file and renamed into place: a failed prediction leaves nothing.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from annotations.kinds import ItemKind
from annotations.models import Scene
from annotations.services.scene_ingest import GDAL_CACHE_BYTES
from eoplatform.threads import job_threads_plan
from inference.models import ScenePrediction
from training.contract import SampleRef
from training.models import ModelVersion

__all__ = ["blend_window", "patch_origins", "scene_predict", "scene_predictions_make_current",
           "scene_predictions_store", "scene_samples", "scene_samples_check", "scenes_to_predict"]

COG_OPTIONS = {"COMPRESS": "DEFLATE", "PREDICTOR": "3", "BLOCKSIZE": "512", "OVERVIEW_RESAMPLING": "AVERAGE",
               "BIGTIFF": "IF_SAFER"}
BATCH = 16  # patches per forward pass
OVERLAP = 0.5  # of a patch: four patches over every pixel away from the edges


def blend_window(size: int) -> np.ndarray:
    """The 2-D blending weights of a patch: sin² along each axis (the Hann window shifted half a pixel, so that no
    weight is exactly zero)."""
    ramp = np.sin(np.pi * (np.arange(size, dtype=np.float64) + 0.5) / size) ** 2
    return np.outer(ramp, ramp).astype(np.float32)


def patch_origins(length: int, patch: int, stride: int) -> list[int]:
    """Patch starts along an axis of `length` pixels: every `stride`, the last one flush with the end (a scene
    smaller than a patch: one patch at 0, read past the edge as no data)."""
    if length <= patch:
        return [0]
    starts = list(range(0, length - patch + 1, stride))
    if starts[-1] != length - patch:
        starts.append(length - patch)
    return starts


def scene_samples_check(samples: Sequence[SampleRef], hparams: dict) -> None:
    """Refuse, before anything is written, scenes whose bands are not the ones the version was trained on."""
    from inference.services.predict import PredictRefused

    wanted = list(hparams.get("bands") or [])
    wrong = [s for s in samples if not set(wanted) <= set(s.meta.get("bands") or [])]
    if wrong:
        first = wrong[0]
        raise PredictRefused(f"{len(wrong)} scene(s) have other bands than the version was trained on ({wanted}): "
                             f"scene {first.item_id} has {first.meta.get('bands')}; nothing was predicted")


def scene_predict(*, network, model, hparams: dict, sample: SampleRef, device, mc_dropout: int = 0,
                  out: Path, progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Predict one scene into the COG `out` (written whole or not at all); return its summary scalars."""
    import rasterio  # rasterio and torch: the workers only (the web process registers this module's functions)
    import rasterio.shutil
    import torch
    from rasterio.windows import Window

    from training.networks.sic import normalise_bands

    bands = list(hparams["bands"])
    patch = int(hparams["patch"])
    stride = max(1, int(round(patch * (1 - OVERLAP))))
    weights = blend_window(patch)
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = out.with_name(f".{out.stem}-{secrets.token_hex(3)}.tif")
    cog_tmp = out.with_name(f".{out.stem}-{secrets.token_hex(3)}.cog.tif")
    sums = {"sic": 0.0, "unc": 0.0, "mi": 0.0, "n": 0, "patches": 0}
    # GDAL's block cache capped as in the ingest (its default, 5 % of RAM, filled with the layer being written:
    # 10 000² scene, 2.58 GB peak uncapped).
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
            with rasterio.open(sample.path) as src:
                indexes = [list(src.descriptions).index(b) + 1 if b in src.descriptions else i + 1
                           for i, b in enumerate(bands)]
                height, width = src.height, src.width
                profile = {"driver": "GTiff", "width": width, "height": height, "count": 2, "dtype": "float32",
                           "crs": src.crs, "transform": src.transform, "nodata": float("nan"), "tiled": True,
                           "blockxsize": 512, "blockysize": 512, "BIGTIFF": "IF_SAFER"}
                rows, cols = patch_origins(height, patch, stride), patch_origins(width, patch, stride)
                acc = np.zeros((3, patch, width + patch), np.float32)  # sic, uncertainty, weight; room past the edge
                with rasterio.open(scratch, "w", **profile) as dst:
                    dst.set_band_description(1, "sic")
                    dst.set_band_description(2, "uncertainty")
                    base = 0
                    for i, r0 in enumerate(rows):
                        if r0 > base:  # the rows above this strip are final
                            _flush(dst, acc, base, r0 - base, width, height, sums)
                            acc = np.roll(acc, -(r0 - base), axis=1)
                            acc[:, -(r0 - base):] = 0
                            base = r0
                        inside = r0 + patch <= height  # else a scene lower than a patch: read past its edge as no data
                        strip = src.read(indexes, window=Window(0, r0, width, patch), boundless=not inside,
                                         fill_value=np.nan).astype(np.float32)
                        if strip.shape[2] < cols[-1] + patch:  # a scene narrower than a patch
                            strip = np.pad(strip, ((0, 0), (0, 0), (0, cols[-1] + patch - strip.shape[2])),
                                           constant_values=np.nan)
                        x, valid = normalise_bands(strip, bands)
                        for start in range(0, len(cols), BATCH):
                            chunk = cols[start:start + BATCH]
                            if not any(valid[:, c:c + patch].any() for c in chunk):
                                continue  # no data under these patches: nothing to predict
                            inputs = torch.from_numpy(np.stack([x[:, :, c:c + patch] for c in chunk]))
                            sums["patches"] += len(chunk)
                            with torch.no_grad():
                                predicted = network.predict_patches(model, inputs, device, mc_dropout=mc_dropout)
                            for k, c in enumerate(chunk):
                                acc[0, :, c:c + patch] += predicted["sic"][k] * weights
                                acc[1, :, c:c + patch] += predicted["uncertainty"][k] * weights
                                acc[2, :, c:c + patch] += weights
                        # no data in, no data out: the accumulator keeps NaN-free sums, the mask is applied on flush
                        acc[2, :, :width][~valid[:, :width]] = 0
                        if progress is not None:
                            progress((i + 1) / len(rows))
                    _flush(dst, acc, base, height - base, width, height, sums)
            threads = str(job_threads_plan().intra_op)  # the COG's compression on the CPUs the job may use
            rasterio.shutil.copy(scratch, cog_tmp, driver="COG", NUM_THREADS=threads, **COG_OPTIONS)
            os.replace(cog_tmp, out)
    finally:
        for path in (scratch, cog_tmp):
            path.unlink(missing_ok=True)
    n = sums["n"]
    mean_unc = sums["unc"] / n if n else 1.0
    return {"mean_sic": sums["sic"] / n if n else 0.0, "uncertainty": mean_unc, "confidence": 1.0 - mean_unc,
            "mutual_information": None, "pixels": n, "patches": sums["patches"]}


def _flush(dst, acc: np.ndarray, base: int, count: int, width: int, height: int, sums: dict) -> None:
    """Write the accumulator's first `count` rows (rows base.. of the scene): weighted means, NaN where no patch
    with data covered them."""
    from rasterio.windows import Window

    count = min(count, height - base, acc.shape[1])
    if count <= 0:
        return
    weight = acc[2, :count, :width]
    has = weight > 0
    block = np.full((2, count, width), np.nan, np.float32)
    block[0][has] = acc[0, :count, :width][has] / weight[has]
    block[1][has] = acc[1, :count, :width][has] / weight[has]
    dst.write(block, window=Window(0, base, width, count))
    sums["sic"] += float(block[0][has].sum(dtype=np.float64))
    sums["unc"] += float(block[1][has].sum(dtype=np.float64))
    sums["n"] += int(has.sum())


# --------------------------------------------------------------------------------------------------------
# The scenes' part of the prediction job (annotations.kinds "predictions")
# --------------------------------------------------------------------------------------------------------
def scenes_to_predict(*, version: ModelVersion, redo: bool = False) -> QuerySet[Scene]:
    scenes = Scene.objects.order_by("pk")
    if not redo:
        scenes = scenes.filter(~Exists(ScenePrediction.objects.filter(scene=OuterRef("pk"), model_version=version)))
    return scenes


def scene_samples(scenes: QuerySet[Scene]) -> list[SampleRef]:
    from training.services.scene_snapshots import scene_meta

    media = Path(settings.MEDIA_ROOT)
    return [SampleRef(item_id=s.pk, split="test", path=str(media / s.cog), kind=ItemKind.SCENES, group=s.key,
                      meta=scene_meta(s)) for s in scenes]


def prediction_path(version: ModelVersion, scene_id: int) -> Path:
    return Path(settings.MEDIA_ROOT) / "predictions" / version.network / f"v{version.number}" / f"scene-{scene_id}.tif"


def scene_predictions_store(*, version: ModelVersion, rows: Sequence[dict], job=None) -> int:
    """Each row ({item_id, cog, mean_sic, confidence, uncertainty, mutual_information, pixels}) becomes the scene's
    current prediction of `version` (the network's other versions' rows of it stop being current); a row of this
    version already there is rewritten in place (its `reviewed` flag kept). Scenes deleted meanwhile are dropped."""
    written = 0
    with transaction.atomic():
        for row in rows:
            scene_id = int(row["item_id"])
            if not Scene.objects.filter(pk=scene_id).exists():
                continue
            (ScenePrediction.objects.filter(scene_id=scene_id, is_current=True, model_version__network=version.network)
             .exclude(model_version=version).update(is_current=False))
            ScenePrediction.objects.update_or_create(
                scene_id=scene_id, model_version=version,
                defaults={"job": job, "cog": row["cog"], "mean_sic": row["mean_sic"], "confidence": row["confidence"],
                          "uncertainty": row["uncertainty"], "mutual_information": row["mutual_information"],
                          "pixels": row["pixels"], "is_current": True})
            written += 1
    return written


def rows_make_current(model, item_field: str, version: ModelVersion) -> int:
    """Make `version`'s rows of a per-item prediction table (ScenePrediction, TrackPrediction: `item_field` names the
    item) current again where a later version's rows had replaced them; returns how many of its rows changed."""
    with transaction.atomic():
        replaced = model.objects.filter(model_version=version, is_current=False)
        (model.objects.filter(**{f"{item_field}__in": replaced.values(item_field)}, is_current=True,
                              model_version__network=version.network)
         .exclude(model_version=version).update(is_current=False))
        return replaced.update(is_current=True)


def scene_predictions_make_current(version: ModelVersion) -> int:
    return rows_make_current(ScenePrediction, "scene_id", version)


def scene_predict_item(*, network, model, hparams, sample: SampleRef, device, mc_dropout: int, version: ModelVersion,
                       progress: Callable[[float], None] | None = None) -> list[dict]:
    """What the prediction job runs per scene: the COG, and the row the store takes."""
    out = prediction_path(version, sample.item_id)
    stats = scene_predict(network=network, model=model, hparams=hparams, sample=sample, device=device,
                          mc_dropout=mc_dropout, out=out, progress=progress)
    stats.pop("patches", None)
    return [{"item_id": sample.item_id, "cog": str(out.relative_to(settings.MEDIA_ROOT)), **stats}]



def _source():
    from inference.services.predict import ItemSource

    return ItemSource("scenes", scenes_to_predict, scene_samples, scene_predictions_store,
                      scene_predictions_make_current, predict_item=scene_predict_item, check=scene_samples_check)
