"""annotations/waveforms.py: the classic features against values computed by hand on shapes whose crossings are
known (a box, a triangle, a Brown-model echo), vectorised over many waveforms, NaN-safe."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import erf

from annotations.track_arrays import FEATURES
from annotations.waveforms import waveform_features

G = 128
PP, LEW, TEW, MAX = (FEATURES.index(name) for name in ("peakiness", "lew", "tew", "max_power"))


def box() -> np.ndarray:
    w = np.zeros(G)
    w[10:20] = 2.0  # ten gates of power 2
    return w


def triangle() -> np.ndarray:
    g = np.arange(G, dtype=np.float64)
    return np.clip(1.0 - np.abs(g - 30.0) / 10.0, 0.0, None)  # 0 at gate 20, 1 at 30, 0 at 40


def test_box_by_hand():
    f = waveform_features(box()[None])[0]
    # PP = G max / sum = 128 * 2 / 20; the peak is the box's first gate (10): 5 % is passed at 9 + 0.05,
    # 95 % at 9 + 0.95; after the peak the power falls to 50 % between gates 19 (2) and 20 (0): at 19.5.
    assert f[PP] == pytest.approx(12.8)
    assert f[LEW] == pytest.approx(0.9)
    assert f[TEW] == pytest.approx(9.5)
    assert f[MAX] == pytest.approx(2.0)


def test_triangle_by_hand():
    f = waveform_features(triangle()[None] * 3.0)[0]
    # sum = 3 * (2 * (0.1 + ... + 0.9) + 1) = 30; 5 % at gate 20.5, 95 % at 29.5; 50 % after the peak at 35.
    assert f[PP] == pytest.approx(128 * 3.0 / 30.0)
    assert f[LEW] == pytest.approx(9.0, abs=1e-5)
    assert f[TEW] == pytest.approx(5.0, abs=1e-5)
    assert f[MAX] == pytest.approx(3.0)


def brown(t0: float, sigma: float, alpha: float, gates: np.ndarray) -> np.ndarray:
    lag = gates - t0
    return 0.5 * (1 + erf(lag / (math.sqrt(2) * sigma))) * np.exp(-alpha * np.maximum(lag, 0.0))


def test_brown_echo_against_its_closed_form():
    gates = np.arange(G, dtype=np.float64)
    # Without decay the leading edge is an erf: 5 % to 95 % of the plateau is 2 x 1.6449 sigma (linear interpolation
    # between gates adds a few hundredths); it never falls again, so the trailing edge runs to the last gate.
    f = waveform_features(brown(50.0, 3.0, 0.0, gates)[None])[0]
    assert f[LEW] == pytest.approx(2 * 1.6449 * 3.0, abs=0.05)
    assert f[TEW] > 40
    # A sharp leading edge then a decay exp(-alpha g): half the peak ln 2 / alpha gates after it.
    alpha = 0.02
    sharp = brown(50.5, 0.3, alpha, gates)
    f = waveform_features(sharp[None])[0]
    assert f[TEW] == pytest.approx(math.log(2) / alpha, abs=0.05)
    assert f[LEW] < 1.0
    # PP: G max / sum, the sum ~ the plateau's area 1 / alpha (less what the window cuts off).
    area = (1 - math.exp(-alpha * (G - 50.5))) / alpha
    assert f[PP] == pytest.approx(G * sharp.max() / area, rel=0.03)
    assert 2.0 < f[PP] < 5.0  # a diffuse echo


def test_specular_much_peakier_than_diffuse_and_gate_count_normalised():
    g128, g256 = np.arange(128.0), np.arange(256.0) / 2  # 256 gates over the same window: twice oversampled
    spec128 = np.exp(-0.5 * ((g128 - 50) / 0.7) ** 2) + 0.01
    spec256 = np.exp(-0.5 * ((g256 - 50) / 0.7) ** 2) + 0.01
    diffuse = brown(50.0, 2.0, 0.02, g128)
    pp = waveform_features(np.stack([spec128, diffuse]))[:, PP]
    assert pp[0] > 5 * pp[1]
    assert waveform_features(spec256[None])[0, PP] == pytest.approx(pp[0], rel=0.05)


def test_vectorised_rows_match_one_by_one():
    rng = np.random.default_rng(3)
    many = np.stack([brown(rng.uniform(30, 70), rng.uniform(0.5, 4), 0.03, np.arange(G, dtype=np.float64))
                     * rng.gamma(20, 1 / 20, G) for _ in range(20000)]).astype(np.float32)
    all_at_once = waveform_features(many)
    assert all_at_once.shape == (20000, 4) and all_at_once.dtype == np.float32
    for i in (0, 8191, 8192, 19999):  # across the chunks
        np.testing.assert_allclose(all_at_once[i], waveform_features(many[i:i + 1])[0], rtol=1e-6)


def test_empty_zero_and_nan_waveforms():
    w = np.stack([np.zeros(G), np.full(G, np.nan), box()])
    w[2, 15] = np.nan  # a NaN gate counts as no power
    f = waveform_features(w)
    assert np.isnan(f[0, :3]).all() and f[0, MAX] == 0
    assert np.isnan(f[1]).all()
    assert np.isfinite(f[2]).all() and f[2, PP] == pytest.approx(128 * 2 / 18)
    assert waveform_features(np.zeros((0, G))).shape == (0, 4)
    assert np.isnan(waveform_features(np.zeros((2, 0)))).all()
    with pytest.raises(ValueError):
        waveform_features(np.zeros(G))


def test_trailing_edge_never_falling_is_censored_at_the_window_end():
    w = np.zeros(G)
    w[100:] = 1.0  # rises at gate 100 and stays up to the last gate
    f = waveform_features(w[None])[0]
    assert f[TEW] == pytest.approx(G - 1 - 100)
