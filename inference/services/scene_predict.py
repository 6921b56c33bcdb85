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
the scene has no data). Its overviews are made as the rows are written (2 x 2 means, level by level), so the COG is
a copy of finished tiles rather than a second pass over the layer; the scratch files are in a folder beside it and
the COG is renamed into place: a failed prediction leaves nothing.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from affine import Affine
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

__all__ = ["blend_window", "patch_origins", "patch_stride", "patches_with_data", "scene_predict",
           "scene_predictions_make_current", "scene_predictions_store", "scene_samples", "scene_samples_check",
           "scenes_to_predict"]

COG_OPTIONS = {"COMPRESS": "ZSTD", "LEVEL": "1", "PREDICTOR": "3", "BLOCKSIZE": "512",
               "OVERVIEWS": "FORCE_USE_EXISTING", "BIGTIFF": "IF_SAFER"}
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


def patch_stride(patch: int) -> int:
    """Pixels between neighbouring patch origins (patches overlap by OVERLAP of their side)."""
    return max(1, int(round(patch * (1 - OVERLAP))))


def patches_with_data(valid: np.ndarray, starts: np.ndarray, patch: int) -> np.ndarray:
    """Indexes of the patches of a strip (column origins `starts`, the strip's valid mask [P, W'] at least
    starts[-1] + patch wide) that have a valid pixel under them: a running count of the columns that do."""
    running = np.concatenate([[0], np.cumsum(valid.any(axis=0))])
    return np.flatnonzero(running[starts + patch] > running[starts])


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
    """Predict one scene into the COG `out` (written whole or not at all); return its summary scalars.

    The forward passes run on this thread; the next strip is read and normalised on one helper thread, and the
    final rows and their overviews are written on another, while the model runs (GDAL and NumPy release the GIL).
    Each helper holds one task at a time, so memory stays a few strips whatever the scene's size."""
    import rasterio  # rasterio and torch: the workers only (the web process registers this module's functions)
    import rasterio.shutil
    import torch
    from rasterio.windows import Window

    from training.networks.sic import normalise_bands

    bands = list(hparams["bands"])
    patch = int(hparams["patch"])
    stride = patch_stride(patch)
    weights = blend_window(patch)
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = f".{out.stem}-{secrets.token_hex(3)}"
    scratch_dir = out.with_name(stem)
    cog_tmp = out.with_name(f"{stem}.cog.tif")
    patches = 0
    # GDAL's block cache capped as in the ingest (its default, 5 % of RAM, filled with the layer being written:
    # 10 000² scene, 2.58 GB peak uncapped).
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
            with rasterio.open(sample.path) as src:
                indexes = [list(src.descriptions).index(b) + 1 if b in src.descriptions else i + 1
                           for i, b in enumerate(bands)]
                height, width = src.height, src.width
                rows, cols = patch_origins(height, patch, stride), patch_origins(width, patch, stride)
                starts = np.asarray(cols)

                def strip_read(r0: int):
                    inside = r0 + patch <= height  # else a scene lower than a patch: read past its edge as no data
                    strip = src.read(indexes, window=Window(0, r0, width, patch), boundless=not inside,
                                     fill_value=np.nan).astype(np.float32, copy=False)
                    if strip.shape[2] < cols[-1] + patch:  # a scene narrower than a patch
                        strip = np.pad(strip, ((0, 0), (0, 0), (0, cols[-1] + patch - strip.shape[2])),
                                       constant_values=np.nan)
                    x, valid = normalise_bands(strip, bands)
                    return x, valid, patches_with_data(valid, starts, patch)

                scratch_dir.mkdir()
                layer = _LayerWriter(scratch_dir, src.crs, src.transform, width, height)
                acc = np.zeros((3, patch, width + patch), np.float32)  # sic, uncertainty, weight; room past the edge
                with ThreadPoolExecutor(1, "sic-read") as reader, layer, ThreadPoolExecutor(1, "sic-write") as writer:
                    written = None  # the writer's task in flight: waited for before the next (rows in order)
                    upcoming = reader.submit(strip_read, rows[0])
                    base = 0
                    for i, r0 in enumerate(rows):
                        if r0 > base:  # the rows above this strip are final
                            block = _weighted_means(acc, r0 - base, width, height - base)
                            if written is not None:
                                written.result()
                            written = writer.submit(layer.write, block)
                            acc = np.roll(acc, -(r0 - base), axis=1)
                            acc[:, -(r0 - base):] = 0
                            base = r0
                        x, valid, with_data = upcoming.result()
                        if i + 1 < len(rows):
                            upcoming = reader.submit(strip_read, rows[i + 1])
                        for start in range(0, len(with_data), BATCH):
                            chunk = [cols[k] for k in with_data[start:start + BATCH]]  # patches with no data: none
                            inputs = torch.from_numpy(np.stack([x[:, :, c:c + patch] for c in chunk]))
                            patches += len(chunk)
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
                    if written is not None:
                        written.result()
                    writer.submit(layer.write, _weighted_means(acc, height - base, width, height - base)).result()
                    layer.finish()
            # The overviews are already made (the writer's 2 x 2 means): the COG is a copy of the tiles, compressed
            # with ZSTD at level 1 (DEFLATE took 2.6 times as long for a file 1 % smaller), on the job's CPUs.
            threads = str(job_threads_plan().intra_op)
            rasterio.shutil.copy(layer.vrt, cog_tmp, driver="COG", NUM_THREADS=threads, **COG_OPTIONS)
            os.replace(cog_tmp, out)
    finally:
        cog_tmp.unlink(missing_ok=True)
        shutil.rmtree(scratch_dir, ignore_errors=True)
    n = layer.sums["n"]
    mean_unc = layer.sums["unc"] / n if n else 1.0
    return {"mean_sic": layer.sums["sic"] / n if n else 0.0, "uncertainty": mean_unc, "confidence": 1.0 - mean_unc,
            "mutual_information": None, "pixels": n, "patches": patches}


