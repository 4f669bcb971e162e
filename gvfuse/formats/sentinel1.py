"""Sentinel-1 C-SAR GRD products (IW ``.SAFE`` folder or ``.zip``) and terrain-corrected Sentinel-1 GeoTIFFs.

References:

* ESA *Sentinel-1 Product Specification* (S1-RS-MDA-52-7441, v3.x): SAFE layout
  (``manifest.safe``, ``annotation/*.xml``, ``measurement/*.tiff``), product naming
  ``MMM_BB_TTTR_LFPP_YYYYMMDDTHHMMSS_YYYYMMDDTHHMMSS_OOOOOO_DDDDDD_CCCC``,
  manifest elements (``safe:platform``, ``s1:pass``, ``safe:relativeOrbitNumber``,
  ``s1sarl1:missionDataTakeID``, ``s1sarl1:transmitterReceiverPolarisation``) and the
  product annotation (``adsHeader``, ``productInformation/pass``, ``imageInformation``).
  Annotation and manifest times carry no zone: they are UTC.
* GRD measurement GeoTIFFs are in ground-range radar geometry, georeferenced by
  the geolocation grid as GCPs (EPSG:4326) in the TIFF; GDAL exposes them.
* Relative orbit from the absolute orbit (ESA Sentinel-1 User Guide, "Revisit and
  coverage", 175 orbits per 12-day cycle): S1A ``(abs - 73) % 175 + 1``,
  S1B ``(abs - 27) % 175 + 1``; used only for GeoTIFFs whose names give the
  absolute orbit (SAFE manifests state the relative orbit).
* Terrain-corrected GeoTIFF names: a full ESA product name anywhere in the name
  (SNAP keeps it: ``..._Orb_Cal_TC.tif``, ``Sigma0_VV_...``), or the ASF HyP3 RTC
  pattern ``S1A_IW_20230105T234512_DVP_RTC30_G_gpuned_1A2B_VV.tif``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TypedDict

import attrs

from gvfuse.errors import MetadataError, excerpt
from gvfuse.formats.containers import Container
from gvfuse.formats.safexml import find_named, iter_named, local_name, optional_text, parse_xml, required_text

PRODUCT_NAME_RE = re.compile(
    r"(?P<mission>S1[A-D])_(?P<mode>IW|EW|SM|WV|S[1-6])_(?P<type>GRD[HMF]|SLC_|RAW_|OCN_)_"
    r"(?P<level>[012])(?P<klass>[SA])(?P<pol>SH|SV|DH|DV|HH|VV|HV|VH)_(?P<start>\d{8}T\d{6})_"
    r"(?P<stop>\d{8}T\d{6})_(?P<orbit>\d{6})_(?P<datatake>[0-9A-F]{6})_(?P<uid>[0-9A-F]{4})"
)
HYP3_NAME_RE = re.compile(
    r"(?P<mission>S1[A-D])_(?P<mode>IW|EW|SM)_(?P<start>\d{8}T\d{6})_(?P<pols>[DS][VH][PRO])_"
    r"RTC(?P<pixel>\d+)_[A-Z]_[a-z]+_(?P<uid>[0-9A-F]{4})"
)
POLARISATION_TOKEN_RE = re.compile(r"(?<![A-Za-z])(VV|VH|HH|HV)(?![A-Za-z])")
ORBIT_OFFSET = {"S1A": 73, "S1B": 27}
ORBITS_PER_CYCLE = 175


def relative_orbit_from_absolute(mission: str, absolute_orbit: int) -> int | None:
    """The relative orbit (track, 1..175) of a Sentinel-1A/B absolute orbit; None for other units."""
    offset = ORBIT_OFFSET.get(mission.upper())
    return None if offset is None else (absolute_orbit - offset) % ORBITS_PER_CYCLE + 1


def _utc(text: str, source: object, field: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise MetadataError(f"not an ISO 8601 time: {excerpt(text)}", source=source, field=field) from None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def _compact_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=dt.timezone.utc)


@attrs.frozen
class Sentinel1Metadata:
    """What pairing and loading need from a Sentinel-1 GRD SAFE product."""

    product_name: str
    platform: str  # sentinel-1a
    mode: str  # IW
    product_type: str  # GRD
    start_time: dt.datetime
    stop_time: dt.datetime
    pass_direction: str  # ASCENDING / DESCENDING
    polarisations: tuple[str, ...]  # ("VV", "VH")
    relative_orbit: int
    absolute_orbit: int | None
    mission_data_take_id: int | None
    footprint_lonlat_bounds: tuple[float, float, float, float] | None
    pixel_spacing_m: float | None  # from the annotation (rangePixelSpacing)
    measurements: Mapping[str, str]  # polarisation -> measurement TIFF member
    annotations: Mapping[str, str]  # polarisation -> annotation XML member


class ManifestFields(TypedDict):
    """What :func:`parse_manifest` reads from ``manifest.safe``."""

    platform: str
    mode: str
    product_type: str
    start_time: dt.datetime
    stop_time: dt.datetime
    pass_direction: str
    polarisations: tuple[str, ...]
    relative_orbit: int
    absolute_orbit: int | None
    mission_data_take_id: int | None
    footprint_lonlat_bounds: tuple[float, float, float, float] | None


class AnnotationFields(TypedDict):
    """What :func:`parse_annotation` reads from a product annotation."""

    mission: str
    polarisation: str
    start_time: dt.datetime
    stop_time: dt.datetime
    pass_direction: str
    pixel_spacing_m: float | None


def parse_manifest(data: bytes, source: object) -> ManifestFields:
    """Fields of ``manifest.safe`` (XFDU) as a typed dict."""
    root = parse_xml(data, source)
    if local_name(root.tag) != "XFDU":
        raise MetadataError(f"root element <{local_name(root.tag)}> is not an XFDU manifest", source=source,
                            field="XFDU")
    platform = find_named(root, "platform")
    if platform is None:
        raise MetadataError("<safe:platform> is missing", source=source, field="platform")
    family = required_text(platform, "familyName", source, field="platform/familyName")
    number = required_text(platform, "number", source, field="platform/number")
    relative = next((e for e in iter_named(root, "relativeOrbitNumber") if e.get("type", "start") == "start"), None)
    absolute = next((e for e in iter_named(root, "orbitNumber") if e.get("type", "start") == "start"), None)
    absolute_text = (absolute.text or "").strip() if absolute is not None else ""
    try:
        relative_orbit = int((relative.text or "").strip()) if relative is not None else None
    except ValueError:
        relative_orbit = None
    if relative_orbit is None:
        raise MetadataError("<safe:relativeOrbitNumber> is missing or not a number", source=source,
                            field="relativeOrbitNumber")
    datatake = optional_text(root, "missionDataTakeID")
    footprint: tuple[float, float, float, float] | None = None
    coordinates = optional_text(root, "coordinates")
    if coordinates:
        try:
            pairs = [tuple(float(v) for v in p.split(",")) for p in coordinates.split()]
            lats, lons = [p[0] for p in pairs], [p[1] for p in pairs]
            if max(lons) - min(lons) <= 180.0:  # a box across the antimeridian would span the globe
                footprint = (min(lons), min(lats), max(lons), max(lats))
        except (ValueError, IndexError):
            raise MetadataError("footprint coordinates are not 'lat,lon' pairs", source=source,
                                field="gml:coordinates") from None
    pass_direction = required_text(root, "pass", source).upper()
    if pass_direction not in ("ASCENDING", "DESCENDING"):
        raise MetadataError(f"pass is {excerpt(pass_direction)}", source=source, field="pass")
    return {
        "platform": f"{family}{number}".lower().replace("sentinel-1", "sentinel-1"),
        "mode": required_text(root, "mode", source),
        "product_type": required_text(root, "productType", source),
        "start_time": _utc(required_text(root, "startTime", source), source, "startTime"),
        "stop_time": _utc(required_text(root, "stopTime", source), source, "stopTime"),
        "pass_direction": pass_direction,
        "polarisations": tuple((e.text or "").strip().upper()
                               for e in iter_named(root, "transmitterReceiverPolarisation")),
        "relative_orbit": relative_orbit,
        "absolute_orbit": int(absolute_text) if absolute_text.isdigit() else None,
        "mission_data_take_id": int(datatake) if datatake and datatake.isdigit() else None,
        "footprint_lonlat_bounds": footprint,
    }


def parse_annotation(data: bytes, source: object) -> AnnotationFields:
    """Fields of a product annotation ``annotation/s1?-iw-grd-<pol>-...xml``."""
    root = parse_xml(data, source)
    if local_name(root.tag) != "product":
        raise MetadataError(f"root element <{local_name(root.tag)}> is not <product>", source=source, field="product")
    spacing = optional_text(root, "rangePixelSpacing")
    return {
        "mission": required_text(root, "missionId", source),
        "polarisation": required_text(root, "polarisation", source).upper(),
        "start_time": _utc(required_text(root, "startTime", source), source, "startTime"),
        "stop_time": _utc(required_text(root, "stopTime", source), source, "stopTime"),
        "pass_direction": required_text(root, "pass", source).upper(),
        "pixel_spacing_m": float(spacing) if spacing else None,
    }


def _safe_root(container: Container) -> tuple[str, str]:
    """(member of manifest.safe, prefix of the SAFE root inside the container)."""
    manifests = [m for m in container.members() if m.split("/")[-1] == "manifest.safe" and m.count("/") <= 1]
    if not manifests:
        raise MetadataError("manifest.safe is missing", source=container.path, field="manifest.safe")
    root = manifests[0].rpartition("/")[0]
    return manifests[0], (f"{root}/" if root else "")


def read_sentinel1(container: Container) -> Sentinel1Metadata:
    """Parse manifest and annotations of a GRD SAFE and map polarisations to measurement TIFFs."""
    manifest_member, prefix = _safe_root(container)
    fields = parse_manifest(container.read_bytes(manifest_member), container.describe(manifest_member))
    members = container.members()
    annotations: dict[str, str] = {}
    measurements: dict[str, str] = {}
    pixel_spacing: float | None = None
    for member in members:
        if member.startswith(prefix + "annotation/") and member.count("/") == prefix.count("/") + 1 \
                and member.endswith(".xml"):
            info = parse_annotation(container.read_bytes(member), container.describe(member))
            annotations[str(info["polarisation"])] = member
            pixel_spacing = pixel_spacing or info["pixel_spacing_m"]
        elif member.startswith(prefix + "measurement/") and member.lower().endswith((".tiff", ".tif")):
            token = POLARISATION_TOKEN_RE.search(Path(member).name.upper().replace("-", "_"))
            if token:
                measurements[token[1]] = member
    if not annotations:
        raise MetadataError("no annotation/*.xml", source=container.path, field="annotation")
    if not measurements:
        raise MetadataError("no measurement/*.tiff", source=container.path, field="measurement")
    name = Path(prefix.rstrip("/") or container.path.name).name
    return Sentinel1Metadata(
        product_name=name.removesuffix(".SAFE").removesuffix(".zip"),
        platform=str(fields["platform"]), mode=str(fields["mode"]), product_type=str(fields["product_type"]),
        start_time=fields["start_time"], stop_time=fields["stop_time"],
        pass_direction=str(fields["pass_direction"]), polarisations=tuple(fields["polarisations"]),
        relative_orbit=int(fields["relative_orbit"]), absolute_orbit=fields["absolute_orbit"],
        mission_data_take_id=fields["mission_data_take_id"],
        footprint_lonlat_bounds=fields["footprint_lonlat_bounds"], pixel_spacing_m=pixel_spacing,
        measurements=measurements, annotations=annotations,
    )


@attrs.frozen
class TerrainCorrectedName:
    """What a terrain-corrected Sentinel-1 GeoTIFF's name (or tags) says."""

    platform: str
    start_time: dt.datetime
    polarisation: str | None
    absolute_orbit: int | None
    relative_orbit: int | None
    product_name: str


