"""SIGRID-3 ice chart codes: concentration, stage of development, form, polygon type.

Codes follow SIGRID-3 (JCOMM, WMO/TD-No. 1214, 2004, revised 2014) as the Canadian Ice Service applies it (CIS
SIGRID-3 implementation note: CT/CA/CB/CC concentration, SA/SB/SC/CN/CD stage, FA/FB/FC form, CF = CIS form pair,
POLY_TYPE). The tables below were checked against the NSIDC G02172 decoding table (NIC charts climatology), the
AutoICE / AI4Arctic challenge lookups (`SIC_LOOKUP`, `SOD_LOOKUP`, `FLOE_LOOKUP`) and IceChaRt's `ReadSIGRID3.R`.

Concentration (CT, CA, CB, CC) -> sic % and the interval the code stands for: 00 ice free (also 98, the 2014 code)
-> 0, (0, 0); 01 less than 1/10 (open water) and 02 bergy water -> 5, (0, 10); 10..90 n/10 -> n*10, (n*10, n*10);
91 9+/10 -> 95, (90, 100); 92 10/10 -> 100, (100, 100); "ab" = a/10 to b/10 (a < b in 1..9: 12 13 23 24 34 35 45 46
56 57 67 68 78 79 89) -> midpoint, (a*10, b*10); 81 = 8/10 to 10/10 -> 90, (80, 100); 99 unknown, -9, others -> None.
One value for an interval is its midpoint, as NSIDC G02172 does (01/02 -> 5, 91 -> 95, 13 -> 20, 46 -> 50) and the
FMI variant of AutoICE's SIC_LOOKUP for the intervals (89 -> 8.5/10, 81 -> 9/10); the original AutoICE lookup takes
01/02 as 0 and 91 as 100: a consumer who wants that has `kind` ("water" for 00/01/02/98) and `sic_range`.
Stage (SA, SB, SC, CN, CD): 81 new ice, 82 nilas, 83 young ice, 84 grey ice, 85 grey-white ice, 86 first-year ice,
87 thin first-year ice, 88/89 thin first-year ice stage 1/2, 91 medium first-year ice, 93 thick first-year ice,
95 old ice, 96 second-year ice, 97 multi-year ice, 98 glacier ice, 74-78 lake ice; 80 (no stage), 99 (undetermined),
-9 -> None. Form (FA, FB, FC): 22 pancake ice, 01 shuga/small ice cake, 02 ice cake, 03 small floe, 04 medium floe,
05 big floe, 06 vast floe, 07 giant floe, 08 fast ice, 09 growlers/floebergs/floebits, 10 icebergs, 21 level ice,
11-19/91/20 strips and patches n/10 (CIS CF); 99, -9 -> None. (08 is fast ice: the CIS note marks fast ice with
CF "08-9", and the real CIS chart has CF "08-9" on every polygon whose FA is 08, all of them 10/10.)
Codes are normalised before lookup: numbers or text, surrounding blanks dropped, a lost leading zero restored
("1" and 1 are "01"), "92.0" read as 92; -9 and blanks are "not set"; anything else is malformed (decodes to None).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

__all__ = ["FORMS", "KINDS", "STAGES", "WATER_CT", "Malformed", "code", "ct_value", "decode_ct", "decode_form",
           "decode_stage", "safe_code"]

WATER_CT = {"00", "98", "01", "02"}
CT_FIXED = {"00": (0.0, (0.0, 0.0)), "98": (0.0, (0.0, 0.0)), "01": (5.0, (0.0, 10.0)), "02": (5.0, (0.0, 10.0)),
             "91": (95.0, (90.0, 100.0)), "92": (100.0, (100.0, 100.0)), "81": (90.0, (80.0, 100.0))}
STAGES = {"81": "new ice", "82": "nilas", "83": "young ice", "84": "grey ice", "85": "grey-white ice",
          "86": "first-year ice", "87": "thin first-year ice", "88": "thin first-year ice stage 1",
          "89": "thin first-year ice stage 2", "91": "medium first-year ice", "93": "thick first-year ice",
          "95": "old ice", "96": "second-year ice", "97": "multi-year ice", "98": "glacier ice",
          "74": "new lake ice", "75": "thin lake ice", "76": "medium lake ice", "77": "thick lake ice",
          "78": "very thick lake ice"}
FORMS = {"22": "pancake ice", "01": "shuga/small ice cake", "02": "ice cake", "03": "small floe", "04": "medium floe",
         "05": "big floe", "06": "vast floe", "07": "giant floe", "08": "fast ice",
         "09": "growlers, floebergs or floebits", "10": "icebergs", "21": "level ice",
         **{f"1{n}": f"strips and patches {n}/10" for n in range(1, 10)},
         "91": "strips and patches 9+/10", "20": "strips and patches 10/10"}
KINDS = {"I": "ice", "W": "water", "L": "land", "S": "land", "N": "no_data"}
_NUMBER = re.compile(r"[+-]?\d{1,3}(?:\.0*)?")



class Malformed(ValueError):
    pass


def code(value: Any) -> str | None:
    """A SIGRID-3 code as two digits ("01"), None when not set (None, NaN, blank, -9); Malformed otherwise."""
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, str | int | float | np.integer | np.floating):
        raise Malformed(type(value).__name__)
    text = str(value).strip()
    if text and not _NUMBER.fullmatch(text):
        raise Malformed(text[:20])
    number = int(float(text)) if text else -9
    if not (number == -9 or 0 <= number <= 99):
        raise Malformed(str(number))
    return None if number == -9 else f"{number:02d}"


def safe_code(value: Any) -> str | None:
    try:
        return code(value)
    except Malformed:
        return None


def ct_value(code: str | None) -> tuple[float | None, tuple[float, float] | None]:
    if code is None:
        return None, None
    if code in CT_FIXED:
        return CT_FIXED[code]
    low, high = int(code[0]), int(code[1])
    if high == 0 and low >= 1:
        return low * 10.0, (low * 10.0, low * 10.0)
    if 1 <= low < high <= 9:
        return (low + high) * 5.0, (low * 10.0, high * 10.0)
    return None, None  # 99 unknown, and codes SIGRID-3 does not define


def decode_ct(code: str | int | float | None) -> tuple[float | None, tuple[float, float] | None]:
    """SIGRID-3 total (or partial) concentration -> (sic %, (low %, high %)); (None, None) if unknown or malformed."""
    return ct_value(safe_code(code))


def decode_stage(code: Any) -> str | None:
    """SIGRID-3 stage of development (SA, SB, SC, CN, CD) -> its name; None if not set, undetermined or unknown."""
    return STAGES.get(safe_code(code) or "")


def decode_form(code: Any) -> str | None:
    """SIGRID-3 form of ice (FA, FB, FC) -> its name; None if not set, undetermined or unknown."""
    return FORMS.get(safe_code(code) or "")
