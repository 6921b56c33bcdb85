"""The Models page: an admin presses Train on imported labels and watches the epochs arrive live,
then reads the new version's loss curves, confusion matrix and F1 per class, and activates an older
version by hand; an expert reads the same page without Train or Activate; refusals (no labels, one
class only, a hyper-parameter the network does not know) show their reason.

The 60 demo imagettes get imported labels (4 classes, by position); the real Celery worker of the
`platform` fixture trains on the CPU, with a tiny recipe (resnet18 at 32 px) sent from the page."""

import json

import pytest
from playwright.sync_api import expect

from accounts.roles import Role
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.services]

TRAIN_TIMEOUT = 120_000  # ms; the first job of the worker imports torch
EPOCHS = 2
TINY = {"arch": "resnet18", "image_size": 32, "batch_size": 16, "augment_speckle": 0.0}

# Every change of the train-job panel, as the page shows it: [job state, train-loss points drawn, time left].
RECORD_LIVE = """() => {
  window.trainLog = [];
  const box = document.getElementById("train-job");
  const timeLeft = () => [...document.querySelectorAll("#train-job-facts dt")]
    .filter((dt) => dt.textContent === "time left").map((dt) => dt.nextElementSibling.textContent).join("");
  const note = () => window.trainLog.push([box.dataset.state || "",
    document.querySelectorAll("#live-loss-chart circle.point[data-series=train_loss]").length, timeLeft()]);
  new MutationObserver(note).observe(box, { attributes: true, childList: true, subtree: true });
}"""


def _import_labels(imagettes, classes_of) -> None:
    from annotations.services.labels import label_decide

    for position, item in enumerate(imagettes):
        label_decide(imagette=item, label_mask=1 << classes_of(position), source="imported")


@pytest.fixture
def labelled(platform_imagettes, demo_imagette_files):
    """The demo imagettes with their ground truth (ground_truth.csv, 10 classes) imported as labels."""
    from annotations.readers import read_ground_truth
    from annotations.wv_classes import class_by_slug

    truth = read_ground_truth(demo_imagette_files / "ground_truth.csv")
    by_position = [class_by_slug(truth[item.key][0]).index for item in platform_imagettes]
    _import_labels(platform_imagettes, by_position.__getitem__)
    return platform_imagettes


def _open_as(page, username: str) -> None:
    log_in(page, username)
    page.goto("/models/")
    expect(page.locator("#live")).to_have_text("live")


def _press_train(page, *, epochs: int, hparams: dict | None = None) -> None:
    page.fill("#train-epochs", str(epochs))
    if hparams is not None:
        page.click("#train-options summary")
        page.fill("#train-hparams", json.dumps(hparams))
    page.click("#train-button")


def _cells(page) -> list[dict]:
    return page.locator("#confusion-matrix rect[data-row][data-col]").evaluate_all(
        "nodes => nodes.map(n => ({row: +n.dataset.row, col: +n.dataset.col, count: +n.dataset.count}))"
    )


def _versions_from_api(page) -> dict[int, dict]:
    response = page.request.get("/api/v1/models/?network=classifier")
    assert response.ok, response.text()
    return {v["number"]: v for v in response.json()}


