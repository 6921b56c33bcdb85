"""The polar map in Chromium: an annotator draws an ice polygon with its SIC on a scene, it is there after a reload
and appears live in an expert's browser; edits, a deletion and an undo travel the same way; a polygon outside the
footprint is refused with the reason; an admin uploads an ice chart from the page and its polygons land on the
scene (a real worker runs the ingest job)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect
from shapely.geometry import shape

from accounts.roles import Role
from annotations.models import IceChart, Scene, ScenePolygon
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.one_mode]


@pytest.fixture(scope="session")
def scene_files(tmp_path_factory) -> Path:
    from demo.synthetic import write_demo_scenes
    from demo.synthetic.ice_chart import write_demo_chart

    out = tmp_path_factory.mktemp("ew-e2e")
    write_demo_scenes(out, 1, seed=11, size=400)
    write_demo_chart(out / "scenes", out / "charts" / "chart.geojson")
    return out


@pytest.fixture
def scene(platform, scene_files) -> Scene:
    from annotations.services.ingest import ingest_paths

    report = ingest_paths([scene_files / "scenes"])
    assert not report.errors and len(report.scenes) == 1, report.as_dict()
    return Scene.objects.get(pk=report.scenes[0])


def open_scene(page, scene: Scene, username: str) -> None:
    log_in(page, username)
    page.goto(f"/scenes/{scene.pk}/")
    app = page.locator("#scene-app")
    expect(app).to_have_attribute("data-state", "ready")
    expect(app).to_have_attribute("data-live", "open")


def draw(page, corners: list[tuple[float, float]]) -> None:
    """Draw mode (D), a click on each (lat, lon) corner, and one on the first to close the ring."""
    page.keyboard.press("d")
    expect(page.locator("#scene-app")).to_have_attribute("data-mode", "draw")
    points = [page.evaluate("([lat, lon]) => window.cryolabelScenes.pagePoint(lat, lon)", list(c)) for c in corners]
    for point in [*points, points[0]]:
        page.mouse.click(point["x"], point["y"])


def square_around(scene: Scene, half: float) -> list[tuple[float, float]]:
    """(lat, lon) corners of a small square around the footprint's centre (half-side in degrees of latitude)."""
    c = shape(scene.footprint).centroid
    return [(c.y - half, c.x - 2 * half), (c.y - half, c.x + 2 * half), (c.y + half, c.x + 2 * half),
            (c.y + half, c.x - 2 * half)]


def features(page) -> list[dict]:
    return page.evaluate("window.cryolabelScenes.features()")


