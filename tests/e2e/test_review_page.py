"""The review queue in headless Chromium against the real Daphne: an expert opens it, accepts the most uncertain
prediction with the keyboard, corrects the next one, meets a clear refusal where another expert was quicker,
skips one, switches to the model-vs-crowd order; the accepted and corrected labels are in the next snapshot.

The predictions are rows written here (an active classifier v1 over six of the demo imagettes, known scores),
so no training runs; the previews are the real ones the ingest wrote."""

import pytest
from playwright.sync_api import expect

from accounts.roles import Role
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.services]

# (entropy, confidence, predicted mask, disagrees with the crowd) in the order "most uncertain" serves them.
PREDICTIONS = [
    (0.95, 0.20, 0b101, False),  # pure ocean waves + micro convective cells: accepted with "a"
    (0.90, 0.25, 0b1, False),  # pure ocean waves: corrected to wind streaks with 2, then Enter
    (0.80, 0.30, 0b100000, False),  # sea ice: another expert decides it first -> refused
    (0.70, 0.40, 0b1000, False),  # rain cells: skipped
    (0.60, 0.50, 0b10, False),
    (0.10, 0.90, 0b1000000, True),  # icebergs, certain but against the crowd: first in "model vs crowd"
]


@pytest.fixture
def predicted(platform_imagettes):
    from inference.models import Prediction
    from training.models import ModelVersion, Snapshot

    snapshot = Snapshot.objects.create(kind="imagettes", number=1, seed=0, fractions={"train": 0.75, "val": 0.2,
                                       "test": 0.05},
                                       agreement_threshold=0.6)
    version = ModelVersion.objects.create(network="classifier", number=1, snapshot=snapshot,
                                          checkpoint="checkpoints/v1.pt", is_active=True)
    items = platform_imagettes[:len(PREDICTIONS)]
    for item, (entropy, confidence, mask, disagrees) in zip(items, PREDICTIONS, strict=True):
        probabilities = [0.85 if mask >> i & 1 else 0.08 for i in range(10)]
        Prediction.objects.create(imagette=item, model_version=version, probabilities=probabilities, label_mask=mask,
                                  top1=mask.bit_length() - 1, confidence=confidence, entropy=entropy,
                                  margin=1 - confidence, disagrees=disagrees)
    return items


def test_expert_accepts_and_corrects_with_the_keyboard(page, predicted, make_user):
    from annotations.models import Imagette
    from annotations.selectors import slugs_to_mask
    from annotations.services.labels import label_decide
    from training.models import SnapshotItem
    from training.services.snapshots import snapshot_create

    accepted, corrected, contested, skipped, after_skip, disagreeing = predicted
    make_user(Role.EXPERT, "reviewer")
    log_in(page, "reviewer")
    page.goto("/review/")

    # The most uncertain first, with its prediction, probabilities as bars and scores.
    expect(page.locator("#review-id")).to_have_text(f"#{accepted.pk}")
    expect(page.locator("#model-info")).to_contain_text("classifier v1 (active)")
    expect(page.locator("#predicted .chip")).to_have_count(2)
    expect(page.locator("#scores [data-score=entropy]")).to_have_text("0.95")
    expect(page.locator("#scores [data-score=confidence]")).to_have_text("20%")
    ocean = page.locator(".review-class[data-slug=pure_ocean_waves]")
    expect(ocean).to_have_attribute("data-predicted", "true")
    expect(ocean).to_have_attribute("aria-pressed", "false")  # a correction starts from no class
    expect(page.locator("#will-store")).to_have_attribute("data-kind", "accept")
    expect(ocean.locator(".p")).to_have_text("85%")
    expect(page.locator("#review-image")).to_have_attribute("src", f"/api/v1/imagettes/{accepted.pk}/preview/")
    page.wait_for_function("() => { const img = document.getElementById('review-image');"
                           " return img.complete && img.naturalWidth > 0; }")  # the real preview PNG, decoded
    expect(page.locator("#crowd")).to_contain_text("No crowd consensus yet")

    # "a" accepts the prediction.
    page.keyboard.press("a")
    expect(page.locator("#review-id")).to_have_text(f"#{corrected.pk}")
    expect(page.locator(f"#review-log li[data-imagette-id='{accepted.pk}']")).to_contain_text("accepted")

    # 2 chooses wind streaks: a correction that replaces the predicted pure ocean waves, submitted with Enter.
    page.keyboard.press("2")
    expect(page.locator(".review-class[aria-pressed=true]")).to_have_count(1)
    expect(page.locator("#correct")).to_be_visible()
    expect(page.locator("#accept")).to_be_hidden()
    page.keyboard.press("Enter")
    expect(page.locator("#review-id")).to_have_text(f"#{contested.pk}")
    expect(page.locator(f"#review-log li[data-imagette-id='{corrected.pk}']")).to_contain_text("corrected")
    expect(page.locator("#review-message")).to_contain_text("Wind Streaks")

    # Another expert decides the shown item first: Enter is refused, clearly, and nothing of ours is saved.
    other = make_user(Role.EXPERT, "quicker")
    label_decide(imagette=Imagette.objects.get(pk=contested.pk), label_mask=slugs_to_mask(["oceanic_front"]),
                 source="expert", author=other)
    page.keyboard.press("Enter")
    message = page.locator("#review-message")
    expect(message).to_contain_text(f"Refused: another expert decided #{contested.pk}")
    expect(message).to_contain_text("Oceanic Front")
    expect(message).to_contain_text("Nothing of yours was saved")
    expect(message).to_have_attribute("data-conflict", str(contested.pk))
    assert Imagette.objects.get(pk=contested.pk).label_mask == slugs_to_mask(["oceanic_front"])
    page.keyboard.press("Enter")  # on to the next one
    expect(page.locator("#review-id")).to_have_text(f"#{skipped.pk}")
    page.keyboard.press("s")
    expect(page.locator("#review-id")).to_have_text(f"#{after_skip.pk}")
    expect(page.locator("#session-count")).to_have_text("2 reviewed")

    # The model-vs-crowd order puts the disagreeing prediction first, certain as it is.
    page.click(".strategy[data-strategy=disagreement]")
    expect(page.locator("#review-id")).to_have_text(f"#{disagreeing.pk}")
    expect(page.locator("#disagree-badge")).to_be_visible()

    # Both decisions are in the next snapshot, with what the expert chose and where it came from.
    snapshot = snapshot_create()
    rows = {i.imagette_id: (i.label_mask, i.label_source) for i in SnapshotItem.objects.filter(snapshot=snapshot)}
    assert rows[accepted.pk] == (0b101, "prediction")
    assert rows[corrected.pk] == (slugs_to_mask(["wind_streaks"]), "expert")
    assert rows[contested.pk] == (slugs_to_mask(["oceanic_front"]), "expert")  # the quicker expert's, untouched
    assert skipped.pk not in rows and Imagette.objects.get(pk=skipped.pk).label_source == ""


