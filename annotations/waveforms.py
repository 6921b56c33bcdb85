"""The classic per-waveform features of radar altimetry, vectorised over [N, G] arrays (N waveforms of G gates).

The order of the columns is annotations.track_arrays.FEATURES: peakiness, lew, tew, max_power.

- pulse peakiness, PP = G * max(P) / sum(P) (Peacock & Laxon 2004, as Ricker et al. 2014 write it for CryoSat-2):
  normalised by the number of gates, so that a flat waveform has PP = 1 whatever G. A CryoSat-2 SAR waveform's 256
  gates span the same range window as 128 LRM / AltiKa gates, oversampled twice (zero-padded FFT), so an echo takes
  twice the gates and the same echo gives about the same PP with 128 or 256 gates. Diffuse echoes (ice, ocean) sit
  around 2-10, specular ones (leads) at 20-100+.
- leading-edge width (lew, gates): from where the power first reaches 5 % of the peak to where it first reaches 95 %,
  both searched before the peak, each crossing interpolated linearly between gates.
- trailing-edge width (tew, gates): from the peak to where the power first falls to 50 % of it after the peak
  (interpolated). When it never does within the window (a slow diffuse decay), the width to the last gate is given:
  a lower bound, which keeps diffuse echoes apart from specular ones (1-2 gates).
- max_power: the highest power, in the waveform's own units (watts for CryoSat-2 L1B).

A waveform whose power is all zero, negative or NaN has NaN for every feature but max_power (0 when all zero);
NaN gates count as zero power.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LEW_HIGH", "LEW_LOW", "TEW_LEVEL", "waveform_features"]

LEW_LOW, LEW_HIGH = 0.05, 0.95
TEW_LEVEL = 0.5
_CHUNK = 8192  # waveforms at a time: bounded temporaries (a few MB) however long the track


def waveform_features(waveforms: np.ndarray) -> np.ndarray:
    """The features of `waveforms` [N, G] as float32 [N, 4] (peakiness, lew, tew, max_power)."""
    w = np.asarray(waveforms)
    if w.ndim != 2:
        raise ValueError(f"waveforms must be [N, G], not of shape {w.shape}")
    out = np.full((w.shape[0], 4), np.nan, dtype=np.float32)
    if w.shape[1] == 0:
        return out
    for start in range(0, w.shape[0], _CHUNK):
        out[start:start + _CHUNK] = _features(w[start:start + _CHUNK])
    return out


def _features(w: np.ndarray) -> np.ndarray:
    p = np.nan_to_num(w.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    n, g = p.shape
    peak = p.argmax(axis=1)
    top = p[np.arange(n), peak]
    total = p.sum(axis=1)
    ok = top > 0
    out = np.full((n, 4), np.nan)
    out[:, 3] = np.where(np.isnan(w).all(axis=1), np.nan, top)
    if not ok.any():
        return out
    rows = np.flatnonzero(ok)
    q = p[rows] / top[rows, None]  # each waveform over its own peak: levels are fractions
    pk = peak[rows]
    gates = np.arange(g)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[rows, 0] = g * top[rows] / total[rows]
        before = gates[None, :] <= pk[:, None]
        low = _rising(q, before, LEW_LOW)
        high = _rising(q, before, LEW_HIGH)
        out[rows, 1] = high - low
        after = gates[None, :] > pk[:, None]
        out[rows, 2] = _falling(q, after, TEW_LEVEL, g) - pk
    return out


def _rising(q: np.ndarray, where: np.ndarray, level: float) -> np.ndarray:
    """Fractional gate where q first reaches `level` among the gates `where` (the peak itself always does)."""
    hit = (q >= level) & where
    i = hit.argmax(axis=1)
    r = np.arange(len(q))
    prev = np.maximum(i - 1, 0)
    lo, hi = q[r, prev], q[r, i]
    frac = np.where(hi > lo, (level - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0)
    return np.where(i > 0, prev + np.clip(frac, 0.0, 1.0), 0.0)


def _falling(q: np.ndarray, where: np.ndarray, level: float, g: int) -> np.ndarray:
    """Fractional gate where q first falls to `level` among the gates `where`; the last gate when it never does."""
    hit = (q <= level) & where
    found = hit.any(axis=1)
    j = hit.argmax(axis=1)
    r = np.arange(len(q))
    prev = np.maximum(j - 1, 0)
    hi, lo = q[r, prev], q[r, j]
    frac = np.where(hi > lo, (hi - level) / np.where(hi > lo, hi - lo, 1.0), 0.0)
    return np.where(found, prev + np.clip(frac, 0.0, 1.0), g - 1.0)
