"""Reviewing the `leads` network's prediction of a track in Chromium. The track of test_tracks_page (3 000 waveforms
across a scene; automatic labels: 0-199 unknown, 1000-1099 lead, the rest not lead) gets a prediction from a
stand-in network (its .npz written with known probabilities): lead over 1000-1099 (agreeing) and over 1500-1529
(where the labels say not lead: the disputed segment), unsure over 2500-2519.

An expert sees the Prediction panel, the probability curve and the uncertainty in the viewer, the map coloured by
probability with P; the disputed segment comes first, J selects it and pans the map there, A accepts the prediction
over it and its waveforms are drawn lead on the map at once, and after a reload; "Track reviewed" takes the track out
of the queue and "Next track to review" opens the next. /tracks/ lists the tracks to review, least sure first. An
annotator sees the prediction but no review controls, and the API refuses them an acceptance (403)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from playwright.sync_api import expect

from accounts.roles import Role
from annotations.models import Track, TrackLabelRange
from annotations.track_arrays import arrays_read, track_folder
from inference.models import TrackPrediction
from inference.services.track_predict import track_predict_item, track_predictions_store, track_samples
from tests.e2e import test_tracks_page
from tests.e2e.test_tracks_page import hook, open_track
from tests.unit.annotations.test_track_api import synthetic_track
from training.models import ModelVersion, Snapshot
from training.services.registry import model_activate

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.one_mode]

AGREED = slice(1000, 1100)  # lead, as the automatic labels say
DISPUTED = slice(1500, 1530)  # lead, where the automatic labels say not lead
UNSURE = slice(2500, 2520)


# The pass crossing a scene, as the track page's tests make it.
scene_files = test_tracks_page.scene_files
track = test_tracks_page.track


class StandIn:
    """A network's predict_track with known outputs (see the module's docstring); `unsure` scales how unsure it is
    over UNSURE, so that two tracks queue in a known order."""

    def __init__(self, unsure: float = 0.95):
        self.unsure = unsure

    def predict_track(self, model, arrays, hparams, device, *, mc_dropout=0, folder=None):
        n = len(arrays["waveforms"])
        p = np.full(n, 0.02, np.float32)
        p[AGREED] = 0.96
        p[DISPUTED] = 0.97
        p[UNSURE] = 0.45
        u = np.full(n, 0.05, np.float32)
        u[UNSURE] = self.unsure
        return {"probability": p, "uncertainty": u,
                "distance_m": np.where(p >= 0.5, 0.0, 900.0).astype(np.float32)}


def leads_version() -> ModelVersion:
    snapshot = Snapshot.objects.create(number=901, kind="tracks", seed=0, fractions={}, agreement_threshold=0)
    version = ModelVersion.objects.create(network="leads", kind="tracks", number=1, snapshot=snapshot,
                                          primary_metric="f1", checkpoint="x.pt")
    return model_activate(version=version, reason="e2e")


def predict(track: Track, version: ModelVersion, network: StandIn) -> TrackPrediction:
    """What the prediction job does for one track, with the stand-in: the .npz in MEDIA_ROOT and the row."""
    (sample,) = track_samples(Track.objects.filter(pk=track.pk))
    rows = track_predict_item(network=network, model=None, hparams={}, sample=sample, device="cpu", mc_dropout=0,
                              version=version)
    assert track_predictions_store(version=version, rows=rows) == 1
    return TrackPrediction.objects.get(track=track, model_version=version)


@pytest.fixture
def predicted(platform, track) -> TrackPrediction:
    return predict(track, leads_version(), StandIn())


def test_an_expert_reviews_the_disputed_segment_accepts_it_and_moves_on(browser, platform, track, predicted,
                                                                       make_user):
    # A second predicted track, surer than the first: the queue holds both, the first track first.
    other = synthetic_track(f"SRL_E2E_pass_0008_{uuid.uuid4().hex[:8]}", n=3000, lat0=80.0, lon0=10.0, seed=3)
    predict(other, predicted.model_version, StandIn(unsure=0.6))
    make_user(Role.EXPERT, "track-reviewer")
    page = open_track(browser, platform, track, "track-reviewer")
    app = page.locator("#track-app")

    # The panel: version, leads predicted, mean uncertainty, disagreements with the labels.
    expect(app).to_have_attribute("data-prediction", str(predicted.pk))
    expect(page.locator("#prediction-panel")).to_be_visible()
    expect(page.locator("#prediction-name")).to_have_text("leads v1")
    expect(page.locator("#prediction-leads")).to_have_text("130")
    expect(page.locator("#prediction-disagreements")).to_have_text("30")
    expect(page.locator("#prediction-uncertainty")).to_have_text(f"{predicted.uncertainty:.2f}")

    # The viewer draws the probability (quantised to 1/255) and the uncertainty beside the peakiness.
    curve = hook(page, "curve(args[0], args[1], args[2])", "lead probability", 1495, 1505)
    assert curve[:5] == pytest.approx([5 / 255] * 5, abs=1e-6) and min(curve[5:]) == pytest.approx(247 / 255, abs=1e-6)
    assert min(hook(page, "curve(args[0], args[1], args[2])", "uncertainty", 2500, 2520)) > 0.9
    assert len(hook(page, "curve(args[0], args[1], args[2])", "peakiness", 0, 3000)) == 3000

    # The disputed segment first; J selects it in the viewer and centres the map on it.
    expect(app).to_have_attribute("data-segments", "2")
    first = hook(page, "segments()")[0]
    assert (first["start"], first["stop"], first["disagreements"]) == (1495, 1535, 30)
    expect(page.locator("#segment-list .segment").first).to_contain_text("30 disputed")
    assert hook(page, "drawnLabel(args[0])", 1510) == 0
    page.keyboard.press("j")
    assert hook(page, "selection()") == [1495, 1535]
    expect(app).to_have_attribute("data-segment", "0")
    expect(page.locator("#segment-list .segment[aria-current=true]")).to_have_count(1)
    arrays = arrays_read(track_folder(track), ("lat", "lon"))
    lat, lon = float(arrays["lat"][1514]), float(arrays["lon"][1514])
    page.wait_for_function("([lat, lon]) => { const [a, b] = window.cryolabelTracks.mapCentre();"
                           " return Math.abs(a - lat) < 0.01 && Math.abs(b - lon) < 0.02; }", arg=[lat, lon])

    # A accepts the prediction over the selection: drawn lead on the map at once, stored as prediction ranges.
    page.keyboard.press("a")
    assert set(hook(page, "labels(args[0], args[1])", 1500, 1530)) == {1}
    assert {hook(page, "drawnLabel(args[0])", i) for i in (1500, 1514, 1529)} == {1}
    assert hook(page, "drawnLabel(args[0])", 1532) == 0
    page.wait_for_function("document.getElementById('undo').disabled === false")
    stored = list(TrackLabelRange.objects.filter(track=track).order_by("start")
                  .values_list("start", "stop", "label", "source"))
    assert stored == [(1495, 1500, "not_lead", "prediction"), (1500, 1530, "lead", "prediction"),
                      (1530, 1535, "not_lead", "prediction")]
    expect(page.locator("#prediction-disagreements")).to_have_text("0")
    expect(page.locator("#segment-list .segment.accepted")).to_have_count(1)

    # P colours the map by predicted probability (bins 0-4), and back.
    page.keyboard.press("p")
    assert hook(page, "mapColour()") == "probability"
    expect(page.locator("#probability-legend")).to_be_visible()
    assert hook(page, "drawnLabel(args[0])", 1050) == 4 and hook(page, "drawnLabel(args[0])", 1700) == 0
    page.keyboard.press("p")
    assert hook(page, "mapColour()") == "label" and hook(page, "drawnLabel(args[0])", 1514) == 1

    # After a reload: still lead, and the segment is no longer disputed (the unsure one comes first now).
    page.reload()
    expect(app).to_have_attribute("data-state", "ready")
    assert set(hook(page, "labels(args[0], args[1])", 1500, 1530)) == {1}
    assert hook(page, "drawnLabel(args[0])", 1514) == 1
    expect(app).to_have_attribute("data-segments", "1")
    assert hook(page, "segments()")[0]["start"] == 2495

    # Reviewed: out of the queue; the next track to review opens.
    expect(page.locator("#next-review")).to_be_hidden()
    page.locator("#prediction-reviewed").click()
    expect(page.locator("#next-review")).to_be_visible()
    predicted.refresh_from_db()
    assert predicted.reviewed
    page.locator("#next-review").click()
    page.wait_for_url(f"**/tracks/{other.pk}/")
    expect(page.locator("#track-app")).to_have_attribute("data-state", "ready")
    expect(page.locator("#track-app")).to_have_attribute("data-segments", "2")  # its own disputed and unsure ones

    # /tracks/ lists what is left to review, each a link to its track.
    page.goto("/tracks/")
    expect(app).to_have_attribute("data-state", "ready")
    expect(page.locator("#review-list li")).to_have_count(1)
    expect(page.locator("#review-list a")).to_have_attribute("href", f"/tracks/{other.pk}/")
    expect(page.locator("#review-list a")).to_have_text(other.key)


def test_an_annotator_sees_the_prediction_but_cannot_review_it(browser, platform, track, predicted, make_user):
    make_user(Role.ANNOTATOR, "track-annotator")
    page = open_track(browser, platform, track, "track-annotator")
    expect(page.locator("#prediction-panel")).to_be_visible()
    assert min(hook(page, "curve(args[0], args[1], args[2])", "lead probability", 1500, 1530)) > 0.95
    assert page.locator("#review-tools, #segment-list, #accept-prediction, #prediction-reviewed").count() == 0
    hook(page, "setView(args[0], args[1])", 1400, 400)
    page.keyboard.press("j")
    page.keyboard.press("a")
    assert hook(page, "selection()") == [0, 1]  # J did not select a segment
    assert hook(page, "label(args[0])", 1510) == 0  # A did not accept
    page.keyboard.press("p")  # the map by probability is for everyone
    assert hook(page, "mapColour()") == "probability"

    client = platform.login("track-annotator")
    assert client.post(f"/api/v1/track-predictions/{predicted.pk}/accept/",
                       json={"start": 1500, "stop": 1530}).status_code == 403
    assert client.post(f"/api/v1/track-predictions/{predicted.pk}/reviewed/").status_code == 403
    assert not TrackLabelRange.objects.filter(track=track).exists()

    # No review queue on /tracks/ for an annotator.
    other = page.context.new_page()  # the same session
    other.goto("/tracks/")
    expect(other.locator("#track-app")).to_have_attribute("data-state", "ready")
    assert other.locator("#review-tracks").count() == 0
