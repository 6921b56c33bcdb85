"""The network interface shared by every trainable network: registry, snapshot refusals, devices, seeds, the
shared training loop, and checkpoints that round-trip (and refuse what does not fit)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from training.networks import (
    NETWORKS,
    ClassifierNetwork,
    Network,
    NetworkError,
    PredictionBatch,
    SampleRef,
    get_network,
    pick_device,
    read_checkpoint,
    seed_everything,
    validate_samples,
)
from training.specs import Metric, NetworkSpec


def _samples(spec: Sequence[tuple[str, int]]) -> list[SampleRef]:
    return [SampleRef(item_id=i, split=s, target=m, path=f"/nowhere/{i}.npy", kind="imagettes")
            for i, (s, m) in enumerate(spec)]


# --- registry -------------------------------------------------------------------------------------------
def test_registry_has_the_classifier() -> None:
    assert "classifier" in NETWORKS
    net = get_network("classifier")
    assert isinstance(net, ClassifierNetwork) and isinstance(net, Network)
    assert net.name == "classifier" and len(net.classes) == 10


def test_unknown_network_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="classifier"):
        get_network("no-such-network")


# --- snapshot refusals ----------------------------------------------------------------------------------
def test_validate_samples_accepts_a_usable_snapshot() -> None:
    validate_samples(_samples([("train", 1), ("train", 2), ("val", 1), ("test", 4)]))
    get_network("classifier").validate_samples(_samples([("train", 1), ("train", 0b110), ("val", 1)]))


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ([], "empty"),
        ([("train", 1), ("train", 2)], "no val"),
        ([("val", 1), ("test", 2)], "no train"),
        ([("train", 1), ("train", 1), ("val", 2)], "only class 0"),
        ([("train", 4), ("val", 4), ("val", 1)], "only class 2"),
        ([("train", 1), ("train", 0), ("val", 1)], "no label"),
        ([("train", 1), ("train", 2), ("val", 1), ("holdout", 1)], "split 'holdout'"),
    ],
)
def test_validate_samples_refuses(spec, reason) -> None:
    with pytest.raises(NetworkError, match=reason):
        get_network("classifier").validate_samples(_samples(spec))


def test_the_classifier_refuses_labels_beyond_its_classes() -> None:
    samples = _samples([("train", 1), ("train", 1 << 10), ("val", 1)])
    validate_samples(samples)  # the generic check knows no classes: a target is any label
    with pytest.raises(NetworkError, match="beyond the 10 classes"):
        get_network("classifier").validate_samples(samples)


# --- devices and seeds ----------------------------------------------------------------------------------
def test_pick_device(monkeypatch) -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device().type == expected
    assert pick_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device() == torch.device("cpu")
    with pytest.raises(NetworkError, match="no usable CUDA"):
        pick_device("cuda")


def test_seed_everything_makes_runs_repeatable() -> None:
    g1 = seed_everything(123)
    a = (torch.rand(3), np.random.rand(3), torch.rand(2, generator=g1))
    g2 = seed_everything(123)
    b = (torch.rand(3), np.random.rand(3), torch.rand(2, generator=g2))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and torch.equal(a[2], b[2])


# --- hyperparameters ------------------------------------------------------------------------------------
def test_resolve_hparams_checks_keys_and_follows_the_architecture() -> None:
    net = get_network("classifier")
    cpu = net.resolve_hparams({}, "cpu")
    assert (cpu["arch"], cpu["image_size"]) == ("resnet18", 64)
    gpu = net.default_hparams("cuda")
    assert (gpu["arch"], gpu["image_size"]) == ("inception_v3", 299)
    switched = net.resolve_hparams({"arch": "inception_v3"}, "cpu")
    assert switched["image_size"] == 299
    assert net.resolve_hparams({"arch": "inception_v3", "image_size": 150}, "cpu")["image_size"] == 150
    assert json.loads(json.dumps(cpu)) == cpu  # stored with every checkpoint and job
    with pytest.raises(NetworkError, match="unknown hyperparameter"):
        net.resolve_hparams({"learning_rate": 0.1}, "cpu")
    with pytest.raises(NetworkError, match="unknown classifier architecture"):
        net.resolve_hparams({"arch": "vgg16"}, "cpu")
    with pytest.raises(NetworkError, match="image_size"):
        net.resolve_hparams({"image_size": 16}, "cpu")
    with pytest.raises(NetworkError, match="lr"):
        net.resolve_hparams({"lr": 0}, "cpu")


# --- the shared training loop, on a toy network ----------------------------------------------------------
class _ToyNetwork(Network):
    """The smallest implementation of the interface: a linear model on 4 features, 2 classes."""

    spec = NetworkSpec("toy", "imagettes", "Toy classes", Metric("top1", "top-1"))
    classes = ("a", "b")

    def default_hparams(self, device=None) -> dict:
        return {"lr": 0.1, "batch_size": 4, "epochs": 3, "seed": 0, "schedule": "cosine", "warmup_epochs": 1}

    def arch_tag(self, hparams: Mapping) -> str:
        return "linear4x2"

    def build(self, hparams: Mapping) -> nn.Module:
        return self._tag(nn.Linear(4, 2), hparams)

    def check_weights_file(self, path, hparams=None) -> None:
        raise NetworkError("toy networks take no weights")

    def dataset(self, samples, *, train: bool, hparams: Mapping) -> Dataset:
        x = torch.randn(len(samples), 4)
        y = torch.tensor([s.target - 1 for s in samples])
        x[:, 0] += 3 * y  # separable along feature 0
        return TensorDataset(x, y)

    def compute_loss(self, model, batch, device):
        x, y = (t.to(device) for t in batch)
        return nn.functional.cross_entropy(model(x), y), len(x)

    def evaluate(self, model, loader, device) -> dict:
        return {"loss": 0.0}

    def predict_batch(self, model, batch, device, *, mc_dropout: int = 0) -> PredictionBatch:
        raise NotImplementedError


def test_train_epoch_reports_progress_and_steps_the_schedule() -> None:
    net = _ToyNetwork()
    hp = net.resolve_hparams({}, "cpu")
    seed_everything(0)
    model = net.build(hp)
    samples = _samples([("train", 1 + i % 2) for i in range(18)])
    loader = net.loader(net.dataset(samples, train=True, hparams=hp), train=True, hparams=hp)
    assert len(loader) == 5  # 18 items in batches of 4: the last batch of 2 is kept
    optimizer = net.make_optimizer(model, hp)
    scheduler = net.make_scheduler(optimizer, hp, steps_per_epoch=len(loader))
    calls: list[tuple[int, int, float]] = []
    losses = []
    for _ in range(hp["epochs"]):
        result = net.train_epoch(model, loader, optimizer, "cpu", on_batch=lambda *a: calls.append(a),
                                 scheduler=scheduler)  # fmt: skip
        losses.append(result["loss"])
    assert [c[:2] for c in calls[:5]] == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    assert all(isinstance(c[2], float) for c in calls)
    assert losses[-1] < losses[0]
    assert result["lr"] < hp["lr"] * 0.05  # cosine to ~1 % at the end
    assert result["items"] == 18


def test_a_lone_last_training_batch_is_dropped() -> None:
    net = _ToyNetwork()
    hp = net.resolve_hparams({}, "cpu")
    ds = net.dataset(_samples([("train", 1 + i % 2) for i in range(9)]), train=True, hparams=hp)
    assert len(net.loader(ds, train=True, hparams=hp)) == 2
    assert len(net.loader(ds, train=False, hparams=hp)) == 3


def test_a_diverged_loss_is_refused() -> None:
    net = _ToyNetwork()
    hp = net.resolve_hparams({"schedule": "constant"}, "cpu")
    model = net.build(hp)
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    loader = net.loader(net.dataset(_samples([("train", 1 + i % 2) for i in range(8)]), train=True, hparams=hp),
                        train=True, hparams=hp)  # fmt: skip
    with pytest.raises(NetworkError, match="not finite"):
        net.train_epoch(model, loader, net.make_optimizer(model, hp), "cpu")


# --- checkpoints ----------------------------------------------------------------------------------------
@pytest.fixture
def small_classifier():
    net = get_network("classifier")
    hp = net.resolve_hparams({"image_size": 32, "amp": False, "batch_size": 4}, "cpu")
    seed_everything(0)
    model = net.build(hp)
    optimizer = net.make_optimizer(model, hp)
    x, y = torch.randn(4, 1, 32, 32), torch.eye(10)[[0, 1, 2, 3]]
    for _ in range(2):
        loss, _ = net.compute_loss(model, (x, y), torch.device("cpu"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net, hp, model, optimizer


def test_checkpoint_round_trip(tmp_path, small_classifier) -> None:
    net, hp, model, optimizer = small_classifier
    path = tmp_path / "ckpt.pt"
    torch.save(net.checkpoint_state(model, optimizer, 7, hp, metrics={"top1": 0.5}), path)
    state = read_checkpoint(path)
    assert state["network"] == "classifier" and state["arch"] == "resnet18/1ch/10cls" and state["epoch"] == 7
    assert state["metrics"] == {"top1": 0.5} and "weights_path" not in state["hparams"]

    seed_everything(1)
    fresh = net.build(hp)
    fresh_opt = net.make_optimizer(fresh, hp)
    assert net.load_checkpoint(fresh, state, fresh_opt) == 7
    x = torch.randn(3, 1, 32, 32)
    model.eval()
    fresh.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), fresh(x))
    for a, b in zip(optimizer.state_dict()["state"].values(), fresh_opt.state_dict()["state"].values(), strict=True):
        assert torch.equal(a["exp_avg"], b["exp_avg"])

    rebuilt, rebuilt_hp = net.model_from_checkpoint(state)
    assert not rebuilt.training and rebuilt_hp["image_size"] == 32
    with torch.no_grad():
        assert torch.allclose(model(x), rebuilt(x))


def test_checkpoints_that_do_not_fit_are_refused(tmp_path, small_classifier) -> None:
    net, hp, model, optimizer = small_classifier
    state = net.checkpoint_state(model, optimizer, 1, hp)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    with pytest.raises(NetworkError, match="network 'sic'"):
        net.load_checkpoint(model, {**state, "network": "sic"})
    with pytest.raises(NetworkError, match="architecture 'inception_v3"):
        net.load_checkpoint(model, {**state, "arch": "inception_v3+aux/1ch/10cls"})
    bad = dict(state["model"])
    bad["conv1.weight"] = torch.zeros(64, 3, 7, 7)
    with pytest.raises(NetworkError, match=r"another shape.*conv1\.weight"):
        net.load_checkpoint(model, {**state, "model": bad})
    fewer = {k: v for k, v in state["model"].items() if not k.startswith("layer4")}
    with pytest.raises(NetworkError, match="missing"):
        net.load_checkpoint(model, {**state, "model": fewer})
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing changed

    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(NetworkError, match="cannot be read"):
        read_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(NetworkError, match="does not exist"):
        read_checkpoint(tmp_path / "absent.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(NetworkError, match="not a Cryolabel checkpoint"):
        read_checkpoint(tmp_path / "other.pt")


def test_prediction_rows_are_json_friendly() -> None:
    batch = PredictionBatch(
        confidence=np.array([0.72], dtype=np.float32), entropy=np.array([0.6], dtype=np.float32),
        margin=np.array([0.7], dtype=np.float32), mutual_information=None, item_ids=[42],
        payload={"probabilities": np.array([[0.9, 0.2]], dtype=np.float32), "label_mask": [1], "top1": [0]},
    )  # fmt: skip
    rows = batch.rows()
    assert len(batch) == 1 and rows[0]["item_id"] == 42 and rows[0]["label_mask"] == 1
    assert json.loads(json.dumps(rows)) == rows
