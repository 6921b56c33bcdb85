"""The Predict button (frontend/static/frontend/js/predict-button.js), placed on a page as its markup comment says
(an ES module, which imports api.js itself):
pressed with no active version it shows the reason; with a registered version it queues the job, follows it
through the real worker to `succeeded`, and tells the page (event `cryolabel:predicted`)."""

from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from accounts.roles import Role
from inference.models import Prediction
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.services]

MARKUP = """() => {
  const box = document.createElement("span");
  box.id = "predict-box";
  box.dataset.predict = "";
  box.dataset.network = "classifier";
  box.innerHTML = '<input type="number" data-predict-mc value="2">'
    + '<button type="button" data-predict-button>Predict</button><span data-predict-status role="status"></span>';
  document.body.prepend(box);
  window.predicted = [];
  box.addEventListener("cryolabel:predicted", (event) => window.predicted.push(event.detail));
  return new Promise((resolve) => {
    const script = document.createElement("script");
    script.type = "module";
    script.src = "/static/frontend/js/predict-button.js";
    script.onload = resolve;
    document.body.appendChild(script);
  });
}"""


def _register_tiny_version():
    import torch

    from training.models import ModelVersion, Snapshot
    from training.networks import get_network
    from training.services.registry import model_activate

    net = get_network("classifier")
    hparams = net.resolve_hparams({"arch": "resnet18", "image_size": 32, "amp": False, "dropout": 0.3}, "cpu")
    relative = "models/classifier/v1.pt"
    path = Path(settings.MEDIA_ROOT) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.checkpoint_state(net.build(hparams), None, 1, hparams), path)
    snapshot = Snapshot.objects.create(kind="imagettes", number=1, seed=0, fractions={"train": 1.0},
                                       agreement_threshold=0.6)
    version = ModelVersion.objects.create(network="classifier", number=1, snapshot=snapshot, checkpoint=relative)
    return model_activate(version=version, reason="registered by the test")


def test_the_predict_button_refuses_then_predicts(page, platform_imagettes, make_user):
    make_user(Role.ADMIN, "boss")
    log_in(page, "boss")
    page.goto("/jobs/")
    page.evaluate(MARKUP)
    button, status = page.locator("[data-predict-button]"), page.locator("[data-predict-status]")

    button.click()
    expect(status).to_contain_text("no active classifier version")
    expect(status).to_have_attribute("data-kind", "bad")
    expect(button).to_be_enabled()

    version = _register_tiny_version()
    button.click()
    expect(status).to_contain_text("succeeded", timeout=120_000)  # the worker's first job imports torch
    expect(status).to_contain_text("60 imagettes predicted")
    detail = page.evaluate("window.predicted")
    assert len(detail) == 1 and detail[0]["kind"] == "predict" and detail[0]["params"]["mc_dropout"] == 2
    rows = Prediction.objects.filter(model_version=version)
    assert rows.count() == 60 and not rows.filter(mutual_information__isnull=True).exists()
