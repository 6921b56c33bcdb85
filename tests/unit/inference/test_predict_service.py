"""The prediction job's service (inference.services.predict), run in-process through `jobs.runner.run_job`:
refusals leave nothing behind, a re-run predicts only new imagettes, a new version takes over `is_current` (and a
re-activated one takes it back), `disagrees` compares with the imagette's label, `all` rewrites in place."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from django.conf import settings
from django.core.management import CommandError, call_command

from annotations.models import Consensus, Imagette
from inference.models import Prediction
from inference.services.predict import (
    PredictRefused,
    items_to_predict,
    predict_check,
    predictions_make_current,
    predictions_store,
)
from inference.tasks import predict_job
from jobs.models import Job
from jobs.runner import run_job
from training.models import ModelVersion, Snapshot
from training.networks import get_network
from training.services.registry import model_activate

TINY = {"arch": "resnet18", "image_size": 32, "amp": False, "dropout": 0.3, "seed": 0}


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory) -> Path:
    """An untrained resnet18 at 32 px (weights do not matter here), saved as the platform saves versions."""
    net = get_network("classifier")
    hparams = net.resolve_hparams(TINY, "cpu")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.save(net.checkpoint_state(net.build(hparams), None, 1, hparams), path)
    return path


@pytest.fixture
def register(checkpoint_file):
    """register(number, active=True, file=...) -> a ModelVersion whose checkpoint sits under MEDIA_ROOT."""
    snapshot = Snapshot.objects.create(kind="imagettes", number=1, seed=0, fractions={"train": 1.0},
                                       agreement_threshold=0.6)

    def _register(number: int, *, active: bool = True, file: Path | None = checkpoint_file,
                  network: str = "classifier") -> ModelVersion:
        relative = f"models/{network}/v{number}.pt"
        if file is not None:
            target = Path(settings.MEDIA_ROOT) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)
        version = ModelVersion.objects.create(network=network, number=number, snapshot=snapshot,
                                              hparams=dict(TINY), checkpoint=relative)
        if active:
            version = model_activate(version=version, reason="test")
        return version

    return _register


def predict(**params) -> Job:
    job = Job.objects.create(kind="predict", queue="gpu", params={"network": "classifier", **params})
    run_job(job.pk, predict_job, worker="test")
    job.refresh_from_db()
    return job


def snapshot_of_predictions() -> list[tuple]:
    return list(Prediction.objects.order_by("id").values_list("id", "imagette_id", "model_version_id", "is_current",
                                                              "label_mask", "confidence"))


# --- refusals: before any work, with the reason, nothing written -----------------------------------------------
def test_no_active_version_is_refused(ingested, register) -> None:
    register(1, active=False)
    with pytest.raises(PredictRefused, match="no active classifier version"):
        predict_check(network="classifier")
    job = predict()
    assert job.state == Job.State.FAILED
    assert "no active classifier version" in job.message and "train one" in job.message
    assert not Prediction.objects.exists()


def test_unknown_network_is_refused(ingested) -> None:
    with pytest.raises(PredictRefused, match="unknown network 'waves'.*classifier"):
        predict_check(network="waves")


def test_a_missing_checkpoint_file_is_refused(ingested, register) -> None:
    register(1, file=None)
    with pytest.raises(PredictRefused, match=r"checkpoint of classifier v1 is missing"):
        predict_check(network="classifier")
    job = predict()
    assert job.state == Job.State.FAILED and "is missing" in job.message
    assert not Prediction.objects.exists()


def test_a_checkpoint_of_another_network_is_refused(ingested, register, checkpoint_file, tmp_path) -> None:
    state = torch.load(checkpoint_file, weights_only=True)
    state["network"] = "sic"
    other = tmp_path / "sic.pt"
    torch.save(state, other)
    register(1, file=other)
    predict_check(network="classifier")  # the file exists: only the job, which reads it, can tell
    job = predict()
    assert job.state == Job.State.FAILED
    assert "classifier v1 cannot be loaded" in job.message and "network 'sic', not 'classifier'" in job.message
    assert not Prediction.objects.exists()


def test_a_file_that_is_no_checkpoint_is_refused(ingested, register, tmp_path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    register(1, file=junk)
    job = predict()
    assert job.state == Job.State.FAILED and "cannot be read" in job.message
    assert not Prediction.objects.exists()


def test_missing_pixels_are_refused_before_anything_changes(ingested, register) -> None:
    register(1)
    assert predict().state == Job.State.SUCCEEDED
    before = snapshot_of_predictions()
    register(2)  # a new version, and one imagette lost its pixels
    lost = ingested[5]
    (Path(settings.MEDIA_ROOT) / lost.data).unlink()
    job = predict()
    assert job.state == Job.State.FAILED
    assert "1 imagettes have no data on disk" in job.message and str(lost.pk) in job.message
    assert snapshot_of_predictions() == before  # v1's rows still current, no v2 row


# --- what a run writes ------------------------------------------------------------------------------------------
def test_a_run_predicts_every_imagette_then_only_the_new_ones(ingested, register, tmp_path) -> None:
    version = register(1)
    job = predict()
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.result["predicted"] == len(ingested) == 60 and job.result["model_version"] == version.pk
    assert job.progress == 1.0 and job.metrics["to_predict"] == 60
    rows = list(Prediction.objects.filter(model_version=version))
    assert sorted(r.imagette_id for r in rows) == [i.pk for i in ingested]
    for row in rows:
        assert row.is_current and not row.reviewed and row.job_id == job.pk
        assert len(row.probabilities) == 10 and all(0 <= p <= 1 for p in row.probabilities)
        assert 0 < row.label_mask < 1 << 10 and row.label_mask >> row.top1 & 1
        assert row.top1 == max(range(10), key=lambda k: row.probabilities[k])
        for score in (row.confidence, row.entropy, row.margin):
            assert 0 <= score <= 1
        assert row.mutual_information is None
    first = snapshot_of_predictions()

    from annotations.services.ingest import ingest_paths
    from demo.synthetic import write_demo_imagettes

    more = write_demo_imagettes(tmp_path / "more", 7, seed=99, layout="mixed", size=64).parent
    report = ingest_paths([more])
    assert not report.errors and len(report.created) == 7
    assert items_to_predict(version=version).count() == 7
    again = predict()
    assert again.state == Job.State.SUCCEEDED and again.result["predicted"] == 7
    assert snapshot_of_predictions()[:60] == first  # the earlier rows are untouched
    assert sorted(Prediction.objects.filter(job=again).values_list("imagette_id", flat=True)) == report.created

    idle = predict()
    assert idle.state == Job.State.SUCCEEDED and idle.result["predicted"] == 0
    assert "nothing new to predict" in idle.message
    assert Prediction.objects.count() == 67


def test_a_new_version_takes_over_and_a_reactivated_one_takes_back(ingested, register) -> None:
    v1 = register(1)
    assert predict().state == Job.State.SUCCEEDED
    v2 = register(2)
    assert items_to_predict(version=v2).count() == 60  # a new version predicts everything
    job = predict()
    assert job.state == Job.State.SUCCEEDED and job.result["predicted"] == 60
    assert Prediction.objects.filter(model_version=v2, is_current=True).count() == 60
    assert Prediction.objects.filter(model_version=v1, is_current=True).count() == 0
    assert Prediction.objects.filter(model_version=v1).count() == 60  # kept, for comparison

    model_activate(version=v1, reason="back to v1")
    back = predict()
    assert back.state == Job.State.SUCCEEDED
    assert back.result["predicted"] == 0 and back.result["made_current"] == 60
    assert Prediction.objects.filter(is_current=True, model_version=v1).count() == 60
    assert Prediction.objects.filter(is_current=True).count() == 60  # one current row per imagette


def test_disagreement_with_the_label_and_redo_in_place(ingested, register) -> None:
    register(1)
    assert predict().state == Job.State.SUCCEEDED
    by_item = {p.imagette_id: p for p in Prediction.objects.all()}
    same, other, crowd, unlabelled = ingested[:4]
    predicted = {item.pk: by_item[item.pk].label_mask for item in (same, other, crowd, unlabelled)}
    flip = (1 << 10) - 1  # every class: never what one row predicts (a prediction holds few of them)

    Imagette.objects.filter(pk=same.pk).update(label_mask=predicted[same.pk], label_source="expert")
    Imagette.objects.filter(pk=other.pk).update(label_mask=predicted[other.pk] ^ flip, label_source="imported")
    Imagette.objects.filter(pk__in=[crowd.pk, unlabelled.pk]).update(label_mask=None, label_source="")
    Consensus.objects.filter(imagette__in=[same, other, crowd, unlabelled]).delete()
    Consensus.objects.create(imagette=crowd, label_mask=predicted[crowd.pk] ^ flip, method="majority", n_votes=3)
    Prediction.objects.filter(imagette=same).update(reviewed=True)

    job = predict(all=True, mc_dropout=3)
    assert job.state == Job.State.SUCCEEDED and job.result["predicted"] == 60
    rows = {p.imagette_id: p for p in Prediction.objects.all()}
    assert len(rows) == 60  # rewritten in place, not doubled
    assert [rows[i.pk].disagrees for i in (same, other, crowd, unlabelled)] == [False, True, True, False]
    assert rows[same.pk].reviewed and rows[same.pk].id == by_item[same.pk].id  # the expert's mark stays
    assert all(r.job_id == job.pk and r.mutual_information is not None and 0 <= r.mutual_information <= 1
               for r in rows.values())  # fmt: skip


def test_storing_a_batch_twice_is_harmless_and_deleted_items_are_dropped(ingested, register) -> None:
    version = register(1)
    row = {"probabilities": [0.9] + [0.1] * 9, "label_mask": 1, "top1": 0, "confidence": 0.35, "entropy": 0.47,
           "margin": 0.8, "mutual_information": None}
    rows = [{**row, "item_id": ingested[0].pk}, {**row, "item_id": ingested[1].pk}]
    assert predictions_store(version=version, rows=rows) == 2
    assert predictions_store(version=version, rows=rows) == 2
    assert Prediction.objects.count() == 2
    gone = ingested[2].pk
    Imagette.objects.filter(pk=gone).delete()
    assert predictions_store(version=version, rows=[{**row, "item_id": gone}]) == 0
    assert Prediction.objects.count() == 2
    assert predictions_make_current(version) == 0  # nothing was replaced


# --- the command --------------------------------------------------------------------------------------------
def test_the_command_refuses_clearly_and_queues_otherwise(ingested, register, capsys) -> None:
    with pytest.raises(CommandError, match="unknown network 'waves'"):
        call_command("predict", "waves")
    with pytest.raises(CommandError, match="cannot predict: no active classifier version"):
        call_command("predict", "classifier")
    with pytest.raises(CommandError, match="--mc-dropout must be between 0 and 100"):
        call_command("predict", "classifier", "--mc-dropout", "500")
    assert not Job.objects.exists()
    register(1)
    call_command("predict", "classifier", "--mc-dropout", "4", "--all")
    job = Job.objects.get()
    assert job.kind == "predict" and job.queue == "gpu" and job.state == Job.State.QUEUED
    assert job.params == {"network": "classifier", "mc_dropout": 4, "all": True}
    assert f"queued prediction job {job.pk} (classifier v1)" in capsys.readouterr().out
