"""The 10 TenGeoP-SARwv geophysical classes of Sentinel-1 Wave Mode imagettes.

Wang et al. (2019), "A labelled ocean SAR imagery dataset of ten geophysical phenomena from Sentinel-1 wave
mode" (TenGeoP-SARwv), store each class in a folder lettered F..O. The order here is that order and is the
label index a network is trained on, so it must never change; new classes would go at the end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SLUGS", "WV_CLASSES", "WVClass", "class_by_letter", "class_by_name", "class_by_slug"]


@dataclass(frozen=True, slots=True)
class WVClass:
    """One TenGeoP-SARwv class: how it is stored (slug, letter), shown (name, colour) and typed (key)."""

    index: int
    slug: str
    name: str
    letter: str
    key: str
    color: str
    description: str


WV_CLASSES: tuple[WVClass, ...] = (
    WVClass(
        0,
        "pure_ocean_waves",
        "Pure Ocean Waves",
        "F",
        "1",
        "#1f77b4",
        "Swell or wind sea: regular, oriented wave crests and nothing else.",
    ),
    WVClass(
        1,
        "wind_streaks",
        "Wind Streaks",
        "G",
        "2",
        "#ff7f0e",
        "Long, roughly parallel streaks along the wind (boundary-layer rolls).",
    ),
    WVClass(
        2,
        "micro_convective_cells",
        "Micro Convective Cells",
        "H",
        "3",
        "#2ca02c",
        "Cellular pattern of small bright and dark blobs from atmospheric convection.",
    ),
    WVClass(
        3,
        "rain_cells",
        "Rain Cells",
        "I",
        "4",
        "#d62728",
        "A few roundish bright or dark patches, often with a bright rim from downdraft gusts.",
    ),
    WVClass(
        4,
        "biological_slicks",
        "Biological Slicks",
        "J",
        "5",
        "#9467bd",
        "Dark, thin, curved filaments where surfactants damp the short waves.",
    ),
    WVClass(
        5,
        "sea_ice",
        "Sea Ice",
        "K",
        "6",
        "#8c564b",
        "Patchwork of ice floes of different brightness, separated by leads.",
    ),
    WVClass(
        6, "icebergs", "Icebergs", "L", "7", "#e377c2", "Calm, dark-ish water with a few very bright point targets."
    ),
    WVClass(
        7,
        "low_wind_area",
        "Low Wind Area",
        "M",
        "8",
        "#7f7f7f",
        "Dark, homogeneous water with little texture: wind too weak to roughen the sea.",
    ),
    WVClass(
        8,
        "atmospheric_front",
        "Atmospheric Front",
        "N",
        "9",
        "#bcbd22",
        "Sharp, nearly straight boundary between two wind regimes of different brightness.",
    ),
    WVClass(
        9,
        "oceanic_front",
        "Oceanic Front",
        "O",
        "0",
        "#17becf",
        "Curved, meandering boundary between water masses (currents, temperature).",
    ),
)

SLUGS: tuple[str, ...] = tuple(c.slug for c in WV_CLASSES)

_BY_SLUG = {c.slug: c for c in WV_CLASSES}
_BY_LETTER = {c.letter: c for c in WV_CLASSES}
_FOLDER_RE = re.compile(r"^([A-Za-z])[\s_\-.]+(.+)$")


def _norm(text: str) -> str:
    """Compare names without case, spaces, underscores, hyphens or a plural 's' ("Iceberg" == "icebergs")."""
    squashed = re.sub(r"[\s_\-.]+", "", text.strip().lower())
    return squashed[:-1] if squashed.endswith("s") else squashed


_BY_NORM: dict[str, WVClass] = {}
for _c in WV_CLASSES:
    for _alias in (_c.slug, _c.name, _c.name.replace(" ", "")):
        _BY_NORM[_norm(_alias)] = _c
_BY_NORM[_norm("microconvective cells")] = _BY_NORM[_norm("micro convective cells")]
_BY_NORM[_norm("low wind")] = _BY_NORM[_norm("low wind area")]


def class_by_slug(slug: str) -> WVClass:
    """Exact slug lookup (the stored form); raises KeyError so a typo in stored data is loud."""
    try:
        return _BY_SLUG[slug]
    except KeyError:
        raise KeyError(f"unknown WV class slug {slug!r}; expected one of {', '.join(SLUGS)}") from None


def class_by_letter(letter: str) -> WVClass:
    """TenGeoP folder letter F..O (any case) to class; raises KeyError for anything else."""
    try:
        return _BY_LETTER[letter.strip().upper()]
    except KeyError:
        raise KeyError(f"unknown TenGeoP class letter {letter!r}; expected F..O") from None


def class_by_name(name: str) -> WVClass:
    """Lenient lookup for folder names and user input.

    Accepts a slug ("pure_ocean_waves"), a display name ("Pure Ocean Waves"), a TenGeoP letter ("F") or a
    lettered folder name ("F_PureOceanWaves", "F - pure ocean waves"), ignoring case, spaces, underscores and
    a plural "s". Raises KeyError when nothing matches, or when the letter and the name disagree.
    """
    text = name.strip()
    if len(text) == 1:
        return class_by_letter(text)
    found = _BY_NORM.get(_norm(text))
    if found is not None:
        return found
    m = _FOLDER_RE.match(text)
    if m:
        by_letter = _BY_LETTER.get(m.group(1).upper())
        by_rest = _BY_NORM.get(_norm(m.group(2)))
        if by_letter is not None and by_rest is not None and by_letter is by_rest:
            return by_letter
    raise KeyError(f"no WV class is called {name!r}")

# Every class set: a label mask is a non-empty subset of these bits.
ALL_CLASSES_MASK = (1 << len(WV_CLASSES)) - 1