def test_a_correction_replaces_the_prediction_unless_the_expert_starts_from_it(page, predicted, make_user):
    """A class key starts a correction from no class (it used to add to the predicted ones); "will store" says
    what Enter writes at every step; P starts from the prediction when the expert wants to keep part of it."""
    from annotations.models import Imagette
    from annotations.selectors import slugs_to_mask

    replaced, extended = predicted[:2]  # predicted: ocean waves + micro convective cells; ocean waves
    make_user(Role.EXPERT, "corrector")
    log_in(page, "corrector")
    page.goto("/review/")
    will_store = page.locator("#will-store")
    expect(page.locator("#review-id")).to_have_text(f"#{replaced.pk}")
    expect(will_store).to_have_attribute("data-kind", "accept")
    expect(will_store.locator(".chip")).to_have_text(["Pure Ocean Waves", "Micro Convective Cells"])
    expect(page.locator(".review-class[aria-pressed=true]")).to_have_count(0)

    page.keyboard.press("6")  # sea ice: the whole correction, nothing of the prediction
    expect(will_store).to_have_attribute("data-kind", "correction")
    expect(will_store.locator(".chip")).to_have_text(["Sea Ice"])
    page.keyboard.press("Escape")  # clears: back to accepting the prediction
    expect(will_store).to_have_attribute("data-kind", "accept")
    page.keyboard.press("6")
    expect(will_store.locator(".chip")).to_have_text(["Sea Ice"])
    page.keyboard.press("Enter")
    expect(page.locator("#review-id")).to_have_text(f"#{extended.pk}")
    assert Imagette.objects.get(pk=replaced.pk).label_mask == slugs_to_mask(["sea_ice"])

    page.keyboard.press("p")  # the predicted classes, to add one
    expect(will_store.locator(".chip")).to_have_text(["Pure Ocean Waves"])
    expect(will_store).to_have_attribute("data-kind", "accept")
    page.keyboard.press("2")
    expect(will_store).to_have_attribute("data-kind", "correction")
    expect(will_store.locator(".chip")).to_have_text(["Pure Ocean Waves", "Wind Streaks"])
    page.keyboard.press("Enter")
    expect(page.locator(f"#review-log li[data-imagette-id='{extended.pk}']")).to_contain_text("corrected")
    assert Imagette.objects.get(pk=extended.pk).label_mask == slugs_to_mask(["pure_ocean_waves", "wind_streaks"])
