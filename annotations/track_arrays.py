"""The arrays of a track on disk: one folder under MEDIA_ROOT, one `.npy` file per array, so that a reader maps only
what it needs (the waveform viewer the waveforms, the collocation the positions) and a 10 000-waveform pass opens in
a millisecond. Row i of every array is waveform i, in time order.

What the ingest writes (`TRACK_ARRAYS`), written once:

    time       float64 [N]     seconds since 1970-01-01 UTC
    lat, lon   float64 [N]     the nadir, degrees (lon in [-180, 180))
    waveforms  float32 [N, G]  echo power per range gate, as the file scales it (watts for CryoSat-2 L1B, the
                               AltiKa SGDR's counts times its scaling factor); G = the track's gates
    features   float32 [N, 4]  FEATURES, computed at ingest (annotations.waveforms)
    surface    int8    [N]     the product's surface type flag where it has one (0 ocean, 1 lake or enclosed sea,
                               2 ice, 3 land; -1 not given)

What the collocation writes beside them (`AUTO_ARRAYS`), replaced as a whole each time it runs:

    auto_label     int8    [N]  1 lead, 0 not lead, -1 unknown (annotations.models.track.LABEL_CODES)
    auto_distance  float32 [N]  metres from the nadir to the closest lead of the collocated scenes (NaN: no scene)
    auto_scene     int32   [N]  the scene that gave the label (0: none)

Files are written into a hidden scratch folder and renamed into place: a reader never sees half an array.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from django.conf import settings

__all__ = ["AUTO_ARRAYS", "FEATURES", "TRACK_ARRAYS", "arrays_read", "arrays_write", "track_folder"]

FEATURES = ("peakiness", "lew", "tew", "max_power")
TRACK_ARRAYS = {"time": np.float64, "lat": np.float64, "lon": np.float64, "waveforms": np.float32,
                "features": np.float32, "surface": np.int8}
AUTO_ARRAYS = {"auto_label": np.int8, "auto_distance": np.float32, "auto_scene": np.int32}


def track_folder(track) -> Path:
    """The absolute folder of a track's arrays (its `data` is relative to MEDIA_ROOT)."""
    return Path(settings.MEDIA_ROOT) / track.data


def arrays_write(folder: Path, arrays: Mapping[str, np.ndarray], *, kinds: Mapping[str, type] = TRACK_ARRAYS,
                 replace: bool = False) -> int:
    """Write `arrays` (names from `kinds`, all of one length) into `folder`: into a scratch folder first, then each
    file renamed into place (`replace`: over the files of the same names; else the folder must not exist yet).
    Returns the bytes written. A bad array (an unknown name, a length that differs) raises ValueError and leaves
    nothing."""
    unknown = sorted(set(arrays) - set(kinds))
    if unknown:
        raise ValueError(f"unknown track arrays: {', '.join(unknown)}")
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"track arrays of different lengths: {lengths}")
    folder = Path(folder)
    if folder.exists() and not replace:
        raise FileExistsError(f"{folder} exists")
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = folder.parent / f".{folder.name}.{secrets.token_hex(4)}.partial"
    scratch.mkdir()
    try:
        size = 0
        for name, array in arrays.items():
            path = scratch / f"{name}.npy"
            np.save(path, np.ascontiguousarray(array, dtype=kinds[name]))
            size += path.stat().st_size
        if not replace:
            os.rename(scratch, folder)
            return size
        folder.mkdir(exist_ok=True)
        for name in arrays:  # each file swaps atomically; a reader maps either the old or the new one
            os.replace(scratch / f"{name}.npy", folder / f"{name}.npy")
        return size
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def arrays_read(folder: Path, names: Iterable[str], *, mmap: bool = True) -> dict[str, np.ndarray]:
    """The named arrays of a track folder, memory-mapped (read-only) unless `mmap` is False; a missing one is a
    FileNotFoundError naming it."""
    out = {}
    for name in names:
        path = Path(folder) / f"{name}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"the track has no {name} array ({path})")
        out[name] = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    return out