def test_a_polygon_drawn_with_its_sic_stays_and_reaches_a_second_browser_live(browser, platform, scene, make_user):
    make_user(Role.ANNOTATOR, "floe-drawer")
    make_user(Role.EXPERT, "floe-watcher")
    drawer = browser.new_context(base_url=platform.base_url, viewport={"width": 1300, "height": 850}).new_page()
    watcher = browser.new_context(base_url=platform.base_url, viewport={"width": 1300, "height": 850}).new_page()
    for page in (drawer, watcher):
        page.set_default_timeout(20_000)
    open_scene(drawer, scene, "floe-drawer")
    open_scene(watcher, scene, "floe-watcher")

    drawer.keyboard.press("7")  # SIC 70 %
    expect(drawer.locator("#sic-value")).to_have_text("70%")
    drawer.select_option("#stage", "thin first-year ice")
    drawer.locator("#map").click(position={"x": 5, "y": 5})  # focus back on the map, not the select
    draw(drawer, square_around(scene, 0.15))
    expect(drawer.locator("#scene-app")).to_have_attribute("data-polygons", "1")
    stored = ScenePolygon.objects.get(scene=scene)
    assert (stored.label, stored.sic, stored.stage, stored.author.username, stored.version) == (
        "ice", 70.0, "thin first-year ice", "floe-drawer", 1)
    # The watcher's map shows it without a reload, from the scene's websocket.
    expect(watcher.locator("#scene-app")).to_have_attribute("data-polygons", "1")
    assert [f["properties"]["sic"] for f in features(watcher)] == [70.0]

    drawer.reload()
    expect(drawer.locator("#scene-app")).to_have_attribute("data-state", "ready")
    expect(drawer.locator("#scene-app")).to_have_attribute("data-polygons", "1")
    assert features(drawer)[0]["id"] == stored.pk

    # Select it (a click inside), make it a lead (L, Enter): version 2, seen by the watcher.
    inside = drawer.evaluate("([lat, lon]) => window.cryolabelScenes.pagePoint(lat, lon)",
                             [shape(stored.geometry_lonlat).centroid.y, shape(stored.geometry_lonlat).centroid.x])
    drawer.mouse.click(inside["x"], inside["y"])
    expect(drawer.locator("#form-title")).to_have_text(f"Polygon {stored.pk}")
    drawer.keyboard.press("l")
    drawer.keyboard.press("Enter")
    watcher.wait_for_function("window.cryolabelScenes.features().map((f) => f.properties.label).join() === 'lead'")
    stored.refresh_from_db()
    assert (stored.label, stored.sic, stored.version) == ("lead", None, 2)

    # Delete it (X, click), then undo (Ctrl+Z): gone for both, then back for both as a new polygon.
    drawer.keyboard.press("Escape")
    drawer.keyboard.press("x")
    drawer.mouse.click(inside["x"], inside["y"])
    expect(watcher.locator("#scene-app")).to_have_attribute("data-polygons", "0")
    assert ScenePolygon.objects.get(pk=stored.pk).deleted_at is not None
    drawer.keyboard.press("Escape")
    drawer.keyboard.press("Control+z")
    expect(watcher.locator("#scene-app")).to_have_attribute("data-polygons", "1")
    back = ScenePolygon.objects.get(scene=scene, deleted_at__isnull=True)
    assert back.pk != stored.pk and back.label == "lead"


def test_a_polygon_outside_the_footprint_is_refused_with_the_reason(page, platform, scene, make_user):
    make_user(Role.ANNOTATOR, "edge-drawer")
    open_scene(page, scene, "edge-drawer")
    c = shape(scene.footprint).centroid
    minx, miny, maxx, maxy = shape(scene.footprint).bounds
    draw(page, [(c.y, c.x), (c.y, maxx + 1.0), (c.y + 0.3, maxx + 1.0)])  # reaches well past the swath
    expect(page.locator("#map-note")).to_contain_text("outside the scene's footprint")
    expect(page.locator("#scene-app")).to_have_attribute("data-polygons", "0")
    assert not ScenePolygon.objects.filter(scene=scene).exists()


def test_an_ice_chart_uploaded_from_the_page_lands_on_the_scene(page, platform, scene, scene_files, make_user):
    make_user(Role.ADMIN, "chart-admin")
    open_scene(page, scene, "chart-admin")
    page.set_input_files("#chart-files", str(scene_files / "charts" / "chart.geojson"))
    page.click("#chart-import")
    expect(page.locator("#chart-status")).to_contain_text("polygons stored on 1 scenes", timeout=60_000)
    chart = IceChart.objects.get()
    stored = ScenePolygon.objects.filter(scene=scene, source=ScenePolygon.Source.ICE_CHART, chart=chart).count()
    assert stored == chart.n_stored > 0
    expect(page.locator("#scene-app")).to_have_attribute("data-polygons", str(stored))


