"""The WV imagette classifier: both architectures run forward and backward, it learns a separable toy set,
fine-tunes from torchvision state dicts made here (never downloaded) and refuses the wrong ones, and its
predictions carry sound probabilities and uncertainty scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from annotations.readers import to_db
from annotations.wv_classes import SLUGS, class_by_slug
from demo.synthetic import imagette_texture
from training.augment import AugmentConfig, augment_batch, speckle_db
from training.networks import NetworkError, SampleRef, get_network, seed_everything
from training.networks.classifier import (
    ImagetteDataset,
    load_imagette,
    multilabel_metrics,
    normalise_imagette,
    picture_like,
    primary_class,
)

CPU = torch.device("cpu")
TOY_CLASSES = ("pure_ocean_waves", "sea_ice", "low_wind_area")


@pytest.fixture(scope="module")
def net():
    return get_network("classifier")


def _hp(net, **overrides):
    base = {"arch": "resnet18", "image_size": 64, "batch_size": 8, "amp": False, "seed": 0}
    return net.resolve_hparams({**base, **overrides}, "cpu")


@pytest.fixture(scope="module")
def toy_samples(tmp_path_factory) -> list[SampleRef]:
    """3 classes x (20 train + 10 val) synthetic imagettes of 64 px, written as the float16 dB .npy ingest keeps."""
    folder = tmp_path_factory.mktemp("imagettes")
    rng = np.random.default_rng(5)
    samples = []
    for i in range(90):
        slug = TOY_CLASSES[i % 3]
        path = folder / f"{i}.npy"
        np.save(path, to_db(imagette_texture(slug, rng, 64)).astype(np.float16))
        split = "val" if i >= 60 else "train"
        samples.append(SampleRef(item_id=100 + i, split=split, target=1 << class_by_slug(slug).index, path=str(path),
                                 kind="imagettes"))  # fmt: skip
    return samples


# --- pixels and targets ---------------------------------------------------------------------------------
def test_normalisation_of_db_and_pictures(tmp_path) -> None:
    db = np.array([[-50.0, -40.0, -15.0], [10.0, 30.0, np.nan]], dtype=np.float32)
    out = normalise_imagette(db, True)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert out[0].tolist() == [-1.0, -1.0, 0.0] and out[1, :2].tolist() == [1.0, 1.0]
    assert out[1, 2] == pytest.approx((np.nanmedian(db) + 15) / 25)  # NaN takes the median
    assert normalise_imagette(np.array([[0, 255]], np.float32), False).tolist() == [[-1.0, 1.0]]
    assert normalise_imagette(np.array([[0, 65535]], np.float32), False).tolist() == [[-1.0, 1.0]]
    assert normalise_imagette(np.full((2, 2), np.nan, np.float32), True).tolist() == [[0.0, 0.0], [0.0, 0.0]]

    path = tmp_path / "x.npy"
    np.save(path, np.full((40, 50), -20.0, np.float16))
    x = load_imagette(path, True, image_size=32)
    assert x.shape == (1, 32, 32) and torch.allclose(x, torch.full_like(x, -0.2), atol=1e-3)
    (tmp_path / "bad.npy").write_text("garbage")
    with pytest.raises(NetworkError, match="cannot be read"):
        load_imagette(tmp_path / "bad.npy")
    with pytest.raises(NetworkError, match="missing"):
        load_imagette(tmp_path / "absent.npy")


def test_primary_class_is_the_lowest_set_bit() -> None:
    assert primary_class(0b1) == 0 and primary_class(0b1000) == 3 and primary_class(0b101000) == 3
    assert primary_class(0) == -1


def test_dataset_items_targets_and_cache(toy_samples, net) -> None:
    hp = _hp(net)
    samples = [*toy_samples[:4], SampleRef(1, "train", 0b101, toy_samples[0].path)]
    ds = net.dataset(samples, train=False, hparams=hp)
    x, y, item_id = ds[4]
    assert x.shape == (1, 64, 64) and x.dtype == torch.float32 and item_id == 1
    assert y.tolist() == [1.0, 0.0, 1.0] + [0.0] * 7  # multi-label
    assert torch.equal(ds[0][0], ds[0][0]) and len(ds._cache) == 2  # second read from memory
    batch = next(iter(net.loader(ds, train=False, hparams=hp)))
    assert batch[0].shape == (5, 1, 64, 64) and batch[2].tolist() == [100, 101, 102, 103, 1]
    with pytest.raises(NetworkError, match="outside the 10 classes"):
        ImagetteDataset([SampleRef(1, "train", 1 << 12, "x")], image_size=32)


def test_picture_augmentation_shows_db_imagettes_as_8_bit_pictures(toy_samples, net) -> None:
    db = np.linspace(-30, -10, 10_000, dtype=np.float32).reshape(100, 100)
    db[0, 0] = np.nan
    pic = picture_like(db)
    assert pic.min() == 0 and pic.max() == 255 and np.array_equal(pic, np.floor(pic))

    hp = _hp(net, augment_picture=1.0, augment_speckle=0.0, augment_flips=False, augment_rot90=False)
    shown = net.dataset(toy_samples[:3], train=True, hparams=hp)
    plain = net.dataset(toy_samples[:3], train=False, hparams=hp)
    for i in range(3):
        x, reference = shown[i][0], plain[i][0]
        assert x.shape == reference.shape and x.max() - x.min() > 1.5 * (reference.max() - reference.min())
    with pytest.raises(NetworkError, match="augment_picture"):
        _hp(net, augment_picture=1.5)


# --- augmentation ---------------------------------------------------------------------------------------
def test_augmentation_is_seeded_and_keeps_what_it_should() -> None:
    x = torch.randn(16, 1, 32, 32)
    cfg = AugmentConfig(speckle_p=0.0)
    a = augment_batch(x, cfg, torch.Generator().manual_seed(3))
    b = augment_batch(x, cfg, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, x)
    # flips and rotations only move pixels: every sample keeps its values
    assert torch.equal(a.flatten(1).sort(dim=1).values, x.flatten(1).sort(dim=1).values)
    assert torch.equal(augment_batch(x, AugmentConfig(flips=False, rot90=False, speckle_p=0.0)), x)

    noisy = augment_batch(x, AugmentConfig(flips=False, rot90=False, speckle_p=1.0), torch.Generator().manual_seed(1))
    assert noisy.shape == x.shape and not torch.equal(noisy, x)


def test_speckle_has_the_statistics_of_l_looks() -> None:
    g = torch.Generator().manual_seed(0)
    for looks in (4, 8):
        noise = speckle_db((200_000,), looks, g)
        linear = 10 ** (noise / 10)
        assert linear.mean().item() == pytest.approx(1.0, abs=0.01)  # unit mean in the linear domain
        assert linear.var().item() == pytest.approx(1 / looks, rel=0.05)  # Gamma(L, 1/L)
    per_sample = speckle_db((2, 50_000), torch.tensor([[1], [16]]), g)
    assert per_sample[0].std() > 2 * per_sample[1].std()


def test_training_dataset_augments_batches_reproducibly(toy_samples, net) -> None:
    hp = _hp(net, augment_speckle=1.0)
    first = [b[0] for b in net.loader(net.dataset(toy_samples[:8], train=True, hparams=hp), train=True, hparams=hp)]
    again = [b[0] for b in net.loader(net.dataset(toy_samples[:8], train=True, hparams=hp), train=True, hparams=hp)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    plain = net.dataset(toy_samples[:8], train=False, hparams=hp)
    assert not any(torch.equal(first[0][0], plain[i][0]) for i in range(8))


# --- architectures --------------------------------------------------------------------------------------
def test_resnet18_forward_backward(net) -> None:
    hp = _hp(net)
    model = net.build(hp)
    assert model.conv1.in_channels == 1 and model.fc[1].out_features == 10
    loss, size = net.compute_loss(model.train(), (torch.randn(4, 1, 64, 64), torch.eye(10)[:4]), CPU)
    loss.backward()
    assert size == 4 and model.conv1.weight.grad is not None and model.fc[1].weight.grad.abs().sum() > 0
    assert model.eval()(torch.randn(2, 1, 64, 64)).shape == (2, 10)


def test_inception_v3_at_299_with_its_aux_head(net) -> None:
    hp = net.resolve_hparams({"arch": "inception_v3", "amp": False, "batch_size": 2}, "cpu")
    assert hp["image_size"] == 299 and net.arch_tag(hp) == "inception_v3+aux/1ch/10cls"
    seed_everything(0)
    model = net.build(hp).train()
    x, y = torch.randn(2, 1, 299, 299), torch.eye(10)[:2]
    torch.manual_seed(1)  # the same dropout masks in both passes
    out = model(x)
    assert out.logits.shape == (2, 10) and out.aux_logits.shape == (2, 10)
    main_only = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, y)
    aux_only = torch.nn.functional.binary_cross_entropy_with_logits(out.aux_logits, y)
    torch.manual_seed(1)
    loss, _ = net.compute_loss(model, (x, y), CPU)  # batch norm in train mode: same batch, same statistics
    assert loss.item() == pytest.approx((main_only + 0.4 * aux_only).item(), rel=1e-4)
    loss.backward()
    assert model.AuxLogits.fc.weight.grad is not None and model.Conv2d_1a_3x3.conv.weight.grad is not None
    assert model.eval()(x).shape == (2, 10)  # eval: main logits only


def test_inception_v3_below_299_drops_the_aux_head(net) -> None:
    hp = net.resolve_hparams({"arch": "inception_v3", "image_size": 75, "amp": False}, "cpu")
    model = net.build(hp)
    assert model.AuxLogits is None and net.arch_tag(hp) == "inception_v3/1ch/10cls"
    loss, _ = net.compute_loss(model.train(), (torch.randn(2, 1, 75, 75), torch.eye(10)[:2]), CPU)
    loss.backward()
    assert model.eval()(torch.randn(2, 1, 75, 75)).shape == (2, 10)


# --- learning -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(toy_samples, net):
    """resnet18 at 64 px, a few epochs on the 3-class toy set."""
    hp = _hp(net, lr=2e-3, epochs=6, augment_speckle=0.0, warmup_epochs=0.5, dropout=0.3, batch_size=20)
    seed_everything(hp["seed"])
    model = net.build(hp)
    train = [s for s in toy_samples if s.split == "train"]
    val = [s for s in toy_samples if s.split == "val"]
    train_dl = net.loader(net.dataset(train, train=True, hparams=hp), train=True, hparams=hp)
    val_dl = net.loader(net.dataset(val, train=False, hparams=hp), train=False, hparams=hp)
    before = net.evaluate(model, val_dl, CPU)
    optimizer = net.make_optimizer(model, hp)
    scheduler = net.make_scheduler(optimizer, hp, len(train_dl))
    progress: list[tuple[int, int, float]] = []
    losses = [
        net.train_epoch(model, train_dl, optimizer, CPU, on_batch=lambda *a: progress.append(a), scheduler=scheduler)
        for _ in range(hp["epochs"])
    ]
    after = net.evaluate(model, val_dl, CPU)
    return {"model": model, "hp": hp, "before": before, "after": after, "losses": losses, "progress": progress,
            "val_dl": val_dl}  # fmt: skip


def test_a_few_epochs_learn_a_separable_toy_set(trained) -> None:
    losses = [r["loss"] for r in trained["losses"]]
    assert losses[-1] < 0.6 * losses[0]
    assert trained["after"]["loss"] < trained["before"]["loss"]
    assert trained["after"]["top1"] >= 2 / 3
    assert trained["progress"][:3] == [(1, 3, trained["progress"][0][2]), (2, 3, trained["progress"][1][2]),
                                       (3, 3, trained["progress"][2][2])]  # fmt: skip


def test_evaluate_reports_the_promised_metrics(trained) -> None:
    m = trained["after"]
    assert set(m) >= {"loss", "top1", "per_class_f1", "macro_f1", "confusion_matrix", "n_items"}
    assert list(m["per_class_f1"]) == list(SLUGS)
    assert m["per_class_f1"]["wind_streaks"] is None or m["per_class_f1"]["wind_streaks"] == 0.0
    cm = np.array(m["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == m["n_items"] == 30
    assert np.trace(cm) / cm.sum() == pytest.approx(m["top1"])
    assert cm[[1, 2, 3, 4, 6, 8, 9]].sum() == 0  # only the 3 toy classes (0, 5, 7) are primary classes


def test_multilabel_metrics_by_hand() -> None:
    probs = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.7, 0.6], [0.3, 0.4, 0.1]])
    targets = torch.tensor([[1.0, 0, 0], [0, 1, 1], [1, 0, 0]])
    m = multilabel_metrics(probs, targets)
    assert m["top1"] == pytest.approx(2 / 3)
    # item 3 predicts nothing >= 0.5 so its top class (1) is its prediction: class 0 has tp 1, fn 1; class 1 tp 1, fp 1
    assert m["per_class_f1"] == {"0": pytest.approx(2 / 3), "1": pytest.approx(2 / 3), "2": 1.0}
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]


# --- predictions ----------------------------------------------------------------------------------------
def test_predictions_and_uncertainty(trained, net) -> None:
    model = trained["model"]
    batch = next(iter(trained["val_dl"]))
    p = net.predict_batch(model, batch, CPU)
    assert p.probabilities.shape == (len(batch[0]), 10) and p.item_ids == batch[2].tolist()
    assert ((p.probabilities >= 0) & (p.probabilities <= 1)).all()
    assert all(mask > 0 for mask in p.label_masks)
    assert all(mask >> top & 1 for mask, top in zip(p.label_masks, p.top1, strict=True))
    for scores in (p.confidence, p.entropy, p.margin):
        assert scores.shape == (len(batch[0]),) and ((scores >= 0) & (scores <= 1)).all()
    assert p.mutual_information is None
    # a confident item has low entropy and a large margin; an undecided one the opposite
    sure, unsure = int(p.confidence.argmax()), int(p.confidence.argmin())
    assert p.entropy[sure] <= p.entropy[unsure] and p.margin[sure] >= p.margin[unsure]

    mc = net.predict_batch(model, batch[0], CPU, mc_dropout=8)
    assert mc.item_ids is None and (mc.mutual_information >= 0).all() and mc.mutual_information.max() > 0
    assert not any(m.training for m in model.modules())  # dropout back off afterwards
    again = net.predict_batch(model, batch, CPU)
    assert np.array_equal(again.probabilities, p.probabilities)


def test_without_dropout_mutual_information_is_zero(net) -> None:
    hp = _hp(net, dropout=0.0)
    model = net.build(hp)
    p = net.predict_batch(model, torch.randn(3, 1, 64, 64), CPU, mc_dropout=4)
    assert p.mutual_information.tolist() == [0.0, 0.0, 0.0]
    plain = net.predict_batch(model, torch.randn(3, 1, 64, 64), CPU)
    assert plain.mutual_information is None and plain.probabilities.shape == (3, 10)


def test_bfloat16_autocast_path(net) -> None:
    hp = _hp(net, amp=True)
    model = net.build(hp)
    loss, _ = net.compute_loss(model.train(), (torch.randn(2, 1, 64, 64), torch.eye(10)[:2]), CPU)
    loss.backward()
    p = net.predict_batch(model, torch.randn(2, 1, 64, 64), CPU, mc_dropout=2)
    assert p.probabilities.dtype == np.float32 and np.isfinite(p.probabilities).all()


# --- fine-tuning weights --------------------------------------------------------------------------------
def test_fine_tuning_from_a_torchvision_resnet18_state_dict(tmp_path, net) -> None:
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    hp = _hp(net, weights_path=str(path))
    assert hp["lr"] < net.resolve_hparams({"arch": "resnet18"}, "cpu")["lr"]  # gentler when fine-tuning
    net.check_weights_file(path, hp)
    model = net.build(hp)
    assert torch.equal(model.layer3[1].conv2.weight, reference.layer3[1].conv2.weight)
    assert torch.equal(model.bn1.running_var, reference.bn1.running_var)
    # one channel with the RGB kernels summed == the band replicated to RGB in the original network
    assert torch.allclose(model.conv1.weight, reference.conv1.weight.sum(dim=1, keepdim=True))
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        ours = model.conv1(x)
        theirs = reference.conv1(x.expand(-1, 3, -1, -1))
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert model.fc[1].out_features == 10


def test_fine_tuning_from_a_torchvision_inception_v3_state_dict(tmp_path, net) -> None:
    reference = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    path = tmp_path / "inception_v3.pth"
    torch.save(reference.state_dict(), path)
    hp = net.resolve_hparams({"arch": "inception_v3", "weights_path": str(path), "amp": False}, "cpu")
    net.check_weights_file(path, hp)
    model = net.build(hp)
    assert torch.equal(model.Mixed_7c.branch_pool.conv.weight, reference.Mixed_7c.branch_pool.conv.weight)
    assert torch.equal(model.AuxLogits.conv1.conv.weight, reference.AuxLogits.conv1.conv.weight)
    assert torch.allclose(model.Conv2d_1a_3x3.conv.weight, reference.Conv2d_1a_3x3.conv.weight.sum(1, keepdim=True))
    assert model.fc.out_features == 10 and model.AuxLogits.fc.out_features == 10

    small = net.resolve_hparams({"arch": "inception_v3", "image_size": 96, "weights_path": str(path)}, "cpu")
    net.check_weights_file(path, small)  # no aux head below 299 px: its weights are simply not needed


def test_wrong_weights_files_are_refused_with_the_reason(tmp_path, net) -> None:
    resnet = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), resnet)
    inception_hp = net.resolve_hparams({"arch": "inception_v3"}, "cpu")
    with pytest.raises(NetworkError, match=r"does not fit inception_v3 \(it holds resnet18 weights\).*missing"):
        net.check_weights_file(resnet, inception_hp)
    with pytest.raises(NetworkError, match="does not fit inception_v3"):
        net.build({**inception_hp, "weights_path": str(resnet)})

    text = tmp_path / "weights.txt"
    text.write_text("these are not weights\n")
    with pytest.raises(NetworkError, match="not a readable PyTorch state dict"):
        net.check_weights_file(text, _hp(net))
    with pytest.raises(NetworkError, match="does not exist"):
        net.check_weights_file(tmp_path / "absent.pth", _hp(net))
    with pytest.raises(NetworkError, match="is not a file"):
        net.check_weights_file(tmp_path, _hp(net))
    torch.save({"epoch": 3, "note": "no tensors"}, tmp_path / "meta.pth")
    with pytest.raises(NetworkError, match="does not hold a state dict"):
        net.check_weights_file(tmp_path / "meta.pth", _hp(net))

    shrunk = torchvision.models.resnet18(weights=None).state_dict()
    shrunk["layer2.0.conv1.weight"] = shrunk["layer2.0.conv1.weight"][:, :32]
    torch.save(shrunk, tmp_path / "odd.pth")
    with pytest.raises(NetworkError, match=r"another shape.*layer2\.0\.conv1\.weight"):
        net.check_weights_file(tmp_path / "odd.pth", _hp(net))


def test_a_checkpoint_of_another_network_is_refused(net) -> None:
    hp = _hp(net)
    model = net.build(hp)
    state = net.checkpoint_state(model, None, 2, hp)
    state["network"] = "leads"
    with pytest.raises(NetworkError, match="network 'leads', not 'classifier'"):
        net.load_checkpoint(net.build(hp), state)
    with pytest.raises(NetworkError, match="network 'leads'"):
        net.model_from_checkpoint(state)
