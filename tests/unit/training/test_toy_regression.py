"""A second network of another shape through the same job code: a per-pixel regression (a raster target with a
valid mask, no classes, R² as its primary metric) trained by the training job and run by the prediction job that
the classifier uses, with nothing of either job changed for it.

The toy learns to smooth an imagette (its target is a 3x3 box blur of the input, with NaN where the target is not
known): the shape of the `sic` U-Net's problem (a raster in, a raster of a continuous quantity out, a mask of the
labelled pixels), small enough to learn in seconds on a CPU. It registers the way a real network does: its spec in
training.specs.SPECS, itself in training.networks.NETWORKS, and, for its kind, a sampler that gives raster
targets and a prediction store (here a list) in the kinds registry.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from torch.utils.data import Dataset

from annotations import kinds
from annotations.models import Imagette
from annotations.wv_classes import class_by_slug
from inference.services.predict import ItemSource, imagette_samples, items_to_predict
from inference.tasks import predict_job
from jobs.models import Job
from jobs.runner import run_job
from training import specs
from training.contract import NetworkError, PredictionBatch, SampleRef, validate_samples
from training.models import ModelVersion
from training.networks import NETWORKS, Network
from training.networks.classifier_data import normalise_imagette, read_npy
from training.services.activation import ScoreBaseline
from training.services.snapshots import snapshot_samples
from training.specs import Metric, NetworkSpec
from training.tasks import train_job

SIZE = 16


def _input(path: str) -> torch.Tensor:
    x = torch.from_numpy(normalise_imagette(read_npy(path), True))[None, None]
    return F.interpolate(x, size=(SIZE, SIZE), mode="area")[0]  # [1, S, S]


def _blur(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x[None], 3, stride=1, padding=1, count_include_pad=False)[0]


class _RasterDataset(Dataset):
    """(input [1, S, S], (target [1, S, S], valid [1, S, S]), item id); a sample without a target (inference) gets
    an all-invalid one."""

    def __init__(self, samples: Sequence[SampleRef]) -> None:
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        sample = self.samples[index]
        x = _input(sample.path)
        if sample.target is None:
            y, valid = torch.zeros_like(x), torch.zeros_like(x, dtype=torch.bool)
        else:
            y = torch.from_numpy(np.load(sample.target["raster"]))[None].float()
            valid = torch.isfinite(y)
            y = torch.nan_to_num(y)
        return x, (y, valid), sample.item_id


def _collate(items):
    x = torch.stack([i[0] for i in items])
    y = torch.stack([i[1][0] for i in items])
    valid = torch.stack([i[1][1] for i in items])
    return x, (y, valid), torch.tensor([i[2] for i in items])


class ToyPixels(Network):
    spec = NetworkSpec("toy_pixels", "imagettes", "Toy per-pixel regression", Metric("r2", "R²", share=False),
                       inputs=("VV sigma0 in dB, 16x16",))

    def default_hparams(self, device=None) -> dict:
        return {"lr": 0.05, "batch_size": 8, "epochs": 6, "seed": 0, "schedule": "constant"}

    def arch_tag(self, hparams: Mapping) -> str:
        return "conv3x3/1ch"

    def build(self, hparams: Mapping) -> nn.Module:
        return self._tag(nn.Conv2d(1, 1, 3, padding=1), hparams)

    def check_weights_file(self, path, hparams=None) -> None:
        raise NetworkError("the toy takes no weights")

    def check_targets(self, samples: Sequence[SampleRef]) -> None:
        if not all(isinstance(s.target, Mapping) and "raster" in s.target for s in samples if s.split != "test"):
            raise NetworkError("every train/val sample needs a raster target")

    def baseline(self, val_samples: Sequence[SampleRef]) -> ScoreBaseline:
        return ScoreBaseline(0.0, "R² 0.000: always the mean of the validation pixels", n_items=len(val_samples))

    def dataset(self, samples, *, train: bool, hparams: Mapping) -> Dataset:
        dataset = _RasterDataset(samples)
        dataset.collate = _collate
        return dataset

    def compute_loss(self, model, batch, device):
        x, (y, valid), _ = batch
        error = (model(x.to(device)) - y.to(device)) ** 2
        return error[valid.to(device)].mean(), len(x)

    def evaluate(self, model, loader, device) -> dict:
        model.eval()
        predicted, truth = [], []
        with torch.inference_mode():
            for x, (y, valid), _ in loader:
                out = model(x.to(device)).cpu()
                predicted.append(out[valid])
                truth.append(y[valid])
        p, t = torch.cat(predicted), torch.cat(truth)
        mse = float(((p - t) ** 2).mean())
        return {"loss": mse, "rmse": mse**0.5, "r2": 1 - mse / float(t.var(unbiased=False)), "n_pixels": len(t)}

    def predict_batch(self, model, batch, device, *, mc_dropout: int = 0) -> PredictionBatch:
        x, _, ids = batch
        model.eval()
        with torch.inference_mode():
            out = model(x.to(device)).cpu()[:, 0]
        # A spread-based stand-in for an uncertainty: rougher predicted fields are "less sure".
        smooth = F.avg_pool2d(out[:, None], 3, stride=1, padding=1, count_include_pad=False)[:, 0]
        roughness = (out - smooth).abs().mean(dim=(1, 2)).clamp(0, 1).numpy()
        return PredictionBatch(
            confidence=(1 - roughness).astype(np.float32), entropy=roughness.astype(np.float32),
            item_ids=[int(i) for i in ids],
            payload={"mean": out.mean(dim=(1, 2)).numpy(), "raster": out.numpy()},
        )


def test_the_generic_sample_checks_take_any_target_and_refuse_another_kind() -> None:
    raster = {"raster": "/nowhere.npy"}
    validate_samples([SampleRef(1, "train", raster, kind="scenes"), SampleRef(2, "val", raster, kind="scenes")],
                     kind="scenes")  # one "class" is no refusal for a regression
    with pytest.raises(NetworkError, match="is one of the imagettes, this network learns scenes"):
        validate_samples([SampleRef(1, "train", raster, kind="imagettes")], kind="scenes")
    with pytest.raises(NetworkError, match="no label"):
        validate_samples([SampleRef(1, "train", None, kind="scenes"), SampleRef(2, "val", raster, kind="scenes")])


@pytest.fixture
def toy_registered(monkeypatch, ingested, demo_imagette_files, settings):
    """The toy registered as a network is; the imagettes' labels imported; their raster targets written."""
    network = ToyPixels()
    monkeypatch.setitem(specs.SPECS, network.name, network.spec)
    monkeypatch.setitem(NETWORKS, network.name, network)
    with open(demo_imagette_files / "ground_truth.csv", newline="") as handle:
        truth = {row["path"]: row["class_slug"] for row in csv.DictReader(handle)}
    for imagette in Imagette.objects.all():
        slug = next(s for key, s in truth.items() if imagette.key.endswith(key) or key.endswith(imagette.key))
        imagette.label_mask = 1 << class_by_slug(slug).index
        imagette.label_source = Imagette.LabelSource.IMPORTED
        imagette.save(update_fields=["label_mask", "label_source"])

    targets = Path(settings.MEDIA_ROOT) / "toy-targets"
    targets.mkdir(parents=True)

    def raster_samples(snapshot) -> list[SampleRef]:
        """The imagettes' sampler, with a raster target (NaN: unknown pixels) instead of the label mask."""
        out = []
        for sample in snapshot_samples(snapshot):
            target = _blur(_input(sample.path))[0].numpy()
            target[:2, :2] = np.nan
            path = targets / f"{sample.item_id}.npy"
            np.save(path, target)
            out.append(SampleRef(sample.item_id, sample.split, {"raster": str(path)}, sample.path, sample.kind))
        return out

    stored: list[dict] = []

    def store(*, version, rows, job=None) -> int:
        stored.extend(rows)
        return len(rows)

    entry = kinds.kind_entry("imagettes")
    monkeypatch.setitem(entry.parts, "snapshot_samples", raster_samples)
    monkeypatch.setitem(entry.parts, "predictions",
                        ItemSource("imagettes", items_to_predict, imagette_samples, store, lambda version: 0))
    return network, stored


