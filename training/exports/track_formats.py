"""The export formats of tracks, each a writer over the same pass (training.exports.tracks): a CF-style NetCDF file
per track (waveforms, features, labels with their source, the collocation distance, the split), or CSV tables of
the per-waveform features and labels with each track's waveforms beside them as a NumPy array."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import netCDF4
import numpy as np

from annotations.track_arrays import FEATURES
from training.exports.tracks import (
    LABEL_VALUES,
    SOURCE_NAMES,
    WAVEFORM_UNITS,
    TrackEntry,
    TrackExportWriter,
    safe_name,
    utc_iso,
)
from training.models import Export

FEATURE_ATTRS = {
    "peakiness": ("pulse peakiness: gates x max power / total power (1 for a flat echo)", "1"),
    "lew": ("leading-edge width, from 5 % to 95 % of the peak before it", "gates"),
    "tew": ("trailing-edge width, from the peak down to 50 % after it", "gates"),
    "max_power": ("maximum power of the waveform", None),
}
CSV_COLUMNS = ("index", "time", "lat", "lon", *FEATURES, "label", "label_source", "lead_distance_m")


def _source_flags() -> tuple[np.ndarray, str]:
    codes = sorted(SOURCE_NAMES)
    return np.array(codes, dtype=np.int8), " ".join(SOURCE_NAMES[c] for c in codes)


class NetcdfWriter(TrackExportWriter):
    """One NetCDF-4 file per track, CF-1.8, featureType trajectory: dimensions time (the waveforms) and gate."""

    fmt = Export.Format.NETCDF
    loading = """\
