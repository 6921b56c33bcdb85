"""`leads`: which waveforms of an altimetry track come from a lead, and how far each nadir is from the closest lead,
by a bidirectional LSTM along the track over a small per-waveform encoder.

Inputs (training.networks.leads_data, `waveform_form`): every waveform brought to one form whatever its mission and
gate count: resampled to 128 gates over the same range window (a 256-gate CryoSat-2 SAR waveform, whose window is
the LRM one sampled twice as finely, by the mean of gate pairs; other counts by linear interpolation), normalised by
its maximum, and shifted (by a fractional number of gates) so that the leading edge's 50 % point lies at gate 40;
plus five scalars: log10 of the maximum power relative to the track's median (the mission's units and gain drop
out), log10 of the form's pulse peakiness, the leading- and trailing-edge widths, and where the leading edge was in
the window.

The model (`LeadsNet`): per waveform, three strided 1-D convolutions over the 128 gates (`channels`, 2 x channels,
2 x channels; 128 -> 16 gates, average-pooled to 8) and a linear layer with the scalars to an embedding (`embed`
wide, layer norm, ReLU, dropout); a bidirectional LSTM (`hidden` per direction, `lstm_layers`) along the track; per
waveform, from the LSTM's state and the waveform's own embedding, two heads: the lead logit, and the distance to
the closest lead regressed as log1p(min(d, distance_clip_m) / distance_scale_m) (softplus, >= 0): the reference
study's next step, a second output of the same network (issue 15, point 7).

Loss: a masked binary cross-entropy of the lead logit over the labelled waveforms (unknown and padding ignored;
`pos_weight` for the rare leads: sqrt(not lead / lead) of the train split, 1 to 10, unless given) plus
`distance_weight` times a masked smooth-L1 of the distance over the waveforms with a collocation distance. Weighing
leads pos_weight times multiplies the odds the logit learns by pos_weight: the model keeps -log(pos_weight) of its
training (a buffer, so in its checkpoint) and its probabilities take it back out, so p > 0.5 means "more likely a
lead than not" rather than "pos_weight times less likely".

Metrics (`evaluate`), per waveform over the validation split, each waveform scored once: precision, recall, F1 and
accuracy of "lead where p > 0.5"; in the same run the classic baseline, "lead where the pulse peakiness exceeds t"
with t chosen on the train split for its best F1 (the snapshot's samples carry it: meta["pp_threshold"]), scored on
the same waveforms (baseline_pp_*); the distance's MAE in metres (both sides clipped at distance_clip_m). A version
is activated only when its F1 beats the baseline's (`baseline`).

Uncertainty of a waveform: the binary entropy of its lead probability, in bits (0 sure, 1 p = 0.5); with MC dropout
(T passes), that of the mean probability, and the mutual information (BALD) beside it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from training.contract import NetworkError, PredictionBatch, SampleRef
from training.networks.base import Network, batch_parts, register, targets_on
from training.networks.leads_data import (
    FORM_GATES,
    N_FEATURES,
    SCALARS,
    TrackDataset,
    binary_scores,
    classic_peakiness,
    distance_metres,
    load_target,
    pp_threshold_fit,
    track_inputs_kept,
    window_starts,
)
from training.services.activation import ScoreBaseline, pct
from training.specs import LEADS_SPEC

__all__ = ["LeadsNet", "LeadsNetwork", "binary_entropy", "predict_track"]

LEAD_PROBABILITY = 0.5


# --------------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------------
class LeadsNet(nn.Module):
    """[B, L, F] (F = 128 form gates + 5 scalars) -> (lead logits [B, L], regressed distance [B, L] >= 0)."""

    def __init__(self, *, channels: int = 16, embed: int = 64, hidden: int = 64, layers: int = 1,
                 dropout: float = 0.1) -> None:
        super().__init__()
        c = channels
        self.encoder = nn.Sequential(
            nn.Conv1d(1, c, 7, stride=2, padding=3), nn.ReLU(inplace=True),
            nn.Conv1d(c, 2 * c, 5, stride=2, padding=2), nn.ReLU(inplace=True),
            nn.Conv1d(2 * c, 2 * c, 5, stride=2, padding=2), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool1d(8),
        )  # fmt: skip
        self.embed = nn.Sequential(nn.Linear(2 * c * 8 + len(SCALARS), embed), nn.LayerNorm(embed),
                                   nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden + embed, 2)
        # -log(pos_weight) of its training: the loss weighs leads pos_weight times, which multiplies the odds the
        # logit learns by pos_weight; probabilities add this back (training sets it, checkpoints keep it).
        self.register_buffer("logit_offset", torch.zeros(()))
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.constant_(self.head.bias, 0.0)
        with torch.no_grad():
            self.head.bias[0] = -2.0  # leads are rare: start near a 12 % prior, not 50 %

    def probability(self, logit: torch.Tensor) -> torch.Tensor:
        """The lead probability of a logit from `forward`, the pos_weight of training taken back out."""
        return torch.sigmoid(logit.float() + self.logit_offset)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, length, _ = x.shape
        gates = x[..., :FORM_GATES].reshape(b * length, 1, FORM_GATES)
        z = self.encoder(gates).flatten(1)
        e = self.embed(torch.cat([z, x[..., FORM_GATES:].reshape(b * length, -1)], dim=1)).view(b, length, -1)
        h, _ = self.lstm(e)
        out = self.head(self.dropout(torch.cat([h, e], dim=-1)))
        return out[..., 0], F.softplus(out[..., 1])


def binary_entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy of Bernoulli(p) in bits, in [0, 1]."""
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(p * torch.log2(p) + (1 - p) * torch.log2(1 - p))


