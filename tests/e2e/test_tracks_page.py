"""The track page in Chromium: an annotator opens a pass of 3 000 waveforms crossing a scene, selects a range on the
along-track image with shift-drag, presses L, and the range's nadir points are drawn lead on the map at once; the
range is there after a reload and appears live in a second browser; keys select and mark, Ctrl+Z undoes. The list
page draws the ground tracks and opens one on a click; a track's name from a file is shown as text."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect
from shapely.geometry import shape

from accounts.roles import Role
from annotations.models import Scene, Track, TrackCollocation, TrackLabelRange
from tests.e2e.conftest import log_in
from tests.unit.annotations.test_track_api import synthetic_track

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.one_mode]

VIEWPORT = {"width": 1400, "height": 1000}


@pytest.fixture(scope="session")
def scene_files(tmp_path_factory):
    from demo.synthetic import write_demo_scenes

    out = tmp_path_factory.mktemp("ew-tracks-e2e")
    write_demo_scenes(out, 1, seed=11, size=400)
    return out


@pytest.fixture
def track(platform, scene_files) -> Track:
    """3 000 waveforms heading north-east across the scene's centre, collocated with it (its HH tiles under the
    track); automatic labels: 0-199 unknown, 1000-1099 lead, the rest not lead."""
    from annotations.services.ingest import ingest_paths

    report = ingest_paths([scene_files / "scenes"])
    assert not report.errors, report.as_dict()
    scene = Scene.objects.get(pk=report.scenes[0])
    c = shape(scene.footprint).centroid
    # A key of its own per test: the platform's MEDIA_ROOT (and the arrays in it) outlive each test's rows.
    row = synthetic_track(f"SRL_E2E_pass_0007_{uuid.uuid4().hex[:8]}", n=3000, lat0=c.y - 0.2, lon0=c.x - 0.3)
    TrackCollocation.objects.create(track=row, scenes=[{"scene": scene.pk, "key": scene.key, "lag_s": 600}],
                                    window_s=10800, threshold_m=200, counts={"lead": 100})
    return row


def open_track(browser, platform, track: Track, username: str):
    page = browser.new_context(base_url=platform.base_url, viewport=VIEWPORT).new_page()
    page.set_default_timeout(20_000)
    log_in(page, username)
    page.goto(f"/tracks/{track.pk}/")
    app = page.locator("#track-app")
    expect(app).to_have_attribute("data-state", "ready")
    expect(app).to_have_attribute("data-live", "open")
    return page


def hook(page, expression: str, *args):
    return page.evaluate(f"(args) => window.cryolabelTracks.{expression}", list(args))


def test_a_range_marked_lead_shows_on_the_map_stays_and_reaches_a_second_browser(browser, platform, track,
                                                                                  make_user):
    make_user(Role.ANNOTATOR, "lead-marker")
    make_user(Role.ANNOTATOR, "lead-watcher")
    marker = open_track(browser, platform, track, "lead-marker")
    watcher = open_track(browser, platform, track, "lead-watcher")
    assert hook(marker, "label(args[0])", 1250) == 0 and hook(marker, "drawnLabel(args[0])", 1250) == 0
    assert hook(marker, "drawnCount()") > 50  # the pass is on screen
    # The scene's HH tiles are under the track.
    marker.wait_for_function("[...document.querySelectorAll('.leaflet-tile-pane img.leaflet-tile-loaded')]"
                             ".some((img) => img.src.includes('/tiles/') && img.naturalWidth === 256)")

    # Shift-drag on the along-track image over waveforms 1200-1299, then L.
    hook(marker, "setView(args[0], args[1])", 1100, 400)
    box = marker.locator("#wf-image").bounding_box()
    y = box["y"] + box["height"] / 2
    marker.keyboard.down("Shift")
    marker.mouse.move(hook(marker, "imageX(args[0])", 1200), y)
    marker.mouse.down()
    marker.mouse.move(hook(marker, "imageX(args[0])", 1250), y, steps=4)
    marker.mouse.move(hook(marker, "imageX(args[0])", 1299), y, steps=4)
    marker.mouse.up()
    marker.keyboard.up("Shift")
    assert hook(marker, "selection()") == [1200, 1300]
    marker.keyboard.press("l")
    # Drawn at once, in the page and on the map.
    assert set(hook(marker, "labels(args[0], args[1])", 1200, 1300)) == {1}
    assert {hook(marker, "drawnLabel(args[0])", i) for i in (1200, 1250, 1299)} == {1}
    assert hook(marker, "drawnLabel(args[0])", 1300) == 0
    marker.wait_for_function("document.getElementById('undo').disabled === false")
    stored = TrackLabelRange.objects.get(track=track)
    assert (stored.start, stored.stop, stored.label, stored.author.username) == (1200, 1300, "lead", "lead-marker")

    # The watcher's map shows it without a reload, from the track's websocket.
    watcher.wait_for_function("window.cryolabelTracks.drawnLabel(1250) === 1 "
                              "&& window.cryolabelTracks.label(1299) === 1")
    assert hook(watcher, "label(args[0])", 1300) == 0

    marker.reload()
    expect(marker.locator("#track-app")).to_have_attribute("data-state", "ready")
    assert set(hook(marker, "labels(args[0], args[1])", 1200, 1300)) == {1}
    assert hook(marker, "drawnLabel(args[0])", 1250) == 1

    # Keys: a click picks waveform 1400, shift+right extends to 1402, N marks them not lead ... unknown with U.
    hook(marker, "setView(args[0], args[1])", 1300, 400)
    marker.mouse.click(hook(marker, "imageX(args[0])", 1400), y)
    marker.keyboard.press("Shift+ArrowRight")
    marker.keyboard.press("Shift+ArrowRight")
    assert hook(marker, "selection()") == [1400, 1403]
    marker.keyboard.press("u")
    marker.wait_for_function("document.getElementById('undo').disabled === false")
    watcher.wait_for_function("window.cryolabelTracks.labels(1400, 1403).join() === '-1,-1,-1'")
    # Ctrl+Z undoes it, for both.
    marker.keyboard.press("Control+z")
    watcher.wait_for_function("window.cryolabelTracks.labels(1400, 1403).join() === '0,0,0'")
    assert TrackLabelRange.objects.filter(track=track, deleted_at__isnull=True).count() == 1
    marker.keyboard.press("Escape")
    assert hook(marker, "selection()") == [1402, 1403]


def test_the_list_draws_the_ground_tracks_and_opens_one_and_names_are_text(page, platform, track, make_user):
    hostile = '<img src=x onerror="window.pwned=1">'
    Track.objects.filter(pk=track.pk).update(key=hostile)  # a product's name, from the file
    make_user(Role.ANNOTATOR, "track-browser")
    log_in(page, "track-browser")
    page.goto("/tracks/")
    expect(page.locator("#track-app")).to_have_attribute("data-state", "ready")
    expect(page.locator("#track-app")).to_have_attribute("data-tracks", "1")
    expect(page.locator("nav a", has_text="Tracks")).to_have_count(1)
    mid = track.geometry["coordinates"][len(track.geometry["coordinates"]) // 2]
    point = page.evaluate("([lat, lon]) => window.cryolabelTracks.pagePoint(lat, lon)", [mid[1], mid[0]])
    page.mouse.move(point["x"], point["y"])
    page.mouse.move(point["x"] + 1, point["y"])
    expect(page.locator(".leaflet-tooltip")).to_contain_text(hostile)
    assert page.locator(".leaflet-tooltip img").count() == 0
    page.mouse.click(point["x"], point["y"])
    page.wait_for_url(f"**/tracks/{track.pk}/")
    expect(page.locator("#track-app")).to_have_attribute("data-state", "ready")
    expect(page.locator("#track-info")).to_contain_text(hostile)
    assert page.evaluate("window.pwned === undefined")
