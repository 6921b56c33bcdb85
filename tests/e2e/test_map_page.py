"""The map of detections in Chromium: the active classifier's predictions drawn as points on the world map, the
filters reducing them, a click opening the imagette; and the labelling page pre-selecting the model's classes
once the annotator turns suggestions on (and only then)."""

import re

import pytest
from playwright.sync_api import expect

from accounts.roles import Role
from annotations.models import Vote
from annotations.selectors import mask_to_slugs
from annotations.wv_classes import WV_CLASSES
from tests.conftest import cast_vote
from tests.e2e.conftest import log_in

# one_mode: the map API runs on both databases in unit tests
pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.one_mode]

AN_ID = re.compile(r"^\d+$")


def predict_all(items) -> dict[int, tuple[int, float]]:
    """An active classifier version and one prediction per imagette: class i % 10, confidence 0.5 to 0.9."""
    from inference.models import Prediction
    from training.models import ModelVersion, Snapshot

    snapshot = Snapshot.objects.create(kind="imagettes", number=1, seed=0, fractions={"train": 0.75, "val": 0.2,
                                       "test": 0.05},
                                       agreement_threshold=0.5)
    version = ModelVersion.objects.create(network="classifier", number=3, snapshot=snapshot,
                                          checkpoint="models/classifier/v3.pt", is_active=True)
    made = {}
    for n, item in enumerate(items):
        cls, confidence = n % len(WV_CLASSES), 0.5 + (n // len(WV_CLASSES) % 5) * 0.1
        Prediction.objects.create(imagette=item, model_version=version, label_mask=1 << cls, top1=cls,
                                  confidence=confidence, probabilities=[0.9 if i == cls else 0.02 for i in range(10)],
                                  entropy=0.3, margin=0.6)
        made[item.pk] = (cls, confidence)
    return made


def test_the_map_of_detections_shows_points_and_filters_them(page, platform_imagettes, make_user):
    make_user(Role.EXPERT, "cartographer")
    predicted = predict_all(platform_imagettes)
    placed = {i.pk: predicted[i.pk] for i in platform_imagettes if i.center_lat is not None}
    assert len(placed) >= 20  # the demo's SAFE and GeoTIFF imagettes carry their position
    sea_ice = next(c for c in WV_CLASSES if c.slug == "sea_ice")
    ice = {pk for pk, (cls, _) in placed.items() if cls == sea_ice.index}
    sure_ice = {pk for pk in ice if placed[pk][1] >= 0.7 - 1e-9}
    assert ice and sure_ice and len(sure_ice) < len(ice) < len(placed)

    log_in(page, "cartographer")
    page.goto("/map/?source=predicted")
    app = page.locator("#map-app")
    expect(app).to_have_attribute("data-state", "ready")
    expect(app).to_have_attribute("data-points", str(len(placed)))
    # Every point is drawn on the canvas at the world view, and the legend counts them by class.
    assert page.evaluate("window.cryolabelMap.drawnCount()") == len(placed)
    assert sorted(page.evaluate("window.cryolabelMap.ids()")) == sorted(placed)
    expect(page.locator(f".legend .count[data-slug={sea_ice.slug}]")).to_have_text(str(len(ice)))
    expect(app).to_have_attribute("data-land", "ready")  # the bundled Natural Earth land, no tile server

    # Filters: one class, then a minimum confidence; the URL keeps them.
    page.click("#classes-none")
    expect(app).to_have_attribute("data-points", "0")
    page.locator(f".class-filter[value={sea_ice.slug}]").check()
    expect(app).to_have_attribute("data-points", str(len(ice)))
    assert "classes=sea_ice" in page.url
    page.locator("#confidence-filter").evaluate("(el) => { el.value = '0.7'; el.dispatchEvent(new Event('input')); }")
    expect(app).to_have_attribute("data-points", str(len(sure_ice)))
    expect(page.locator("#confidence-value")).to_have_text("70%")
    assert sorted(page.evaluate("window.cryolabelMap.ids()")) == sorted(sure_ice)

    # Clicking a point opens its imagette: the preview, its predicted class and the confidence.
    target = min(sure_ice)
    item = next(i for i in platform_imagettes if i.pk == target)
    page.evaluate("([lat, lon]) => window.cryolabelMap.map.setView([lat, lon], 8, {animate: false})",
                  [item.center_lat, item.center_lon])
    page.wait_for_function("id => window.cryolabelMap.containerPointOf(id) !== null", arg=target)
    point = page.evaluate("id => window.cryolabelMap.containerPointOf(id)", target)
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    popup = page.locator(f".map-popup[data-imagette-id='{target}']")
    expect(popup).to_be_visible()
    expect(popup.locator("img")).to_have_attribute("src", f"/api/v1/imagettes/{target}/preview/")
    page.wait_for_function("() => { const img = document.querySelector('.map-popup img');"
                           " return img && img.complete && img.naturalWidth > 0; }")
    expect(popup.locator(".chip")).to_have_text(sea_ice.name)
    expect(popup).to_contain_text(f"confidence {round(placed[target][1] * 100)}%")
    expect(popup).to_contain_text("classifier v3")

    # The density view counts the same filtered points in cells.
    page.click("#view-density")
    expect(app).to_have_attribute("data-view", "density")
    expect(app).to_have_attribute("data-points", str(len(sure_ice)))
    expect(page.locator("#density-legend")).to_be_visible()
    assert "view=density" in page.url


def test_the_label_page_pre_selects_the_model_suggestion_only_when_asked(page, platform_imagettes, make_user):
    user = make_user(Role.ANNOTATOR, "suggested")
    predicted = predict_all(platform_imagettes)
    log_in(page, "suggested")
    page.goto("/label/")
    image = page.locator("#current-image")
    expect(image).to_have_attribute("data-imagette-id", AN_ID)
    toggle = page.locator("#suggestions-toggle")
    expect(toggle).not_to_be_checked()  # blind voting is the default
    expect(page.locator("#suggestion-badge")).to_be_hidden()
    expect(page.locator(".class-button[aria-pressed=true]")).to_have_count(0)

    toggle.check()
    first = int(image.get_attribute("data-imagette-id"))
    first_class = WV_CLASSES[predicted[first][0]]
    expect(page.locator(f".class-button[data-slug={first_class.slug}]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".class-button[aria-pressed=true]")).to_have_count(1)
    expect(page.locator("#suggestion-badge")).to_be_visible()
    expect(page.locator("#suggestion-badge")).to_contain_text(first_class.name)

    # Enter takes the suggestion as it is; on the next item the annotator changes it before submitting.
    page.keyboard.press("Enter")
    expect(image).not_to_have_attribute("data-imagette-id", str(first))
    second = int(image.get_attribute("data-imagette-id"))
    second_class = WV_CLASSES[predicted[second][0]]
    other = next(c for c in WV_CLASSES if c.index != second_class.index)
    expect(page.locator(f".class-button[data-slug={second_class.slug}]")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press(second_class.key)  # off
    page.keyboard.press(other.key)  # on
    expect(page.locator(".class-button[aria-pressed=true]")).to_have_count(1)
    page.keyboard.press("Enter")
    expect(page.locator("#sync")).to_have_attribute("data-pending", "0")
    expect(page.locator("#count-total")).to_have_text("2")
    votes = {v.imagette_id: mask_to_slugs(v.label_mask) for v in Vote.objects.filter(annotator=user)}
    assert votes == {first: [first_class.slug], second: [other.slug]}
    # Both were cast with the model's classes on screen: recorded as not blind, whether taken or changed.
    assert list(Vote.objects.filter(annotator=user).values_list("suggested", flat=True)) == [True, True]

    # The setting is remembered for this user.
    page.reload()
    expect(image).to_have_attribute("data-imagette-id", AN_ID)
    expect(toggle).to_be_checked()
    third = int(image.get_attribute("data-imagette-id"))
    expect(page.locator(f".class-button[data-slug={WV_CLASSES[predicted[third][0]].slug}]")).to_have_attribute(
        "aria-pressed", "true")
    page.locator("#view-toggle").click()
    expect(page.locator(f".thumb[data-imagette-id='{third}'] .pred-badge")).to_be_visible()

    # Turned off: the untouched pre-selection goes, and the badges with it.
    toggle.uncheck()
    expect(page.locator(".class-button[aria-pressed=true]")).to_have_count(0)
    expect(page.locator(".thumb .pred-badge:visible")).to_have_count(0)


def test_curation_tiles_carry_the_prediction_badge(page, platform_imagettes, make_user):
    from annotations.services.consensus_run import consensus_run

    predicted = predict_all(platform_imagettes)
    voters = [make_user(Role.ANNOTATOR, f"crowd{i}") for i in range(3)]
    disputed = platform_imagettes[:4]
    for item in disputed:
        for n, voter in enumerate(voters):
            cast_vote(voter, item, 1 << n)
    consensus_run(method="majority")
    make_user(Role.EXPERT, "curator")
    log_in(page, "curator")
    page.goto("/curation/")
    tiles = page.locator("#curation-list li[data-imagette-id]")
    expect(tiles).to_have_count(len(disputed))
    for item in disputed:
        cls, confidence = predicted[item.pk]
        badge = page.locator(f"#curation-list li[data-imagette-id='{item.pk}'] .pred-badge")
        expect(badge).to_have_attribute("data-classes", WV_CLASSES[cls].slug)
        expect(badge).to_contain_text(f"{WV_CLASSES[cls].name} {round(confidence * 100)}%")
