"""Plain GeoTIFFs: header facts without pixels, and acquisition dates from file names.

Used by the generic GeoTIFF reader, the UAV reader and the terrain-corrected
Sentinel-1 reader. Opening a GeoTIFF with rasterio reads its header (tags,
CRS, transform) only; no pixel is read here.

Dates in file names: ``YYYYMMDDTHHMMSS`` (taken as UTC), ``YYYYMMDD``,
``YYYY-MM-DD`` and ``YYYY_MM_DD`` (midnight UTC), bounded by non-digits so
that ``135039`` (a WRS path/row) or a 12-digit number is not mistaken for a
date. The first plausible date (1972–2100) wins.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path

import attrs
import rasterio
from rasterio.errors import RasterioIOError

from gvfuse.errors import MetadataError
from gvfuse.model import Grid

GEOTIFF_SUFFIXES = (".tif", ".tiff", ".gtiff")

_DATE_PATTERNS = (
    re.compile(r"(?<!\d)(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})T(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2})(?!\d)"),
    re.compile(r"(?<!\d)(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})(?!\d)"),
    re.compile(r"(?<!\d)(?P<y>\d{4})[-_](?P<m>\d{2})[-_](?P<d>\d{2})(?!\d)"),
)


def date_from_name(name: str) -> dt.datetime | None:
    """The first plausible acquisition date/time in a file name, in UTC, or None."""
    stem = Path(name).name
    for pattern in _DATE_PATTERNS:
        for match in pattern.finditer(stem):
            g = {k: int(v) for k, v in match.groupdict().items() if v is not None}
            if not 1972 <= g["y"] <= 2100:
                continue
            try:
                return dt.datetime(g["y"], g["m"], g["d"], g.get("H", 0), g.get("M", 0), g.get("S", 0),
                                   tzinfo=dt.timezone.utc)
            except ValueError:
                continue
    return None


def is_geotiff_name(path: Path) -> bool:
    return path.name.lower().endswith(GEOTIFF_SUFFIXES)


@attrs.frozen
class GeoTiffHeader:
    """What a GeoTIFF header says: grid, band count, data type, nodata and tags."""

    grid: Grid | None  # None when the file has no CRS or only GCPs
    count: int
    dtype: str
    nodata: float | None
    tags: Mapping[str, str]
    has_gcps: bool


def read_header(path: Path | str) -> GeoTiffHeader:
    """Open ``path`` for its header only; a :class:`MetadataError` if GDAL cannot read it."""
    try:
        with rasterio.open(path) as src:
            tags = dict(src.tags())
            # TIFF baseline tags (DateTime, Software, ...) are GDAL metadata too;
            # EXIF ones live in their own domain when present.
            try:
                tags.update({k: v for k, v in src.tags(ns="EXIF").items()})
            except Exception:
                pass
            grid = None
            if src.crs is not None and not src.transform.is_identity:
                grid = Grid(src.crs, src.transform, (src.height, src.width))
            return GeoTiffHeader(grid=grid, count=src.count, dtype=src.dtypes[0], nodata=src.nodata,
                                 tags=tags, has_gcps=bool(src.gcps[0]))
    except RasterioIOError as exc:
        raise MetadataError(f"cannot read GeoTIFF header: {exc}", source=path, field="header") from exc
    except ValueError as exc:
        raise MetadataError(f"unusable GeoTIFF geometry: {exc}", source=path, field="transform") from exc


def lonlat_bounds(grid: Grid) -> tuple[float, float, float, float]:
    """A grid's extent as (west, south, east, north) degrees."""
    from rasterio.warp import transform_bounds

    return tuple(transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21))