def test_admin_trains_watches_live_and_activates(page, labelled, make_user):
    from annotations.wv_classes import WV_CLASSES
    from jobs.models import Job
    from training.models import ModelVersion
    from training.services.registry import model_activate

    make_user(Role.ADMIN, "trainer")
    _open_as(page, "trainer")
    expect(page.locator("#versions-table tbody")).to_contain_text("No version yet")
    page.evaluate(RECORD_LIVE)

    _press_train(page, epochs=EPOCHS, hparams=TINY)
    box = page.locator("#train-job")
    expect(box).to_be_visible()
    expect(page.locator("#train-button")).to_be_disabled()
    expect(box).to_have_attribute("data-state", "succeeded", timeout=TRAIN_TIMEOUT)

    # The epochs arrived one by one while the job ran: the curve grew before the job ended.
    log = page.evaluate("window.trainLog")
    assert any(state == "running" and points > 0 for state, points, _ in log), log
    assert [points for _, points, _ in log] == sorted(points for _, points, _ in log), log
    # While it ran, the time left was estimated from the epochs done (none before the first one ended).
    assert all(left in ("", "estimated after the first epoch") for state, points, left in log
               if state == "running" and points == 0), log
    assert any(left.startswith("about ") for state, points, left in log if state == "running" and points > 0), log
    live = page.locator("#live-loss-chart")
    for series in ("train_loss", "val_loss", "val_top1"):
        expect(live.locator(f"circle.point[data-series={series}]")).to_have_count(EPOCHS)
    facts = page.locator("#train-job-facts")
    expect(facts).to_contain_text(f"{EPOCHS} of {EPOCHS} done")
    expect(facts.locator(".f1-chips .chip")).to_have_count(len(WV_CLASSES))
    expect(page.locator("#train-button")).to_be_enabled()

    job = Job.objects.get(kind="train")
    assert job.state == Job.State.SUCCEEDED
    assert job.params["hparams"] == TINY and job.params["epochs"] == EPOCHS
    assert [row["epoch"] for row in job.metrics["history"]] == list(range(1, EPOCHS + 1))

    # The versions reloaded by themselves: v1, selected, its plots drawn from its row. It is active only when it
    # beat the validation baseline (two tiny epochs may not); either way the job, its row and its details say why.
    first = ModelVersion.objects.get()
    reason = first.activation_reason
    assert reason.startswith("first version: " if first.is_active else "not activated: "), reason
    expect(facts).to_contain_text("v1 (now active)" if first.is_active else f"v1 ({reason})")
    assert first.hparams["image_size"] == 32 and first.hparams["batch_size"] == 16
    rows = page.locator("#versions-table tr[data-version-id]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-version-id", str(first.pk))
    expect(rows.first).to_have_attribute("data-active", "true" if first.is_active else "false")
    expect(rows.first).to_contain_text("resnet18 · 32 px")
    expect(rows.first).to_contain_text(reason)
    expect(rows.first.locator(".activate-button")).to_have_count(0 if first.is_active else 1)
    detail = page.locator("#version-detail")
    expect(detail).to_have_attribute("data-version-id", str(first.pk))
    for series in ("train_loss", "val_loss"):
        expect(page.locator(f"#loss-chart circle.point[data-series={series}]")).to_have_count(EPOCHS)
    expect(page.locator("#metrics-chart circle.point[data-series=val_top1]")).to_have_count(EPOCHS)
    expect(page.locator("#loss-chart path.line")).to_have_count(2)
    cells = _cells(page)
    assert len(cells) == 100
    counts = {(c["row"], c["col"]): c["count"] for c in cells}
    assert counts == {(i, j): first.confusion[i][j] for i in range(10) for j in range(10)}
    assert sum(counts.values()) > 0
    expect(page.locator("#confusion-matrix text[data-row-label='0']")).to_contain_text(WV_CLASSES[0].name)
    f1_shown = page.locator("#f1-table tbody tr[data-slug]").evaluate_all(
        "rows => Object.fromEntries(rows.map(r => [r.dataset.slug, r.dataset.testF1 ? +r.dataset.testF1 : null]))"
    )
    assert f1_shown == first.test_metrics["per_class_f1"]
    assert list(f1_shown) == [c.slug for c in WV_CLASSES]
    expect(page.locator("#detail-activation")).to_contain_text(reason)
    expect(page.locator("#detail-activation")).to_contain_text("baseline")

    # A second version (a row like a training job leaves, made directly to keep the test short) takes over.
    second = ModelVersion.objects.create(
        network="classifier", number=2, snapshot=first.snapshot, hparams=first.hparams, history=first.history[:1],
        val_metrics=first.val_metrics, test_metrics=first.test_metrics, confusion=first.confusion,
        val_score=first.val_score, checkpoint="models/classifier/v2.pt",
    )
    model_activate(version=second, reason="made for the test")
    page.reload()
    expect(rows).to_have_count(2)
    expect(page.locator("#versions-table tr[data-active=true]")).to_have_attribute("data-version-id", str(second.pk))
    expect(detail).to_have_attribute("data-version-id", str(second.pk))
    expect(page.locator("#loss-chart circle.point[data-series=train_loss]")).to_have_count(1)

    # The admin activates the older one with its button: the badge moves and the API agrees.
    older = page.locator(f"#versions-table tr[data-version-id='{first.pk}']")
    expect(older).to_contain_text(f"was active: {reason}" if first.is_active else reason)
    older.locator(".activate-button").click()
    expect(older).to_have_attribute("data-active", "true")
    expect(page.locator(f"#versions-table tr[data-version-id='{second.pk}']")).to_have_attribute("data-active", "false")
    expect(page.locator("#versions-table .badge.active")).to_have_count(1)
    expect(page.locator("#versions-table .activate-button")).to_have_count(1)
    expect(detail).to_have_attribute("data-version-id", str(first.pk))
    expect(page.locator("#detail-activation")).to_contain_text("activated by trainer")
    api = _versions_from_api(page)
    assert api[1]["is_active"] and not api[2]["is_active"]
    assert api[1]["activation_reason"] == "activated by trainer"

    # An expert reads the same page, plots included, with neither Train nor Activate.
    make_user(Role.EXPERT, "reader")
    page.context.clear_cookies()
    _open_as(page, "reader")
    expect(rows).to_have_count(2)
    expect(page.locator("#confusion-matrix rect[data-row]")).to_have_count(100)
    expect(page.locator("#loss-chart circle.point[data-series=train_loss]")).to_have_count(EPOCHS)
    expect(page.locator("#train-button")).to_have_count(0)
    expect(page.locator("#train-hparams")).to_have_count(0)
    expect(page.locator(".activate-button")).to_have_count(0)
    assert page.request.post(f"/api/v1/models/{second.pk}/activate/").status == 403
    assert ModelVersion.objects.get(is_active=True).pk == first.pk


