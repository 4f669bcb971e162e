"""Sentinel-2 MSI Level-1C and Level-2A products (a ``.SAFE`` folder or its ``.zip``).

References:

* ESA *Sentinel-2 Products Specification Document* (S2-PDGS-TAS-DI-PSD, v14.x/15.x):
  the SAFE layout, the product metadata ``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml``
  (``PRODUCT_START_TIME``, ``SPACECRAFT_NAME``, ``PROCESSING_BASELINE``,
  ``Cloud_Coverage_Assessment``, ``QUANTIFICATION_VALUE``/``BOA_QUANTIFICATION_VALUE``,
  ``Radiometric_Offset_List``/``BOA_ADD_OFFSET_VALUES_LIST``) and the tile
  metadata ``GRANULE/<id>/MTD_TL.xml`` (``HORIZONTAL_CS_CODE``, ``Geoposition``).
* ESA, *Sentinel-2 L1C/L2A products: new processing baseline 04.00* (Jan 2022):
  from baseline 04.00 on, DN = reflectance × quantification − offset with
  ``RADIO_ADD_OFFSET``/``BOA_ADD_OFFSET`` = −1000; reflectance =
  (DN + offset) / quantification. DN 0 stays NODATA.
* Sen2Cor / L2A PSD, Scene Classification (SCL): 0 NO_DATA, 1 SATURATED_DEFECTIVE,
  2 DARK_FEATURE_SHADOW, 3 CLOUD_SHADOW, 4 VEGETATION, 5 NOT_VEGETATED, 6 WATER,
  7 UNCLASSIFIED, 8 CLOUD_MEDIUM_PROBA, 9 CLOUD_HIGH_PROBA, 10 THIN_CIRRUS,
  11 SNOW_ICE (the same list is in ``MTD_MSIL2A.xml``, ``Scene_Classification_List``).

Band 8 (NIR, 10 m) has ``band_id`` 7 in the offset lists (ids count B1..B8, B8A, B9..B12 from 0).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, TypedDict

import attrs
import numpy as np
from affine import Affine

from gvfuse.errors import MetadataError, excerpt
from gvfuse.formats.containers import Container
from gvfuse.formats.safexml import (
    find_named,
    iter_named,
    local_name,
    optional_text,
    parse_xml,
    required_float,
    required_text,
)
from gvfuse.model import Grid

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

#: S2A_MSIL1C_20240101T102431_N0510_R065_T30NWM_20240101T122107(.SAFE) (PSD, "Product naming").
PRODUCT_NAME_RE = re.compile(
    r"^(?P<mission>S2[A-D])_MSI(?P<level>L1C|L2A)_(?P<sensed>\d{8}T\d{6})_N(?P<baseline>\d{4})_"
    r"R(?P<orbit>\d{3})_T(?P<tile>\d{2}[A-Z]{3})_(?P<discriminator>\d{8}T\d{6})"
)

BAND8_ID = "7"
#: SCL classes that make a pixel unusable for tracking: no data, cloud shadow,
#: medium- and high-probability cloud, thin cirrus. Snow/ice (11) is kept: it is the glacier.
SCL_UNUSABLE_CLASSES = (0, 3, 8, 9, 10)
NODATA_DN = 0
#: How the levels rank when one acquisition is there as both: L2A (its scene classification masks clouds) over
#: L1C (the scene's ``preference``, see ``gvfuse.pipeline.pairing.deduplicate``).
LEVEL_PREFERENCE = {"L2A": 1, "L1C": 0}


@attrs.frozen
class Sentinel2Metadata:
    """Product and tile metadata of one single-tile Sentinel-2 product."""

    product_name: str  # PRODUCT_URI without .SAFE
    level: str  # L1C or L2A
    spacecraft: str  # SPACECRAFT_NAME, e.g. Sentinel-2A
    acquired_at: dt.datetime  # PRODUCT_START_TIME
    processing_baseline: str  # "05.10"
    cloud_cover_percent: float  # Cloud_Coverage_Assessment
    quantification_value: float  # QUANTIFICATION_VALUE (L1C) / BOA_QUANTIFICATION_VALUE (L2A)
    band8_offset_dn: float  # RADIO_ADD_OFFSET / BOA_ADD_OFFSET of band_id 7; 0 before baseline 04.00
    mgrs_tile: str  # "30NWM"
    relative_orbit: int | None  # SENSING_ORBIT_NUMBER
    orbit_direction: str | None  # SENSING_ORBIT_DIRECTION
    footprint_lonlat_bounds: tuple[float, float, float, float] | None  # Product_Footprint EXT_POS_LIST
    crs_epsg: int  # MTD_TL HORIZONTAL_CS_CODE
    band8_grid: Grid  # MTD_TL Size/Geoposition resolution="10"
    band8_member: str
    scl_member: str | None  # L2A only


def parse_product_name(name: str) -> dict[str, str] | None:
    """The fields of a Sentinel-2 product name, or None if it is not one."""
    match = PRODUCT_NAME_RE.match(PurePosixPath(name).name)
    return match.groupdict() if match else None


def _iso_utc(text: str, source: object, field: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MetadataError(f"not an ISO 8601 time: {excerpt(text)}", source=source, field=field) from None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def _footprint(root: Element, source: object) -> tuple[float, float, float, float] | None:
    text = optional_text(root, "EXT_POS_LIST")
    if text is None:
        return None
    try:
        numbers = [float(v) for v in text.split()]
    except ValueError:
        raise MetadataError("EXT_POS_LIST holds a non-number", source=source, field="EXT_POS_LIST") from None
    lats, lons = numbers[0::2], numbers[1::2]  # lat lon pairs
    if not lats or len(lats) != len(lons):
        raise MetadataError("EXT_POS_LIST is not lat/lon pairs", source=source, field="EXT_POS_LIST")
    if max(lons) - min(lons) > 180.0:
        return None  # crosses the antimeridian: a lon/lat box would span the globe
    return (min(lons), min(lats), max(lons), max(lats))


def _band8_offset(root: Element, level: str, baseline: str, source: object) -> float:
    list_name, item_name = (("BOA_ADD_OFFSET_VALUES_LIST", "BOA_ADD_OFFSET") if level == "L2A"
                            else ("Radiometric_Offset_List", "RADIO_ADD_OFFSET"))
    offsets = find_named(root, list_name)
    if offsets is None:
        # Before baseline 04.00 no offset existed; from 04.00 on its absence means a broken file.
        if float(baseline) >= 4.0:
            raise MetadataError(f"baseline {baseline} needs <{list_name}>", source=source, field=list_name)
        return 0.0
    for item in iter_named(offsets, item_name):
        if item.get("band_id") == BAND8_ID:
            try:
                return float((item.text or "").strip())
            except ValueError:
                raise MetadataError(f"{item_name} of band 8 is not a number", source=source,
                                    field=item_name) from None
    raise MetadataError(f"no {item_name} for band_id {BAND8_ID} (B8)", source=source, field=item_name)


class ProductFields(TypedDict):
    """What :func:`parse_product_metadata` reads from ``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml``."""

    level: str
    product_uri: str
    acquired_at: dt.datetime
    spacecraft: str
    processing_baseline: str
    cloud_cover_percent: float
    quantification_value: float
    band8_offset_dn: float
    relative_orbit: int | None
    orbit_direction: str | None
    footprint_lonlat_bounds: tuple[float, float, float, float] | None
    image_files: list[str]


def parse_product_metadata(data: bytes, source: object) -> ProductFields:
    """Fields of ``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml`` as a plain dict (checked, typed)."""
    root = parse_xml(data, source)
    kind = local_name(root.tag)
    if kind not in ("Level-1C_User_Product", "Level-2A_User_Product"):
        raise MetadataError(f"root element <{kind}> is not a Sentinel-2 L1C/L2A user product", source=source,
                            field="root")
    level = "L2A" if kind.startswith("Level-2A") else "L1C"
    baseline = required_text(root, "PROCESSING_BASELINE", source)
    try:
        float(baseline)
    except ValueError:
        raise MetadataError(f"not a baseline number: {excerpt(baseline)}", source=source,
                            field="PROCESSING_BASELINE") from None
    quant_name = "BOA_QUANTIFICATION_VALUE" if level == "L2A" else "QUANTIFICATION_VALUE"
    cloud = required_float(root, "Cloud_Coverage_Assessment", source)
    if not 0.0 <= cloud <= 100.0:
        raise MetadataError(f"cloud cover {cloud} is outside 0..100", source=source, field="Cloud_Coverage_Assessment")
    orbit = optional_text(root, "SENSING_ORBIT_NUMBER")
    image_files = [(e.text or "").strip() for e in iter_named(root, "IMAGE_FILE")]
    return {
        "level": level,
        "product_uri": required_text(root, "PRODUCT_URI", source).removesuffix(".SAFE"),
        "acquired_at": _iso_utc(required_text(root, "PRODUCT_START_TIME", source), source, "PRODUCT_START_TIME"),
        "spacecraft": required_text(root, "SPACECRAFT_NAME", source),
        "processing_baseline": baseline,
        "cloud_cover_percent": cloud,
        "quantification_value": required_float(root, quant_name, source),
        "band8_offset_dn": _band8_offset(root, level, baseline, source),
        "relative_orbit": int(orbit) if orbit and orbit.isdigit() else None,
        "orbit_direction": optional_text(root, "SENSING_ORBIT_DIRECTION"),
        "footprint_lonlat_bounds": _footprint(root, source),
        "image_files": image_files,
    }


def parse_tile_metadata(data: bytes, source: object, resolution_m: int = 10) -> tuple[int, Grid]:
    """EPSG code and the ``resolution_m`` grid of ``MTD_TL.xml`` (``Tile_Geocoding``)."""
    root = parse_xml(data, source)
    code = required_text(root, "HORIZONTAL_CS_CODE", source)
    match = re.fullmatch(r"EPSG:(\d{4,5})", code)
    if match is None:
        raise MetadataError(f"not an EPSG code: {excerpt(code)}", source=source, field="HORIZONTAL_CS_CODE")
    epsg = int(match[1])
    size = next((e for e in iter_named(root, "Size") if e.get("resolution") == str(resolution_m)), None)
    position = next((e for e in iter_named(root, "Geoposition") if e.get("resolution") == str(resolution_m)), None)
    if size is None or position is None:
        raise MetadataError(f"no Size/Geoposition for {resolution_m} m", source=source, field="Tile_Geocoding")
    rows, cols = (int(required_float(size, n, source)) for n in ("NROWS", "NCOLS"))
    ulx, uly, xdim, ydim = (required_float(position, n, source) for n in ("ULX", "ULY", "XDIM", "YDIM"))
    try:
        # ULX/ULY are the outer corner of the upper-left pixel (PSD, Tile_Geocoding).
        return epsg, Grid(epsg, Affine(xdim, 0.0, ulx, 0.0, ydim, uly), (rows, cols))
    except ValueError as exc:
        raise MetadataError(f"unusable tile geometry: {exc}", source=source, field="Geoposition") from None


def find_product_metadata(container: Container) -> str | None:
    """The ``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml`` member at the SAFE root (``X.SAFE/`` in a zip)."""
    for member in container.members():
        parts = member.split("/")
        if parts[-1] in ("MTD_MSIL1C.xml", "MTD_MSIL2A.xml") and len(parts) <= 2:
            return member
    return None


def read_sentinel2(container: Container) -> Sentinel2Metadata:
    """Parse product and tile metadata and locate band 8 (and SCL for L2A)."""
    product_member = find_product_metadata(container)
    if product_member is None:
        raise MetadataError("no MTD_MSIL1C.xml or MTD_MSIL2A.xml at the product root", source=container.path,
                            field="MTD_MSIL1C.xml")
    where = container.describe(product_member)
    fields = parse_product_metadata(container.read_bytes(product_member), where)
    root = product_member.rpartition("/")[0]
    prefix = f"{root}/" if root else ""
    members = container.members()
    tiles = [m for m in members if m.startswith(prefix + "GRANULE/") and m.endswith("/MTD_TL.xml")]
    if len(tiles) != 1:
        raise MetadataError(f"expected one GRANULE/*/MTD_TL.xml, found {len(tiles)}", source=container.path,
                            field="MTD_TL.xml")
    tile_member = tiles[0]
    epsg, grid = parse_tile_metadata(container.read_bytes(tile_member), container.describe(tile_member))
    granule = tile_member.rpartition("/")[0]
    if fields["level"] == "L2A":
        band8 = [m for m in members if m.startswith(granule + "/IMG_DATA/R10m/") and m.endswith("_B08_10m.jp2")]
        scl = [m for m in members if m.startswith(granule + "/IMG_DATA/R20m/") and m.endswith("_SCL_20m.jp2")]
        if not scl:
            raise MetadataError("L2A product has no IMG_DATA/R20m/*_SCL_20m.jp2", source=container.path,
                                field="SCL")
        scl_member: str | None = scl[0]
    else:
        band8 = [m for m in members if m.startswith(granule + "/IMG_DATA/") and m.endswith("_B08.jp2")]
        scl_member = None
    if not band8:
        expected = "IMG_DATA/R10m/*_B08_10m.jp2" if fields["level"] == "L2A" else "IMG_DATA/*_B08.jp2"
        raise MetadataError(f"band 8 image is missing ({expected})", source=container.path, field="B08")
    name = parse_product_name(str(fields["product_uri"])) or {}
    # The product name carries the MGRS tile; the granule folder (L1C_T30NWM_...) is the fallback.
    granule_parts = PurePosixPath(granule).name.split("_")
    tile = name.get("tile") or (granule_parts[1].removeprefix("T") if len(granule_parts) > 1 else "")
    return Sentinel2Metadata(
        product_name=str(fields["product_uri"]), level=str(fields["level"]), spacecraft=str(fields["spacecraft"]),
        acquired_at=fields["acquired_at"], processing_baseline=str(fields["processing_baseline"]),
        cloud_cover_percent=float(fields["cloud_cover_percent"]),
        quantification_value=float(fields["quantification_value"]),
        band8_offset_dn=float(fields["band8_offset_dn"]), mgrs_tile=tile,
        relative_orbit=fields["relative_orbit"], orbit_direction=fields["orbit_direction"],
        footprint_lonlat_bounds=fields["footprint_lonlat_bounds"], crs_epsg=epsg, band8_grid=grid,
        band8_member=band8[0], scl_member=scl_member,
    )


def dn_to_reflectance(dn: np.ndarray, offset_dn: float, quantification_value: float) -> np.ndarray:
    """Top-of-atmosphere (L1C) or bottom-of-atmosphere (L2A) reflectance: (DN + offset) / quantification."""
    return (np.asarray(dn, dtype="float32") + np.float32(offset_dn)) / np.float32(quantification_value)


def scl_unusable(scl: np.ndarray) -> np.ndarray:
    """True where the L2A scene classification is no data, cloud shadow, cloud or cirrus."""
    return np.isin(scl, SCL_UNUSABLE_CLASSES)