def _forward(model: nn.Module, x: torch.Tensor, device: torch.device, mc_dropout: int) -> dict[str, torch.Tensor]:
    """Lead probability, distance (m), uncertainty (bits) and, with MC dropout, mutual information, each [B, L],
    float32 on the CPU. The model is put in eval mode (dropout on for the MC passes only)."""
    model.eval()
    x = x.to(device, non_blocking=True).float()
    dropouts = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0]
    passes = int(mc_dropout) if mc_dropout > 0 and dropouts else 1
    scale = float(getattr(model, "distance_scale_m", 100.0))
    probs, dists = [], []
    with torch.inference_mode(), Network.autocast(model, device):
        try:
            for m in dropouts if mc_dropout > 0 else ():
                m.train()
            for _ in range(passes):
                logit, dist = model(x)
                probs.append(model.probability(logit))
                dists.append(distance_metres(dist.float(), scale_m=scale))
        finally:
            for m in dropouts:
                m.eval()
    prob_t = torch.stack(probs)
    mean = prob_t.mean(dim=0)
    out = {"probability": mean, "distance_m": torch.stack(dists).mean(dim=0), "uncertainty": binary_entropy(mean)}
    if mc_dropout > 0:
        out["mutual_information"] = (out["uncertainty"] - binary_entropy(prob_t).mean(dim=0)).clamp_min(0)
    return {k: v.float().cpu() for k, v in out.items()}


