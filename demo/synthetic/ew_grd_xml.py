"""The XML of a synthetic Sentinel-1 EW GRD product: manifest.safe, the product annotation and the calibration
annotation of each polarisation, shaped as ESA's IPF writes them (the subset the readers and common tools use);
and the numbers they annotate: the range geometry (incidence, look angle, slant range time) and the calibration
LUTs (sigmaNought = betaNought / sqrt(sin incidence), as in real products)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from demo.synthetic.geometry import _iso

BETA_NOUGHT = 600.0  # the betaNought (and dn) LUT value: DN of a unit beta0
_EARTH_R, _ALTITUDE, _C = 6_371_000.0, 693_000.0, 299_792_458.0
_NEAR_INCIDENCE = 18.9


@dataclass(frozen=True)
class _SafeFile:
    """One file of the product as the manifest lists it."""

    object_id: str
    rep_id: str  # s1Level1ProductSchema, s1Level1CalibrationSchema or s1Level1MeasurementSchema
    href: str
    size: int
    md5: str


def _e(values: np.ndarray) -> str:
    """A list as ESA writes it: space-separated, 7 significant digits."""
    return " ".join(f"{v:.6e}" for v in values)


def _range_geometry(size: int, spacing: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Incidence and elevation (look) angles (degrees) and two-way slant range time (s) per sample, for a
    spherical Earth and a ground-range grid whose first sample sees 18.9 degrees incidence."""

    def geometry(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        beta = s / _EARTH_R
        x, z = _EARTH_R * np.sin(beta), _ALTITUDE + _EARTH_R * (1 - np.cos(beta))
        look = np.arctan2(x, z)
        return np.degrees(look + beta), np.degrees(look), 2 * np.hypot(x, z) / _C

    table = np.linspace(0, 1.5e6, 3001)
    s_near = float(np.interp(_NEAR_INCIDENCE, geometry(table)[0], table))
    return geometry(s_near + np.arange(size) * spacing)


def _lut(size: int, incidence: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Calibration knots (every 40 px, and the last pixel), the LUTs as the XML will hold them (7 significant
    digits), and sigmaNought at every sample interpolated exactly as a reader interpolates it."""
    step = 40 if size >= 800 else max(4, size // 20)
    knots = np.unique(np.append(np.arange(0, size - 1, step), size - 1))
    theta = np.radians(incidence[knots])
    raw = {
        "sigmaNought": BETA_NOUGHT / np.sqrt(np.sin(theta)),
        "betaNought": np.full(len(knots), BETA_NOUGHT),
        "gamma": BETA_NOUGHT / np.sqrt(np.tan(theta)),
        "dn": np.full(len(knots), BETA_NOUGHT),
    }
    luts = {k: np.array([float(f"{x:.6e}") for x in v]) for k, v in raw.items()}
    return knots, luts, np.interp(np.arange(size), knots, luts["sigmaNought"])


def _header(mission: str, pol: str, start: datetime, stop: datetime, orbit: int, datatake: int, number: int) -> str:
    return f"""  <adsHeader>
    <missionId>{mission}</missionId>
    <productType>GRD</productType>
    <polarisation>{pol}</polarisation>
    <mode>EW</mode>
    <swath>EW</swath>
    <startTime>{_iso(start)}</startTime>
    <stopTime>{_iso(stop)}</stopTime>
    <absoluteOrbitNumber>{orbit}</absoluteOrbitNumber>
    <missionDataTakeId>{datatake}</missionDataTakeId>
    <imageNumber>{number:03d}</imageNumber>
  </adsHeader>"""


def _annotation_xml(
    *,
    header: str,
    pass_: str,
    heading: float,
    anx: datetime,
    start: datetime,
    stop: datetime,
    srt0: float,
    spacing: float,
    line_time: float,
    samples: int,
    lines: int,
    inc_mid: float,
    grid: Sequence[tuple],
) -> str:
    """The product annotation: adsHeader, generalAnnotation/productInformation, imageAnnotation/imageInformation
    and the geolocation grid. `grid` holds (azimuth time, slant range time, line, pixel, lat, lon, incidence,
    elevation) per point, lines outer, pixels inner, as in real products."""
    points = "\n".join(
        f"""      <geolocationGridPoint>
        <azimuthTime>{_iso(t)}</azimuthTime>
        <slantRangeTime>{srt:.15e}</slantRangeTime>
        <line>{line}</line>
        <pixel>{pixel}</pixel>
        <latitude>{lat:.15e}</latitude>
        <longitude>{lon:.15e}</longitude>
        <height>0.000000000000000e+00</height>
        <incidenceAngle>{inc:.15e}</incidenceAngle>
        <elevationAngle>{elev:.15e}</elevationAngle>
      </geolocationGridPoint>"""
        for t, srt, line, pixel, lat, lon, inc, elev in grid
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<product>
{header}
  <generalAnnotation>
    <productInformation>
      <pass>{pass_}</pass>
      <timelinessCategory>Fast-24h</timelinessCategory>
      <platformHeading>{(heading + 180.0) % 360.0 - 180.0:.15e}</platformHeading>
      <projection>Ground Range</projection>
      <rangeSamplingRate>2.503086360000000e+07</rangeSamplingRate>
      <radarFrequency>5.405000454334350e+09</radarFrequency>
      <azimuthSteeringRate>2.390895448000000e+00</azimuthSteeringRate>
    </productInformation>
  </generalAnnotation>
  <imageAnnotation>
    <imageInformation>
      <productFirstLineUtcTime>{_iso(start)}</productFirstLineUtcTime>
      <productLastLineUtcTime>{_iso(stop)}</productLastLineUtcTime>
      <ascendingNodeTime>{_iso(anx)}</ascendingNodeTime>
      <anchorTime>{_iso(start)}</anchorTime>
      <productComposition>Slice</productComposition>
      <sliceNumber>1</sliceNumber>
      <slantRangeTime>{srt0:.15e}</slantRangeTime>
      <pixelValue>Detected</pixelValue>
      <outputPixels>16 bit Unsigned Integer</outputPixels>
      <rangePixelSpacing>{spacing:.6e}</rangePixelSpacing>
      <azimuthPixelSpacing>{spacing:.6e}</azimuthPixelSpacing>
      <azimuthTimeInterval>{line_time:.15e}</azimuthTimeInterval>
      <numberOfSamples>{samples}</numberOfSamples>
      <numberOfLines>{lines}</numberOfLines>
      <incidenceAngleMidSwath>{inc_mid:.15e}</incidenceAngleMidSwath>
    </imageInformation>
    <processingInformation>
      <rangeSpreadingLossCompensationApplied>true</rangeSpreadingLossCompensationApplied>
      <srgrConversionApplied>true</srgrConversionApplied>
      <detectionPerformed>true</detectionPerformed>
      <thermalNoiseCorrectionPerformed>false</thermalNoiseCorrectionPerformed>
      <applicationLutId>EW_Default</applicationLutId>
    </processingInformation>
  </imageAnnotation>
  <swathTiming>
    <linesPerBurst>0</linesPerBurst>
    <samplesPerBurst>0</samplesPerBurst>
    <burstList count="0"/>
  </swathTiming>
  <geolocationGrid>
    <geolocationGridPointList count="{len(grid)}">
{points}
    </geolocationGridPointList>
  </geolocationGrid>
</product>
"""


def _calibration_xml(
    *, header: str, vectors: Sequence[tuple[datetime, int]], pixels: np.ndarray, luts: dict[str, np.ndarray]
) -> str:
    """The calibration annotation: one calibrationVector per (azimuth time, line), each with the pixel list and the
    sigmaNought, betaNought, gamma and dn lists (the same across lines: a GRD LUT varies with range only)."""
    n = len(pixels)
    pixel_list = " ".join(str(int(p)) for p in pixels)
    lists = "\n".join(f'      <{k} count="{n}">{_e(v)}</{k}>' for k, v in luts.items())
    body = "\n".join(
        f"""    <calibrationVector>
      <azimuthTime>{_iso(t)}</azimuthTime>
      <line>{line}</line>
      <pixel count="{n}">{pixel_list}</pixel>
{lists}
    </calibrationVector>"""
        for t, line in vectors
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<calibration>
{header}
  <calibrationInformation>
    <absoluteCalibrationConstant>1.000000e+00</absoluteCalibrationConstant>
  </calibrationInformation>
  <calibrationVectorList count="{len(vectors)}">
{body}
  </calibrationVectorList>
</calibration>
"""


def _manifest_xml(
    *,
    mission: str,
    orbit: int,
    datatake: int,
    start: datetime,
    stop: datetime,
    anx: datetime,
    pass_: str,
    footprint: Sequence[tuple[float, float]],
    files: Sequence[_SafeFile],
) -> str:
    """The XFDU manifest of a dual-polarisation (HH+HV) EW GRD medium-resolution product; `footprint` holds the
    (lat, lon) corners, written as the frame set's gml:coordinates the way ESA writes them (lat,lon pairs)."""
    nl = "\n"
    units = [
        f'      <xfdu:contentUnit unitType="Metadata Unit" repID="{f.rep_id}">\n'
        f'        <dataObjectPointer dataObjectID="{f.object_id}"/>\n'
        f"      </xfdu:contentUnit>"
        for f in files
        if f.rep_id != "s1Level1MeasurementSchema"
    ]
    for f in files:
        if f.rep_id == "s1Level1MeasurementSchema":
            dmd = " ".join(f"{kind}{f.object_id}Annotation" for kind in ("product", "calibration"))
            units.append(
                f'      <xfdu:contentUnit unitType="Measurement Data Unit" repID="{f.rep_id}" dmdID="{dmd} ">\n'
                f'        <dataObjectPointer dataObjectID="{f.object_id}"/>\n'
                f"      </xfdu:contentUnit>"
            )
    meta = [
        f'    <metadataObject ID="{f.object_id}Annotation" classification="DESCRIPTION" category="DMD">\n'
        f'      <dataObjectPointer dataObjectID="{f.object_id}"/>\n'
        f"    </metadataObject>"
        for f in files
        if f.rep_id != "s1Level1MeasurementSchema"
    ]
    objects = [
        f'    <dataObject ID="{f.object_id}" repID="{f.rep_id}">\n'
        f'      <byteStream mimeType="{"application/octet-stream" if f.href.endswith(".tiff") else "text/xml"}" '
        f'size="{f.size}">\n'
        f'        <fileLocation locatorType="URL" href="{f.href}"/>\n'
        f'        <checksum checksumName="MD5">{f.md5}</checksum>\n'
        f"      </byteStream>\n"
        f"    </dataObject>"
        for f in files
    ]
    coords = " ".join(f"{la:.6f},{lo:.6f}" for la, lo in footprint)
    number = mission[-1]
    relative = (orbit - 73) % 175 + 1
    swaths = nl.join(f"                  <s1sarl1:swath>EW{i}</s1sarl1:swath>" for i in range(1, 6))
    schemas = (
        ("s1Level1ProductSchema", "XML Schema", "s1-level-1-product.xsd"),
        ("s1Level1CalibrationSchema", "XML Schema", "s1-level-1-calibration.xsd"),
        ("s1Level1MeasurementSchema", "SDF", "s1-level-1-measurement.xsd"),
    )
    schema_objects = nl.join(
        f'    <metadataObject ID="{sid}" classification="SYNTAX" category="REP">\n'
        f'      <metadataReference mimeType="text/xml" vocabularyName="{vocab}" locatorType="URL" '
        f'href="./support/{xsd}"/>\n'
        f"    </metadataObject>"
        for sid, vocab, xsd in schemas
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xfdu:XFDU xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:gml="http://www.opengis.net/gml" \
xmlns:xfdu="urn:ccsds:schema:xfdu:1" xmlns:safe="http://www.esa.int/safe/sentinel-1.0" \
xmlns:s1="http://www.esa.int/safe/sentinel-1.0/sentinel-1" \
xmlns:s1sar="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar" \
xmlns:s1sarl1="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-1" \
xmlns:s1sarl2="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-2" \
xmlns:gx="http://www.google.com/kml/ext/2.2" version="esa/safe/sentinel-1.0/sentinel-1/sar/level-1/grd/standard/ewdp">
  <informationPackageMap>
    <xfdu:contentUnit unitType="SAFE Archive Information Package" textInfo="Sentinel-1 EW Level-1 GRD Product" \
dmdID="acquisitionPeriod platform generalProductInformation measurementOrbitReference measurementFrameSet" \
pdiID="processing">
{nl.join(units)}
    </xfdu:contentUnit>
  </informationPackageMap>
  <metadataSection>
{nl.join(meta)}
    <metadataObject ID="processing" classification="PROVENANCE" category="PDI">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Processing">
        <xmlData>
          <safe:processing name="GRD Post Processing" start="{_iso(stop)}" stop="{_iso(stop)}">
            <safe:facility country="None" name="Cryolabel synthetic data" organisation="Cryolabel" site="local">
              <safe:software name="Cryolabel synthetic EW GRD generator" version="1"/>
            </safe:facility>
          </safe:processing>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="platform" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Platform Description">
        <xmlData>
          <safe:platform>
            <safe:nssdcIdentifier>{"2014-016A" if number == "A" else "2016-025A"}</safe:nssdcIdentifier>
            <safe:familyName>SENTINEL-1</safe:familyName>
            <safe:number>{number}</safe:number>
            <safe:instrument>
              <safe:familyName abbreviation="SAR">Synthetic Aperture Radar</safe:familyName>
              <safe:extension>
                <s1sarl1:instrumentMode>
                  <s1sarl1:mode>EW</s1sarl1:mode>
{swaths}
                </s1sarl1:instrumentMode>
              </safe:extension>
            </safe:instrument>
          </safe:platform>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="measurementOrbitReference" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Orbit Reference">
        <xmlData>
          <safe:orbitReference>
            <safe:orbitNumber type="start">{orbit}</safe:orbitNumber>
            <safe:orbitNumber type="stop">{orbit}</safe:orbitNumber>
            <safe:relativeOrbitNumber type="start">{relative}</safe:relativeOrbitNumber>
            <safe:relativeOrbitNumber type="stop">{relative}</safe:relativeOrbitNumber>
            <safe:extension>
              <s1:orbitProperties>
                <s1:pass>{pass_.upper()}</s1:pass>
                <s1:ascendingNodeTime>{_iso(anx)}</s1:ascendingNodeTime>
              </s1:orbitProperties>
            </safe:extension>
          </safe:orbitReference>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="generalProductInformation" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="General Product Information">
        <xmlData>
          <s1sarl1:standAloneProductInformation>
            <s1sarl1:missionDataTakeID>{datatake}</s1sarl1:missionDataTakeID>
            <s1sarl1:transmitterReceiverPolarisation>HH</s1sarl1:transmitterReceiverPolarisation>
            <s1sarl1:transmitterReceiverPolarisation>HV</s1sarl1:transmitterReceiverPolarisation>
            <s1sarl1:productClass>S</s1sarl1:productClass>
            <s1sarl1:productClassDescription>SAR Standard L1 Product</s1sarl1:productClassDescription>
            <s1sarl1:productComposition>Slice</s1sarl1:productComposition>
            <s1sarl1:productType>GRD</s1sarl1:productType>
            <s1sarl1:productTimelinessCategory>Fast-24h</s1sarl1:productTimelinessCategory>
          </s1sarl1:standAloneProductInformation>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="acquisitionPeriod" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Acquisition Period">
        <xmlData>
          <safe:acquisitionPeriod>
            <safe:startTime>{_iso(start)}</safe:startTime>
            <safe:stopTime>{_iso(stop)}</safe:stopTime>
          </safe:acquisitionPeriod>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="measurementFrameSet" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Frame Set">
        <xmlData>
          <safe:frameSet>
            <safe:frame>
              <safe:footPrint srsName="http://www.opengis.net/gml/srs/epsg.xml#4326">
                <gml:coordinates>{coords}</gml:coordinates>
              </safe:footPrint>
            </safe:frame>
          </safe:frameSet>
        </xmlData>
      </metadataWrap>
    </metadataObject>
{schema_objects}
  </metadataSection>
  <dataObjectSection>
{nl.join(objects)}
  </dataObjectSection>
</xfdu:XFDU>
"""