def test_refusals_show_their_reason(page, platform_imagettes, make_user):
    from jobs.models import Job
    from training.models import ModelVersion, Snapshot

    make_user(Role.ADMIN, "trainer")
    _open_as(page, "trainer")
    box, error = page.locator("#train-job"), page.locator("#train-job-error")

    # No settled label yet: the job is refused before any snapshot is written.
    _press_train(page, epochs=1, hparams=TINY)
    expect(box).to_have_attribute("data-state", "failed", timeout=TRAIN_TIMEOUT)
    expect(error).to_contain_text("Training failed")
    expect(error).to_contain_text("no settled labels yet")
    assert not Snapshot.objects.exists()

    # One class only: the network refuses the snapshot before the first epoch.
    _import_labels(platform_imagettes, lambda position: 2)
    first_job = box.get_attribute("data-job-id")
    page.click("#train-button")
    expect(page.locator(f"#train-job:not([data-job-id='{first_job}'])")).to_have_attribute(
        "data-state", "failed", timeout=TRAIN_TIMEOUT)
    expect(error).to_contain_text("NetworkError")
    expect(error).to_contain_text("at least two classes")

    # A hyper-parameter the network does not know: refused on the worker, with the names it knows.
    second_job = box.get_attribute("data-job-id")
    page.fill("#train-hparams", json.dumps({"image_sise": 32}))
    page.click("#train-button")
    expect(page.locator(f"#train-job:not([data-job-id='{second_job}'])")).to_have_attribute(
        "data-state", "failed", timeout=TRAIN_TIMEOUT)
    expect(error).to_contain_text("unknown hyperparameter(s) for classifier: image_sise")

    # Not a JSON object, or a malformed name: refused before any job is queued, in the page and by the API.
    page.fill("#train-hparams", "[32]")
    page.click("#train-button")
    expect(page.locator("#train-flash")).to_contain_text("must be a JSON object")
    response = page.request.post("/api/v1/train/", data={"network": "classifier", "hparams": {"Image Size": 32}},
                                 headers={"X-CSRFToken": _csrf(page)})
    assert response.status == 400
    assert "not a hyper-parameter name" in json.dumps(response.json())
    assert Job.objects.filter(kind="train").count() == 3
    assert Job.objects.filter(kind="train", state=Job.State.FAILED).count() == 3
    expect(page.locator("#train-button")).to_be_enabled()
    expect(page.locator("#versions-table tr[data-version-id]")).to_have_count(0)
    assert not ModelVersion.objects.exists()


def _csrf(page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
