"""The SAR contrast (sar-display.js) in headless Chromium against the real Daphne: the labelling page shows the
server's preview until a key sets a contrast; then the imagette's values are drawn on a canvas over it, and the keys
move the window and gamma in the expected direction (mean brightness); the setting follows the user to the review
page; Reset gives the preview back."""

import pytest
from playwright.sync_api import expect

from accounts.roles import Role
from tests.e2e.conftest import log_in

# one_mode: page rendering: the same on either database
pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.one_mode]

USER = "sar-expert"

# Whether the canvas over `selector` shows the current image with the stored setting (its last render is done).
RENDERED = """([selector, key]) => {
  const img = document.querySelector(selector);
  const canvas = img && img.nextElementSibling;
  const match = /imagettes\\/(\\d+)\\/preview/.exec((img && img.getAttribute("src")) || "");
  const setting = localStorage.getItem(key);
  return Boolean(match && setting && canvas && canvas.classList.contains("sar-canvas") && !canvas.hidden
    && canvas.dataset.rendered === `${match[1]}|${setting}`);
}"""

# Mean grey of the canvas over `selector`, or of the preview image itself when `preview` is true.
MEAN = """([selector, preview]) => {
  const img = document.querySelector(selector);
  let source = img.nextElementSibling;
  if (preview) {
    source = document.createElement("canvas");
    source.width = img.naturalWidth;
    source.height = img.naturalHeight;
    source.getContext("2d").drawImage(img, 0, 0);
  }
  const data = source.getContext("2d").getImageData(0, 0, source.width, source.height).data;
  let sum = 0;
  for (let i = 0; i < data.length; i += 4) sum += data[i];
  return sum / (data.length / 4);
}"""


@pytest.fixture
def predicted(platform_imagettes):
    """An active classifier's predictions on two imagettes, so the review page has something to show."""
    from inference.models import Prediction
    from training.models import ModelVersion, Snapshot

    snapshot = Snapshot.objects.create(kind="imagettes", number=1, seed=0, fractions={"train": 0.75, "val": 0.2,
                                       "test": 0.05},
                                       agreement_threshold=0.6)
    version = ModelVersion.objects.create(network="classifier", number=1, snapshot=snapshot,
                                          checkpoint="checkpoints/v1.pt", is_active=True)
    for item, entropy in zip(platform_imagettes[:2], (0.9, 0.8), strict=True):
        Prediction.objects.create(imagette=item, model_version=version, probabilities=[0.85] + [0.02] * 9,
                                  label_mask=0b1, top1=0, confidence=0.85, entropy=entropy, margin=0.8,
                                  disagrees=False)
    return platform_imagettes[:2]


def _press_and_render(page, key: str, selector: str) -> dict:
    page.keyboard.press(key)
    page.wait_for_function(RENDERED, arg=[selector, f"cryolabel.display.{USER}"])
    return page.evaluate(f"() => JSON.parse(localStorage.getItem('cryolabel.display.{USER}'))")


def _window(setting: dict) -> list[float]:
    return setting["db"] if setting["mode"] == "db" else setting["pct"]


def test_contrast_keys_change_the_picture_and_follow_the_user(page, predicted, make_user):
    make_user(Role.EXPERT, USER)
    log_in(page, USER)
    page.goto("/label/")
    image = "#current-image"
    page.wait_for_function("() => { const img = document.getElementById('current-image');"
                           " return img.getAttribute('src') && img.complete && img.naturalWidth > 0; }")
    controls = page.locator("#labeller [data-sar-display]")
    expect(controls).to_have_attribute("data-mode", "preview")  # the default: the server's preview, no canvas
    expect(page.locator(".sar-canvas:not([hidden])")).to_have_count(0)
    preview_mean = page.evaluate(MEAN, [image, True])

    # The first key starts from the preview's own look; one step down and one up again is that look.
    start = _press_and_render(page, "[", image)
    brighter = page.evaluate(MEAN, [image, False])
    back = _press_and_render(page, "]", image)
    assert _window(back)[0] == _window(start)[0] + 1
    assert abs(page.evaluate(MEAN, [image, False]) - preview_mean) < 15  # no jump from the preview
    # The pixels of the upcoming items are fetched ahead, now that a contrast is set.
    page.wait_for_function("() => new Set(performance.getEntriesByType('resource').map((e) => e.name)"
                           ".filter((n) => n.includes('/pixels/'))).size >= 3")

    # The window moved up: darker. Gamma up: brighter mid-tones.
    page.keyboard.press("]")
    darker_setting = _press_and_render(page, "]", image)
    assert _window(darker_setting)[0] == _window(start)[0] + 3
    darker = page.evaluate(MEAN, [image, False])
    assert darker < brighter
    gamma = _press_and_render(page, "'", image)
    assert gamma["gamma"] > 1 and page.evaluate(MEAN, [image, False]) > darker
    expect(controls.locator(".sar-low")).to_have_value(str(_window(gamma)[0]).removesuffix(".0"))

    # The same user on the review page: the same contrast, drawn over the review image.
    page.goto("/review/")
    expect(page.locator("#review-image")).to_have_attribute("src", f"/api/v1/imagettes/{predicted[0].pk}/preview/")
    page.wait_for_function(RENDERED, arg=["#review-image", f"cryolabel.display.{USER}"])
    assert page.evaluate(f"() => JSON.parse(localStorage.getItem('cryolabel.display.{USER}'))") == gamma
    review_controls = page.locator(".review-stage [data-sar-display]")
    expect(review_controls).to_have_attribute("data-mode", gamma["mode"])

    # Reset: the preview again, and nothing kept.
    page.keyboard.press("\\")
    expect(review_controls).to_have_attribute("data-mode", "preview")
    expect(page.locator(".sar-canvas:not([hidden])")).to_have_count(0)
    assert page.evaluate(f"() => localStorage.getItem('cryolabel.display.{USER}')") is None
