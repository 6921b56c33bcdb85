"""demo/synthetic/, `scene_size`: a small imagette of a large scene is that scene at coarser pixels."""

import numpy as np
import pytest

from demo.synthetic import imagette_texture


def _log_std_at_64(image: np.ndarray) -> float:
    f = image.shape[0] // 64  # what the light classifier sees: 64 px, each pixel the mean of the ones it covers
    return float(np.log(image.reshape(64, f, 64, f).mean(axis=(1, 3))).std())


def test_scene_size_draws_the_scene_then_averages_it_down() -> None:
    rng = np.random.default_rng(5)
    full = np.mean([_log_std_at_64(imagette_texture("low_wind_area", rng, 256)) for _ in range(10)])
    scene = np.mean([_log_std_at_64(imagette_texture("low_wind_area", rng, 128, scene_size=256)) for _ in range(10)])
    window = np.mean([_log_std_at_64(imagette_texture("low_wind_area", rng, 128)) for _ in range(10)])
    # At the classifier's size the 128 px imagette of a 256 px scene has the 256 px one's speckle (as many looks
    # per 64 px pixel); a 128 px window of a full-resolution sea has far fewer.
    assert abs(scene - full) < 0.1 * full
    assert window > 1.5 * full
    assert imagette_texture("sea_ice", rng, 64, scene_size=256).shape == (64, 64)
    with pytest.raises(ValueError):
        imagette_texture("sea_ice", rng, 128, scene_size=192)