import xarray as xr  # or netCDF4.Dataset
ds = xr.open_dataset("EXPORT/train/TRACK.nc")
x = ds.waveform.values            # float32 [time, gate]
y = ds.label.values               # int8: 1 lead, 0 not lead, -1 unknown (mask it out)
features = ds[["peakiness", "lew", "tew", "max_power"]]"""

    def write_track(self, entry: TrackEntry) -> str:
        rel = f"{entry.split}/{safe_name(entry.track.key)}.nc"
        path = os.path.join(self.root_str, rel)
        t, a, frozen = entry.track, entry.arrays, entry.frozen
        n, gates = a["waveforms"].shape
        with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
            nc.setncatts({
                "Conventions": "CF-1.8", "featureType": "trajectory",
                "title": f"{t.mission} {t.instrument} {t.mode} waveforms with lead labels".replace("  ", " "),
                "source": os.path.basename(t.source_path), "track": t.key, "mission": t.mission,
                "instrument": t.instrument, "mode": t.mode, "band": t.band, "rate_hz": float(t.rate_hz),
                "cycle": -1 if t.cycle is None else int(t.cycle),
                "pass_number": -1 if t.pass_number is None else int(t.pass_number),
                "split": entry.split, "snapshot": int(self.snapshot.number),
                "history": f"exported by Cryolabel from snapshot #{self.snapshot.number}",
            })
            nc.createDimension("time", n)
            nc.createDimension("gate", gates)
            trajectory = nc.createVariable("trajectory", str, ())
            trajectory.cf_role = "trajectory_id"
            trajectory[...] = t.key
            time = nc.createVariable("time", "f8", ("time",))
            time.setncatts({"standard_name": "time", "units": "seconds since 1970-01-01 00:00:00 UTC",
                            "calendar": "standard", "axis": "T"})
            time[:] = a["time"]
            for name, standard, units in (("lat", "latitude", "degrees_north"), ("lon", "longitude", "degrees_east")):
                var = nc.createVariable(name, "f8", ("time",))
                var.setncatts({"standard_name": standard, "units": units, "long_name": f"nadir {standard}"})
                var[:] = a[name]
            wf = nc.createVariable("waveform", "f4", ("time", "gate"), zlib=True, complevel=4,
                                   chunksizes=(min(n, 1024), gates))
            wf.setncatts({"long_name": "echo power per range gate", "units": WAVEFORM_UNITS.get(t.source_format, "1"),
                          "coordinates": "time lat lon"})
            wf[:] = a["waveforms"]
            for i, name in enumerate(FEATURES):
                text, units = FEATURE_ATTRS[name]
                var = nc.createVariable(name, "f4", ("time",), fill_value=np.float32(np.nan))
                var.long_name = text
                var.units = units or WAVEFORM_UNITS.get(t.source_format, "1")
                var.coordinates = "time lat lon"
                var[:] = a["features"][:, i]
            label = nc.createVariable("label", "i1", ("time",))
            label.setncatts({"long_name": "lead label of the waveform", "flag_values": np.array([-1, 0, 1], np.int8),
                             "flag_meanings": "unknown not_lead lead", "coordinates": "time lat lon"})
            label[:] = frozen["label"]
            codes, meanings = _source_flags()
            source = nc.createVariable("label_source", "i1", ("time",))
            source.setncatts({"long_name": "where the label came from", "flag_values": codes,
                              "flag_meanings": meanings})
            source[:] = frozen["source"]
            distance = nc.createVariable("lead_distance", "f4", ("time",), fill_value=np.float32(np.nan))
            distance.setncatts({"long_name": "distance from the nadir to the closest lead of the collocated scene",
                                "units": "m", "coordinates": "time lat lon"})
            distance[:] = frozen["distance"]
        self.count_file(Path(path))
        return rel

    def format_files(self) -> dict[str, str]:
        return {"train/, val/, test/": "<track>.nc: one CF-1.8 NetCDF-4 file per track (waveforms, features, "
                                       "labels, their source, the collocation distance)"}

    def layout_description(self) -> str:
        return ("NetCDF: <split>/<track>.nc, one NetCDF-4 file per track (CF-1.8, featureType trajectory), "
                "dimensions time (one per waveform) and gate; variables time, lat, lon, waveform [time, gate], "
                f"{', '.join(FEATURES)}, label (-1 unknown, 0 not lead, 1 lead), label_source (flag_meanings), "
                "lead_distance (m); the split and the source product as global attributes; tracks.csv lists the "
                "tracks.")


class TrackCsvWriter(TrackExportWriter):
    """Per track a CSV table of its waveforms' time, nadir, features and labels, and its waveforms as a .npy."""

    fmt = Export.Format.CSV
    loading = """\
import csv, numpy as np
rows = list(csv.DictReader(open("EXPORT/train/TRACK.csv")))    # one row per waveform, in time order
x = np.load("EXPORT/train/TRACK_waveforms.npy")                # float32 [waveforms, gates], row i = rows[i]
y = np.array([{"lead": 1, "not_lead": 0}.get(r["label"], -1) for r in rows])"""

    def write_track(self, entry: TrackEntry) -> str:
        name = safe_name(entry.track.key)
        rel, wf_rel = f"{entry.split}/{name}.csv", f"{entry.split}/{name}_waveforms.npy"
        a, frozen = entry.arrays, entry.frozen
        path = Path(self.root_str, rel)
        times = utc_iso(a["time"])
        labels = [LABEL_VALUES.get(int(v), "unknown") for v in frozen["label"]]
        sources = [SOURCE_NAMES.get(int(v), str(v)) for v in frozen["source"]]
        with open(path, "w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle)
            out.writerow(CSV_COLUMNS)
            features = a["features"]
            for i in range(len(times)):
                d = frozen["distance"][i]
                out.writerow([i, times[i], f"{a['lat'][i]:.6f}", f"{a['lon'][i]:.6f}",
                              *(f"{v:.6g}" if np.isfinite(v) else "" for v in features[i]), labels[i], sources[i],
                              f"{d:.1f}" if np.isfinite(d) else ""])
        self.count_file(path)
        np.save(Path(self.root_str, wf_rel), np.ascontiguousarray(a["waveforms"], dtype=np.float32))
        self.count_file(Path(self.root_str, wf_rel))
        return f"{rel};{wf_rel}"

    def format_files(self) -> dict[str, str]:
        return {"train/, val/, test/": "<track>.csv (one row per waveform: time, nadir, features, label, its "
                                       "source, the collocation distance) and <track>_waveforms.npy"}

    def layout_description(self) -> str:
        return (f"CSV: <split>/<track>.csv, one row per waveform in time order (columns {', '.join(CSV_COLUMNS)}; "
                "label lead / not_lead / unknown), with <split>/<track>_waveforms.npy beside it (float32 "
                "[waveforms, gates], row i is the CSV's row i); tracks.csv lists the tracks.")


TRACK_WRITERS: dict[str, type[TrackExportWriter]] = {w.fmt: w for w in (NetcdfWriter, TrackCsvWriter)}