def test_an_expert_sees_the_sic_layer_and_accepts_a_predicted_region(page, platform, scene, make_user, tmp_path):
    """The scene predicted by a (small, untrained) sic version: its SIC layer shows over the image as tiles, and a
    click in accept mode stores the predicted region there as a polygon of source "prediction"."""
    import shutil

    import torch
    from django.conf import settings

    from inference.models import ScenePrediction
    from inference.tasks import predict_job
    from jobs.models import Job
    from jobs.runner import run_job
    from training.models import ModelVersion, Snapshot
    from training.networks import get_network
    from training.services.registry import model_activate

    net = get_network("sic")
    hparams = net.resolve_hparams({"patch": 32, "base": 4}, "cpu")
    torch.manual_seed(0)
    file = tmp_path / "sic.pt"
    torch.save(net.checkpoint_state(net.build(hparams), None, 1, hparams), file)
    target = Path(settings.MEDIA_ROOT) / "models" / "sic" / "v1.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(file, target)
    snapshot = Snapshot.objects.create(kind="scenes", number=1, seed=0, fractions={"train": 1.0}, agreement_threshold=0)
    model_activate(version=ModelVersion.objects.create(
        network="sic", kind="scenes", number=1, snapshot=snapshot, hparams=hparams, checkpoint="models/sic/v1.pt",
        primary_metric="r2"), reason="test")
    job = Job.objects.create(kind="predict", queue="gpu", params={"network": "sic"})
    run_job(job.pk, predict_job, worker="test")
    prediction = ScenePrediction.objects.get(scene=scene)

    make_user(Role.EXPERT, "sic-expert")
    open_scene(page, scene, "sic-expert")
    expect(page.locator("#scene-app")).to_have_attribute("data-prediction", str(prediction.pk))
    expect(page.locator("#prediction-name")).to_have_text("sic v1")
    page.click("input[name=prediction-layer][value=sic] + span")  # the segmented button's face
    page.wait_for_function(
        "[...document.querySelectorAll('.leaflet-prediction-pane img.leaflet-tile-loaded')]"
        ".some((img) => img.src.includes('layer=sic') && img.naturalWidth === 256)")
    page.keyboard.press("a")
    expect(page.locator("#scene-app")).to_have_attribute("data-mode", "accept")
    c = shape(scene.footprint).centroid
    point = page.evaluate("([lat, lon]) => window.cryolabelScenes.pagePoint(lat, lon)", [c.y, c.x])
    page.mouse.click(point["x"], point["y"])
    expect(page.locator("#scene-app")).to_have_attribute("data-polygons", "1")
    expect(page.locator("#map-note")).to_contain_text("Accepted the predicted region")
    polygon = ScenePolygon.objects.get(scene=scene)
    assert polygon.source == "prediction" and polygon.author.username == "sic-expert"

    # O: the polygons as outlines, then hidden (the SIC layer seen whole); accepting the same region again gives
    # the region's one polygon back, not a copy.
    page.keyboard.press("o")
    expect(page.locator("#scene-app")).to_have_attribute("data-polygon-display", "outlines")
    assert page.evaluate("window.cryolabelScenes.polygonsOnMap()")
    page.keyboard.press("o")
    expect(page.locator("#scene-app")).to_have_attribute("data-polygon-display", "hidden")
    assert not page.evaluate("window.cryolabelScenes.polygonsOnMap()")
    page.mouse.click(point["x"], point["y"])
    expect(page.locator("#map-note")).to_contain_text(f"accepted already: polygon {polygon.pk}")
    assert ScenePolygon.objects.filter(scene=scene).count() == 1
    page.keyboard.press("Escape")
    page.keyboard.press("d")  # drawing brings hidden polygons back
    expect(page.locator("#scene-app")).to_have_attribute("data-polygon-display", "filled")
    assert page.evaluate("window.cryolabelScenes.polygonsOnMap()")


def test_a_hostile_stage_is_shown_as_text(page, platform, scene, make_user):
    """A stage is text a person typed: the polygon's tooltip shows it as text, never as markup."""
    hostile = '<img src=x onerror="window.pwned=1">'
    c = shape(scene.footprint).centroid
    ring = [[c.x - 0.3, c.y - 0.1], [c.x + 0.3, c.y - 0.1], [c.x + 0.3, c.y + 0.1], [c.x - 0.3, c.y + 0.1]]
    from annotations.services.scene_polygons import polygon_create

    polygon_create(scene=scene, geometry={"type": "Polygon", "coordinates": [[*ring, ring[0]]]}, label="ice", sic=40,
                   stage=hostile)
    make_user(Role.ANNOTATOR, "hover-reader")
    open_scene(page, scene, "hover-reader")
    expect(page.locator("#scene-app")).to_have_attribute("data-polygons", "1")
    point = page.evaluate("([lat, lon]) => window.cryolabelScenes.pagePoint(lat, lon)", [c.y, c.x])
    page.mouse.move(point["x"], point["y"])
    page.mouse.move(point["x"] + 2, point["y"] + 1)
    tooltip = page.locator(".leaflet-tooltip")
    expect(tooltip).to_contain_text(hostile)
    assert tooltip.locator("img").count() == 0 and page.evaluate("window.pwned === undefined")
