"""The XML of a synthetic WV SAFE product: the manifest and the per-imagette annotation."""

from __future__ import annotations

from datetime import datetime

from demo.synthetic.geometry import _iso, _object_id, _Written


def _manifest_xml(
    name: str,
    mission: str,
    orbit: int,
    datatake: int,
    start: datetime,
    stop: datetime,
    anx: datetime,
    heading: float,
    written: list[_Written],
) -> str:
    """The XFDU manifest, shaped like ESA's WV manifest (informationPackageMap, metadataSection with the frame
    set of per-imagette footprints, dataObjectSection listing annotation and measurement files)."""
    units, meta, objects, frames = [], [], [], []
    for w in written:
        pid = _object_id("product", mission, w, orbit, datatake)
        units.append(
            f'      <xfdu:contentUnit unitType="Metadata Unit" repID="s1Level1ProductSchema">\n'
            f'        <dataObjectPointer dataObjectID="{pid}"/>\n'
            f"      </xfdu:contentUnit>"
        )
        meta.append(
            f'    <metadataObject ID="{pid}Annotation" classification="DESCRIPTION" category="DMD">\n'
            f'      <dataObjectPointer dataObjectID="{pid}"/>\n'
            f"    </metadataObject>"
        )
        objects.append(
            f'    <dataObject ID="{pid}" repID="s1Level1ProductSchema">\n'
            f'      <byteStream mimeType="text/xml" size="{w.annotation_size}">\n'
            f'        <fileLocation locatorType="URL" href="./annotation/{w.stem}.xml"/>\n'
            f'        <checksum checksumName="MD5">{w.annotation_md5}</checksum>\n'
            f"      </byteStream>\n"
            f"    </dataObject>"
        )
        coords = " ".join(f"{la:.6f},{lo:.6f}" for la, lo in w.footprint)
        frames.append(
            "            <safe:frame>\n"
            '              <safe:footPrint srsName="http://www.opengis.net/gml/srs/epsg.xml#4326">\n'
            f"                <gml:coordinates>{coords}</gml:coordinates>\n"
            "              </safe:footPrint>\n"
            "            </safe:frame>"
        )
    for w in written:
        pid = _object_id("product", mission, w, orbit, datatake)
        mid = _object_id("", mission, w, orbit, datatake)
        units.append(
            f'      <xfdu:contentUnit unitType="Measurement Data Unit" repID="s1Level1MeasurementSchema" '
            f'dmdID="{pid}Annotation ">\n'
            f'        <dataObjectPointer dataObjectID="{mid}"/>\n'
            f"      </xfdu:contentUnit>"
        )
        objects.append(
            f'    <dataObject ID="{mid}" repID="s1Level1MeasurementSchema">\n'
            f'      <byteStream mimeType="application/octet-stream" size="{w.measurement_size}">\n'
            f'        <fileLocation locatorType="URL" href="./measurement/{w.stem}.tiff"/>\n'
            f'        <checksum checksumName="MD5">{w.measurement_md5}</checksum>\n'
            f"      </byteStream>\n"
            f"    </dataObject>"
        )
    number = mission[-1]
    pass_ = "DESCENDING" if 90 < heading % 360 < 270 else "ASCENDING"
    nl = "\n"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xfdu:XFDU xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:gml="http://www.opengis.net/gml" \
xmlns:xfdu="urn:ccsds:schema:xfdu:1" xmlns:safe="http://www.esa.int/safe/sentinel-1.0" \
xmlns:s1="http://www.esa.int/safe/sentinel-1.0/sentinel-1" \
xmlns:s1sar="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar" \
xmlns:s1sarl1="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-1" \
xmlns:s1sarl2="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-2" \
xmlns:gx="http://www.google.com/kml/ext/2.2" \
version="esa/safe/sentinel-1.0/sentinel-1/sar/level-1/slc/standard/wvsp">
  <informationPackageMap>
    <xfdu:contentUnit unitType="SAFE Archive Information Package" textInfo="Sentinel-1 WV Level-1 SLC Product" \
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
          <safe:processing name="SLC Post Processing" start="{_iso(stop)}" stop="{_iso(stop)}">
            <safe:facility country="None" name="Cryolabel synthetic data" organisation="Cryolabel" site="local">
              <safe:software name="Cryolabel synthetic WV generator" version="1"/>
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
                  <s1sarl1:mode>WV</s1sarl1:mode>
                  <s1sarl1:swath>WV1</s1sarl1:swath>
                  <s1sarl1:swath>WV2</s1sarl1:swath>
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
            <safe:relativeOrbitNumber type="start">{(orbit - 73) % 175 + 1}</safe:relativeOrbitNumber>
            <safe:relativeOrbitNumber type="stop">{(orbit - 73) % 175 + 1}</safe:relativeOrbitNumber>
            <safe:extension>
              <s1:orbitProperties>
                <s1:pass>{pass_}</s1:pass>
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
            <s1sarl1:transmitterReceiverPolarisation>VV</s1sarl1:transmitterReceiverPolarisation>
            <s1sarl1:productClass>S</s1sarl1:productClass>
            <s1sarl1:productClassDescription>SAR Standard L1 Product</s1sarl1:productClassDescription>
            <s1sarl1:productComposition>Individual</s1sarl1:productComposition>
            <s1sarl1:productType>SLC</s1sarl1:productType>
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
{nl.join(frames)}
          </safe:frameSet>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="s1Level1ProductSchema" classification="SYNTAX" category="REP">
      <metadataReference mimeType="text/xml" vocabularyName="XML Schema" locatorType="URL" \
href="./support/s1-level-1-product.xsd"/>
    </metadataObject>
    <metadataObject ID="s1Level1MeasurementSchema" classification="SYNTAX" category="REP">
      <metadataReference mimeType="text/xml" vocabularyName="SDF" locatorType="URL" \
href="./support/s1-level-1-measurement.xsd"/>
    </metadataObject>
  </metadataSection>
  <dataObjectSection>
{nl.join(objects)}
  </dataObjectSection>
</xfdu:XFDU>
"""
