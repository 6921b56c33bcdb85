"""The `leads` network's inputs and targets: waveforms of any mission brought to one form, windows along a track,
the frozen per-waveform labels, and the classic pulse-peakiness threshold the network is compared against.

The input form (`waveform_form`), the same for every mission and gate count:

1. Resampled to FORM_GATES (128) gates over the same range window. A 256-gate waveform is a CryoSat-2 SAR one:
   its L1B window is the LRM window (~60 m) sampled twice as finely (the FFT is zero-padded by 2), so two adjacent
   gates are averaged; 128 gates (AltiKa, SIRAL LRM) are kept as they are; any other count is linearly interpolated
   onto 128 gates spanning its window. (AltiKa's window, ~40 m for 128 gates of 0.31 m, is narrower than SIRAL's:
   what differs is the gate width in metres, which the network sees as a slightly sharper leading edge.)
2. Normalised: divided by its own maximum (absolute power is in counts for the AltiKa SGDR, in watts for SIRAL, and
   differs by orders of magnitude between missions and gains).
3. Aligned on the leading edge: the first gate where the normalised power reaches 0.5 (interpolated between gates)
   is moved to gate EDGE_GATE (40), by linear interpolation at fractional shifts; outside the window the edge values
   are repeated. Range-tracker jitter and off-nadir "hooking" no longer move the shape; where the edge was in the
   window is kept as a scalar.

and beside the 128 gates, SCALARS (5 numbers, all from the waveform itself, so they mean the same for every
mission): the log10 of the waveform's maximum power minus the track's median of it (specular echoes from leads are
10-100 times stronger than diffuse ones; the track's median removes the mission's units and gain), log10 of the
pulse peakiness of the form (max / mean of the 128 normalised gates), the leading-edge width (10 % to 90 % of the
maximum, in form gates / 16), the trailing-edge width (maximum to 50 % after it, in form gates / 64), and the
leading edge's position in the original window (a share of it, minus 0.5). An all-zero or non-finite waveform
gives a zero form and scalars.

A sample is one track (training.contract.SampleRef, kind "tracks"): `path` the folder of its arrays
(annotations.track_arrays: `waveforms` float32 [N, G], `features` float32 [N, 4] with the ingest's pulse peakiness
first), `target` the frozen labels of a snapshot (training.services.track_snapshots): the path of a `.npz` holding
`label` int8 [N] (1 lead, 0 not lead, -1 unknown) and `distance` float32 [N] (metres to the closest lead, NaN where
none), or the same as a mapping of arrays; `meta` {"gates", "rate_hz", "mission", "n_waveforms", "pp_threshold"
(the classic baseline's threshold, chosen on the snapshot's train split)}.

The dataset (`TrackDataset`) cuts each track into windows of `window` waveforms (a track shorter than a window is
one window, padded): in training every `stride` waveforms (jittered by up to half a stride each epoch, and reversed
along the track half the time), keeping only windows with a labelled waveform; in evaluation every window // 2,
each waveform scored once, by the window whose centre is nearest ("own" mask). An item is `(x float32 [L, F],
target, item id)` with F = FORM_GATES + len(SCALARS) and target {"label" float32 [L] (-1: unknown or padding),
"distance" float32 [L] (log1p(min(d, clip) / scale), NaN: none), "valid" [L], "own" [L], "peakiness" [L] (the
ingest's, for the baseline), "pp_threshold", "pos_weight", "start" (the window's first waveform)}.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from training.contract import NetworkError, SampleRef

__all__ = ["EDGE_GATE", "FORM_GATES", "SCALARS", "TrackDataset", "binary_scores", "classic_peakiness",
           "distance_target", "distance_metres", "load_target", "pp_threshold_fit", "resample_gates",
           "track_inputs", "track_inputs_kept", "waveform_form", "window_starts"]

FORM_GATES = 128
EDGE_GATE = 40
SCALARS = ("rel_log_power", "log_peakiness", "lew", "tew", "edge_position")
N_FEATURES = FORM_GATES + len(SCALARS)
_LEW_SCALE, _TEW_SCALE, _CLIP = 16.0, 64.0, 4.0


# --------------------------------------------------------------------------------------------------------
# One input form
# --------------------------------------------------------------------------------------------------------
def resample_gates(waveforms: np.ndarray, gates: int = FORM_GATES) -> np.ndarray:
    """[N, G] -> float64 [N, gates] over the same range window: G == gates kept, G a multiple of gates averaged
    by blocks (256 -> 128: the mean of gate pairs), any other G linearly interpolated between gate centres."""
    w = np.asarray(waveforms, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] < 2:
        raise NetworkError(f"waveforms must be [N, gates] with at least 2 gates, not {w.shape}")
    g = w.shape[1]
    if g == gates:
        return w.copy()
    if g % gates == 0:
        return w.reshape(len(w), gates, g // gates).mean(axis=2)
    centres = (np.arange(gates) + 0.5) * g / gates - 0.5  # the new gates' centres in old-gate units
    lo = np.clip(np.floor(centres).astype(int), 0, g - 1)
    hi = np.clip(lo + 1, 0, g - 1)
    frac = np.clip(centres - lo, 0.0, 1.0)
    return w[:, lo] * (1 - frac) + w[:, hi] * frac


def _first_crossing(w: np.ndarray, level: float | np.ndarray) -> np.ndarray:
    """For each row of `w` (normalised, max 1), the fractional gate where it first reaches `level` (linear between
    the gate before and the gate that reaches it; 0 when the first gate does)."""
    level = np.broadcast_to(np.asarray(level, dtype=np.float64), (len(w),))
    above = w >= level[:, None]
    i = np.argmax(above, axis=1)
    rows = np.arange(len(w))
    before = w[rows, np.maximum(i - 1, 0)]
    at = w[rows, i]
    step = np.where(at > before, at - before, 1.0)
    pos = (i - 1) + np.clip((level - before) / step, 0.0, 1.0)
    return np.where(i > 0, pos, 0.0)


def _shift(w: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Row r sampled at gates j + offset[r] (linear interpolation; the edge values outside the window), in w's
    dtype. One gather from the flattened rows (np.take_along_axis built the same from per-row indices at twice the
    cost: a third of a 10 000-waveform prediction's extra time over the model's forward, bench_leads_predict)."""
    n, g = w.shape
    pos = np.clip(np.arange(g, dtype=w.dtype)[None, :] + offset.astype(w.dtype)[:, None], 0.0, g - 1.0)
    lo = pos.astype(np.int64)  # pos >= 0: truncating is flooring
    frac = pos - lo.astype(w.dtype)
    lo += (np.arange(n, dtype=np.int64) * g)[:, None]
    flat = w.reshape(-1)
    a = flat.take(lo)
    b = flat.take(lo + 1, mode="clip")  # the next gate; past a row's last gate only where frac is 0
    b -= a
    b *= frac
    b += a
    return b


