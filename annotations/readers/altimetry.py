"""Altimetry tracks from NetCDF files: SARAL/AltiKa SGDR passes (40 Hz, 128 Ka-band gates) and CryoSat-2 SIRAL L1B
products (Baseline D and E; 20 Hz; LRM 128 gates, SAR 256, SARIn 1024), read with netCDF4 (NetCDF3 classic and
NetCDF4/HDF5 alike) into a TrackProduct: one row per waveform, in time order.

- AltiKa SGDR: the 40 Hz fields hang from the 1 Hz records, dimension (time, meas_ind=40): `time_40hz`,
  `lat_40hz`, `lon_40hz`, `waveforms_40hz` (time, meas_ind, wvf_ind), and the 1 Hz `surface_type`; flattened record
  by record. A 40 Hz measurement whose time, position or any gate is a fill value is dropped (the product fills the
  slots of a record it could not measure).
- CryoSat-2 L1B: `time_20_ku`, `lat_20_ku`, `lon_20_ku` and `pwr_waveform_20_ku` in counts, turned into watts as
  ESA's product handbook says: power = counts x echo_scale_factor_20_ku x 2^echo_scale_pwr_20_ku (the scale factor
  as stored times its own scale_factor, 1e-9). The mode comes from the `sir_op_mode` attribute, else the name.

Times become seconds since 1970-01-01 (the files count from 2000-01-01); longitudes wrap to [-180, 180). A track
whose times do not increase is sorted (stable: real L1B files have none out of order, a merged or hand-made file may);
one whose times do not advance at all is refused. Everything is untrusted: sizes are checked against TrackLimits
before an array is read, text attributes are trimmed, and every problem is an IngestError with a reason a person can
act on.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from annotations.readers.base import IngestError

__all__ = ["NETCDF_MAGIC", "TRACK_LIMITS", "TrackLimits", "TrackProduct", "is_netcdf", "read_track"]

NETCDF_MAGIC = (b"CDF\x01", b"CDF\x02", b"\x89HDF\r\n\x1a\n")
EPOCH_2000 = 946_684_800.0  # 2000-01-01 00:00:00 UTC in unix seconds
_TIME_RANGE = (EPOCH_2000 - 10 * 365.25 * 86400, EPOCH_2000 + 100 * 365.25 * 86400)  # 1990..2100
_ATTR_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_CS2_MODES = {"LRM": "LRM", "SAR": "SAR", "SIN": "SARIn", "SARIN": "SARIn"}
_CS2_NAME = re.compile(r"^CS_[A-Z_]{4}_SIR_(?P<mode>LRM|SAR|SIN)_1B_\d{8}T\d{6}_\d{8}T\d{6}_(?P<baseline>[A-Z])\d{3}$")
_SGDR_ATTRS = ("mission_name", "altimeter_sensor_name", "cycle_number", "pass_number", "first_meas_time",
               "last_meas_time", "title", "institution", "source", "references", "product_version")
_CS2_ATTRS = ("product_name", "mission", "sir_op_mode", "cycle_number", "rel_orbit_number", "abs_orbit_number",
              "first_record_time", "last_record_time", "software_version", "processing_centre", "ascending_flag")


@dataclass(frozen=True)
class TrackLimits:
    """What a track file may declare before it is refused unread: a whole AltiKa orbit is ~240 000 waveforms."""

    max_waveforms: int = 1_000_000
    max_gates: int = 2048


TRACK_LIMITS = TrackLimits()


@dataclass
class TrackProduct:
    path: Path
    key: str  # the file name's stem
    source_format: str  # "saral_sgdr" or "cs2_l1b"
    mission: str
    instrument: str
    mode: str  # LRM / SAR / SARIn; "" for AltiKa
    band: str
    rate_hz: float
    gates: int
    cycle: int | None
    pass_number: int | None
    attributes: dict[str, str]
    time: np.ndarray  # float64 [N], unix seconds, non-decreasing
    lat: np.ndarray  # float64 [N]
    lon: np.ndarray  # float64 [N], [-180, 180)
    waveforms: np.ndarray  # float32 [N, G], physical units
    surface: np.ndarray = field(default=None)  # int8 [N]: 0 ocean, 1 lake, 2 ice, 3 land, -1 not given

    @property
    def name(self) -> str:
        return self.key

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(float(self.time[0]), UTC)

    @property
    def stop(self) -> datetime:
        return datetime.fromtimestamp(float(self.time[-1]), UTC)


def is_netcdf(head: bytes) -> bool:
    return head.startswith(NETCDF_MAGIC)


def read_track(path: str | Path, *, limits: TrackLimits = TRACK_LIMITS) -> TrackProduct:
    """The track in a SARAL/AltiKa SGDR or CryoSat-2 L1B NetCDF file, or an IngestError saying why not."""
    import netCDF4  # HDF5 and netCDF-C: loaded by what reads tracks only

    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as e:
        raise IngestError(f"cannot read {path.name}: {e.strerror or e}", path) from e
    if not is_netcdf(head):
        raise IngestError(f"{path.name} is not a NetCDF file (it does not start with a NetCDF or HDF5 signature)",
                          path)
    try:
        ds = netCDF4.Dataset(path, "r")
    except OSError as e:
        raise IngestError(f"{path.name} cannot be opened as NetCDF ({e}): truncated or damaged? Download it again",
                          path) from None
    try:
        names = set(ds.variables)
        if "pwr_waveform_20_ku" in names:
            return _cs2_l1b(ds, path, limits)
        if "waveforms_40hz" in names:
            return _saral_sgdr(ds, path, limits)
        if "time_20_ku" in names:
            product = _attr(ds, "product_name") or path.stem
            raise IngestError(f"{path.name} is a CryoSat-2 product without waveforms (no pwr_waveform_20_ku; "
                              f"{product} looks like an L2 / L2I product): only L1B files, which hold the "
                              "waveforms, can be ingested as tracks")
        raise IngestError(f"{path.name} is NetCDF but not an altimetry track: it has neither waveforms_40hz "
                          "(SARAL/AltiKa SGDR) nor pwr_waveform_20_ku (CryoSat-2 L1B)")
    except IngestError as e:
        raise e.at(path) from None
    except (OSError, RuntimeError, ValueError, TypeError, IndexError, KeyError) as e:
        # netCDF-C / HDF5 errors on a damaged variable, odd types: refused, with what the library said
        raise IngestError(f"{path.name} cannot be read: {type(e).__name__}: {str(e)[:200]}", path) from None
    finally:
        ds.close()


# --- SARAL/AltiKa SGDR -------------------------------------------------------------------------------------------


def _saral_sgdr(ds, path: Path, limits: TrackLimits) -> TrackProduct:
    for name in ("time_40hz", "lat_40hz", "lon_40hz"):
        _need(ds, name, "the 40 Hz field of a SARAL/AltiKa SGDR")
    wvf = ds.variables["waveforms_40hz"]
    if wvf.ndim != 3:
        raise IngestError(f"waveforms_40hz has {wvf.ndim} dimensions {wvf.dimensions}, not (time, meas_ind, wvf_ind)")
    records, per, gates = wvf.shape
    _check_size(records * per, gates, limits)
    for name in ("time_40hz", "lat_40hz", "lon_40hz"):
        if ds.variables[name].shape != (records, per):
            raise IngestError(f"{name} has shape {ds.variables[name].shape}, but waveforms_40hz has {records} "
                              f"records of {per} measurements: the file is inconsistent")
    t = _float(ds, "time_40hz").ravel()
    lat, lon = _float(ds, "lat_40hz").ravel(), _float(ds, "lon_40hz").ravel()
    w = _waveforms(wvf).reshape(records * per, gates)
    surface = np.full(records * per, -1, np.int8)
    if "surface_type" in ds.variables and ds.variables["surface_type"].shape == (records,):
        surface = np.repeat(_flags(ds.variables["surface_type"]), per)
    t = _seconds_since(ds.variables["time_40hz"], t)
    mission = _attr(ds, "mission_name") or "SARAL"
    return _product(path, "saral_sgdr", mission=mission[:20], instrument=(_attr(ds, "altimeter_sensor_name")
                    or "AltiKa")[:20], mode="", band="Ka", rate_hz=40.0, cycle=_int_attr(ds, "cycle_number"),
                    pass_number=_int_attr(ds, "pass_number"), attributes=_attributes(ds, _SGDR_ATTRS),
                    t=t, lat=lat, lon=lon, w=w, surface=surface)


# --- CryoSat-2 SIRAL L1B -----------------------------------------------------------------------------------------


def _cs2_l1b(ds, path: Path, limits: TrackLimits) -> TrackProduct:
    for name in ("time_20_ku", "lat_20_ku", "lon_20_ku", "echo_scale_factor_20_ku", "echo_scale_pwr_20_ku"):
        _need(ds, name, "a CryoSat-2 L1B field")
    wvf = ds.variables["pwr_waveform_20_ku"]
    if wvf.ndim != 2:
        raise IngestError(f"pwr_waveform_20_ku has {wvf.ndim} dimensions {wvf.dimensions}, not (time_20_ku, "
                          "ns_20_ku)")
    n, gates = wvf.shape
    _check_size(n, gates, limits)
    for name in ("time_20_ku", "lat_20_ku", "lon_20_ku", "echo_scale_factor_20_ku", "echo_scale_pwr_20_ku"):
        if ds.variables[name].shape != (n,):
            raise IngestError(f"{name} has shape {ds.variables[name].shape}, but pwr_waveform_20_ku has {n} "
                              "waveforms: the file is inconsistent")
    counts = _waveforms(wvf)
    factor, power = _float(ds, "echo_scale_factor_20_ku"), _float(ds, "echo_scale_pwr_20_ku")
    with np.errstate(over="ignore", invalid="ignore"):
        w = counts * (factor * np.exp2(power))[:, None]  # watts (ESA CryoSat-2 product handbook, L1B)
    t = _seconds_since(ds.variables["time_20_ku"], _float(ds, "time_20_ku"))
    surface = np.full(n, -1, np.int8)
    if "surf_type_20_ku" in ds.variables and ds.variables["surf_type_20_ku"].shape == (n,):
        surface = _flags(ds.variables["surf_type_20_ku"])
    named = _CS2_NAME.match(path.stem)
    mode_text = (_attr(ds, "sir_op_mode") or (named["mode"] if named else "")).strip().upper()
    mode = _CS2_MODES.get(mode_text.replace("SIR_", "").replace("_", ""), "")
    if not mode:
        raise IngestError(f"its SIRAL mode is unknown (sir_op_mode {mode_text[:20]!r}): LRM, SAR or SARIn expected")
    attributes = _attributes(ds, _CS2_ATTRS)
    if named:
        attributes["baseline"] = named["baseline"]
    return _product(path, "cs2_l1b", mission="CryoSat-2", instrument="SIRAL", mode=mode, band="Ku", rate_hz=20.0,
                    cycle=_int_attr(ds, "cycle_number"), pass_number=_int_attr(ds, "rel_orbit_number"),
                    attributes=attributes, t=t, lat=_float(ds, "lat_20_ku"), lon=_float(ds, "lon_20_ku"), w=w,
                    surface=surface)


# --- shared ------------------------------------------------------------------------------------------------------


def _product(path: Path, source_format: str, *, t, lat, lon, w, surface, **meta: Any) -> TrackProduct:
    """Drop the fill values, check what is left, put it in time order."""
    keep = np.isfinite(t) & np.isfinite(lat) & np.isfinite(lon) & np.isfinite(w).all(axis=1)
    if not keep.any():
        raise IngestError(f"it holds no usable waveform: all {len(t)} have a fill value in their time, position "
                          "or power")
    t, lat, lon, w, surface = t[keep], lat[keep], lon[keep], w[keep], surface[keep]
    if np.abs(lat).max() > 90 or np.abs(lon).max() > 360:
        raise IngestError("its latitudes or longitudes lie off the globe (beyond ±90° / ±360°): wrong scaling?")
    if t.min() < _TIME_RANGE[0] or t.max() > _TIME_RANGE[1]:
        first = datetime.fromtimestamp(float(np.clip(t.min(), -1e10, 1e10)), UTC)
        raise IngestError(f"its times lie outside 1990-2100 (e.g. {first:%Y-%m-%d}): wrong time units?")
    if np.any(np.diff(t) < 0):
        order = np.argsort(t, kind="stable")
        t, lat, lon, w, surface = t[order], lat[order], lon[order], w[order], surface[order]
    if len(t) > 1 and t[-1] <= t[0]:
        raise IngestError(f"its times do not advance: all {len(t)} waveforms are stamped {t[0]:.3f}")
    lon = (lon + 180.0) % 360.0 - 180.0
    with np.errstate(over="ignore"):
        w32 = w.astype(np.float32)
    if not np.isfinite(w32).all():
        raise IngestError("its waveform powers overflow 32-bit floats: wrong scaling?")
    return TrackProduct(path=path, key=path.stem, source_format=source_format, gates=int(w.shape[1]),
                        time=t.astype(np.float64), lat=lat.astype(np.float64), lon=lon.astype(np.float64),
                        waveforms=np.ascontiguousarray(w32), surface=surface.astype(np.int8), **meta)


def _need(ds, name: str, what: str) -> None:
    if name not in ds.variables:
        raise IngestError(f"it has no {name} ({what}): the file is incomplete or not of this product")


def _check_size(n: int, gates: int, limits: TrackLimits) -> None:
    if n < 1 or gates < 1:
        raise IngestError(f"it holds no waveform ({n} of {gates} gates)")
    if gates > limits.max_gates:
        raise IngestError(f"its waveforms have {gates} gates, more than the {limits.max_gates} a track may have")
    if n > limits.max_waveforms:
        raise IngestError(f"it holds {n} waveforms, more than the {limits.max_waveforms} a track may have: split "
                          "it into passes")


def _float(ds, name: str) -> np.ndarray:
    return _values(ds.variables[name])


def _values(var) -> np.ndarray:
    """A variable scaled to physical values (float64), NaN where it holds its declared _FillValue or
    missing_value. Only declared ones: netCDF's default fill of a type is a real value in these products (a
    CryoSat-2 waveform is scaled so that its highest gate is 65535, the default fill of uint16)."""
    var.set_auto_maskandscale(False)
    raw = np.asarray(var[...])
    data = raw.astype(np.float64)
    for attr in ("_FillValue", "missing_value"):
        fill = getattr(var, attr, None)
        if fill is not None:
            data[np.isin(raw, np.asarray(fill).ravel())] = np.nan
    scale, offset = getattr(var, "scale_factor", None), getattr(var, "add_offset", None)
    if scale is not None:
        data *= float(np.asarray(scale).ravel()[0])
    if offset is not None:
        data += float(np.asarray(offset).ravel()[0])
    return data


def _waveforms(var) -> np.ndarray:
    return _values(var)


def _flags(var) -> np.ndarray:
    values = np.nan_to_num(_values(var), nan=-1.0)
    return np.where((values >= 0) & (values <= 3), values, -1).astype(np.int8)


def _seconds_since(var, values: np.ndarray) -> np.ndarray:
    """Unix seconds from a time variable counted in seconds since 2000-01-01 (the units both products use)."""
    units = str(getattr(var, "units", "")).strip().lower()
    if not units.startswith("seconds since 2000-01-01"):
        raise IngestError(f"{var.name} is in {units[:60]!r}, not 'seconds since 2000-01-01 00:00:00.0' as the "
                          "product specifies")
    return values + EPOCH_2000


def _attr(ds, name: str) -> str:
    try:
        value = ds.getncattr(name)
    except (AttributeError, KeyError):
        return ""
    return _CONTROL.sub(" ", str(value)).strip()[:_ATTR_CHARS]


def _int_attr(ds, name: str) -> int | None:
    text = _attr(ds, name)
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and 0 <= value < 2**31 and value == int(value) else None


def _attributes(ds, names: tuple[str, ...]) -> dict[str, str]:
    return {name: value for name in names if (value := _attr(ds, name))}
