"""training/networks/sic.py and sic_data.py: the SIC U-Net's rasterised targets, its patches, its refusals, the
model's properties (shapes, constant in -> constant out, MC dropout) and a short training on synthetic scenes whose
SIC is a function of HH. Small GeoTIFFs written here stand in for scene COGs; no database."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from training.contract import NetworkError, SampleRef
from training.networks import NETWORKS, get_network, sic_data
from training.networks.sic import SicNetwork, UNet, predict_patches
from training.networks.sic_data import (
    SceneGrid,
    label_polygons,
    labelled_windows,
    normalise_bands,
    rasterise_targets,
)
from training.specs import SIC_SPEC

BANDS = ["HH", "HV", "incidence"]
PIXEL = 40.0
ORIGIN = (-1_000_000.0, 600_000.0)  # EPSG:3413 metres, upper-left corner
TRANSFORM = from_origin(*ORIGIN, PIXEL, PIXEL)
SMALL = {"patch": 32, "base": 4, "levels": 3, "batch_size": 4, "seed": 0}


def _box(r0: float, c0: float, r1: float, c1: float) -> dict:
    """A GeoJSON polygon over pixel rows r0..r1, columns c0..c1 of TRANSFORM's grid (edges on pixel edges)."""
    corners = [TRANSFORM @ (c, r) for c, r in ((c0, r0), (c1, r0), (c1, r1), (c0, r1), (c0, r0))]
    return {"type": "Polygon", "coordinates": [[list(p) for p in corners]]}


def _poly(geometry: dict, label: str = "ice", sic: float | None = 50.0, source: str = "person") -> dict:
    return {"geometry": geometry, "label": label, "sic": sic, "source": source}


def _meta(height: int, width: int, bands=BANDS) -> dict:
    return {"bands": list(bands), "pixel_size": PIXEL, "width": width, "height": height,
            "transform": list(TRANSFORM)[:6], "crs": "EPSG:3413"}


def _write_scene(path, array: np.ndarray) -> str:
    count, height, width = array.shape
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=count, dtype="float32",
                       crs="EPSG:3413", transform=TRANSFORM, nodata=float("nan")) as dst:
        dst.write(array.astype(np.float32))
    return str(path)


