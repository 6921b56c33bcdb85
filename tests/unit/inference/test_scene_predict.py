"""Whole-scene prediction of `sic`: overlapping patches blended without seams (a constant scene comes out equal to
the single-patch output everywhere; a per-pixel function comes out exactly), no data in gives no data out, and the
prediction job over real scenes: a COG layer per scene and version, served as tiles, a bands mismatch refused before
anything is written, a predicted region accepted as a polygon."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from django.conf import settings
from rasterio.transform import from_origin
from shapely.geometry import shape

from accounts.roles import Role
from annotations.models import Scene, ScenePolygon
from annotations.services.ingest import ingest_paths
from demo.synthetic import write_demo_scenes
from inference.models import ScenePrediction
from inference.services.scene_predict import blend_window, patch_origins, scene_predict
from inference.services.scene_review import scene_region_accept
from inference.tasks import predict_job
from jobs.models import Job
from jobs.runner import run_job
from tests.conftest import race_behind_a_lock
from training.contract import SampleRef
from training.models import ModelVersion, Snapshot
from training.networks import get_network
from training.services.registry import model_activate

TINY = {"patch": 32, "base": 4, "dropout": 0.1, "seed": 0}


def _cog(path: Path, bands: np.ndarray) -> Path:
    _, height, width = bands.shape
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=3, dtype="float32",
                       crs="EPSG:3413", transform=from_origin(-500_000, -1_500_000, 40, 40), nodata=np.nan) as dst:
        dst.write(bands.astype(np.float32))
        for i, name in enumerate(("HH", "HV", "incidence"), start=1):
            dst.set_band_description(i, name)
    return path


def _sample(path: Path) -> SampleRef:
    return SampleRef(item_id=1, split="test", path=str(path), kind="scenes", meta={"bands": ["HH", "HV", "incidence"]})


def test_patch_origins_cover_the_axis_and_the_window_never_zero():
    assert patch_origins(100, 32, 16) == [0, 16, 32, 48, 64, 68]
    assert patch_origins(20, 32, 16) == [0]
    window = blend_window(32)
    assert window.min() > 0 and window.max() <= 1 and np.allclose(window, window.T)


def test_a_constant_scene_equals_the_single_patch_output_everywhere(tmp_path):
    net = get_network("sic")
    hparams = net.resolve_hparams(TINY, "cpu")
    torch.manual_seed(0)
    model = net.build(hparams).eval()
    bands = np.stack([np.full((70, 90), -15.0), np.full((70, 90), -24.0), np.full((70, 90), 33.0)])
    source = _cog(tmp_path / "constant.tif", bands)
    out = tmp_path / "sic.tif"
    scene_predict(network=net, model=model, hparams=hparams, sample=_sample(source), device="cpu", out=out)
    from training.networks.sic import normalise_bands

    x, _ = normalise_bands(bands[:, :32, :32].astype(np.float32), hparams["bands"])
    single = net.predict_patches(model, torch.from_numpy(x[None]), "cpu")["sic"][0]
    assert float(single.max() - single.min()) < 1e-4  # a constant patch gives a constant output
    with rasterio.open(out) as layer:
        sic = layer.read(1)
        assert layer.descriptions == ("sic", "uncertainty") and layer.overviews(1) is not None
    assert sic.shape == (70, 90) and np.isfinite(sic).all()
    assert np.abs(sic - single[0, 0]).max() < 1e-3


class PerPixel:
    """A stand-in network whose prediction at a pixel is a function of that pixel alone: any seam, shift or lost
    row of the stitching shows as a difference from the function of the input."""

    @staticmethod
    def predict_patches(model, inputs, device, mc_dropout=0):
        x = inputs.numpy()
        return {"sic": 50 + 10 * x[:, 0], "uncertainty": np.abs(x[:, 1]) / 10, "classes": None}


def test_stitching_gives_the_per_pixel_function_exactly_and_no_data_stays_no_data(tmp_path):
    rng = np.random.default_rng(0)
    bands = np.stack([rng.normal(-18, 6, (150, 130)), rng.normal(-26, 5, (150, 130)), np.full((150, 130), 35.0)])
    bands[:, :10, :] = np.nan  # no data along the top and in a block
    bands[:, 60:80, 40:70] = np.nan
    source = _cog(tmp_path / "noisy.tif", bands)
    out = tmp_path / "layer.tif"
    hparams = {"bands": ["HH", "HV", "incidence"], "patch": 32}
    stats = scene_predict(network=PerPixel(), model=None, hparams=hparams, sample=_sample(source), device="cpu",
                          out=out)
    from training.networks.sic import normalise_bands

    x, valid = normalise_bands(bands.astype(np.float32), hparams["bands"])
    with rasterio.open(out) as layer:
        sic, unc = layer.read(1), layer.read(2)
    assert np.isnan(sic[~valid]).all() and np.isfinite(sic[valid]).all()
    assert np.abs(sic[valid] - (50 + 10 * x[0][valid])).max() < 1e-3
    assert np.abs(unc[valid] - np.abs(x[1][valid]) / 10).max() < 1e-4
    assert stats["pixels"] == int(valid.sum()) and abs(stats["mean_sic"] - float(sic[valid].mean())) < 1e-2


def test_the_layers_overviews_are_the_means_of_its_rows_and_it_is_a_cog(tmp_path):
    """The overviews are made as rows are written (not by a second pass of GDAL's): each level must be the 2 x 2
    mean of the finite values of the level above, odd sizes and no data included, and the file a valid COG."""
    rng = np.random.default_rng(1)
    h, w = 1100, 1030  # levels 515 x 550, 258 x 275: odd sizes at both
    bands = np.stack([rng.normal(-18, 6, (h, w)), rng.normal(-26, 5, (h, w)), np.full((h, w), 35.0)])
    bands[:, 300:333, 200:907] = np.nan
    out = tmp_path / "layer.tif"
    scene_predict(network=PerPixel(), model=None, hparams={"bands": ["HH", "HV", "incidence"], "patch": 64},
                  sample=_sample(_cog(tmp_path / "big.tif", bands)), device="cpu", out=out)
    with rasterio.open(out) as layer:
        assert layer.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and layer.overviews(1) == [2, 4]
        level = layer.read()
        for factor in (2, 4):
            shape = (2, -(-h // factor), -(-w // factor))
            got = layer.read(out_shape=shape)
            padded = np.full((2, shape[1] * 2, shape[2] * 2), np.nan, np.float32)
            padded[:, :level.shape[1], :level.shape[2]] = level
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks: NaN, as wanted
                want = np.nanmean(padded.reshape(2, shape[1], 2, shape[2], 2), axis=(2, 4))
            assert np.array_equal(np.isnan(got), np.isnan(want)) and np.nanmax(np.abs(got - want)) < 1e-3
            level = want
    assert not list(tmp_path.glob(".layer*")), "the scratch files are removed"


# --- the prediction job over real scenes --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def products(tmp_path_factory) -> list[Path]:
    return write_demo_scenes(tmp_path_factory.mktemp("ew-predict"), 2, seed=4, size=160)


@pytest.fixture
def scenes(db, settings, tmp_path, products) -> list[Scene]:
    settings.MEDIA_ROOT = tmp_path / "media"
    assert not ingest_paths(products).errors
    return list(Scene.objects.order_by("pk"))


def _version(tmp_path: Path, **overrides) -> ModelVersion:
    net = get_network("sic")
    hparams = net.resolve_hparams({**TINY, **overrides}, "cpu")
    torch.manual_seed(0)
    file = tmp_path / "sic.pt"
    torch.save(net.checkpoint_state(net.build(hparams), None, 1, hparams), file)
    relative = "models/sic/v1.pt"
    (Path(settings.MEDIA_ROOT) / relative).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(file, Path(settings.MEDIA_ROOT) / relative)
    snapshot = Snapshot.objects.create(kind="scenes", number=1, seed=0, fractions={"train": 1.0},
                                       agreement_threshold=0)
    version = ModelVersion.objects.create(network="sic", kind="scenes", number=1, snapshot=snapshot,
                                          hparams=hparams, checkpoint=relative, primary_metric="r2")
    return model_activate(version=version, reason="test")


def _predict() -> Job:
    job = Job.objects.create(kind="predict", queue="gpu", params={"network": "sic"})
    run_job(job.pk, predict_job, worker="test")
    job.refresh_from_db()
    return job


def test_the_prediction_job_writes_a_layer_per_scene_served_as_tiles(scenes, tmp_path, make_user, client_as):
    version = _version(tmp_path)
    job = _predict()
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.result["predicted"] == 2 and "2 scenes predicted" in job.result["message"]
    rows = list(ScenePrediction.objects.order_by("scene_id"))
    assert [r.scene_id for r in rows] == [s.pk for s in scenes] and all(r.is_current for r in rows)
    assert all(r.model_version_id == version.pk and 0 <= r.mean_sic <= 100 and 0 <= r.uncertainty <= 1
               for r in rows)
    with rasterio.open(Path(settings.MEDIA_ROOT) / rows[0].cog) as layer:
        assert (layer.width, layer.height, layer.crs.to_string()) == (scenes[0].width, scenes[0].height, "EPSG:3413")
    assert _predict().result["predicted"] == 0  # nothing new

    annotator = make_user(Role.ANNOTATOR, "sic-viewer")
    listed = client_as(annotator).get(f"/api/v1/scenes/{scenes[0].pk}/predictions/").json()
    assert listed[0]["id"] == rows[0].pk and listed[0]["network"] == "sic" and listed[0]["active"]
    from annotations import tiles

    xmin, ymin, xmax, ymax = scenes[0].bounds
    z = 6
    side = 2 * tiles.POLAR_EXTENT_M / 2**z
    x, y = int(((xmin + xmax) / 2 + tiles.POLAR_EXTENT_M) // side), int((tiles.POLAR_EXTENT_M - (ymin + ymax) / 2)
                                                                         // side)
    for layer in ("sic", "uncertainty"):
        response = client_as(annotator).get(f"/api/v1/scene-predictions/{rows[0].pk}/tiles/{z}/{x}/{y}.png"
                                            f"?layer={layer}")
        assert response.status_code == 200 and response["Content-Type"] == "image/png" and response["ETag"]
    bad = client_as(annotator).get(f"/api/v1/scene-predictions/{rows[0].pk}/tiles/{z}/{x}/{y}.png?layer=hh")
    assert bad.status_code == 400 and "layer" in bad.json()

    # An expert accepts the predicted region under the scene's centre: a polygon of source "prediction".
    expert = make_user(Role.EXPERT, "sic-reviewer")
    centre = shape(scenes[0].footprint).centroid
    response = client_as(expert).post(f"/api/v1/scene-predictions/{rows[0].pk}/accept/",
                                      {"lon": centre.x, "lat": centre.y}, content_type="application/json")
    assert response.status_code == 201, response.content
    polygon = ScenePolygon.objects.get(pk=response.json()["id"])
    assert polygon.source == "prediction" and polygon.author == expert and polygon.scene_id == scenes[0].pk
    again = client_as(expert).post(f"/api/v1/scene-predictions/{rows[0].pk}/accept/",  # a double click
                                   {"lon": centre.x, "lat": centre.y}, content_type="application/json")
    assert again.status_code == 200 and again.json()["id"] == polygon.pk
    assert ScenePolygon.objects.filter(scene=scenes[0], deleted_at__isnull=True).count() == 1
    assert client_as(annotator).post(f"/api/v1/scene-predictions/{rows[0].pk}/accept/",
                                     {"lon": centre.x, "lat": centre.y},
                                     content_type="application/json").status_code == 403
    outside = client_as(expert).post(f"/api/v1/scene-predictions/{rows[0].pk}/accept/", {"lon": 10, "lat": 10},
                                     content_type="application/json")
    assert outside.status_code == 400 and "outside" in outside.json()["detail"]
    queue = client_as(expert).get("/api/v1/review/scenes/").json()
    assert {p["scene"] for p in queue} == {s.pk for s in scenes}
    assert client_as(expert).post(f"/api/v1/scene-predictions/{queue[0]['id']}/reviewed/").status_code == 204
    assert len(client_as(expert).get("/api/v1/review/scenes/").json()) == 1


def test_a_scene_without_the_versions_bands_is_refused_before_anything_is_written(scenes, tmp_path):
    _version(tmp_path)
    Scene.objects.filter(pk=scenes[1].pk).update(bands=["VV", "VH", "incidence"])  # e.g. an IW product
    job = _predict()
    assert job.state == Job.State.FAILED
    assert "other bands" in job.error and f"scene {scenes[1].pk}" in job.error
    assert not ScenePrediction.objects.exists()
    assert not list((Path(settings.MEDIA_ROOT) / "predictions").glob("**/*.tif"))


@pytest.mark.postgres_only
def test_two_experts_accepting_one_region_at_once_make_one_polygon(transactional_db, settings, tmp_path, products,
                                                                  make_user):
    """Alice's accept holds its transaction open; Bob's accept of the same region waits on the prediction's row
    and, once Alice commits, gets her polygon back (not a copy): one polygon, whoever clicked second."""
    settings.MEDIA_ROOT = tmp_path / "media"
    report = ingest_paths(products[:1])
    assert not report.errors
    scene = Scene.objects.get(pk=report.scenes[0])
    version = _version(tmp_path)
    layer = Path(settings.MEDIA_ROOT) / "predictions" / "layer.tif"
    scene_predict(network=PerPixel(), model=None, hparams={"bands": ["HH", "HV", "incidence"], "patch": 32},
                  sample=_sample(Path(settings.MEDIA_ROOT) / scene.cog), device="cpu", out=layer)
    prediction = ScenePrediction.objects.create(scene=scene, model_version=version, cog="predictions/layer.tif",
                                                mean_sic=50, confidence=0.5, uncertainty=0.5, pixels=1)
    alice, bob = make_user(Role.EXPERT, "alice-accepts"), make_user(Role.EXPERT, "bob-accepts")
    centre = shape(scene.footprint).centroid
    first, second = race_behind_a_lock(
        lambda: scene_region_accept(prediction, lon=centre.x, lat=centre.y, author=alice),
        lambda: scene_region_accept(prediction, lon=centre.x, lat=centre.y, author=bob), what="the second expert")
    (polygon_a, new_a), (polygon_b, new_b) = first.result(), second.result()
    assert new_a and not new_b and polygon_b.pk == polygon_a.pk
    assert list(ScenePolygon.objects.filter(scene=scene).values_list("author__username", flat=True)) == [
        "alice-accepts"]
