"""The WV class list and the synthetic imagette generator: classes are right, textures are deterministic and
tell the classes apart, and demo data sets come out in the layouts and proportions promised."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from annotations.readers import ImagetteRecord, IngestError, iter_records, read_ground_truth, to_db
from annotations.wv_classes import SLUGS, WV_CLASSES, class_by_letter, class_by_name, class_by_slug
from demo.synthetic import imagette_texture, write_demo_imagettes


# --- classes --------------------------------------------------------------------------------------------
def test_ten_classes_in_tengeop_order() -> None:
    assert [c.letter for c in WV_CLASSES] == list("FGHIJKLMNO")
    assert [c.key for c in WV_CLASSES] == [*"123456789", "0"]
    assert SLUGS == (
        "pure_ocean_waves", "wind_streaks", "micro_convective_cells", "rain_cells", "biological_slicks",
        "sea_ice", "icebergs", "low_wind_area", "atmospheric_front", "oceanic_front",
    )  # fmt: skip
    assert [c.index for c in WV_CLASSES] == list(range(10))
    assert len({c.color for c in WV_CLASSES}) == 10
    assert all(c.color.startswith("#") and len(c.color) == 7 for c in WV_CLASSES)
    with pytest.raises(AttributeError):
        WV_CLASSES[0].slug = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("pure_ocean_waves", "pure_ocean_waves"),
        ("Pure Ocean Waves", "pure_ocean_waves"),
        ("pure ocean waves", "pure_ocean_waves"),
        ("F", "pure_ocean_waves"),
        ("f", "pure_ocean_waves"),
        ("F_PureOceanWaves", "pure_ocean_waves"),
        ("K", "sea_ice"),
        ("SEA_ICE", "sea_ice"),
        ("L_Iceberg", "icebergs"),
        ("Iceberg", "icebergs"),
        ("micro-convective cells", "micro_convective_cells"),
        ("O_OceanicFront", "oceanic_front"),
        ("  Low Wind Area ", "low_wind_area"),
    ],
)
def test_class_by_name_is_lenient(name: str, slug: str) -> None:
    assert class_by_name(name).slug == slug


@pytest.mark.parametrize("name", ["", "P", "sea", "F_SeaIce", "geotiff", "A_Thing"])
def test_class_by_name_refuses_unknown_or_contradictory(name: str) -> None:
    with pytest.raises(KeyError):
        class_by_name(name)


def test_exact_lookups() -> None:
    assert class_by_slug("rain_cells").letter == "I"
    assert class_by_letter("m").slug == "low_wind_area"
    with pytest.raises(KeyError):
        class_by_slug("Rain Cells")
    with pytest.raises(KeyError):
        class_by_letter("E")


# --- textures -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("slug", SLUGS)
def test_texture_is_linear_nrcs_and_deterministic(slug: str) -> None:
    a = imagette_texture(slug, np.random.default_rng(7))
    b = imagette_texture(slug, np.random.default_rng(7))
    c = imagette_texture(slug, np.random.default_rng(8))
    assert a.dtype == np.float32 and a.shape == (256, 256)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.all(a > 0) and np.all(np.isfinite(a))
    assert 0.002 < float(np.median(a)) < 0.3


def test_texture_size_is_checked() -> None:
    assert imagette_texture("sea_ice", np.random.default_rng(0), size=64).shape == (64, 64)
    with pytest.raises(ValueError):
        imagette_texture("sea_ice", np.random.default_rng(0), size=66)
    with pytest.raises(KeyError):
        imagette_texture("not_a_class", np.random.default_rng(0))


def _features(a: np.ndarray) -> list[float]:
    """Simple texture statistics of a dB imagette after 4x4 averaging (which tames the speckle)."""
    d = to_db(a)
    b = d.reshape(64, 4, 64, 4).mean(axis=(1, 3))
    spec = np.abs(np.fft.rfft2(b - b.mean())) ** 2
    spec[0, 0] = 0
    ky, kx = np.fft.fftfreq(64)[:, None], np.fft.rfftfreq(64)[None, :]
    total = spec.sum()
    cxx, cyy, cxy = ((spec * kx * kx).sum() / total, (spec * ky * ky).sum() / total, (spec * kx * ky).sum() / total)
    ev = np.linalg.eigvalsh([[cxx, cxy], [cxy, cyy]])
    z = (b - b.mean()) / b.std()
    bright = float((d > np.median(d) + 15).mean())
    return [
        float(d.mean()), float(d.std()), float(b.std()), float(ev[0] / ev[1]), float(np.log(spec.max() / total)),
        float(np.sqrt(cxx + cyy)), float(np.log((z**4).mean())), float(np.log1p(bright * 1e4)),
    ]  # fmt: skip


def test_classes_are_told_apart_by_simple_statistics() -> None:
    """If a nearest-centroid rule on 8 statistics separates the classes, a CNN certainly can."""
    rng = np.random.default_rng(2024)
    per_class = 16
    feats = np.array([_features(imagette_texture(s, rng)) for s in SLUGS for _ in range(per_class)])
    labels = np.repeat(np.arange(len(SLUGS)), per_class)
    train = np.tile(np.arange(per_class) < per_class // 2, len(SLUGS))
    mu, sd = feats[train].mean(0), feats[train].std(0)
    z = (feats - mu) / sd
    centroids = np.array([z[train & (labels == i)].mean(0) for i in range(len(SLUGS))])
    pred = np.argmin(((z[~train][:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    accuracy = float((pred == labels[~train]).mean())
    assert accuracy >= 0.8, accuracy
    # and the class means differ pairwise on some statistic by a clear margin
    means = np.array([z[labels == i].mean(0) for i in range(len(SLUGS))])
    for i in range(len(SLUGS)):
        for j in range(i + 1, len(SLUGS)):
            assert np.abs(means[i] - means[j]).max() > 0.8, (SLUGS[i], SLUGS[j])


def test_class_signatures() -> None:
    """A few physical expectations: darkness of low wind, bright points of icebergs, contrast of sea ice."""
    rng = np.random.default_rng(11)
    stats = {s: [imagette_texture(s, rng) for _ in range(6)] for s in SLUGS}
    mean_db = {s: np.mean([to_db(a).mean() for a in arrs]) for s, arrs in stats.items()}
    assert min(mean_db, key=mean_db.get) == "low_wind_area"
    for a in stats["icebergs"]:
        assert a.max() > 50 * np.median(a)
    for a in stats["low_wind_area"]:
        assert a.max() < 20 * np.median(a)
    block_std = {
        s: np.mean([to_db(a).reshape(32, 8, 32, 8).mean(axis=(1, 3)).std() for a in arrs]) for s, arrs in stats.items()
    }
    assert max(block_std, key=block_std.get) == "sea_ice"
    assert block_std["low_wind_area"] == min(block_std.values())


# --- demo data sets -------------------------------------------------------------------------------------
def _tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if
            p.is_file()}  # fmt: skip


def test_demo_mixed_layout(tmp_path: Path) -> None:
    gt = write_demo_imagettes(tmp_path / "a", 40, seed=5, size=64)
    assert gt == tmp_path / "a" / "ground_truth.csv"
    with open(gt, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["path", "class_slug", "split"]
    assert len(rows) == 40
    assert Counter(r["class_slug"] for r in rows) == dict.fromkeys(SLUGS, 4)
    assert {r["split"] for r in rows} <= {"train", "val", "test"}
    root = tmp_path / "a"
    assert len(list((root / "geotiff").glob("*.tif"))) == 6
    assert len(list((root / "png").glob("*.png"))) == 6
    safes = list((root / "safe").glob("*.SAFE"))
    zips = list((root / "safe").glob("*.SAFE.zip"))
    assert safes and zips
    assert all(p.name.startswith(("S1A_WV_SLC__1SSV_2016", "S1B_WV_SLC__1SSV_2016")) for p in safes + zips)

    items = list(iter_records(root))
    records = [r for r in items if isinstance(r, ImagetteRecord)]
    assert not [r for r in items if isinstance(r, IngestError)]
    truth = read_ground_truth(gt)
    assert {r.key for r in records} == set(truth)
    kinds = Counter(r.kind for r in records)
    assert kinds == {"safe": 28, "geotiff": 6, "png": 6}
    for r in records:
        assert r.acquisition_time is not None and r.acquisition_time.year == 2016
        if r.kind != "png":
            assert r.center_lat is not None
            if truth[r.key][0] in ("sea_ice", "icebergs"):
                assert abs(r.center_lat) > 55, (r.key, r.center_lat)
            else:
                assert abs(r.center_lat) < 60, (r.key, r.center_lat)
    assert len({r.acquisition_time.month for r in records}) >= 6


def test_demo_is_deterministic(tmp_path: Path) -> None:
    write_demo_imagettes(tmp_path / "a", 24, seed=9, size=64)
    write_demo_imagettes(tmp_path / "b", 24, seed=9, size=64)
    write_demo_imagettes(tmp_path / "c", 24, seed=10, size=64)
    assert _tree_digest(tmp_path / "a") == _tree_digest(tmp_path / "b")
    assert _tree_digest(tmp_path / "a") != _tree_digest(tmp_path / "c")


def test_demo_tengeop_layout(tmp_path: Path) -> None:
    gt = write_demo_imagettes(tmp_path, 20, seed=1, layout="tengeop", size=64)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == list("FGHIJKLMNO")
    truth = read_ground_truth(gt)
    records = list(iter_records(tmp_path))
    assert len(records) == 20 and all(isinstance(r, ImagetteRecord) for r in records)
    for r in records:
        assert r.key.split("/")[0] == class_by_slug(truth[r.key][0]).letter
        assert r.label_slugs == (truth[r.key][0],)
        assert r.units == "dB" and r.kind == "geotiff"
        assert r.swath in ("WV1", "WV2")


def test_demo_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_demo_imagettes(tmp_path, 10, seed=0, layout="imagenet")
    with pytest.raises(ValueError):
        write_demo_imagettes(tmp_path, 0, seed=0)