def _halves(size: int, *, rng: np.random.Generator, vertical: bool) -> np.ndarray:
    """A scene whose first half (left, or top when not `vertical`) is dark open-ish ice, its second bright ice."""
    second = np.zeros((size, size), dtype=bool)
    if vertical:
        second[:, size // 2:] = True
    else:
        second[size // 2:, :] = True
    hh = np.where(second, -12.0, -25.0) + rng.normal(0, 1.0, (size, size))
    hv = np.where(second, -21.0, -30.0) + rng.normal(0, 1.0, (size, size))
    ramp = np.broadcast_to(np.linspace(25, 45, size), (size, size))  # along the boundary: no cue to SIC
    incidence = ramp.T if vertical else ramp
    return np.stack([hh, hv, incidence]).astype(np.float32)


def _halves_target(size: int, *, vertical: bool) -> dict:
    h = size // 2
    first, second = (_box(0, 0, size, h), _box(0, h, size, size)) if vertical else \
        (_box(0, 0, h, size), _box(h, 0, size, size))
    return {"polygons": [_poly(first, sic=10.0), _poly(second, sic=90.0)]}


# --------------------------------------------------------------------------------------------------------
# Rasterisation
# --------------------------------------------------------------------------------------------------------
def test_a_square_polygon_rasterises_to_its_pixels_and_a_later_polygon_wins() -> None:
    ice = _poly(_box(2, 3, 6, 8), "ice", 70.0)  # rows 2-5, columns 3-7: 20 pixels
    polygons = label_polygons({"polygons": [ice]})
    sic, cls, weight = rasterise_targets(polygons, TRANSFORM, (16, 16))
    assert np.isfinite(sic).sum() == 20 and np.allclose(sic[2:6, 3:8], 0.7)
    assert (cls == 0).sum() == 20 and (cls == 255).sum() == 256 - 20
    assert (weight == 1.0).sum() == 20 and (weight == 0).sum() == 256 - 20

    chart_water = _poly(_box(4, 3, 10, 8), "water", None, source="ice_chart")  # drawn later, over rows 4-5
    polygons = label_polygons({"polygons": [ice, chart_water]}, chart_weight=0.25)
    sic, cls, weight = rasterise_targets(polygons, TRANSFORM, (16, 16))
    assert (cls == 0).sum() == 10 and (cls == 2).sum() == 30
    assert np.allclose(sic[4:10, 3:8], 0.0) and np.allclose(sic[2:4, 3:8], 0.7) and np.isfinite(sic).sum() == 40
    assert (weight == 0.25).sum() == 30 and (weight == 1.0).sum() == 10

    # A window further on sees the polygons where they are in it; one outside it sees none.
    window = window_transform(Window(4, 2, 8, 8), TRANSFORM)  # columns 4-11, rows 2-9
    sic, cls, _ = rasterise_targets(polygons, window, (8, 8))
    assert (cls == 0).sum() == 2 * 4 and (cls == 2).sum() == 6 * 4 and cls[0, 0] == 0 and cls[7, 4] == 255
    far = window_transform(Window(100, 100, 8, 8), TRANSFORM)
    sic, cls, weight = rasterise_targets(polygons, far, (8, 8))
    assert np.isnan(sic).all() and (cls == 255).all() and (weight == 0).all()


def test_sic_targets_per_label() -> None:
    polygons = label_polygons({"polygons": [
        _poly(_box(0, 0, 2, 2), "lead", None), _poly(_box(0, 2, 2, 4), "lead", 30.0),
        _poly(_box(2, 0, 4, 2), "ice", None), _poly(_box(2, 2, 4, 4), "water", None)]})
    sic, cls, _ = rasterise_targets(polygons, TRANSFORM, (4, 4))
    assert np.allclose(sic[:2, :2], 0.0) and np.allclose(sic[:2, 2:], 0.3)  # a lead is open water unless stated
    assert np.isnan(sic[2:, :2]).all() and (cls[2:, :2] == 0).all()  # ice without SIC: its class only
    assert np.allclose(sic[2:, 2:], 0.0) and (cls[2:, 2:] == 2).all()
    with pytest.raises(NetworkError, match="label 'floe'"):
        label_polygons({"polygons": [_poly(_box(0, 0, 2, 2), "floe")]}, item_id=3)
    with pytest.raises(NetworkError, match="SIC 120"):
        label_polygons({"polygons": [_poly(_box(0, 0, 2, 2), "ice", 120)]}, item_id=3)


def test_normalise_bands_uses_fixed_constants_and_masks_no_data() -> None:
    array = np.array([[[-18.0, -24.0]], [[-26.0, np.nan]], [[35.0, 43.0]]], dtype=np.float32)  # [3, 1, 2]
    x, valid = normalise_bands(array, BANDS)
    assert x.dtype == np.float32 and x.shape == (3, 1, 2)
    assert valid.tolist() == [[True, False]]
    assert np.allclose(x[:, 0, 0], 0.0) and np.allclose(x[:, 0, 1], 0.0)  # the mean; no data -> 0
    x, _ = normalise_bands(np.array([[[-24.0]], [[-21.0]], [[43.0]]]), BANDS)
    assert np.allclose(x[:, 0, 0], [-1.0, 1.0, 1.0])
    with pytest.raises(NetworkError, match="band.*RH"):
        normalise_bands(np.zeros((1, 2, 2)), ["RH"])


# --------------------------------------------------------------------------------------------------------
# Patches
# --------------------------------------------------------------------------------------------------------
def test_only_windows_holding_a_labelled_pixel_are_patches(tmp_path, monkeypatch) -> None:
    grid = SceneGrid.from_meta(_meta(100, 100))
    small = label_polygons({"polygons": [_poly(_box(40, 40, 50, 50))]})
    assert list(labelled_windows(small, grid, 32)) == [(32, 32)]
    edge = label_polygons({"polygons": [_poly(_box(60, 97, 66, 100))]})
    assert list(labelled_windows(edge, grid, 32)) == [(32, 68), (64, 68)]  # the last windows end at the edge
    # A triangle's bounds span four windows; its pixels lie in three of them.
    triangle = {"type": "Polygon", "coordinates": [[list(TRANSFORM @ p) for p in ((0, 0), (64, 0), (0, 64), (0, 0))]]}
    assert list(labelled_windows(label_polygons({"polygons": [_poly(triangle)]}), grid, 32)) == \
        [(0, 0), (0, 32), (32, 0)]

    path = _write_scene(tmp_path / "scene.tif", np.full((3, 100, 100), -20.0, dtype=np.float32))
    reads: list[Window] = []
    real_read = sic_data.read_window
    monkeypatch.setattr(sic_data, "read_window", lambda src, window: reads.append(window) or real_read(src, window))
    target = {"polygons": [_poly(_box(40, 40, 50, 50), sic=40.0), _poly(_box(60, 97, 66, 100), "water")]}
    net = SicNetwork()
    hparams = net.resolve_hparams({**SMALL, "jitter": False}, "cpu")
    ds = net.dataset([SampleRef(7, "val", target, path, "scenes", meta=_meta(100, 100))], train=False,
                     hparams=hparams)
    assert [w[1:] for w in ds.windows] == [(32, 32), (32, 68), (64, 68)]
    items = [ds[i] for i in range(len(ds))]
    assert [(w.row_off, w.col_off, w.height, w.width) for w in reads] == [(32, 32, 32, 32), (32, 68, 32, 32),
                                                                          (64, 68, 32, 32)]
    x, t, item = items[0]
    assert x.shape == (3, 32, 32) and item == 7 and t["window"].tolist() == [32, 32, 32, 32]
    assert t["sic"].shape == (1, 32, 32) and t["cls"].dtype == torch.int64 and t["valid"].all()
    assert int(torch.isfinite(t["sic"]).sum()) == 100 and math.isclose(float(t["sic"][0, 8, 8]), 0.4, abs_tol=1e-6)
    assert int((t["cls"] == 2).sum()) == 0 and int((items[1][1]["cls"] == 2).sum()) == 4 * 3

    # Inference (no target): every window of the scene.
    ds = net.dataset([SampleRef(7, "test", None, path, "scenes", meta=_meta(100, 100))], train=False,
                     hparams=hparams)
    assert len(ds) == 16 and all((t["cls"] == 255).all() for _, t, _ in (ds[0], ds[15]))


def test_a_scene_smaller_than_a_patch_is_padded_as_no_data(tmp_path) -> None:
    path = _write_scene(tmp_path / "tiny.tif", np.full((3, 20, 24), -20.0, dtype=np.float32))
    net = SicNetwork()
    target = {"polygons": [_poly(_box(-5, -5, 30, 30))]}
    ds = net.dataset([SampleRef(1, "val", target, path, "scenes", meta=_meta(20, 24))], train=False,
                     hparams=net.resolve_hparams(SMALL, "cpu"))
    x, t, _ = ds[0]
    assert int(t["valid"].sum()) == 20 * 24 and int((t["cls"] == 0).sum()) == 20 * 24  # nothing past the scene
    assert t["window"].tolist() == [0, 0, 20, 24] and float(x[:, 20:, :].abs().max()) == 0.0


def _scene_sample(path, target, split="train", item_id=1, size=64, bands=BANDS) -> SampleRef:
    return SampleRef(item_id, split, target, str(path), "scenes", group=f"S{item_id}", meta=_meta(size, size, bands))


def test_refusals(tmp_path) -> None:
    net = SicNetwork()
    inside = {"polygons": [_poly(_box(10, 10, 20, 20))]}
    outside = {"polygons": [_poly(_box(200, 200, 220, 220))]}
    between = {"polygons": [_poly(_box(10.6, 10.6, 10.9, 10.9))]}  # within one pixel, off its centre
    path = tmp_path / "none.tif"
    with pytest.raises(NetworkError, match="the snapshot's polygons cover no pixel of its scenes"):
        net.validate_samples([_scene_sample(path, outside), _scene_sample(path, between, "val", 2)])
    with pytest.raises(NetworkError, match="no train scene has a labelled pixel"):
        net.validate_samples([_scene_sample(path, outside), _scene_sample(path, inside, "val", 2)])
    with pytest.raises(NetworkError, match="no label"):
        net.validate_samples([_scene_sample(path, {"polygons": []}), _scene_sample(path, inside, "val", 2)])
    net.validate_samples([_scene_sample(path, inside), _scene_sample(path, inside, "val", 2),
                          _scene_sample(path, None, "test", 3)])
    with pytest.raises(NetworkError, match="different bands"):
        net.validate_samples([_scene_sample(path, inside), _scene_sample(path, inside, "val", 2, bands=["HH", "HV"])])
    with pytest.raises(NetworkError, match="scene 5 has bands HH, HV; this network takes HH, HV, incidence"):
        net.dataset([_scene_sample(path, inside, item_id=5, bands=["HH", "HV"])], train=True,
                    hparams=net.resolve_hparams(SMALL, "cpu"))
    with pytest.raises(NetworkError, match="no weights file"):
        net.check_weights_file(tmp_path / "w.pt")
    net.check_weights_file(None)
    with pytest.raises(NetworkError, match="multiple of 4"):
        net.resolve_hparams({"patch": 30}, "cpu")
    with pytest.raises(NetworkError, match="unknown hyperparameter"):
        net.resolve_hparams({"weights_path": "x"}, "cpu")


# --------------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------------
def test_the_unet_trains_and_a_constant_input_gives_a_constant_output() -> None:
    torch.manual_seed(0)
    model = UNet(3, base=4, levels=3, dropout=0.1)
    sic, logits = model(torch.randn(2, 3, 32, 32))
    assert sic.shape == (2, 1, 32, 32) and logits.shape == (2, 3, 32, 32) and 0 <= float(sic.detach().min()) <= 1
    (sic.mean() + logits.square().mean()).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)

    for m in model.modules():  # batch norm statistics as a trained model has them
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    model.eval()
    value = torch.tensor([0.7, -1.2, 0.3])[None, :, None, None]
    with torch.no_grad():
        small, small_logits = model(value.expand(1, 3, 32, 32))
        large, _ = model(value.expand(1, 3, 96, 64))
    assert float(small.max() - small.min()) < 1e-5 and float((small_logits.amax((2, 3)) -
                                                                small_logits.amin((2, 3))).max()) < 1e-5
    assert float((large - small[0, 0, 0, 0]).abs().max()) < 1e-5  # what a stitcher's blend of patches sees


def test_mc_dropout_gives_uncertainty_and_plain_eval_is_deterministic() -> None:
    torch.manual_seed(0)
    model = UNet(3, base=4, levels=3, dropout=0.3)
    x = torch.randn(2, 3, 32, 32)
    first, second = predict_patches(model, x, "cpu"), predict_patches(model, x, "cpu")
    assert not model.training
    assert first["sic"].shape == (2, 32, 32) and first["classes"].shape == (2, 3, 32, 32)
    assert all(first[k].dtype == np.float32 for k in first)
    assert all(np.array_equal(first[k], second[k]) for k in first)
    assert first["sic"].min() >= 0 and first["sic"].max() <= 100 and np.allclose(first["classes"].sum(1), 1, atol=1e-5)
    mc = predict_patches(model, x, "cpu", mc_dropout=8)
    assert mc["uncertainty"].max() > 0 and mc["uncertainty"].min() >= 0 and mc["uncertainty"].max() <= 1
    assert not any(m.training for m in model.modules())  # dropout back off after the passes


# --------------------------------------------------------------------------------------------------------
# Training through the Network interface
# --------------------------------------------------------------------------------------------------------
def test_the_network_learns_sic_from_hh_on_synthetic_scenes(tmp_path) -> None:
    rng = np.random.default_rng(0)
    size = 256
    samples = [
        _scene_sample(_write_scene(tmp_path / "a.tif", _halves(size, rng=rng, vertical=True)),
                      _halves_target(size, vertical=True), "train", 1, size),
        _scene_sample(_write_scene(tmp_path / "b.tif", _halves(size, rng=rng, vertical=False)),
                      _halves_target(size, vertical=False), "val", 2, size),
    ]
    net = get_network("sic")
    assert NETWORKS["sic"] is net and net.spec is SIC_SPEC and net.item_kind == "scenes"
    net.validate_samples(samples)
    hparams = net.resolve_hparams({**SMALL, "base": 8, "lr": 1e-2, "epochs": 3, "warmup_epochs": 0}, "cpu")
    assert net.arch_tag(hparams) == "unet3-8/3in"
    torch.manual_seed(0)
    model = net.build(hparams)
    train_dl = net.loader(net.dataset(samples[:1], train=True, hparams=hparams), train=True, hparams=hparams)
    val_dl = net.loader(net.dataset(samples[1:], train=False, hparams=hparams), train=False, hparams=hparams)
    assert len(train_dl.dataset) == len(val_dl.dataset) == 64
    optimizer = net.make_optimizer(model, hparams)
    scheduler = net.make_scheduler(optimizer, hparams, steps_per_epoch=len(train_dl))
    before = net.evaluate(model, val_dl, "cpu")
    for _ in range(hparams["epochs"]):
        stats = net.train_epoch(model, train_dl, optimizer, "cpu", scheduler=scheduler)
        assert stats["items"] == 64 and math.isfinite(stats["loss"])
    after = net.evaluate(model, val_dl, "cpu")
    assert set(after) == {"loss", "r2", "rmse", "ice_iou", "lead_iou", "water_iou", "pixels", "patches"}
    assert after["pixels"] == size * size and after["patches"] == 64
    assert after["ice_iou"] > 0.5 and after["lead_iou"] in (None, 0.0) and after["water_iou"] in (None, 0.0)
    assert after["r2"] > 0.5 and after["r2"] > (before["r2"] or 0) and after["rmse"] < before["rmse"], (before, after)
    json.dumps(after)
    assert net.baseline(samples[1:]).score == 0.0

    # A checkpoint gives back the same model; its predictions are JSON rows per patch.
    state = net.checkpoint_state(model, optimizer, 3, hparams, scheduler=scheduler, metrics=after)
    loaded, loaded_hparams = net.model_from_checkpoint(state, "cpu")
    assert loaded_hparams["patch"] == 32
    batch = next(iter(val_dl))
    plain = net.predict_batch(loaded, batch, "cpu")
    assert np.allclose(plain.confidence, net.predict_batch(model, batch, "cpu").confidence, atol=1e-6)
    assert plain.mutual_information is None and plain.item_ids == [2, 2, 2, 2]
    mc = net.predict_batch(loaded, batch, "cpu", mc_dropout=4)
    rows = mc.rows()
    assert len(rows) == 4 and all(0 <= r["confidence"] <= 1 and 0 <= r["entropy"] <= 1 for r in rows)
    assert rows[0]["mutual_information"] >= 0 and rows[0]["window"] == [0, 0, 32, 32]
    assert 0 <= rows[0]["sic_mean"] <= 100 and len(rows[0]["class_shares"]) == 3
    json.dumps(rows)


# --------------------------------------------------------------------------------------------------------
# The contract with the snapshot side: real (synthetic) scenes, polygons and a training job
# --------------------------------------------------------------------------------------------------------
def test_a_training_job_learns_from_a_snapshot_of_scenes(db, settings, tmp_path, make_user) -> None:
    from shapely.geometry import shape

    from accounts.roles import Role
    from annotations.models import Scene
    from annotations.services.ingest import ingest_paths
    from annotations.services.scene_polygons import polygon_create
    from demo.synthetic import write_demo_scenes
    from jobs.models import Job
    from jobs.runner import run_job
    from training.models import ModelVersion
    from training.tasks import train_job

    settings.MEDIA_ROOT = tmp_path / "media"
    assert not ingest_paths(write_demo_scenes(tmp_path / "products", 2, seed=5, size=160)).errors
    expert = make_user(Role.EXPERT, "sic-trainer")

    def square(scene: Scene, dx: float, size: float = 0.1) -> dict:
        c = shape(scene.footprint).centroid
        x, y = c.x + dx, c.y
        return {"type": "Polygon", "coordinates": [[[x - size, y - size / 3], [x + size, y - size / 3],
                                                     [x + size, y + size / 3], [x - size, y + size / 3],
                                                     [x - size, y - size / 3]]]}

    for scene in Scene.objects.order_by("pk"):
        polygon_create(scene=scene, geometry=square(scene, -0.35, 0.3), label="ice", sic=90, author=expert)
        polygon_create(scene=scene, geometry=square(scene, 0.35, 0.3), label="water", author=expert)
    job = Job.objects.create(kind="train", queue="gpu", params={
        "network": "sic", "epochs": 2, "hparams": {"patch": 32, "base": 4, "batch_size": 4}})
    assert run_job(job.pk, train_job, worker="tests") == Job.State.SUCCEEDED, Job.objects.get(pk=job.pk).error
    version = ModelVersion.objects.get(network="sic")
    assert (version.kind, version.primary_metric, len(version.history)) == ("scenes", "r2", 2)
    assert {"val_r2", "val_rmse", "val_water_iou", "val_pixels"} <= set(version.history[-1])
    assert version.history[-1]["val_pixels"] > 0 and version.val_metrics["baseline"]["score"] == 0.0
