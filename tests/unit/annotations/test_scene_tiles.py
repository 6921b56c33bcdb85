"""annotations/tiles.py and the scene endpoints of annotations/api_scenes.py: the polar tile grids, tiles whose
pixels are the COG's values over the tile's bounds stretched as the layer says, ETags with 304, a 400 that names the
parameter for each bad one, 404 for an unknown scene, a missing image or a tile outside the scene, and the label
capability to see any of it.

One 480 px demo EW product is ingested once for the module (its COG stays in a module folder); each test gets the
Scene row back in its own transaction."""

from __future__ import annotations

import io
import os
from pathlib import Path

import morecantile
import numpy as np
import pytest
import rasterio
from django.db import transaction
from django.forms.models import model_to_dict
from PIL import Image
from rasterio.enums import Resampling
from rasterio.windows import from_bounds

from annotations import tiles
from annotations.models import Scene
from annotations.tiles import POLAR_TMS, TileRequestError, scene_tile, tile_bounds, tile_params

SIZE = 480  # ~854 m pixels: native zoom 6, the whole scene within a few tiles at zoom 4


@pytest.fixture(scope="module")
def ingested_scene(tmp_path_factory, django_db_setup, django_db_blocker) -> tuple[dict, Path]:
    """The product ingested once: the row's fields (the row itself is rolled back) and the MEDIA_ROOT of its COG."""
    from django.conf import settings

    from annotations.services.ingest import ingest_paths
    from demo.synthetic import write_demo_scenes

    products = write_demo_scenes(tmp_path_factory.mktemp("ew-tiles"), 1, seed=5, size=SIZE)
    media = tmp_path_factory.mktemp("tiles-media")
    before, settings.MEDIA_ROOT = settings.MEDIA_ROOT, media
    try:
        with django_db_blocker.unblock(), transaction.atomic():
            report = ingest_paths(products)
            assert not report.errors, report.errors
            fields = model_to_dict(Scene.objects.get(), exclude=["id", "ingest_job"])
            transaction.set_rollback(True)
    finally:
        settings.MEDIA_ROOT = before
    return fields, media


@pytest.fixture
def scene(db, settings, ingested_scene) -> Scene:
    fields, media = ingested_scene
    settings.MEDIA_ROOT = media
    return Scene.objects.create(**fields)