def waveform_form(waveforms: np.ndarray, *, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Waveforms [N, G] of one track -> (form float32 [N, 128], scalars float32 [N, 5]): see the module docstring.
    Works in chunks of `chunk` waveforms (a memory map is read once, piece by piece)."""
    raw = np.asarray(waveforms)
    n = len(raw)
    form = np.zeros((n, FORM_GATES), dtype=np.float32)
    scalars = np.zeros((n, len(SCALARS)), dtype=np.float32)
    log_max = np.full(n, np.nan)
    gates = np.arange(FORM_GATES)[None, :]
    for start in range(0, n, chunk):
        # float32 from here (the form is stored float32; float64 doubled the memory traffic for nothing).
        part = raw[start:start + chunk]
        if part.ndim == 2 and part.shape[1] == FORM_GATES:
            w = np.array(part, dtype=np.float32)
        else:
            w = resample_gates(part).astype(np.float32)
        w[~np.isfinite(w)] = 0.0
        np.maximum(w, 0.0, out=w)
        peak = w.max(axis=1)
        ok = peak > 0
        if not ok.any():
            continue
        w = w[ok] / peak[ok, None]
        edge = _first_crossing(w, 0.5)
        aligned = _shift(w, edge - EDGE_GATE)
        rows = np.flatnonzero(ok) + start
        form[rows] = aligned
        log_max[rows] = np.log10(peak[ok])
        lew = _first_crossing(w, 0.9) - _first_crossing(w, 0.1)
        top = np.argmax(w, axis=1)
        falls = (w < 0.5) & (gates > top[:, None])  # gates past the maximum, below half of it
        tew = np.where(falls.any(axis=1), np.argmax(falls, axis=1) - top, FORM_GATES - top)
        scalars[rows, 1] = np.log10(1.0 / np.maximum(w.mean(axis=1, dtype=np.float64), 1e-6))
        scalars[rows, 2] = np.clip(lew / _LEW_SCALE, 0, _CLIP)
        scalars[rows, 3] = np.clip(tew / _TEW_SCALE, 0, _CLIP)
        scalars[rows, 4] = edge / FORM_GATES - 0.5
    finite = np.isfinite(log_max)
    if finite.any():
        scalars[finite, 0] = np.clip(log_max[finite] - np.median(log_max[finite]), -_CLIP, _CLIP)
    return form, scalars


def track_inputs(waveforms: np.ndarray) -> np.ndarray:
    """The network's input for every waveform of a track: float32 [N, F] (the form's 128 gates, then SCALARS)."""
    form, scalars = waveform_form(waveforms)
    return np.concatenate([form, scalars], axis=1)


INPUTS_VERSION = 1  # bump when the input form changes: inputs kept by an older version are computed again


def track_inputs_kept(folder: str | os.PathLike | None, waveforms: np.ndarray) -> np.ndarray:
    """`track_inputs`, kept beside the track's arrays in `folder` (leads_inputs_v<INPUTS_VERSION>.npy). A track's
    inputs depend on its waveforms alone, which are written once, so they are computed the first time the track
    is trained on or predicted and read back after (~45 ms for 10 000 waveforms on a CPU, a tenth of their
    prediction). Written into a scratch file renamed into place, best effort: a folder that cannot be written to
    only means computing them each time. A kept file of the wrong shape is computed again."""
    if folder is None:
        return track_inputs(waveforms)
    path = Path(folder) / f"leads_inputs_v{INPUTS_VERSION}.npy"
    shape = (len(waveforms), N_FEATURES)
    try:
        kept = np.load(path, allow_pickle=False)
        if kept.shape == shape and kept.dtype == np.float32:
            return kept
    except (OSError, ValueError, EOFError):
        pass
    inputs = track_inputs(waveforms)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.partial")
    try:
        with open(scratch, "wb") as handle:
            np.save(handle, inputs)
        os.replace(scratch, path)
    except OSError:
        scratch.unlink(missing_ok=True)
    return inputs


# --------------------------------------------------------------------------------------------------------
# Targets and the classic baseline
# --------------------------------------------------------------------------------------------------------
def load_target(target: Any, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(label int8 [N], distance float32 [N] in metres, NaN: none) of a sample's target: a frozen `.npz` path or a
    mapping with "label" (and "distance"). A wrong length is a NetworkError."""
    if isinstance(target, (str, os.PathLike)):
        path = Path(target)
        if not path.is_file():
            raise NetworkError(f"the frozen labels {path} are missing: the snapshot's files were removed")
        with np.load(path, allow_pickle=False) as z:
            label, distance = z["label"], z["distance"] if "distance" in z.files else None
    elif isinstance(target, Mapping) and "label" in target:
        label, distance = target["label"], target.get("distance")
    else:
        raise NetworkError(f"a track's target is its frozen labels (a .npz path or arrays), not "
                           f"{type(target).__name__}")
    label = np.asarray(label, dtype=np.int8)
    distance = np.full(len(label), np.nan, np.float32) if distance is None else np.asarray(distance, np.float32)
    if len(distance) != len(label) or (n is not None and len(label) != n):
        raise NetworkError(f"the labels hold {len(label)} waveforms, the track {n if n is not None else len(distance)}")
    return label, distance


