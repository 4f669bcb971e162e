"""Landsat 8/9 OLI Collection 2 Level-1 products (a scene folder or the USGS ``.tar``).

References:

* USGS LSDS-1822, *Landsat 8-9 OLI/TIRS Collection 2 Level 1 Data Format
  Control Book* (DFCB): product identifier, file names, the MTL metadata in its
  three flavours (ODL ``_MTL.txt``, ``_MTL.json``, ``_MTL.xml``) and the
  ``QA_PIXEL`` bit layout.
* USGS *Landsat Collection 2 Quality Assessment Bands* (QA_PIXEL bits:
  0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow, 5 snow, 6 clear,
  7 water, 8-9 cloud confidence, 10-11 cloud-shadow confidence, 12-13 snow/ice
  confidence, 14-15 cirrus confidence).

The MTL groups are parsed into ``{GROUP: {KEY: "value"}}`` with every value a
string, whatever the flavour: ODL quotes only text values, while USGS's JSON
writes every value as a string (``"WRS_PATH": "16"``) and strips blanks inside
some (``"ImagecourtesyoftheU.S.GeologicalSurvey"``), so values are converted
per field, never trusted by type.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import Path

import attrs
import numpy as np
from affine import Affine

from gvfuse.errors import MetadataError, excerpt
from gvfuse.formats.containers import Container
from gvfuse.formats.safexml import local_name, parse_xml
from gvfuse.model import Grid

MTL_SUFFIXES = ("_MTL.txt", "_MTL.json", "_MTL.xml")

#: Product identifier LXSS_LLLL_PPPRRR_YYYYMMDD_yyyymmdd_CC_TX (LSDS-1822, "Product Identifier").
PRODUCT_ID_RE = re.compile(
    r"^L(?P<sensor>[COTEM])(?P<satellite>\d{2})_(?P<level>L1TP|L1GT|L1GS|L2SP|L2SR)_"
    r"(?P<path>\d{3})(?P<row>\d{3})_(?P<acquired>\d{8})_(?P<processed>\d{8})_"
    r"(?P<collection>\d{2})_(?P<tier>T1|T2|RT)$"
)

SENSOR_CODES = {"C": "OLI_TIRS", "O": "OLI", "T": "TIRS", "E": "ETM", "M": "MSS"}

# QA_PIXEL bits (Collection 2). Snow (bit 5) is deliberately *not* in the default
# mask: glaciers are snow and ice, and masking them would remove the targets.
QA_FILL = 1 << 0
QA_DILATED_CLOUD = 1 << 1
QA_CIRRUS = 1 << 2
QA_CLOUD = 1 << 3
QA_CLOUD_SHADOW = 1 << 4
QA_SNOW = 1 << 5
DEFAULT_QA_UNUSABLE_BITS = QA_FILL | QA_DILATED_CLOUD | QA_CLOUD | QA_CLOUD_SHADOW

#: Band 8 (panchromatic) DN 0 is the designated fill value (LSDS-1822: fill = 0).
FILL_DN = 0

#: Most band-8 lines or samples an MTL may declare: a WRS-2 scene is about 16000 x 16000 panchromatic pixels
#: (185 km at 15 m, with the rotated footprint's margins); anything far beyond is not a Landsat scene.
MAX_BAND8_SIDE_PX = 100_000


@attrs.frozen
class LandsatProductId:
    """The parts of a Landsat Collection product identifier."""

    product_id: str
    sensor: str  # OLI_TIRS, OLI, ...
    satellite: int  # 8, 9
    level: str  # L1TP, L1GT, L1GS
    wrs_path: int
    wrs_row: int
    acquired_on: dt.date
    processed_on: dt.date
    collection: str  # "02"
    tier: str  # T1, T2, RT

    @property
    def platform(self) -> str:
        return f"landsat-{self.satellite}"


def _date8(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%Y%m%d").date()


def parse_product_id(text: str, source: object = None) -> LandsatProductId:
    """Split ``LC08_L1TP_135039_20230105_20230110_02_T1`` into its parts."""
    match = PRODUCT_ID_RE.match(text.strip())
    if match is None:
        raise MetadataError(f"not a Landsat Collection product id: {excerpt(text)}", source=source,
                            field="LANDSAT_PRODUCT_ID")
    g = match.groupdict()
    try:
        acquired, processed = _date8(g["acquired"]), _date8(g["processed"])
    except ValueError:
        raise MetadataError(f"product id has an impossible date: {excerpt(text)}", source=source,
                            field="LANDSAT_PRODUCT_ID") from None
    return LandsatProductId(
        product_id=text.strip(), sensor=SENSOR_CODES[g["sensor"]], satellite=int(g["satellite"]),
        level=g["level"], wrs_path=int(g["path"]), wrs_row=int(g["row"]), acquired_on=acquired,
        processed_on=processed, collection=g["collection"], tier=g["tier"],
    )


#: How the collection tiers rank when one acquisition is there twice (a Real-Time product and its later tiered
#: one): Tier 1 over Tier 2 over Real-Time (the scene's ``preference``, see ``gvfuse.pipeline.pairing.deduplicate``).
TIER_PREFERENCE = {"T1": 2, "T2": 1, "RT": 0}

MtlGroups = dict[str, dict[str, str]]

_ODL_LINE = re.compile(r"^\s*(?P<key>[A-Z0-9_]+)\s*=\s*(?P<value>.*?)\s*$")


def parse_mtl_odl(text: str, source: object) -> MtlGroups:
    """The ODL ``_MTL.txt``: ``GROUP = X`` ... ``END_GROUP = X`` blocks of ``KEY = value`` lines.

    Nested groups are flattened to their innermost name (the file has one outer
    ``LANDSAT_METADATA_FILE`` group). An unclosed group means a truncated file.
    """
    groups: MtlGroups = {}
    stack: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.strip() == "END":
            continue
        match = _ODL_LINE.match(line)
        if match is None:
            # the line is not quoted: a file that is not an MTL must not be shown
            raise MetadataError(f"line {number} is not 'KEY = value'", source=source,
                                field=f"line {number}")
        key, value = match["key"], match["value"]
        if key == "GROUP":
            stack.append(value)
            groups.setdefault(value, {})
        elif key == "END_GROUP":
            if not stack or stack[-1] != value:
                raise MetadataError(f"END_GROUP = {excerpt(value)} closes no open group (line {number})",
                                    source=source, field="END_GROUP")
            stack.pop()
        else:
            if not stack:
                raise MetadataError(f"{excerpt(key)} outside any GROUP (line {number})", source=source,
                                    field=key[:40])
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            groups[stack[-1]][key] = value
    if stack:
        raise MetadataError(f"truncated: GROUP {excerpt(stack[-1])} is never closed", source=source, field="GROUP")
    if not groups:
        raise MetadataError("no GROUP found: not an MTL file", source=source, field="LANDSAT_METADATA_FILE")
    return groups


def _flatten_groups(tree: Mapping[str, object], groups: MtlGroups) -> None:
    for name, content in tree.items():
        if isinstance(content, Mapping):
            groups[name] = {k: str(v) for k, v in content.items() if not isinstance(v, Mapping)}
            _flatten_groups({k: v for k, v in content.items() if isinstance(v, Mapping)}, groups)


def parse_mtl_json(text: str, source: object) -> MtlGroups:
    """The ``_MTL.json``: ``{"LANDSAT_METADATA_FILE": {GROUP: {KEY: "value"}}}``, all values strings."""
    groups: MtlGroups = {}
    try:
        tree = json.loads(text)
        if not isinstance(tree, dict) or not isinstance(tree.get("LANDSAT_METADATA_FILE"), dict):
            raise MetadataError("no LANDSAT_METADATA_FILE object", source=source, field="LANDSAT_METADATA_FILE")
        _flatten_groups(tree, groups)
    except json.JSONDecodeError as exc:
        raise MetadataError(f"malformed or truncated JSON: {exc}", source=source, field="document") from exc
    except RecursionError:  # arrays or objects nested a thousand deep (parsing or flattening): no MTL is
        raise MetadataError("JSON nested too deep to be an MTL file", source=source, field="document") from None
    return groups


def parse_mtl_xml(data: bytes, source: object) -> MtlGroups:
    """The ``_MTL.xml``: ``<LANDSAT_METADATA_FILE><GROUP><KEY>value</KEY>...``, through defusedxml."""
    root = parse_xml(data, source)
    if local_name(root.tag) != "LANDSAT_METADATA_FILE":
        raise MetadataError(f"root element is <{local_name(root.tag)}>", source=source, field="LANDSAT_METADATA_FILE")
    groups: MtlGroups = {}
    for group in root:
        groups[local_name(group.tag)] = {local_name(item.tag): (item.text or "").strip() for item in group
                                         if len(item) == 0}
    return groups


def parse_mtl(name: str, data: bytes, source: object) -> MtlGroups:
    """Any MTL flavour, chosen by the file name's suffix."""
    if name.endswith("_MTL.xml"):
        return parse_mtl_xml(data, source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetadataError(f"not UTF-8 text: {exc}", source=source, field="document") from exc
    if name.endswith("_MTL.json"):
        return parse_mtl_json(text, source)
    return parse_mtl_odl(text, source)


@attrs.frozen
class LandsatMetadata:
    """What the pipeline needs from an MTL file (LSDS-1822 field names in comments)."""

    product: LandsatProductId
    spacecraft: str  # IMAGE_ATTRIBUTES/SPACECRAFT_ID, e.g. LANDSAT_8
    acquired_at: dt.datetime  # DATE_ACQUIRED + SCENE_CENTER_TIME, UTC
    cloud_cover_percent: float | None  # CLOUD_COVER (-1 = not computed: None)
    utm_zone: int  # PROJECTION_ATTRIBUTES/UTM_ZONE
    band8_file: str  # PRODUCT_CONTENTS/FILE_NAME_BAND_8
    qa_pixel_file: str | None  # PRODUCT_CONTENTS/FILE_NAME_QUALITY_L1_PIXEL
    band8_grid: Grid  # from CORNER_UL_PROJECTION_*_PRODUCT, GRID_CELL_SIZE_PANCHROMATIC, PANCHROMATIC_*
    footprint_lonlat_bounds: tuple[float, float, float, float]  # CORNER_*_LAT/LON_PRODUCT

    @property
    def crs_epsg(self) -> int:
        # Collection 2 Level-1 scenes are always in a northern UTM zone (southern
        # scenes get negative northings), never EPSG:327xx.
        return 32600 + self.utm_zone


def _get(groups: MtlGroups, group: str, key: str, source: object) -> str:
    value = groups.get(group, {}).get(key)
    if value is None or not value.strip():
        raise MetadataError(f"{group}/{key} is missing", source=source, field=key)
    return value.strip()


def _number(groups: MtlGroups, group: str, key: str, source: object) -> float:
    text = _get(groups, group, key, source)
    try:
        return float(text)
    except ValueError:
        raise MetadataError(f"{group}/{key} is not a number: {excerpt(text)}", source=source, field=key) from None


def _integer(groups: MtlGroups, group: str, key: str, source: object, low: int, high: int) -> int:
    """A whole number within ``low``..``high`` (``"7801"`` or ``"7801.0"``; NaN, infinities and fractions refused)."""
    value = _number(groups, group, key, source)
    if not (low <= value <= high and value == int(value)):  # NaN fails the range test before int() sees it
        raise MetadataError(f"{group}/{key} {value} is not a whole number within {low}..{high}", source=source,
                            field=key)
    return int(value)


def _file_name(value: str, key: str, source: object) -> str:
    """A product file named by the MTL: a plain file name beside the MTL, never a path (LSDS-1822)."""
    name = value.strip()
    if not name or "/" in name or "\\" in name or name in (".", "..") or (len(name) > 1 and name[1] == ":"):
        raise MetadataError(f"{key} is not a plain file name beside the MTL: {excerpt(name)}; refused",
                            source=source, field=key)
    return name


def _scene_time(date_text: str, time_text: str, source: object) -> dt.datetime:
    # SCENE_CENTER_TIME is "15:51:14.6213050Z": seven fractional digits, which
    # datetime does not accept; keep microseconds.
    match = re.match(r"^(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?Z?$", time_text.strip('"'))
    if match is None:
        raise MetadataError(f"SCENE_CENTER_TIME is not HH:MM:SS.sssZ: {excerpt(time_text)}", source=source,
                            field="SCENE_CENTER_TIME")
    try:
        day = dt.date.fromisoformat(date_text)
        micro = int((match[4] or "0")[:6].ljust(6, "0"))
        return dt.datetime(day.year, day.month, day.day, int(match[1]), int(match[2]), int(match[3]), micro,
                           tzinfo=dt.timezone.utc)
    except ValueError:
        raise MetadataError(f"bad acquisition date/time {excerpt(date_text)} {excerpt(time_text)}", source=source,
                            field="DATE_ACQUIRED") from None


def metadata_from_mtl(groups: MtlGroups, source: object) -> LandsatMetadata:
    """The fields gvfuse uses, checked; a :class:`MetadataError` names the first missing or bad one."""
    contents, image, projection = "PRODUCT_CONTENTS", "IMAGE_ATTRIBUTES", "PROJECTION_ATTRIBUTES"
    product = parse_product_id(_get(groups, contents, "LANDSAT_PRODUCT_ID", source), source)
    acquired_at = _scene_time(_get(groups, image, "DATE_ACQUIRED", source),
                              _get(groups, image, "SCENE_CENTER_TIME", source), source)
    cloud = _number(groups, image, "CLOUD_COVER", source)
    if cloud != -1 and not 0.0 <= cloud <= 100.0:  # -1: not computed (LSDS-1822); NaN fails both tests
        raise MetadataError(f"{image}/CLOUD_COVER {cloud} is outside 0..100 (or -1, not computed)", source=source,
                            field="CLOUD_COVER")
    cell = _number(groups, projection, "GRID_CELL_SIZE_PANCHROMATIC", source)
    ulx = _number(groups, projection, "CORNER_UL_PROJECTION_X_PRODUCT", source)
    uly = _number(groups, projection, "CORNER_UL_PROJECTION_Y_PRODUCT", source)
    rows = _integer(groups, projection, "PANCHROMATIC_LINES", source, 1, MAX_BAND8_SIDE_PX)
    cols = _integer(groups, projection, "PANCHROMATIC_SAMPLES", source, 1, MAX_BAND8_SIDE_PX)
    lats = [_number(groups, projection, f"CORNER_{c}_LAT_PRODUCT", source) for c in ("UL", "UR", "LL", "LR")]
    lons = [_number(groups, projection, f"CORNER_{c}_LON_PRODUCT", source) for c in ("UL", "UR", "LL", "LR")]
    zone = _integer(groups, projection, "UTM_ZONE", source, 1, 60)
    qa = groups.get(contents, {}).get("FILE_NAME_QUALITY_L1_PIXEL")
    try:
        # MTL corner coordinates are pixel *centres*: the grid's outer edge is half a pixel further out.
        grid = Grid(32600 + zone, Affine(cell, 0.0, ulx - cell / 2, 0.0, -cell, uly + cell / 2), (rows, cols))
    except ValueError as exc:
        raise MetadataError(f"unusable band 8 geometry: {exc}", source=source, field="PROJECTION_ATTRIBUTES") from None
    return LandsatMetadata(
        product=product,
        spacecraft=_get(groups, image, "SPACECRAFT_ID", source),
        acquired_at=acquired_at,
        cloud_cover_percent=None if cloud == -1 else cloud,
        utm_zone=zone,
        band8_file=_file_name(_get(groups, contents, "FILE_NAME_BAND_8", source), "FILE_NAME_BAND_8", source),
        qa_pixel_file=_file_name(qa, "FILE_NAME_QUALITY_L1_PIXEL", source) if qa else None,
        band8_grid=grid,
        footprint_lonlat_bounds=(min(lons), min(lats), max(lons), max(lats)),
    )


def find_mtl_member(container: Container) -> str | None:
    """The container's MTL file: ``.txt`` preferred, then ``.json``, then ``.xml``; None if there is none."""
    members = container.members()
    for suffix in MTL_SUFFIXES:
        found = sorted(m for m in members if m.endswith(suffix) and PRODUCT_ID_RE.match(Path(m).name[: -len(suffix)]))
        if found:
            return found[0]
    return None


def member_beside(mtl_member: str, file_name: str) -> str:
    """A product file's member path: in the MTL's folder (archives may hold a top folder)."""
    parent = mtl_member.rpartition("/")[0]
    return f"{parent}/{file_name}" if parent else file_name


def read_landsat(container: Container, mtl_member: str | None = None) -> tuple[LandsatMetadata, str]:
    """Parse the container's MTL (or the given member); returns the metadata and the MTL member used."""
    member = mtl_member or find_mtl_member(container)
    if member is None:
        raise MetadataError("no <product id>_MTL.txt/.json/.xml found", source=container.path,
                            field="FILE_NAME_METADATA_ODL")
    where = container.describe(member)
    return metadata_from_mtl(parse_mtl(member, container.read_bytes(member), where), where), member


def qa_pixel_unusable(qa: np.ndarray, bits: int = DEFAULT_QA_UNUSABLE_BITS) -> np.ndarray:
    """True where any of ``bits`` is set in ``QA_PIXEL`` (default: fill, dilated cloud, cloud, cloud shadow)."""
    return (np.asarray(qa).astype(np.uint16) & np.uint16(bits)) != 0