def _tile_at(x_m: float, y_m: float, z: int) -> tuple[int, int]:
    """The column and row of the tile at zoom z holding the point (x_m, y_m) of the grid."""
    side = 2 * 5_242_880 / 2**z
    return int((x_m + 5_242_880) // side), int((5_242_880 - y_m) // side)


def _inside_tile(scene: Scene, z: int) -> tuple[int, int]:
    """A tile at zoom z whose every pixel has data (near the scene's centre)."""
    xmin, ymin, xmax, ymax = scene.bounds
    return _tile_at((xmin + xmax) / 2, (ymin + ymax) / 2, z)


def _direct(scene: Scene, z: int, x: int, y: int, bands: list[int]) -> np.ndarray:
    """The COG's values over the tile's bounds at 256 x 256, nearest neighbour: rasterio alone."""
    with rasterio.open(Path(tiles.cog_path(scene))) as src:
        window = from_bounds(*tile_bounds(z, x, y), transform=src.transform)
        return src.read(bands, window=window, out_shape=(len(bands), 256, 256), resampling=Resampling.nearest,
                        boundless=True, fill_value=np.nan)


def _grey(values: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip(np.rint((values - low) / (high - low) * 255), 0, 255)


def _decode(payload: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(payload)) as image:
        return np.asarray(image).astype(np.float32)


# --- the grids -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("crs", ["EPSG:3413", "EPSG:3976"])
def test_polar_grids(crs):
    tms = POLAR_TMS[crs]
    assert tms.crs.to_epsg() == int(crs.split(":")[1]) and (tms.minzoom, tms.maxzoom) == (0, 12)
    assert tms.matrix(10).cellSize == 40.0 and tms.matrix(12).cellSize == 10.0
    assert tuple(tms.xy_bbox) == (-5_242_880, -5_242_880, 5_242_880, 5_242_880)
    assert tms.matrix(0).matrixWidth == 1 and tms.matrix(10).matrixWidth == tms.matrix(10).matrixHeight == 1024
    for z, x, y in [(0, 0, 0), (3, 2, 5), (10, 443, 668), (12, 4095, 0)]:
        assert tile_bounds(z, x, y) == pytest.approx(tuple(tms.xy_bounds(morecantile.Tile(x, y, z))))
    assert [tiles.native_zoom(m) for m in (40, 10, 1.0, 854, 1e6)] == [10, 12, 12, 6, 0]


# --- the pixels ----------------------------------------------------------------------------------------------
def test_a_tile_holds_the_cogs_values_stretched(scene):
    z = 8
    x, y = _inside_tile(scene, z)
    hh, hv = _direct(scene, z, x, y, [1, 2])
    assert np.isfinite(hh).all() and np.isfinite(hv).all(), "the test tile should lie within the swath"

    grey = _decode(scene_tile(scene, z, x, y, layer="hh", fmt="png"))
    assert grey.shape == (256, 256, 2)  # grey + alpha
    assert np.abs(grey[..., 0] - _grey(hh, -25, 0)).max() <= 1 and (grey[..., 1] == 255).all()
    assert 20 < grey[..., 0].mean() < 235, "the default window shows the scene, neither black nor white"

    custom = _decode(scene_tile(scene, z, x, y, layer="hv", vmin="-40", vmax=-10.5))
    assert np.abs(custom[..., 0] - _grey(hv, -40, -10.5)).max() <= 1

    rgb = _decode(scene_tile(scene, z, x, y, layer="rgb"))
    assert rgb.shape == (256, 256, 4)
    for channel, expected in enumerate([_grey(hh, -25, 0), _grey(hv, -32, -8), _grey(hh - hv, 0, 15)]):
        assert np.abs(rgb[..., channel] - expected).max() <= 1, channel
    assert (rgb[..., 3] == 255).all()


def test_low_zoom_tiles_cover_the_edge_with_transparency(scene):
    z = 4  # 655 km a tile, 410 km of swath: read from an overview, the scene's edge inside the tile
    xmin, ymin, xmax, ymax = scene.bounds
    x, y = _tile_at(xmin + 1, ymax - 1, z)
    hh = _direct(scene, z, x, y, [1])[0]
    grey = _decode(scene_tile(scene, z, x, y))
    valid = np.isfinite(hh)
    assert valid.any() and not valid.all()
    assert ((grey[..., 1] == 255) == valid).all(), "transparent exactly where there is no data"
    assert np.abs(grey[..., 0][valid] - _grey(hh[valid], -25, 0)).max() <= 1


def test_a_low_zoom_tile_reads_an_overview(scene, monkeypatch):
    """The bytes a tile reads from the COG (counted through a rasterio opener): a whole-scene tile reads an
    overview's blocks, not the full-resolution image."""
    counted = {"bytes": 0}

    class Counting(io.FileIO):
        def read(self, size=-1):
            data = super().read(size)
            counted["bytes"] += len(data)
            return data

    def opener(name, mode="rb"):
        return Counting(name, "rb")

    real_open = rasterio.open
    monkeypatch.setattr(rasterio, "open", lambda path, *a, **kw: real_open(path, *a, opener=opener, **kw))
    with rasterio.open(tiles.cog_path(scene)) as src:
        src.read()  # every full-resolution block
    full = counted["bytes"]
    counted["bytes"] = 0
    tiles.open_cogs_close()  # the tiles keep COGs open: this one is opened again, through the counting opener
    xmin, ymin, xmax, ymax = scene.bounds
    x, y = _tile_at((xmin + xmax) / 2, (ymin + ymax) / 2, 3)  # 1 310 km a tile: the whole scene in ~100 px
    assert scene_tile(scene, 3, x, y) is not None
    assert 0 < counted["bytes"] < full / 2, (counted["bytes"], full)  # the 2x overview: a quarter of the pixels


def test_open_cogs_are_pooled_and_opened_afresh_when_rewritten(scene, tmp_path):
    """Tiles take their COG from a pool of open datasets (tiles._open_cog): the next tile of the same file reuses
    the dataset (from any thread), two at once get two, a file written again (another size or time) is opened
    afresh and its old handle closed, and at most OPEN_COGS stay open."""
    tiles.open_cogs_close()
    path = tiles.cog_path(scene)
    with tiles._open_cog(path) as first, tiles._open_cog(path) as second:  # two at once: two handles
        assert second is not first
    with tiles._open_cog(path) as again:
        assert again in (first, second) and not again.closed
    copy = tmp_path / "copy.tif"
    copy.write_bytes(path.read_bytes())
    with tiles._open_cog(copy) as before:
        pass
    copy.write_bytes(path.read_bytes() + b"\0" * 16)  # re-written: another size
    with tiles._open_cog(copy) as after:
        assert after is not before and before.closed
    for n in range(tiles.OPEN_COGS + 2):
        other = tmp_path / f"other{n}.tif"
        other.write_bytes(path.read_bytes())
        with tiles._open_cog(other):
            pass
    assert sum(len(v) for v in tiles._open_cogs.values()) == tiles.OPEN_COGS and first.closed and second.closed
    tiles.open_cogs_close()
    assert not tiles._open_cogs and after.closed


def test_webp(scene):
    x, y = _inside_tile(scene, 7)
    for layer in ("hh", "rgb"):
        image = Image.open(io.BytesIO(scene_tile(scene, 7, x, y, layer=layer, fmt="webp")))
        assert image.format == "WEBP" and image.size == (256, 256)


def test_outside_and_bad_requests_in_the_service(scene):
    assert scene_tile(scene, 10, 0, 0) is None  # the grid's corner, far from Baffin Bay
    with pytest.raises(TileRequestError) as bad:
        tile_params(scene, layer="vv")
    assert bad.value.field == "layer"
    scene.bands = ["HH", "incidence"]
    with pytest.raises(TileRequestError, match="no HV band"):
        tile_params(scene, layer="rgb")


# --- the API -------------------------------------------------------------------------------------------------
def _url(scene, z, x, y, fmt="png", query=""):
    return f"/api/v1/scenes/{scene.pk}/tiles/{z}/{x}/{y}.{fmt}" + (f"?{query}" if query else "")


def test_list_and_detail(client_as, annotator, scene):
    client = client_as(annotator)
    page = client.get("/api/v1/scenes/").json()
    assert page["count"] == 1
    item = page["results"][0]
    assert item["id"] == scene.pk and item["polarisations"] == ["HH", "HV"] and item["crs"] == "EPSG:3413"
    assert item["footprint"]["type"] == "Polygon" and item["bands"] == ["HH", "HV", "incidence"]
    assert item["native_zoom"] == 6 and item["tiles"] == f"/api/v1/scenes/{scene.pk}/tiles/{{z}}/{{x}}/{{y}}.png"
    assert client.get(f"/api/v1/scenes/{scene.pk}/").json() == item
    assert client.get(f"/api/v1/scenes/{scene.pk + 1}/").status_code == 404


def test_tile_etag_and_304(client_as, annotator, scene, monkeypatch):
    client = client_as(annotator)
    x, y = _inside_tile(scene, 8)
    url = _url(scene, 8, x, y, query="layer=rgb")
    first = client.get(url)
    assert first.status_code == 200 and first["Content-Type"] == "image/png"
    assert first.content == scene_tile(scene, 8, x, y, layer="rgb")
    etag = first["ETag"]
    assert etag.startswith('"') and first["Cache-Control"] == "private, max-age=86400"

    def unread(*args, **kwargs):
        raise AssertionError("a 304 must not read the COG")

    monkeypatch.setattr(tiles, "read_tile", unread)
    for header in (etag, f'"other", W/{etag}', "*"):
        again = client.get(url, HTTP_IF_NONE_MATCH=header)
        assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag, header
        assert again["Cache-Control"] == "private, max-age=86400"
    monkeypatch.undo()

    others = {client.get(_url(scene, 8, x, y, query=q)).get("ETag") for q in ("layer=hh", "layer=rgb&vmin=-30")}
    others |= {client.get(_url(scene, 8, x + 1, y, query="layer=rgb"))["ETag"],
               client.get(_url(scene, 8, x, y, "webp", query="layer=rgb"))["ETag"]}
    assert len(others) == 4 and etag not in others
    stale = client.get(url, HTTP_IF_NONE_MATCH='"stale"')
    assert stale.status_code == 200 and stale["ETag"] == etag
    cog = tiles.cog_path(scene)
    os.utime(cog, ns=(cog.stat().st_atime_ns, cog.stat().st_mtime_ns + 1_000_000_000))  # the COG rewritten
    changed = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag


@pytest.mark.parametrize(("z", "x", "y", "fmt", "query", "field"), [
    ("13", "0", "0", "png", "", "z"),
    ("-1", "0", "0", "png", "", "z"),
    ("ten", "0", "0", "png", "", "z"),
    ("4", "16", "0", "png", "", "x"),
    ("4", "0", "99999999999", "png", "", "y"),
    ("4", "1.5", "0", "png", "", "x"),
    ("4", "0", "-3", "png", "", "y"),
    ("4", "0", "0", "jpg", "", "format"),
    ("4", "0", "0", "png", "layer=vv", "layer"),
    ("4", "0", "0", "png", "vmin=nan", "vmin"),
    ("4", "0", "0", "png", "vmax=inf", "vmax"),
    ("4", "0", "0", "png", "vmin=-1e400", "vmin"),
    ("4", "0", "0", "png", "vmin=low", "vmin"),
    ("4", "0", "0", "png", "vmin=-61", "vmin"),
    ("4", "0", "0", "png", "vmax=30.5", "vmax"),
    ("4", "0", "0", "png", "vmin=0&vmax=-5", "vmin"),
    ("4", "0", "0", "png", "vmin=-5&vmax=-5", "vmin"),
    ("4", "0", "0", "png", "vmin=5", "vmin"),  # above the HH default vmax (0 dB)
    ("4", "0", "0", "png", "layer=rgb&vmax=-30", "vmin"),  # below the HH default vmin (-25 dB)
])
def test_bad_parameters_answer_400_with_the_reason(client_as, annotator, scene, z, x, y, fmt, query, field):
    response = client_as(annotator).get(_url(scene, z, x, y, fmt, query))
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert list(body) == [field] and body[field][0], body


def test_a_scene_without_hv_refuses_hv_layers(client_as, annotator, scene):
    Scene.objects.filter(pk=scene.pk).update(bands=["HH", "incidence"])
    x, y = _inside_tile(scene, 8)
    for layer in ("hv", "rgb"):
        response = client_as(annotator).get(_url(scene, 8, x, y, query=f"layer={layer}"))
        assert response.status_code == 400 and "no HV band" in response.json()["layer"][0]


def test_not_found(client_as, annotator, scene):
    client = client_as(annotator)
    outside = client.get(_url(scene, 10, 0, 0))
    assert outside.status_code == 404 and outside.json() == {"detail": "outside the scene"}
    x, y = _inside_tile(scene, 8)
    for pk in (scene.pk + 1, 2**63, 10**30):
        assert client.get(f"/api/v1/scenes/{pk}/tiles/8/{x}/{y}.png").status_code == 404, pk
    Scene.objects.filter(pk=scene.pk).update(cog="../../etc/passwd")
    assert client.get(_url(scene, 8, x, y)).status_code == 404
    Scene.objects.filter(pk=scene.pk).update(cog="scenes/gone/scene.tif")
    assert client.get(_url(scene, 8, x, y)).status_code == 404


def test_not_found_for_an_unreadable_cog(client_as, annotator, scene, settings):
    broken = Path(settings.MEDIA_ROOT) / "scenes" / f"broken-{os.getpid()}.tif"
    broken.write_bytes(b"II*\x00 not a tiff")
    try:
        Scene.objects.filter(pk=scene.pk).update(cog=str(broken.relative_to(settings.MEDIA_ROOT)))
        x, y = _inside_tile(scene, 8)
        assert client_as(annotator).get(_url(scene, 8, x, y)).status_code == 404
    finally:
        broken.unlink()


def test_who_may_see(api_client, client_as, expert, scene):
    from django.contrib.auth.models import User

    x, y = _inside_tile(scene, 8)
    urls = ["/api/v1/scenes/", f"/api/v1/scenes/{scene.pk}/", _url(scene, 8, x, y)]
    for url in urls:
        assert api_client.get(url).status_code in (401, 403), url  # anonymous
    no_role = User.objects.create_user(username="nobody", password="pw-for-tests-1")
    for url in urls:
        response = client_as(no_role).get(url)
        assert response.status_code == 403 and "label" in response.json()["detail"], url
    assert client_as(expert).get(urls[2]).status_code == 200