def _weighted_means(acc: np.ndarray, count: int, width: int, rows_left: int) -> np.ndarray:
    """The accumulator's first `count` rows (at most `rows_left`, the scene's rows not yet written) as the layer's
    bands [2, count, width]: weighted means, NaN where no patch with data covered them."""
    count = max(0, min(count, rows_left, acc.shape[1]))
    weight = acc[2, :count, :width]
    has = weight > 0
    block = np.full((2, count, width), np.nan, np.float32)
    block[0][has] = acc[0, :count, :width][has] / weight[has]
    block[1][has] = acc[1, :count, :width][has] / weight[has]
    return block


def _half(rows: np.ndarray) -> np.ndarray:
    """Rows [C, 2n, W] -> [C, n, ceil(W/2)]: the mean of the finite values of each 2 x 2 block (NaN where none is),
    as GDAL's AVERAGE overview resampling."""
    c, h, w = rows.shape
    if w % 2:
        rows = np.concatenate([rows, np.full((c, h, 1), np.nan, np.float32)], axis=2)
    total = np.zeros((c, h // 2, rows.shape[2] // 2), np.float32)
    count = np.zeros(total.shape, np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            quarter = rows[:, dy::2, dx::2]
            finite = np.isfinite(quarter)
            total += np.where(finite, quarter, 0)
            count += finite
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


class _LayerWriter:
    """The layer as it is made: its full-resolution rows, in order, to a scratch GeoTIFF, and each overview level
    (halving until the level fits one 512 block, as the COG driver's own) made from the level above as its rows
    arrive, to a GeoTIFF of its own; a VRT joins them for the COG copy. A row pair split between two writes waits
    for its second row. Summary sums of the layer's valid pixels on the way."""

    def __init__(self, folder: Path, crs, transform, width: int, height: int):
        self.folder, self.crs, self.transform = folder, crs, transform
        self.sizes = [(width, height)]
        while max(self.sizes[-1]) > 512:
            w, h = self.sizes[-1]
            self.sizes.append(((w + 1) // 2, (h + 1) // 2))
        self.files = [folder / f"level{k}.tif" for k in range(len(self.sizes))]
        self.datasets: list = []
        self.cursor = [0] * len(self.sizes)  # rows written per level
        self.pending: list[np.ndarray | None] = [None] * len(self.sizes)  # an unpaired row waiting, per level
        self.sums = {"sic": 0.0, "unc": 0.0, "n": 0}
        self.vrt = folder / "layer.vrt"

    def __enter__(self):
        import rasterio

        for k, (w, h) in enumerate(self.sizes):
            transform = self.transform @ Affine.scale(self.sizes[0][0] / w, self.sizes[0][1] / h)
            dataset = rasterio.open(self.files[k], "w", driver="GTiff", width=w, height=h, count=2, dtype="float32",
                                    crs=self.crs, transform=transform, nodata=float("nan"), tiled=True,
                                    blockxsize=512, blockysize=512, BIGTIFF="IF_SAFER")
            self.datasets.append(dataset)
        return self

    def __exit__(self, *exc) -> None:
        for dataset in self.datasets:
            dataset.close()

    def write(self, block: np.ndarray) -> None:
        """The next rows [2, n, W] of the full-resolution layer."""
        finite = np.isfinite(block[0])
        self.sums["sic"] += float(block[0][finite].sum(dtype=np.float64))
        self.sums["unc"] += float(block[1][finite].sum(dtype=np.float64))
        self.sums["n"] += int(finite.sum())
        self._level_write(0, block)

    def _level_write(self, level: int, block: np.ndarray, final: bool = False) -> None:
        from rasterio.windows import Window

        if block.shape[1]:
            w = self.sizes[level][0]
            self.datasets[level].write(block, window=Window(0, self.cursor[level], w, block.shape[1]))
            self.cursor[level] += block.shape[1]
        if level + 1 == len(self.sizes):
            return
        if self.pending[level] is not None:
            block = np.concatenate([self.pending[level], block], axis=1)
            self.pending[level] = None
        if block.shape[1] % 2:
            if final:  # the level's last row, alone: paired with no data
                block = np.concatenate([block, np.full_like(block[:, :1], np.nan)], axis=1)
            else:
                self.pending[level], block = block[:, -1:].copy(), block[:, :-1]
        self._level_write(level + 1, _half(block) if block.shape[1] else block[:, :0, ::2], final)

    def finish(self) -> None:
        """Write the rows still waiting for a pair, close the levels and write the VRT of the layer."""
        self._level_write(0, np.zeros((2, 0, self.sizes[0][0]), np.float32), final=True)
        short = [k for k, (_, h) in enumerate(self.sizes) if self.cursor[k] != h]
        if short:  # a bug, not bad input: a layer with missing rows must not become a COG
            raise RuntimeError(f"layer levels {short} have {[self.cursor[k] for k in short]} rows written")
        w, h = self.sizes[0]
        geo = ", ".join(repr(float(v)) for v in self.transform.to_gdal())
        bands = []
        for band, name in enumerate(("sic", "uncertainty"), start=1):
            overviews = "".join(f"<Overview><SourceFilename relativeToVRT=\"0\">{escape(str(f))}</SourceFilename>"
                                f"<SourceBand>{band}</SourceBand></Overview>" for f in self.files[1:])
            bands.append(f"<VRTRasterBand dataType=\"Float32\" band=\"{band}\"><Description>{name}</Description>"
                         f"<NoDataValue>nan</NoDataValue><SimpleSource><SourceFilename relativeToVRT=\"0\">"
                         f"{escape(str(self.files[0]))}</SourceFilename><SourceBand>{band}</SourceBand>"
                         f"</SimpleSource>{overviews}</VRTRasterBand>")
        self.vrt.write_text(f"<VRTDataset rasterXSize=\"{w}\" rasterYSize=\"{h}\"><SRS>{escape(self.crs.to_wkt())}"
                            f"</SRS><GeoTransform>{geo}</GeoTransform>{''.join(bands)}</VRTDataset>")


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