def parse_terrain_corrected_name(name: str, tags: Mapping[str, str] | None = None) -> TerrainCorrectedName | None:
    """Date, platform, orbit and polarisation of a terrain-corrected S1 GeoTIFF, or None if not recognised.

    The polarisation is the first ``VV``/``VH``/``HH``/``HV`` token after the
    product name (``..._VV.tif``, ``Sigma0_VV_...``), else a ``POLARISATION``/
    ``POLARIZATION`` tag, else the single polarisation of a ``1SSV``/``1SSH`` product.
    """
    stem = Path(name).name
    esa = PRODUCT_NAME_RE.search(stem)
    hyp3 = None if esa else HYP3_NAME_RE.search(stem)
    match = esa or hyp3
    if match is None:
        return None
    mission = match["mission"]
    rest = stem[: match.start()] + " " + stem[match.end():]
    token = POLARISATION_TOKEN_RE.search(rest)
    polarisation = token[1] if token else None
    if polarisation is None and tags:
        for key in ("POLARISATION", "POLARIZATION", "polarisation", "polarization"):
            if tags.get(key, "").upper() in ("VV", "VH", "HH", "HV"):
                polarisation = tags[key].upper()
                break
    absolute = None
    if esa:
        absolute = int(esa["orbit"])
        if polarisation is None and esa["pol"] in ("SV", "SH"):
            polarisation = "VV" if esa["pol"] == "SV" else "HH"
    return TerrainCorrectedName(
        platform=f"sentinel-1{mission[-1].lower()}", start_time=_compact_time(match["start"]),
        polarisation=polarisation, absolute_orbit=absolute,
        relative_orbit=relative_orbit_from_absolute(mission, absolute) if absolute is not None else None,
        product_name=match.group(0),
    )