def predict_track(model: nn.Module, arrays: Mapping[str, np.ndarray], hparams: Mapping[str, Any],
                  device: torch.device | str, *, mc_dropout: int = 0, batch_size: int | None = None,
                  folder: str | os.PathLike | None = None) -> dict:
    """The model over every waveform of one track: `arrays` holds at least "waveforms" [N, G] (any G: see
    leads_data.waveform_form); `folder`, the track's arrays folder, keeps its inputs between runs
    (leads_data.track_inputs_kept). Windows of hparams["window"] waveforms (the whole track when shorter) every half
    window (hparams["predict_stride"] when set), the last one ending at the track's end; each waveform's values are
    the blend of the windows covering it, weighted by a triangle peaking at each window's centre (a waveform near a
    window's edge sees little context on one side).

    Returns {"probability": float32 [N] in [0, 1], "distance_m": float32 [N] >= 0, "uncertainty": float32 [N] in
    [0, 1] (bits of binary entropy, see the module docstring)}, plus "mutual_information" [N] with MC dropout."""
    device = torch.device(device)
    x = torch.from_numpy(track_inputs_kept(folder, arrays["waveforms"]))
    n = len(x)
    names = ["probability", "distance_m", "uncertainty"] + (["mutual_information"] if mc_dropout > 0 else [])
    if n == 0:
        return {k: np.zeros(0, np.float32) for k in names}
    length = min(int(hparams.get("window", 256)), n)
    stride = int(hparams.get("predict_stride") or 0) or max(1, length // 2)
    starts = torch.tensor(window_starts(n, length, stride))
    centre = (length - 1) / 2
    weight = (1.0 - torch.abs(torch.arange(length, dtype=torch.float64) - centre) / (centre + 1)).clamp_min(1e-3)
    sums = {k: torch.zeros(n, dtype=torch.float64) for k in names}
    total = torch.zeros(n, dtype=torch.float64)
    size = int(batch_size or hparams.get("batch_size") or 16)
    offsets = torch.arange(length)
    for i in range(0, len(starts), size):
        index = starts[i:i + size, None] + offsets  # [B, L]: the waveforms of each window
        out = _forward(model, x[index], device, mc_dropout)
        flat = index.reshape(-1)
        total.index_add_(0, flat, weight.repeat(len(index)))
        for k in names:
            sums[k].index_add_(0, flat, (out[k].double() * weight).reshape(-1))
    return {k: (v / total).numpy().astype(np.float32) for k, v in sums.items()}


def _losses(logit: torch.Tensor, dist: torch.Tensor, target: Mapping[str, torch.Tensor], distance_weight: float):
    """Masked BCE of the lead logit (labels -1 ignored, pos_weight for leads) + distance_weight x masked smooth-L1
    of the regressed distance (NaN targets ignored)."""
    label = target["label"]
    known = (label >= 0).float()
    pos_weight = target["pos_weight"].float().mean()
    bce = F.binary_cross_entropy_with_logits(logit.float(), label.clamp_min(0), pos_weight=pos_weight,
                                             reduction="none")
    loss = (bce * known).sum() / known.sum().clamp_min(1)
    if distance_weight > 0:
        truth = target["distance"]
        has = (torch.isfinite(truth) & target["valid"]).float()
        reg = F.smooth_l1_loss(dist.float(), torch.nan_to_num(truth), reduction="none")
        loss = loss + distance_weight * (reg * has).sum() / has.sum().clamp_min(1)
    return loss


# --------------------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------------------
class LeadsNetwork(Network):
    """Leads along altimetry tracks (see the module docstring)."""

    spec = LEADS_SPEC

    # --- hyperparameters -------------------------------------------------------------------------------
    def default_hparams(self, device: torch.device | str | None = None) -> dict:
        """Windows of 256 waveforms every 128 (about 6 s of a 40 Hz pass) in batches of 8; on a GPU a wider
        model (channels 32, embed and hidden 128) and more epochs. On the CPU (2 cores) an epoch of two 10 000-waveform
        tracks (156 windows) takes about 4 s, and the 120 steps of `min_steps` 6 epochs.

        Keys beyond the usual: window, stride (training windows), predict_stride (0: half a window), channels,
        embed, hidden, lstm_layers, dropout, pos_weight (0: from the train split), distance_weight,
        distance_scale_m, distance_clip_m, jitter and augment_flip (training augmentation), min_steps / max_epochs
        (see Network.epochs_for), grad_clip."""
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if device is None else device
        gpu = torch.device(device).type == "cuda"
        return {
            "window": 256, "stride": 128, "predict_stride": 0,
            "channels": 32 if gpu else 16, "embed": 128 if gpu else 64, "hidden": 128 if gpu else 64,
            "lstm_layers": 1, "dropout": 0.1,
            # Small batches: a few dozen windows per track, and leads are rare (an update needs to see some).
            "lr": 5e-3, "weight_decay": 1e-4, "batch_size": 8, "epochs": 20 if gpu else 6, "schedule": "cosine",
            "warmup_epochs": 0.2, "min_steps": 120, "max_epochs": 40, "seed": 0,
            "pos_weight": 0.0, "distance_weight": 0.5, "distance_scale_m": 100.0, "distance_clip_m": 5000.0,
            "jitter": True, "augment_flip": True,
            # An LSTM gains little from bfloat16 and cuDNN's RNN is best left in float32.
            "amp": False, "num_workers": 0, "grad_clip": 1.0,
        }  # fmt: skip

    def check_hparams(self, hparams: Mapping[str, Any]) -> None:
        super().check_hparams(hparams)
        window, stride = int(hparams.get("window", 256)), int(hparams.get("stride", 128))
        if window < 8:
            raise NetworkError(f"window must be at least 8 waveforms, not {window}")
        if not 1 <= stride <= window:
            raise NetworkError(f"stride must be 1 to window ({window}) waveforms, not {stride}")
        if not 0 <= int(hparams.get("predict_stride") or 0) <= window:
            raise NetworkError(f"predict_stride must be 0 (half a window) to window, not "
                               f"{hparams.get('predict_stride')!r}")
        for key in ("channels", "embed", "hidden"):
            if int(hparams.get(key, 1)) < 1:
                raise NetworkError(f"{key} must be a positive width, not {hparams.get(key)!r}")
        if not 1 <= int(hparams.get("lstm_layers", 1)) <= 4:
            raise NetworkError(f"lstm_layers must be 1 to 4, not {hparams.get('lstm_layers')!r}")
        if not 0.0 <= float(hparams.get("dropout", 0.0)) < 1.0:
            raise NetworkError(f"dropout must be in [0, 1), not {hparams.get('dropout')!r}")
        for key in ("pos_weight", "distance_weight"):
            if not float(hparams.get(key, 0.0)) >= 0:
                raise NetworkError(f"{key} must be >= 0, not {hparams.get(key)!r}")
        for key in ("distance_scale_m", "distance_clip_m"):
            if not float(hparams.get(key, 1.0)) > 0:
                raise NetworkError(f"{key} must be positive, not {hparams.get(key)!r}")

    # --- the model -----------------------------------------------------------------------------------
    def arch_tag(self, hparams: Mapping[str, Any]) -> str:
        return (f"bilstm{int(hparams['lstm_layers'])}x{int(hparams['hidden'])}-conv{int(hparams['channels'])}"
                f"-e{int(hparams['embed'])}/{N_FEATURES}in")

    def build(self, hparams: Mapping[str, Any]) -> nn.Module:
        """A new model on the CPU (no pretrained weights: it learns from scratch)."""
        self.check_hparams(hparams)
        model = LeadsNet(channels=int(hparams["channels"]), embed=int(hparams["embed"]), hidden=int(hparams["hidden"]),
                         layers=int(hparams["lstm_layers"]), dropout=float(hparams.get("dropout", 0.0)))
        model.distance_weight = float(hparams.get("distance_weight", 0.5))
        model.distance_scale_m = float(hparams.get("distance_scale_m", 100.0))
        model.distance_clip_m = float(hparams.get("distance_clip_m", 5000.0))
        return self._tag(model, hparams)

    def check_weights_file(self, path: str | os.PathLike | None, hparams: Mapping[str, Any] | None = None) -> None:
        """None is accepted (nothing to check); any file is refused: the leads network has no weights option."""
        if path:
            raise NetworkError(f"the leads network takes no weights file ({path}): it trains from scratch, or from "
                               "a checkpoint of its own")

    # --- data ----------------------------------------------------------------------------------------
    def is_labelled(self, target: Any) -> bool:
        """Frozen labels: a .npz path, or a mapping with "label"."""
        if isinstance(target, (str, os.PathLike)):
            return bool(str(target))
        return isinstance(target, Mapping) and "label" in target

    def check_targets(self, samples: Sequence[SampleRef]) -> None:
        """Waveforms on disk for every track, labels of the track's length, a lead among the train waveforms and a
        labelled val waveform."""
        counts = {"train": [0, 0], "val": [0, 0]}
        for s in samples:
            wave = os.path.join(s.path, "waveforms.npy")
            if not os.path.isfile(wave):
                raise NetworkError(f"track {s.item_id} has no waveforms on disk ({s.path}): ingest it again")
            if s.split not in counts or s.target is None:
                continue
            label, _ = load_target(s.target, int(np.load(wave, mmap_mode="r").shape[0]))
            counts[s.split][0] += int((label >= 0).sum())
            counts[s.split][1] += int((label == 1).sum())
        if not counts["train"][1]:
            raise NetworkError("no train waveform is labelled lead: the network needs leads to learn from (mark "
                               "some on a track page, or collocate the tracks with scenes that have leads)")
        if not counts["val"][0]:
            raise NetworkError("no val waveform is labelled: a version is judged on its validation tracks")

    def baseline(self, val_samples: Sequence[SampleRef]) -> ScoreBaseline:
        """The classic pulse-peakiness threshold's F1 over the labelled val waveforms, with the threshold the
        samples carry (chosen on the train split); without one, chosen on these val waveforms themselves (which
        flatters the baseline, and says so)."""
        from annotations.track_arrays import arrays_read

        peaks, labels, thresholds = [], [], []
        for s in val_samples:
            if s.target is None:
                continue
            names = [n for n in ("waveforms", "features") if os.path.isfile(os.path.join(s.path, f"{n}.npy"))]
            arrays = arrays_read(s.path, names if "features" in names else ["waveforms"])
            pp = classic_peakiness(arrays)
            label, _ = load_target(s.target, len(pp))
            peaks.append(pp)
            labels.append(label)
            thresholds.append(float((s.meta or {}).get("pp_threshold", math.nan)))
        if not peaks:
            return ScoreBaseline(0.0, "no labelled val waveform", n_items=0)
        pp, label = np.concatenate(peaks), np.concatenate(labels)
        known = label >= 0
        given = [t for t in thresholds if not math.isnan(t)]
        where = "chosen on the train split"
        threshold = given[0] if given else pp_threshold_fit(pp, label)[0]
        if not given:
            where = "chosen on the val waveforms themselves: no train threshold given"
        scores = binary_scores(pp[known] > threshold, label[known] == 1)
        f1 = scores["f1"] or 0.0
        return ScoreBaseline(f1, f"{pct(f1)}: pulse peakiness > {threshold:.3g} ({where}) over "
                                 f"{int(known.sum())} val waveforms", n_items=int(known.sum()))

    def dataset(self, samples: Sequence[SampleRef], *, train: bool, hparams: Mapping[str, Any]) -> TrackDataset:
        dataset = TrackDataset(
            samples, window=int(hparams["window"]), stride=int(hparams["stride"]), train=train,
            scale_m=float(hparams.get("distance_scale_m", 100.0)), clip_m=float(hparams.get("distance_clip_m", 5000.0)),
            pos_weight=float(hparams.get("pos_weight", 0.0)), jitter=bool(hparams.get("jitter", True)),
            flip=bool(hparams.get("augment_flip", True)),
        )  # fmt: skip
        if train and samples and not len(dataset):
            raise NetworkError("no train track has a labelled waveform: there is no window to train on")
        return dataset

    # --- training and evaluation ---------------------------------------------------------------------
    def compute_loss(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        """The loss of a batch and its size in windows."""
        x, target, _ = batch_parts(batch)
        if target is None:
            raise NetworkError("a training batch needs targets")
        target = targets_on(target, device)
        with torch.no_grad():
            model.logit_offset.fill_(-math.log(float(target["pos_weight"].float().mean())))
        logit, dist = model(x.to(device, non_blocking=True).float())
        loss = _losses(logit, dist, target, getattr(model, "distance_weight", 0.5))
        return loss, int(x.shape[0])

    def evaluate(self, model: nn.Module, loader, device: torch.device) -> dict:
        """{"loss" (mean per window), "f1", "precision", "recall", "accuracy" (lead where p > 0.5, over the
        labelled waveforms, each once), "baseline_pp_f1", "baseline_pp_precision", "baseline_pp_recall",
        "baseline_pp_accuracy", "pp_threshold" (the classic baseline on the same waveforms), "distance_mae_m" (over
        the waveforms with a collocation distance, both clipped at distance_clip_m; None without any), "waveforms",
        "leads", "windows"}. A share with nothing to count is None (F1 with no lead and none predicted)."""
        model.eval()
        device = torch.device(device)
        scale = float(getattr(model, "distance_scale_m", 100.0))
        loss_sum, windows = 0.0, 0
        probs, truths, peaks, thresholds, errors = [], [], [], [], []
        with torch.inference_mode(), self.autocast(model, device):
            for batch in loader:
                x, target, _ = batch_parts(batch)
                if target is None:
                    raise NetworkError("evaluation needs targets")
                on = targets_on(target, device)
                logit, dist = model(x.to(device, non_blocking=True).float())
                loss_sum += float(_losses(logit, dist, on, getattr(model, "distance_weight", 0.5))) * x.shape[0]
                windows += int(x.shape[0])
                own = target["own"] if bool(target["own"].any()) else target["valid"]
                scored = own & (target["label"] >= 0)
                probs.append(model.probability(logit).cpu()[scored])
                truths.append(target["label"][scored] == 1)
                peaks.append(target["peakiness"][scored].double())
                thresholds.append(target["pp_threshold"][:, None].expand_as(scored)[scored])
                has = own & torch.isfinite(target["distance"])
                d_pred = distance_metres(dist.float().cpu()[has], scale_m=scale)
                d_true = distance_metres(target["distance"][has], scale_m=scale)
                errors.append((d_pred - d_true).abs().double())
        if not windows:
            raise NetworkError("nothing to evaluate: the loader is empty")
        prob, truth = torch.cat(probs).numpy(), torch.cat(truths).numpy()
        pp, thr = torch.cat(peaks).numpy(), torch.cat(thresholds).numpy()
        if len(thr) and not np.isfinite(thr).any():  # no train threshold given: chosen here (flattering)
            thr = np.full(len(pp), pp_threshold_fit(pp, truth.astype(np.int8))[0])
        model_scores = binary_scores(prob > LEAD_PROBABILITY, truth)
        base = binary_scores(pp > thr, truth)
        error = torch.cat(errors)
        return {
            "loss": loss_sum / windows,
            **{k: model_scores[k] for k in ("f1", "precision", "recall", "accuracy")},
            **{f"baseline_pp_{k}": base[k] for k in ("f1", "precision", "recall", "accuracy")},
            "pp_threshold": float(thr[0]) if len(thr) and np.isfinite(thr[0]) else None,
            "distance_mae_m": float(error.mean()) if len(error) else None,
            "waveforms": int(len(truth)), "leads": int(truth.sum()), "windows": windows,
        }  # fmt: skip

    def predict_batch(
        self, model: nn.Module, batch: Any, device: torch.device, *, mc_dropout: int = 0
    ) -> PredictionBatch:
        """Per window, over its valid waveforms (all when the batch has no "valid" mask): entropy = mean binary
        entropy of the lead probabilities (bits), confidence = 1 - entropy, margin = mean |2p - 1|,
        mutual_information (MC dropout only) = mean BALD. Payload, per window: "probability" [L], "distance_m" [L],
        "uncertainty" [L] (0 on padding), and "start" (the window's first waveform) when the batch carries it.
        A whole track: `predict_track`."""
        x, target, ids = batch_parts(batch)
        out = _forward(model, x, torch.device(device), mc_dropout)
        valid = target["valid"].bool().cpu() if target is not None and "valid" in target else \
            torch.ones(out["probability"].shape, dtype=torch.bool)
        weight = valid.float()
        count = weight.sum(dim=1).clamp_min(1)

        def mean(values: torch.Tensor) -> torch.Tensor:
            return (values * weight).sum(dim=1) / count

        entropy = mean(out["uncertainty"]).clamp(0, 1)
        payload: dict[str, Any] = {
            "probability": (out["probability"] * weight).numpy().astype(np.float32),
            "distance_m": (out["distance_m"] * weight).numpy().astype(np.float32),
            "uncertainty": (out["uncertainty"] * weight).numpy().astype(np.float32),
        }
        if target is not None and "start" in target:
            payload["start"] = target["start"].cpu().numpy().astype(np.int64)
        mutual = out.get("mutual_information")
        return PredictionBatch(
            confidence=(1 - entropy).numpy().astype(np.float32), entropy=entropy.numpy().astype(np.float32),
            margin=mean((2 * out["probability"] - 1).abs()).clamp(0, 1).numpy().astype(np.float32),
            mutual_information=None if mutual is None else mean(mutual).numpy().astype(np.float32),
            item_ids=ids, payload=payload,
        )

    def predict_track(self, model: nn.Module, arrays: Mapping[str, np.ndarray], hparams: Mapping[str, Any],
                      device: torch.device | str, *, mc_dropout: int = 0, batch_size: int | None = None,
                      folder: str | os.PathLike | None = None) -> dict:
        """The module's `predict_track`, for callers holding the network (the prediction job)."""
        return predict_track(model, arrays, hparams, device, mc_dropout=mc_dropout, batch_size=batch_size,
                             folder=folder)

    def model_from_checkpoint(self, state: Mapping[str, Any], device: torch.device | str | None = None):
        model, hparams = super().model_from_checkpoint(state, device)
        model._cryolabel_amp = False
        return model, hparams


LEADS = register(LeadsNetwork())