def distance_target(distance_m: np.ndarray, *, scale_m: float, clip_m: float) -> np.ndarray:
    """Metres -> what the network regresses: log1p(min(d, clip) / scale) (NaN stays NaN: no target)."""
    d = np.asarray(distance_m, dtype=np.float64)
    return np.log1p(np.clip(d, 0, clip_m) / scale_m).astype(np.float32)


def distance_metres(value: np.ndarray | torch.Tensor, *, scale_m: float):
    """The inverse of `distance_target` (a regressed value -> metres, >= 0)."""
    if isinstance(value, torch.Tensor):
        return torch.expm1(value.clamp_min(0)) * scale_m
    return np.expm1(np.maximum(value, 0)) * scale_m


def classic_peakiness(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """The ingest's pulse peakiness of each waveform (features[:, 0]); without features, max / mean of the raw
    waveform (the classic definition, Laxon 1994: gates x max / sum)."""
    if "features" in arrays:
        return np.asarray(arrays["features"][:, 0], dtype=np.float64)
    w = np.asarray(arrays["waveforms"], dtype=np.float64)
    return w.max(axis=1) / np.maximum(w.mean(axis=1), 1e-30)


def binary_scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    """Per-waveform scores of lead predictions `pred` (bool) against `truth` (bool): counts, precision, recall, F1,
    accuracy. A share with nothing to count (no predicted lead, no true lead, no waveform) is None."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    fn = int((~pred & truth).sum())
    tn = int((~pred & ~truth).sum())
    n = tp + fp + fn + tn
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
            "accuracy": (tp + tn) / n if n else None}


def pp_threshold_fit(peakiness: np.ndarray, label: np.ndarray) -> tuple[float, float | None]:
    """The classic baseline: "lead where the pulse peakiness exceeds t", with t chosen for the best F1 over the
    labelled waveforms given (the train split's). Returns (t, that F1); with no lead to find, (inf, None).
    t lies halfway between two distinct peakiness values (the lowest such t among equal F1s)."""
    pp = np.asarray(peakiness, dtype=np.float64)
    label = np.asarray(label)
    keep = (label >= 0) & np.isfinite(pp)
    pp, truth = pp[keep], label[keep] == 1
    positives = int(truth.sum())
    if not positives:
        return math.inf, None
    order = np.argsort(-pp, kind="stable")
    pp, truth = pp[order], truth[order]
    tp = np.cumsum(truth)
    k = np.arange(1, len(pp) + 1)  # the k waveforms of highest peakiness predicted lead
    cut = np.append(pp[:-1] > pp[1:], True)  # only between distinct values
    f1 = np.where(cut, 2 * tp / (k + positives), -1.0)
    best = int(np.flatnonzero(f1 == f1.max())[-1])
    threshold = (pp[best] + pp[best + 1]) / 2 if best + 1 < len(pp) else pp[best] - max(1e-6, abs(pp[best]) * 1e-6)
    return float(threshold), float(f1[best])


# --------------------------------------------------------------------------------------------------------
# Windows along a track
# --------------------------------------------------------------------------------------------------------
def window_starts(n: int, window: int, stride: int) -> list[int]:
    """Starts of windows of `window` waveforms every `stride`, the last one ending at the track's end, so that
    every waveform is covered ([0] when the track is not longer than a window)."""
    if n <= window:
        return [0]
    starts = list(range(0, n - window + 1, stride))
    if starts[-1] != n - window:
        starts.append(n - window)
    return starts


def _owned(starts: Sequence[int], window: int, n: int) -> list[tuple[int, int]]:
    """For each window, the waveforms [a, b) it is the nearest-centred window of (together: each waveform once)."""
    centres = [s + min(window, n) / 2 for s in starts]
    bounds = [0] + [int(math.ceil((centres[i] + centres[i + 1]) / 2)) for i in range(len(starts) - 1)] + [n]
    return [(max(bounds[i], s), min(bounds[i + 1], s + window)) for i, s in enumerate(starts)]


class TrackDataset(Dataset):
    """Windows of tracks (see the module docstring). Each track's inputs are computed once, when the dataset is
    made (10 000 waveforms: ~5 MB), and its arrays are not kept open."""

    def __init__(self, samples: Sequence[SampleRef], *, window: int, stride: int, train: bool,
                 scale_m: float = 100.0, clip_m: float = 5000.0, pos_weight: float = 0.0, jitter: bool = True,
                 flip: bool = True, labelled_only: bool | None = None) -> None:
        from annotations.track_arrays import arrays_read  # numpy only; the package needs no ORM

        self.window, self.train = int(window), bool(train)
        self.stride = int(stride) if train else max(1, self.window // 2)
        self.jitter, self.flip = jitter and train, flip and train
        labelled_only = train if labelled_only is None else labelled_only
        self.tracks: list[dict[str, Any]] = []
        self.windows: list[tuple[int, int, int, int]] = []  # (track index, start, own from, own to)
        leads = others = 0
        for s in samples:
            arrays = arrays_read(Path(s.path), [n for n in ("waveforms", "features")
                                                if (Path(s.path) / f"{n}.npy").is_file()])
            if "waveforms" not in arrays:
                raise NetworkError(f"track {s.item_id} has no waveforms on disk ({s.path})")
            n = len(arrays["waveforms"])
            if s.target is not None:
                label, distance = load_target(s.target, n)
            else:
                label, distance = np.full(n, -1, np.int8), np.full(n, np.nan, np.float32)
            leads += int((label == 1).sum())
            others += int((label == 0).sum())
            track = {"id": int(s.item_id), "x": track_inputs_kept(s.path, arrays["waveforms"]),
                     "label": label.astype(np.float32),
                     "distance": distance_target(distance, scale_m=scale_m, clip_m=clip_m),
                     "peakiness": classic_peakiness(arrays).astype(np.float32),
                     "pp_threshold": float(s.meta.get("pp_threshold", math.inf)) if s.meta else math.inf}
            index = len(self.tracks)
            self.tracks.append(track)
            starts = window_starts(n, self.window, self.stride)
            for start, (a, b) in zip(starts, _owned(starts, self.window, n), strict=True):
                if labelled_only and not (label[start:start + self.window] >= 0).any():
                    continue
                self.windows.append((index, start, a, b))
        auto = math.sqrt(others / leads) if leads else 1.0
        self.pos_weight = float(pos_weight) if pos_weight > 0 else float(min(10.0, max(1.0, auto)))
        self.leads, self.others = leads, others

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        index, start, a, b = self.windows[k]
        track = self.tracks[index]
        n, length = len(track["label"]), self.window
        if self.jitter and n > length:
            half = max(1, self.stride // 2)
            start = int(min(max(0, start + int(torch.randint(-half, half + 1, ()).item())), n - length))
        stop = min(n, start + length)
        size = stop - start
        x = np.zeros((length, N_FEATURES), np.float32)
        x[:size] = track["x"][start:stop]
        label = np.full(length, -1.0, np.float32)
        label[:size] = track["label"][start:stop]
        distance = np.full(length, np.nan, np.float32)
        distance[:size] = track["distance"][start:stop]
        peak = np.zeros(length, np.float32)
        peak[:size] = track["peakiness"][start:stop]
        valid = np.zeros(length, bool)
        valid[:size] = True
        own = np.zeros(length, bool)
        if not self.train:
            own[a - start:b - start] = True
        if self.flip and size == length and bool(torch.rand(()) < 0.5):
            x, label, distance, peak, own = (np.ascontiguousarray(v[::-1]) for v in (x, label, distance, peak, own))
        target = {"label": torch.from_numpy(label), "distance": torch.from_numpy(distance),
                  "valid": torch.from_numpy(valid), "own": torch.from_numpy(own), "peakiness": torch.from_numpy(peak),
                  "pp_threshold": torch.tensor(track["pp_threshold"], dtype=torch.float64),
                  "pos_weight": torch.tensor(self.pos_weight, dtype=torch.float32),
                  "start": torch.tensor(start, dtype=torch.int64)}
        return torch.from_numpy(x), target, track["id"]
