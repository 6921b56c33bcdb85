"""The `leads` network (training/networks/leads.py, leads_data.py): one input form for every mission, windows along
a track with masked labels, the BiLSTM's forward/backward on the CPU, its metrics against hand counts, the classic
pulse-peakiness baseline, whole-track prediction, and a training job on synthetic tracks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from training.contract import NetworkError, SampleRef
from training.networks import NETWORKS, get_network
from training.networks.leads import LeadsNet, _losses, predict_track
from training.networks.leads_data import (
    EDGE_GATE,
    FORM_GATES,
    N_FEATURES,
    SCALARS,
    binary_scores,
    distance_target,
    pp_threshold_fit,
    resample_gates,
    track_inputs,
    waveform_form,
    window_starts,
)
from training.specs import LEADS_SPEC

SPACING_M = 170.0  # a 40 Hz waveform every ~170 m along the ground track
SMALL = {"window": 64, "stride": 32, "channels": 8, "embed": 32, "hidden": 32, "batch_size": 8, "epochs": 2,
         "min_steps": 0, "warmup_epochs": 0}


# --------------------------------------------------------------------------------------------------------
# Synthetic tracks: Brown-shaped diffuse echoes, specular peaks near leads
# --------------------------------------------------------------------------------------------------------
def _erf(x: np.ndarray) -> np.ndarray:
    return torch.erf(torch.from_numpy(np.asarray(x, dtype=np.float64))).numpy()


def brown(gates: int, edge, *, width: float = 2.0, tau: float = 30.0) -> np.ndarray:
    """Brown-model-like diffuse echoes over `gates` gates: an erf rise at `edge` (a number, or one per row), an
    exponential trailing edge."""
    g = np.arange(gates, dtype=np.float64)
    e = np.asarray(edge, dtype=np.float64)[..., None]
    rise = 0.5 * (1 + _erf((g - e) / (width * math.sqrt(2))))
    return rise * np.exp(-np.clip(g - e, 0, None) / tau) + 0.02


def specular(gates: int, edge) -> np.ndarray:
    g = np.arange(gates, dtype=np.float64)
    e = np.asarray(edge, dtype=np.float64)[..., None]
    return np.exp(-0.5 * ((g - e - 1) / 0.8) ** 2) + 0.01


def synthetic_track(n: int = 2000, *, gates: int = 128, seed: int = 0, lead_every: int = 300,
                    power: float = 1.0, threshold_m: float = 200.0, snags: float = 0.0) -> dict[str, np.ndarray]:
    """Arrays of a track (annotations.track_arrays names) and its truth: "label" int8 (lead where the nadir is
    within `threshold_m` of a lead), "distance" float32 (m). The echo turns specular (30x stronger, narrow) as the
    nadir nears a lead, smoothly with the distance (e^(-d / 250 m)), so a peaky echo off a lead is not a lead.
    `snags`: that share of the waveforms far from leads are specular anyway, alone (an off-nadir lead snagging the
    echo): peaky, not leads; only the along-track context tells them apart."""
    rng = np.random.default_rng(seed)
    first = np.arange(lead_every // 2, n, lead_every)
    centres = first + rng.integers(-lead_every // 4, lead_every // 4 + 1, size=len(first))
    idx = np.arange(n)
    distance = (np.abs(idx[:, None] - centres[None, :]).min(axis=1) * SPACING_M).astype(np.float32)
    k = gates / 128
    edge = (48 + rng.normal(0, 3, n)) * k
    s = np.exp(-distance / 250.0)
    if snags:
        s[(rng.random(n) < snags) & (distance > 1000)] = 0.9
    s = s[:, None]
    w = (1 - s) * brown(gates, edge, width=2 * k, tau=30 * k) + s * 30 * specular(gates, edge)
    waveforms = (power * np.maximum(w + rng.normal(0, 0.03, (n, gates)), 0.0)).astype(np.float32)
    peakiness = waveforms.max(axis=1) / waveforms.mean(axis=1)
    features = np.stack([peakiness, np.full(n, 3.0), np.full(n, 20.0), waveforms.max(axis=1)], axis=1)
    t0 = 1.7e9
    return {"time": t0 + idx / 40.0, "lat": 80 + idx * 1e-5, "lon": np.full(n, -150.0),
            "waveforms": waveforms, "features": features.astype(np.float32), "surface": np.full(n, 2, np.int8),
            "label": (distance < threshold_m).astype(np.int8), "distance": distance}


def write_track(folder: Path, track: dict[str, np.ndarray]) -> Path:
    from annotations.track_arrays import TRACK_ARRAYS, arrays_write

    arrays_write(folder, {k: v for k, v in track.items() if k in TRACK_ARRAYS})
    return folder


def track_sample(tmp_path: Path, name: str, split: str, item_id: int, *, seed: int, n: int = 1500,
                 unknown: slice | None = None, **kw) -> SampleRef:
    track = synthetic_track(n, seed=seed, **kw)
    label = track["label"].copy()
    if unknown is not None:
        label[unknown] = -1
    return SampleRef(item_id=item_id, split=split, target={"label": label, "distance": track["distance"]},
                     path=str(write_track(tmp_path / name, track)), kind="tracks", group=name,
                     meta={"gates": track["waveforms"].shape[1], "n_waveforms": n})


# --------------------------------------------------------------------------------------------------------
# One input form
# --------------------------------------------------------------------------------------------------------
def test_256_and_128_gates_and_any_power_give_the_same_form() -> None:
    rng = np.random.default_rng(1)
    w128 = np.stack([brown(128, 50 + rng.normal(0, 2)) for _ in range(20)] + [30 * specular(128, 45)])
    w256 = np.repeat(w128, 2, axis=1) * 1e-13  # SAR: the same window sampled twice as finely, in watts
    assert np.allclose(resample_gates(w256), w128 * 1e-13)
    form_a, scalars_a = waveform_form(w128)
    form_b, scalars_b = waveform_form(w256)
    assert form_a.shape == (21, FORM_GATES) and scalars_a.shape == (21, len(SCALARS))
    assert np.allclose(form_a, form_b, atol=1e-5) and np.allclose(scalars_a, scalars_b, atol=1e-5)
    assert track_inputs(w256).shape == (21, N_FEATURES) and track_inputs(w256).dtype == np.float32
    # A gate count that is not a multiple of 128 is interpolated onto 128 gates of the same window.
    w100 = np.stack([brown(100, 39.0)])
    assert resample_gates(w100).shape == (1, 128)
    # The specular echo is far stronger than the track's median: the relative log power says so.
    assert scalars_a[-1, 0] > 1.0 and abs(np.median(scalars_a[:, 0])) < 1e-6
    assert scalars_a[-1, 1] > scalars_a[0, 1]  # peakier


def test_the_leading_edge_lands_on_one_gate_whatever_the_tracker_did() -> None:
    shapes = np.stack([brown(128, edge) for edge in (30.0, 47.3, 61.8, 80.5)])
    form, scalars = waveform_form(shapes)
    assert np.allclose(form.max(axis=1), 1.0, atol=0.02)  # normalised by its maximum
    for row in form:  # the 50 % point at EDGE_GATE, the shape alike after it
        assert row[EDGE_GATE - 1] < 0.5 <= row[EDGE_GATE] + 1e-3
    assert np.abs(form[:, EDGE_GATE - 8:EDGE_GATE + 40] - form[0, EDGE_GATE - 8:EDGE_GATE + 40]).max() < 0.03
    assert np.all(np.diff(scalars[:, 4]) > 0)  # where the edge was is kept
    zero, _ = waveform_form(np.zeros((2, 128), np.float32))  # nothing to normalise: zeros, no NaN
    assert not zero.any()


# --------------------------------------------------------------------------------------------------------
# Metrics, baseline, windows, loss
# --------------------------------------------------------------------------------------------------------
def test_binary_scores_against_hand_counts() -> None:
    pred = np.array([1, 1, 1, 0, 0, 0, 0, 1], bool)
    truth = np.array([1, 1, 0, 1, 0, 0, 0, 0], bool)
    s = binary_scores(pred, truth)  # tp 2, fp 2, fn 1, tn 3
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (2, 2, 1, 3)
    assert s["precision"] == 0.5 and s["recall"] == 2 / 3 and s["accuracy"] == 5 / 8
    assert s["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    empty = binary_scores(np.zeros(4, bool), np.zeros(4, bool))
    assert empty["f1"] is None and empty["precision"] is None and empty["accuracy"] == 1.0


def test_the_pulse_peakiness_threshold_is_chosen_for_the_best_f1() -> None:
    pp = np.array([1.0, 2.0, 3.0, 8.0, 9.0, 10.0, 4.0, 5.0])
    label = np.array([0, 0, 0, 1, 1, 1, 0, -1], np.int8)  # the unknown one is ignored
    threshold, f1 = pp_threshold_fit(pp, label)
    assert 4.0 < threshold < 8.0 and f1 == 1.0
    threshold, f1 = pp_threshold_fit(np.array([1.0, 5.0, 6.0, 7.0]), np.array([0, 1, 0, 1], np.int8))
    assert threshold == pytest.approx(3.0) and f1 == pytest.approx(0.8)  # all of 5, 6, 7: tp 2, fp 1
    assert pp_threshold_fit(pp, np.zeros(8, np.int8)) == (math.inf, None)


def test_windows_cover_every_waveform() -> None:
    assert window_starts(100, 256, 128) == [0]
    assert window_starts(1000, 256, 128) == [0, 128, 256, 384, 512, 640, 744]
    for n in (257, 999, 1000):
        covered = np.zeros(n, bool)
        for s in window_starts(n, 256, 100):
            covered[s:s + 256] = True
        assert covered.all()


def test_the_masked_loss_ignores_unknown_waveforms_and_missing_distances() -> None:
    torch.manual_seed(0)
    logit, dist = torch.randn(2, 6), torch.rand(2, 6)
    label = torch.tensor([[1, 0, -1, -1, 0, 1], [0, 0, 0, -1, -1, -1]], dtype=torch.float32)
    distance = torch.tensor([[0.1, 2.0, math.nan, 1.0, 3.0, math.nan]] * 2)
    target = {"label": label, "distance": distance, "valid": torch.ones(2, 6, dtype=torch.bool),
              "pos_weight": torch.tensor([1.0, 1.0])}
    base = _losses(logit, dist, target, 1.0)
    changed = logit.clone()
    changed[label < 0] += 50.0  # whatever it says where the label is unknown
    changed_dist = dist.clone()
    changed_dist[torch.isnan(distance)] += 50.0
    assert torch.allclose(base, _losses(changed, changed_dist, target, 1.0))
    assert not torch.allclose(base, _losses(logit + 1.0, dist, target, 1.0))
    known = label >= 0
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logit[known], label[known])
    assert torch.allclose(_losses(logit, dist, target, 0.0), bce)


def test_distance_target_round_trips_to_metres() -> None:
    from training.networks.leads_data import distance_metres

    d = np.array([0.0, 150.0, 4000.0, 9000.0, np.nan], np.float32)
    t = distance_target(d, scale_m=100.0, clip_m=5000.0)
    assert np.isnan(t[-1])
    assert np.allclose(distance_metres(t[:-1], scale_m=100.0), [0, 150, 4000, 5000], rtol=1e-5)


# --------------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------------
def test_the_bilstm_runs_forward_and_backward_on_the_cpu() -> None:
    torch.manual_seed(0)
    model = LeadsNet(channels=4, embed=16, hidden=8)
    x = torch.randn(3, 50, N_FEATURES, requires_grad=False)
    logit, dist = model(x)
    assert logit.shape == dist.shape == (3, 50) and (dist >= 0).all()
    (logit.sum() + dist.sum()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    # Along-track context: changing one waveform changes the output of its neighbours both ways (bidirectional).
    model.eval()
    with torch.no_grad():
        base = model(x)[0]
        y = x.clone()
        y[:, 25] += 3.0
        moved = (model(y)[0] - base).abs()[0]
    assert moved[20] > 0 and moved[30] > 0


def test_the_network_trains_evaluates_against_the_baseline_and_predicts_every_waveform(tmp_path) -> None:
    samples = [track_sample(tmp_path, "a", "train", 1, seed=1, snags=0.02),
               track_sample(tmp_path, "b", "train", 2, seed=2, snags=0.02),
               track_sample(tmp_path, "c", "val", 3, seed=3, n=900, gates=256, power=1e-13, snags=0.02,
                            unknown=slice(100, 300))]
    net = get_network("leads")
    assert NETWORKS["leads"] is net and net.spec is LEADS_SPEC and net.item_kind == "tracks"
    net.validate_samples(samples)
    with pytest.raises(NetworkError, match="labelled lead"):
        net.validate_samples([SampleRef(1, "train", {"label": np.zeros(1500, np.int8)}, samples[0].path, "tracks"),
                              samples[2]])
    hparams = net.resolve_hparams({**SMALL, "epochs": 12}, "cpu")
    assert net.arch_tag(hparams) == f"bilstm1x32-conv8-e32/{N_FEATURES}in"
    torch.manual_seed(0)
    model = net.build(hparams)
    train_ds = net.dataset(samples[:2], train=True, hparams=hparams)
    val_ds = net.dataset(samples[2:], train=False, hparams=hparams)
    assert train_ds.pos_weight > 1  # leads are rare
    train_dl = net.loader(train_ds, train=True, hparams=hparams)
    val_dl = net.loader(val_ds, train=False, hparams=hparams)
    optimizer = net.make_optimizer(model, hparams)
    scheduler = net.make_scheduler(optimizer, hparams, steps_per_epoch=len(train_dl))
    for _ in range(hparams["epochs"]):
        stats = net.train_epoch(model, train_dl, optimizer, "cpu", scheduler=scheduler, grad_clip=1.0)
        assert math.isfinite(stats["loss"])
    metrics = net.evaluate(model, val_dl, "cpu")
    json.dumps(metrics)
    truth = samples[2].target["label"]
    assert metrics["waveforms"] == int((truth >= 0).sum()) and metrics["leads"] == int((truth == 1).sum())
    assert {"f1", "precision", "recall", "accuracy", "baseline_pp_f1", "distance_mae_m", "pp_threshold"} <= set(metrics)
    assert metrics["f1"] is not None and metrics["f1"] > 0.7, metrics
    # Lone snagging echoes fool the classic threshold (fitted on these very waveforms), not the along-track context.
    assert metrics["f1"] > metrics["baseline_pp_f1"] + 0.2 and metrics["baseline_pp_recall"] == 1.0, metrics
    assert metrics["distance_mae_m"] < 2000, metrics
    # No train threshold in the samples: the baseline is fitted on the val waveforms and says so.
    baseline = net.baseline(samples[2:])
    assert baseline.score == pytest.approx(metrics["baseline_pp_f1"]) and "val waveforms themselves" in \
        baseline.describe()
    given = SampleRef(**{**samples[2].__dict__, "meta": {"pp_threshold": 1e9}})
    assert net.baseline([given]).score == 0.0 and "train split" in net.baseline([given]).describe()

    # A batch's predictions; a whole track, every waveform, the same from a checkpoint.
    batch = next(iter(val_dl))
    out = net.predict_batch(model, batch, "cpu", mc_dropout=3)
    rows = out.rows()
    assert len(rows[0]["probability"]) == 64 and rows[0]["mutual_information"] >= 0 and 0 <= rows[0]["entropy"] <= 1
    json.dumps(rows)
    state = net.checkpoint_state(model, optimizer, 12, hparams, metrics=metrics)
    loaded, loaded_hparams = net.model_from_checkpoint(state, "cpu")
    from annotations.track_arrays import arrays_read

    arrays = arrays_read(Path(samples[2].path), ("waveforms", "features"))
    whole = predict_track(loaded, arrays, loaded_hparams, "cpu")
    assert set(whole) == {"probability", "distance_m", "uncertainty"}
    for values in whole.values():
        assert values.shape == (900,) and values.dtype == np.float32 and np.isfinite(values).all()
    assert ((whole["probability"] >= 0) & (whole["probability"] <= 1)).all() and (whole["distance_m"] >= 0).all()
    assert np.allclose(whole["probability"], net.predict_track(model, arrays, hparams, "cpu")["probability"])
    lead = truth == 1
    assert whole["probability"][lead].mean() > whole["probability"][truth == 0].mean() + 0.3
    short = predict_track(loaded, {"waveforms": arrays["waveforms"][:10]}, loaded_hparams, "cpu", mc_dropout=2)
    assert short["probability"].shape == (10,) and short["mutual_information"].shape == (10,)


def test_a_tracks_inputs_are_kept_beside_its_arrays_and_computed_again_when_they_do_not_fit(tmp_path):
    from training.networks.leads_data import INPUTS_VERSION, track_inputs, track_inputs_kept

    rng = np.random.default_rng(3)
    waveforms = rng.random((300, 128), dtype=np.float32)
    kept = tmp_path / f"leads_inputs_v{INPUTS_VERSION}.npy"
    first = track_inputs_kept(tmp_path, waveforms)
    assert kept.is_file() and np.array_equal(first, track_inputs(waveforms))
    np.save(kept, np.zeros((300, first.shape[1]), np.float32))  # what is kept is what is read back
    assert not track_inputs_kept(tmp_path, waveforms).any()
    np.save(kept, np.zeros((10, 3), np.float32))  # another shape (another version's form): computed again
    assert np.array_equal(track_inputs_kept(tmp_path, waveforms), first)
    assert np.load(kept).shape == first.shape and not list(tmp_path.glob(".*partial"))
    missing = tmp_path / "gone"  # a folder that cannot be written to: computed, nothing kept, no error
    assert np.array_equal(track_inputs_kept(missing, waveforms), first) and not missing.exists()