def test_a_per_pixel_regression_trains_and_predicts_through_the_same_jobs(toy_registered) -> None:
    network, stored = toy_registered
    train = Job.objects.create(kind="train", queue="gpu", params={"network": network.name})
    assert run_job(train.pk, train_job, worker="tests") == Job.State.SUCCEEDED, Job.objects.get(pk=train.pk).error
    train.refresh_from_db()
    version = ModelVersion.objects.get(network=network.name)
    # The version is of its network's kind and primary metric; R² beats the stated baseline (0), so it is active.
    assert (version.kind, version.primary_metric, version.snapshot.kind) == ("imagettes", "r2", "imagettes")
    assert version.val_score > 0.8 and version.is_active, (version.val_score, version.activation_reason)
    assert version.activation_reason.startswith("first version: val R² ") and "always the mean" in \
        version.activation_reason
    assert [row["epoch"] for row in version.history] == list(range(1, 7))
    assert all({"val_r2", "val_rmse", "train_loss"} <= set(row) for row in version.history)
    assert train.result["test_r2"] is not None and "test R²" in train.result["message"]

    predict = Job.objects.create(kind="predict", queue="gpu", params={"network": network.name})
    assert run_job(predict.pk, predict_job, worker="tests") == Job.State.SUCCEEDED, \
        Job.objects.get(pk=predict.pk).error
    predict.refresh_from_db()
    assert predict.result["predicted"] == Imagette.objects.count() == len(stored)
    assert {row["item_id"] for row in stored} == set(Imagette.objects.values_list("pk", flat=True))
    row = stored[0]
    assert 0 <= row["confidence"] <= 1 and row["margin"] is None and row["mutual_information"] is None
    assert np.asarray(row["raster"]).shape == (SIZE, SIZE) and isinstance(row["mean"], float)
