"""Write synthetic scenes exactly as the providers ship them, from pixel arrays on a :class:`~gvfuse.model.Grid`.

One implementation of the providers' folder layouts, file names and metadata,
shared by the reader tests (``tests/formats/scene_builders.py``) and the
``gvfuse demo`` command, which turns the synthetic images of
:mod:`gvfuse.testing` into a year of "downloads". Every name, every metadata
value and every processing time is derived from the parameters (never the
clock), so the same call writes byte-identical metadata and pixels.

Formats and the documents they follow (structure as in the real samples under
``../shared/data/metadata-samples/``; all values are our own):

* **Landsat 8/9 OLI Collection 2 Level-1** (:func:`write_landsat_scene`): USGS
  LSDS-1822, *Landsat 8-9 OLI/TIRS Collection 2 Level 1 Data Format Control
  Book*: product identifier, ``<ID>_MTL.txt`` (ODL) / ``.json`` / ``.xml``,
  ``<ID>_B8.TIF`` (uint16, fill 0, Cloud-Optimized GeoTIFF), ``<ID>_QA_PIXEL.TIF``
  (bit layout of USGS *Landsat Collection 2 Quality Assessment Bands*), and
  the USGS ``<ID>.tar`` bundle.
* **Sentinel-2 MSI L1C/L2A** (:func:`write_sentinel2_scene`): ESA
  S2-PDGS-TAS-DI-PSD (Products Specification Document v14.x): product naming,
  the ``.SAFE`` layout, ``manifest.safe``, ``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml``,
  ``GRANULE/<id>/MTD_TL.xml``, JPEG 2000 band files; ESA *Processing baseline
  04.00* note (radiometric offset −1000); Sen2Cor scene classification (SCL).
* **Sentinel-1 C-SAR** (:func:`write_sentinel1_grd_safe`,
  :func:`write_sentinel1_rtc`): ESA S1-RS-MDA-52-7441 (Sentinel-1 Product
  Specification): product naming, GRD ``.SAFE`` (manifest, annotation,
  measurement TIFF with the geolocation grid as GCPs); terrain-corrected
  GeoTIFFs named the way ESA SNAP names them (the ESA product name followed by
  the applied operators, ``_Orb_TC``).
* **UAV orthomosaics** (:func:`write_uav_orthomosaic`): an RGBA uint8 GeoTIFF
  as DJI Terra / Pix4D / Metashape export it, with the JSON sidecar that
  :mod:`gvfuse.formats.uav` documents.

Pixel conventions: the writers take what the matching reader's ``load``
returns, so a scene written and loaded gives its pixels back (NaN = no data):
Landsat band 8 digital numbers, Sentinel-2 band 8 reflectance, Sentinel-1
terrain-corrected linear amplitude, UAV grey values 0-255.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.warp import transform as transform_points

from gvfuse.formats import landsat as landsat_format
from gvfuse.formats import sentinel1 as sentinel1_format
from gvfuse.io.raster import write_bands
from gvfuse.model import Grid

__all__ = [
    "LANDSAT_REFLECTANCE_ADD",
    "LANDSAT_REFLECTANCE_MULT",
    "format_mtl",
    "landsat_mtl_groups",
    "landsat_product_id",
    "landsat_qa_pixel",
    "mtl_json",
    "mtl_odl",
    "mtl_xml",
    "sentinel1_absolute_orbit",
    "sentinel1_product_name",
    "sentinel2_manifest_xml",
    "sentinel2_product_name",
    "sentinel2_product_xml",
    "sentinel2_scl",
    "sentinel2_tile_xml",
    "tar_folder",
    "write_landsat_scene",
    "write_sentinel1_grd_safe",
    "write_sentinel1_rtc",
    "write_sentinel2_scene",
    "write_uav_orthomosaic",
    "zip_safe",
]

# --------------------------------------------------------------------------- shared helpers


def _utc(when: dt.datetime) -> dt.datetime:
    """``when`` in UTC; a naive datetime is taken as UTC."""
    return when.replace(tzinfo=dt.timezone.utc) if when.tzinfo is None else when.astimezone(dt.timezone.utc)


def _check_on_grid(name: str, array: np.ndarray | None, grid: Grid) -> None:
    if array is not None and np.shape(array) != grid.shape:
        raise ValueError(f"{name} has shape {np.shape(array)}, the grid has {grid.shape}")


def _north_up(grid: Grid, pixel_size_m: float, what: str) -> None:
    t = grid.transform
    if t.b != 0 or t.d != 0 or not math.isclose(t.a, pixel_size_m) or not math.isclose(t.e, -pixel_size_m):
        raise ValueError(f"{what} needs a north-up {pixel_size_m:g} m grid, got {tuple(t)[:6]}")


def _utm_zone(grid: Grid, what: str, south_allowed: bool = True) -> tuple[int, bool]:
    """(zone, southern) of a WGS 84 / UTM grid."""
    epsg = grid.crs.to_epsg() or 0
    if 32601 <= epsg <= 32660:
        return epsg - 32600, False
    if south_allowed and 32701 <= epsg <= 32760:
        return epsg - 32700, True
    raise ValueError(f"{what} needs a WGS 84 / UTM grid (EPSG:326zz{'/327zz' if south_allowed else ''}), "
                     f"got {grid.crs}")


def _pixel_centre_corners_lonlat(grid: Grid) -> dict[str, tuple[float, float]]:
    """Longitude/latitude of the UL, UR, LL, LR pixel *centres*."""
    cols = [0.5, grid.cols - 0.5, 0.5, grid.cols - 0.5]
    rows = [0.5, 0.5, grid.rows - 0.5, grid.rows - 0.5]
    # affine's stubs apply a transform to floats only, not to arrays.
    xs: np.ndarray
    ys: np.ndarray
    xs, ys = grid.transform @ (np.array(cols), np.array(rows))  # type: ignore[operator, assignment]
    lons, lats = transform_points(grid.crs, "EPSG:4326", list(xs), list(ys))
    return {c: (lon, lat) for c, lon, lat in zip(("UL", "UR", "LL", "LR"), lons, lats)}


def _outer_corners_lonlat(grid: Grid) -> list[tuple[float, float]]:
    """Longitude/latitude of the grid's outer corners, clockwise from the upper left."""
    cols, rows = np.array([0, grid.cols, grid.cols, 0]), np.array([0, 0, grid.rows, grid.rows])
    # affine's stubs apply a transform to floats only, not to arrays.
    xs: np.ndarray
    ys: np.ndarray
    xs, ys = grid.transform @ (cols, rows)  # type: ignore[operator, assignment]
    lons, lats = transform_points(grid.crs, "EPSG:4326", list(xs), list(ys))
    return list(zip(lons, lats))


def _hex_id(text: str, digits: int) -> str:
    """A deterministic upper-case hex id of ``digits`` digits (CRC-32 of ``text``)."""
    return f"{zlib.crc32(text.encode()) & ((1 << (4 * digits)) - 1):0{digits}X}"


def _quantize(values: np.ndarray, low: int, high: int) -> np.ndarray:
    """Round finite values into ``[low, high]``; NaN becomes 0 (the fill/no-data value of every format here)."""
    values = np.asarray(values, dtype="float64")
    finite = np.isfinite(values)
    out = np.zeros(values.shape, dtype="float64")
    out[finite] = np.clip(np.round(values[finite]), low, high)
    return out


def _block_reduce(mask: np.ndarray, factor: int, how: str) -> np.ndarray:
    """``any``/``all`` of each ``factor`` × ``factor`` block (a partial block at the edge counts as it is)."""
    rows, cols = mask.shape
    out_rows, out_cols = -(-rows // factor), -(-cols // factor)
    padded = np.full((out_rows * factor, out_cols * factor), how == "all", dtype=bool)
    padded[:rows, :cols] = mask
    blocks = padded.reshape(out_rows, factor, out_cols, factor)
    reduced = blocks.any(axis=(1, 3)) if how == "any" else blocks.all(axis=(1, 3))
    assert isinstance(reduced, np.ndarray)  # numpy's stubs cannot tell that two of four axes are left
    return reduced


def _dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Binary dilation by a (2·pixels+1)² square."""
    out = mask.copy()
    for _ in range(pixels):
        grown = out.copy()
        grown[1:, :] |= out[:-1, :]
        grown[:-1, :] |= out[1:, :]
        grown[:, 1:] |= grown[:, :-1].copy()
        grown[:, :-1] |= grown[:, 1:].copy()
        out = grown
    return out


def _write_gtiff(path: Path, bands: np.ndarray, grid: Grid, *, driver: str = "GTiff", nodata: float | None = None,
                 colorinterp: Sequence[ColorInterp] | None = None, tags: Mapping[str, str] | None = None,
                 **options: object) -> None:
    """One (count, rows, cols) array as a georeferenced raster (GTiff or JP2OpenJPEG)."""
    bands = bands if bands.ndim == 3 else bands[None]
    path.parent.mkdir(parents=True, exist_ok=True)
    if driver == "JP2OpenJPEG":
        options.update(QUALITY=100, REVERSIBLE="YES")  # lossless, as ESA's band files are
    with rasterio.open(path, "w", driver=driver, width=grid.cols, height=grid.rows, count=bands.shape[0],
                       dtype=bands.dtype, crs=grid.crs, transform=grid.transform, nodata=nodata, **options) as dst:
        dst.write(bands)
        if colorinterp is not None:
            dst.colorinterp = colorinterp
        if tags:
            dst.update_tags(**tags)


def _new_folder(folder: Path) -> Path:
    if folder.exists():
        raise FileExistsError(f"{folder} exists; refusing to overwrite it")
    folder.mkdir(parents=True)
    return folder


def tar_folder(folder: Path, tar_path: Path | None = None, *, remove: bool = True) -> Path:
    """The USGS bundle: ``<product id>.tar`` with the scene's files at the archive root (no folder)."""
    tar_path = tar_path or folder.with_name(folder.name + ".tar")
    with tarfile.open(tar_path, "w", format=tarfile.USTAR_FORMAT) as archive:
        for file in sorted(folder.iterdir()):
            info = archive.gettarinfo(file, arcname=file.name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""  # deterministic headers
            with file.open("rb") as handle:
                archive.addfile(info, handle)
    if remove:
        shutil.rmtree(folder)
    return tar_path


def zip_safe(folder: Path, zip_path: Path | None = None, *, remove: bool = False) -> Path:
    """Zip a ``.SAFE`` folder as the Copernicus hubs deliver it: ``X.SAFE/`` at the archive root, stored."""
    zip_path = zip_path or folder.parent / (folder.name.removesuffix(".SAFE") + ".zip")
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                info = zipfile.ZipInfo(f"{folder.name}/{file.relative_to(folder).as_posix()}",
                                       date_time=(1980, 1, 1, 0, 0, 0))
                archive.writestr(info, file.read_bytes())
    if remove:
        shutil.rmtree(folder)
    return zip_path


# --------------------------------------------------------------------------- Landsat 8/9 C2L1

#: Collection 2 Level-1 reflectance rescaling, the same for every reflective band
#: (LSDS-1822): reflectance = DN · 2.0E-05 − 0.1 (before the sun-elevation correction).
LANDSAT_REFLECTANCE_MULT = 2.0e-5
LANDSAT_REFLECTANCE_ADD = -0.1
#: Band 8 radiance rescaling written to the MTL (our own plausible values).
LANDSAT_B8_RADIANCE_MULT = 1.1015e-2
LANDSAT_B8_RADIANCE_ADD = -55.07661
#: Valid band 8 digital numbers (QUANTIZE_CAL_MIN/MAX_BAND_8); 0 is fill.
LANDSAT_DN_RANGE = (1, 65535)
#: Days from acquisition to processing when ``processed_on`` is not given (typical of Tier 1).
LANDSAT_PROCESSING_DELAY_DAYS = 9

# QA_PIXEL bits and 2-bit confidences (USGS Collection 2 Quality Assessment Bands).
_QA_CLEAR = 1 << 6
_QA_CONF_LOW = {"cloud": 1 << 8, "shadow": 1 << 10, "snow": 1 << 12, "cirrus": 1 << 14}
_QA_CONF_HIGH = {"cloud": 3 << 8, "shadow": 3 << 10}


def landsat_product_id(spacecraft: str, wrs_path: int, wrs_row: int, acquired_on: dt.date, processed_on: dt.date,
                       *, level: str = "L1TP", tier: str = "T1") -> str:
    """``LC08_L1TP_PPPRRR_YYYYMMDD_yyyymmdd_02_T1`` (LSDS-1822, "Product Identifier")."""
    number = {"LANDSAT_8": 8, "LANDSAT_9": 9}.get(spacecraft)
    if number is None:
        raise ValueError(f"spacecraft must be LANDSAT_8 or LANDSAT_9, got {spacecraft!r}")
    if not (1 <= wrs_path <= 233 and 1 <= wrs_row <= 248):
        raise ValueError(f"WRS-2 path/row out of range: {wrs_path}/{wrs_row}")
    return (f"LC{number:02d}_{level}_{wrs_path:03d}{wrs_row:03d}_{acquired_on:%Y%m%d}_{processed_on:%Y%m%d}"
            f"_02_{tier}")


def landsat_mtl_groups(product_id: str, *, grid: Grid, acquired_at: dt.datetime, cloud_cover_percent: float,
                       qa_pixel_shape: tuple[int, int] | None = None) -> dict[str, dict[str, str]]:
    """The MTL groups of a C2L1 scene whose band 8 lies on ``grid`` (LSDS-1822 field names and value formats).

    Values are strings, as :mod:`gvfuse.formats.landsat` parses every flavour.
    ``CORNER_*_PROJECTION_*_PRODUCT`` are the band 8 pixel *centres* (the reader
    adds the half pixel back); the lat/lon corners are the same points in WGS 84.
    """
    parts = landsat_format.parse_product_id(product_id)
    zone, _ = _utm_zone(grid, "a Landsat scene", south_allowed=False)
    _north_up(grid, 15.0, "Landsat band 8")
    when = _utc(acquired_at)
    rows, cols = grid.shape
    qa_rows, qa_cols = qa_pixel_shape or (-(-rows // 2), -(-cols // 2))
    t = grid.transform
    ulx, uly = t.c + 7.5, t.f - 7.5
    lrx, lry = ulx + (cols - 1) * 15.0, uly - (rows - 1) * 15.0
    corners = _pixel_centre_corners_lonlat(grid)
    # Generated at 08:00 UTC on the processing date, but never before the acquisition (+ 4 h for RT products).
    processed = max(dt.datetime.combine(parts.processed_on, dt.time(8, 0), tzinfo=dt.timezone.utc),
                    when + dt.timedelta(hours=4))
    scene_time = f"{when:%H:%M:%S}.{when.microsecond:06d}0Z"  # seven fractional digits, as USGS writes
    spacecraft = f"LANDSAT_{parts.satellite}"
    dn_min, dn_max = LANDSAT_DN_RANGE
    refl = lambda dn: LANDSAT_REFLECTANCE_MULT * dn + LANDSAT_REFLECTANCE_ADD  # noqa: E731
    rad = lambda dn: LANDSAT_B8_RADIANCE_MULT * dn + LANDSAT_B8_RADIANCE_ADD  # noqa: E731
    return {
        "PRODUCT_CONTENTS": {
            "ORIGIN": "Image courtesy of the U.S. Geological Survey",
            "DIGITAL_OBJECT_IDENTIFIER": "https://doi.org/10.5066/P975CC9B",
            "LANDSAT_PRODUCT_ID": product_id, "PROCESSING_LEVEL": parts.level, "COLLECTION_NUMBER": "02",
            "COLLECTION_CATEGORY": parts.tier, "OUTPUT_FORMAT": "GEOTIFF",
            "FILE_NAME_BAND_8": f"{product_id}_B8.TIF",
            "FILE_NAME_QUALITY_L1_PIXEL": f"{product_id}_QA_PIXEL.TIF",
            "FILE_NAME_METADATA_ODL": f"{product_id}_MTL.txt", "FILE_NAME_METADATA_XML": f"{product_id}_MTL.xml",
            "DATA_TYPE_BAND_8": "UINT16", "DATA_TYPE_QUALITY_L1_PIXEL": "UINT16",
        },
        "IMAGE_ATTRIBUTES": {
            "SPACECRAFT_ID": spacecraft, "SENSOR_ID": "OLI_TIRS", "WRS_TYPE": "2",
            "WRS_PATH": str(parts.wrs_path), "WRS_ROW": str(parts.wrs_row), "NADIR_OFFNADIR": "NADIR",
            "TARGET_WRS_PATH": str(parts.wrs_path), "TARGET_WRS_ROW": str(parts.wrs_row),
            "DATE_ACQUIRED": when.date().isoformat(), "SCENE_CENTER_TIME": scene_time, "STATION_ID": "LGN",
            "CLOUD_COVER": f"{cloud_cover_percent:.2f}", "CLOUD_COVER_LAND": f"{cloud_cover_percent:.2f}",
            "IMAGE_QUALITY_OLI": "9", "SATURATION_BAND_8": "N",
        },
        "PROJECTION_ATTRIBUTES": {
            "MAP_PROJECTION": "UTM", "DATUM": "WGS84", "ELLIPSOID": "WGS84", "UTM_ZONE": str(zone),
            "GRID_CELL_SIZE_PANCHROMATIC": "15.00", "GRID_CELL_SIZE_REFLECTIVE": "30.00",
            "GRID_CELL_SIZE_THERMAL": "30.00", "PANCHROMATIC_LINES": str(rows), "PANCHROMATIC_SAMPLES": str(cols),
            "REFLECTIVE_LINES": str(qa_rows), "REFLECTIVE_SAMPLES": str(qa_cols),
            "THERMAL_LINES": str(qa_rows), "THERMAL_SAMPLES": str(qa_cols), "ORIENTATION": "NORTH_UP",
            **{f"CORNER_{c}_{axis}_PRODUCT": f"{corners[c][i]:.5f}"
               for c in ("UL", "UR", "LL", "LR") for axis, i in (("LAT", 1), ("LON", 0))},
            "CORNER_UL_PROJECTION_X_PRODUCT": f"{ulx:.3f}", "CORNER_UL_PROJECTION_Y_PRODUCT": f"{uly:.3f}",
            "CORNER_UR_PROJECTION_X_PRODUCT": f"{lrx:.3f}", "CORNER_UR_PROJECTION_Y_PRODUCT": f"{uly:.3f}",
            "CORNER_LL_PROJECTION_X_PRODUCT": f"{ulx:.3f}", "CORNER_LL_PROJECTION_Y_PRODUCT": f"{lry:.3f}",
            "CORNER_LR_PROJECTION_X_PRODUCT": f"{lrx:.3f}", "CORNER_LR_PROJECTION_Y_PRODUCT": f"{lry:.3f}",
        },
        "LEVEL1_PROCESSING_RECORD": {
            "ORIGIN": "Image courtesy of the U.S. Geological Survey",
            "LANDSAT_PRODUCT_ID": product_id, "PROCESSING_LEVEL": parts.level,
            "DATE_PRODUCT_GENERATED": f"{processed:%Y-%m-%dT%H:%M:%S}Z",
            "PROCESSING_SOFTWARE_VERSION": "LPGS_16.3.0",
            "FILE_NAME_BAND_8": f"{product_id}_B8.TIF",
            "FILE_NAME_QUALITY_L1_PIXEL": f"{product_id}_QA_PIXEL.TIF",
        },
        "LEVEL1_MIN_MAX_RADIANCE": {
            "RADIANCE_MAXIMUM_BAND_8": f"{rad(dn_max):.5f}", "RADIANCE_MINIMUM_BAND_8": f"{rad(dn_min):.5f}",
        },
        "LEVEL1_MIN_MAX_REFLECTANCE": {
            "REFLECTANCE_MAXIMUM_BAND_8": f"{refl(dn_max):.6f}", "REFLECTANCE_MINIMUM_BAND_8": f"{refl(dn_min):.6f}",
        },
        "LEVEL1_MIN_MAX_PIXEL_VALUE": {
            "QUANTIZE_CAL_MAX_BAND_8": str(dn_max), "QUANTIZE_CAL_MIN_BAND_8": str(dn_min),
        },
        "LEVEL1_RADIOMETRIC_RESCALING": {
            "RADIANCE_MULT_BAND_8": f"{LANDSAT_B8_RADIANCE_MULT:.4E}",
            "RADIANCE_ADD_BAND_8": f"{LANDSAT_B8_RADIANCE_ADD:.5f}",
            "REFLECTANCE_MULT_BAND_8": f"{LANDSAT_REFLECTANCE_MULT:.4E}",
            "REFLECTANCE_ADD_BAND_8": f"{LANDSAT_REFLECTANCE_ADD:.6f}",
        },
        "LEVEL1_PROJECTION_PARAMETERS": {
            "MAP_PROJECTION": "UTM", "DATUM": "WGS84", "ELLIPSOID": "WGS84", "UTM_ZONE": str(zone),
            "GRID_CELL_SIZE_PANCHROMATIC": "15.00", "ORIENTATION": "NORTH_UP", "RESAMPLING_OPTION": "CUBIC_CONVOLUTION",
        },
    }


# Keys whose values are bare (unquoted) in the ODL flavour, as in the real MTL.txt; the rest are quoted.
_ODL_BARE_KEYS = {"COLLECTION_NUMBER", "WRS_TYPE", "WRS_PATH", "WRS_ROW", "TARGET_WRS_PATH", "TARGET_WRS_ROW",
                  "DATE_ACQUIRED", "CLOUD_COVER", "CLOUD_COVER_LAND", "IMAGE_QUALITY_OLI", "UTM_ZONE",
                  "DATE_PRODUCT_GENERATED"}
_ODL_BARE_PREFIXES = ("GRID_CELL", "PANCHROMATIC_", "REFLECTIVE_", "THERMAL_", "CORNER_", "RADIANCE_",
                      "REFLECTANCE_", "QUANTIZE_")


def mtl_odl(groups: Mapping[str, Mapping[str, str]]) -> str:
    """The ODL flavour ``<ID>_MTL.txt``: nested ``GROUP = X`` ... ``END_GROUP = X``, ``END`` at the end."""
    lines = ["GROUP = LANDSAT_METADATA_FILE"]
    for group, items in groups.items():
        lines.append(f"  GROUP = {group}")
        for key, value in items.items():
            bare = key in _ODL_BARE_KEYS or key.startswith(_ODL_BARE_PREFIXES)
            lines.append(f"    {key} = {value}" if bare else f'    {key} = "{value}"')
        lines.append(f"  END_GROUP = {group}")
    lines += ["END_GROUP = LANDSAT_METADATA_FILE", "END", ""]
    return "\n".join(lines)


def mtl_json(groups: Mapping[str, Mapping[str, str]]) -> str:
    """The ``<ID>_MTL.json`` flavour, with USGS's quirks: every value a string, blanks removed inside ``ORIGIN``."""
    tree = {"LANDSAT_METADATA_FILE": {g: {k: (v.replace(" ", "") if k == "ORIGIN" else v) for k, v in items.items()}
                                      for g, items in groups.items()}}
    return json.dumps(tree, indent=4)


def mtl_xml(groups: Mapping[str, Mapping[str, str]]) -> str:
    """The ``<ID>_MTL.xml`` flavour: ``<LANDSAT_METADATA_FILE><GROUP><KEY>value</KEY>``."""
    body = "".join(f"  <{g}>\n" + "".join(f"    <{k}>{v}</{k}>\n" for k, v in items.items()) + f"  </{g}>\n"
                   for g, items in groups.items())
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<LANDSAT_METADATA_FILE>\n{body}</LANDSAT_METADATA_FILE>\n'


def format_mtl(groups: Mapping[str, Mapping[str, str]], flavour: str) -> str:
    """MTL text in the ``"txt"`` (ODL), ``"json"`` or ``"xml"`` flavour."""
    writers = {"txt": mtl_odl, "json": mtl_json, "xml": mtl_xml}
    if flavour not in writers:
        raise ValueError(f"flavour must be txt, json or xml, got {flavour!r}")
    return writers[flavour](groups)


def landsat_qa_pixel(shape_30m: tuple[int, int], *, fill: np.ndarray, cloud: np.ndarray | None = None,
                     shadow: np.ndarray | None = None, dilated_cloud_px: int = 1) -> np.ndarray:
    """A Collection 2 ``QA_PIXEL`` band (uint16) at 30 m from 15 m masks (2 × 2 band-8 pixels per QA pixel).

    A QA pixel is fill where all its band-8 pixels are fill, cloud/cloud shadow
    where any of them is (high confidence, bits 8-9 / 10-11 = 3), dilated cloud
    (bit 1) within ``dilated_cloud_px`` QA pixels of a cloud. Confidences are
    otherwise low (1), as USGS writes them. Bit 6 (clear) follows the USGS
    definition: set where neither cloud nor dilated cloud is (and not fill).
    """
    fill30 = _block_reduce(fill, 2, "all")[: shape_30m[0], : shape_30m[1]]
    cloud30 = (_block_reduce(cloud, 2, "any") if cloud is not None else np.zeros(shape_30m, bool)) & ~fill30
    shadow30 = (_block_reduce(shadow, 2, "any") if shadow is not None else np.zeros(shape_30m, bool)) & ~fill30
    dilated = _dilate(cloud30, dilated_cloud_px) & ~cloud30 & ~fill30
    qa = np.full(shape_30m, sum(_QA_CONF_LOW.values()), dtype="uint16")
    qa[cloud30] |= np.uint16(landsat_format.QA_CLOUD | _QA_CONF_HIGH["cloud"])
    qa[dilated] |= np.uint16(landsat_format.QA_DILATED_CLOUD)
    qa[shadow30] |= np.uint16(landsat_format.QA_CLOUD_SHADOW | _QA_CONF_HIGH["shadow"])
    qa[~(cloud30 | dilated)] |= np.uint16(_QA_CLEAR)
    qa[fill30] = landsat_format.QA_FILL
    return qa


def write_landsat_scene(
    root: Path | str,
    *,
    pixels_b8: np.ndarray,
    grid: Grid,
    acquired_at: dt.datetime,
    spacecraft: str = "LANDSAT_8",
    wrs_path: int,
    wrs_row: int,
    cloud_cover_percent: float,
    cloud_mask: np.ndarray | None = None,
    shadow_mask: np.ndarray | None = None,
    flavour: str = "txt",
    processed_on: dt.date | None = None,
    tier: str = "T1",
    dilated_cloud_px: int = 1,
    as_tar: bool = False,
) -> Path:
    """A Landsat 8/9 OLI C2L1 scene folder ``root/<product id>/`` (or ``root/<product id>.tar``).

    ``pixels_b8`` are band 8 digital numbers on ``grid`` (north-up 15 m,
    WGS 84 / UTM north), e.g. from :func:`gvfuse.testing.optical.render_optical`
    with its Landsat radiometry, which inverts the MTL's rescaling
    (reflectance = DN · ``REFLECTANCE_MULT_BAND_8`` + ``REFLECTANCE_ADD_BAND_8``).
    They are rounded into 1..65535; NaN becomes DN 0 (fill). ``cloud_mask`` and
    ``shadow_mask`` (True = cloud / shadow, on ``grid``) set the ``QA_PIXEL``
    bits (:func:`landsat_qa_pixel`). ``processed_on`` defaults to the
    acquisition date + :data:`LANDSAT_PROCESSING_DELAY_DAYS`. The folder holds
    ``<ID>_MTL.<flavour>``, ``<ID>_B8.TIF`` and ``<ID>_QA_PIXEL.TIF`` (COGs, as
    Collection 2 ships them). Returns the folder or the ``.tar``.
    """
    pixels_b8 = np.asarray(pixels_b8)
    for name, array in (("pixels_b8", pixels_b8), ("cloud_mask", cloud_mask), ("shadow_mask", shadow_mask)):
        _check_on_grid(name, array, grid)
    when = _utc(acquired_at)
    processed_on = processed_on or (when + dt.timedelta(days=LANDSAT_PROCESSING_DELAY_DAYS)).date()
    product_id = landsat_product_id(spacecraft, wrs_path, wrs_row, when.date(), processed_on, tier=tier)
    root = Path(root)
    if as_tar and (root / f"{product_id}.tar").exists():
        raise FileExistsError(f"{root / (product_id + '.tar')} exists; refusing to overwrite it")
    qa_shape = (-(-grid.rows // 2), -(-grid.cols // 2))
    groups = landsat_mtl_groups(product_id, grid=grid, acquired_at=when, cloud_cover_percent=cloud_cover_percent,
                                qa_pixel_shape=qa_shape)
    folder = _new_folder(root / product_id)
    (folder / f"{product_id}_MTL.{flavour}").write_text(format_mtl(groups, flavour), encoding="utf-8")
    fill = ~np.isfinite(pixels_b8)
    dn = _quantize(pixels_b8, *LANDSAT_DN_RANGE)
    write_bands(folder / f"{product_id}_B8.TIF", {"B8": dn}, grid, dtype="uint16", cog=True)
    qa = landsat_qa_pixel(qa_shape, fill=fill, cloud=None if cloud_mask is None else np.asarray(cloud_mask, bool),
                          shadow=None if shadow_mask is None else np.asarray(shadow_mask, bool),
                          dilated_cloud_px=dilated_cloud_px)
    # The 30 m grid shares band 8's upper-left corner, so each QA pixel covers exactly 2 x 2 band-8 pixels.
    t = grid.transform
    qa_grid = Grid(grid.crs, Affine(30.0, 0.0, t.c, 0.0, -30.0, t.f), qa_shape)
    write_bands(folder / f"{product_id}_QA_PIXEL.TIF", {"QA_PIXEL": qa}, qa_grid, dtype="uint16", cog=True)
    return tar_folder(folder) if as_tar else folder


# --------------------------------------------------------------------------- Sentinel-2 L1C / L2A

#: Reflectance quantification (QUANTIFICATION_VALUE / BOA_QUANTIFICATION_VALUE).
S2_QUANTIFICATION = 10000
#: RADIO_ADD_OFFSET / BOA_ADD_OFFSET from processing baseline 04.00 on.
S2_OFFSET_DN = -1000
#: Processing delays (ground segment) used to derive the product discriminator times.
S2_PROCESSING_DELAY = {"L1C": dt.timedelta(hours=1, minutes=48, seconds=21),
                       "L2A": dt.timedelta(hours=3, minutes=21, seconds=36)}
_S2_LAUNCH = {"Sentinel-2A": dt.date(2015, 6, 23), "Sentinel-2B": dt.date(2017, 3, 7)}
_S2_ORBITS_PER_DAY = 143 / 10  # 143 orbits per 10-day repeat cycle


def _s2_unit(spacecraft: str) -> str:
    if spacecraft not in _S2_LAUNCH:
        raise ValueError(f"spacecraft must be Sentinel-2A or Sentinel-2B, got {spacecraft!r}")
    return spacecraft[-2:]  # "2A"


def _s2_time(when: dt.datetime) -> str:
    """PSD time format with milliseconds: ``2023-07-15T04:37:09.024Z``."""
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z"


def _s2_offset_applies(baseline: str) -> bool:
    return float(baseline) >= 4.0


def sentinel2_product_name(spacecraft: str, level: str, acquired_at: dt.datetime, baseline: str,
                           relative_orbit: int, mgrs_tile: str) -> str:
    """``S2A_MSIL1C_YYYYMMDDTHHMMSS_Nxxyy_Rooo_Txxxxx_<discriminator>`` (PSD "Product naming", without ``.SAFE``).

    The discriminator (processing time) is the sensing time plus :data:`S2_PROCESSING_DELAY`.
    """
    when = _utc(acquired_at)
    if level not in S2_PROCESSING_DELAY:
        raise ValueError(f"level must be L1C or L2A, got {level!r}")
    processed = when + S2_PROCESSING_DELAY[level]
    return (f"S{_s2_unit(spacecraft)}_MSI{level}_{when:%Y%m%dT%H%M%S}_N{baseline.replace('.', '')}_"
            f"R{relative_orbit:03d}_T{mgrs_tile}_{processed:%Y%m%dT%H%M%S}")


def _s2_absolute_orbit(spacecraft: str, when: dt.datetime) -> int:
    return int((when.date() - _S2_LAUNCH[spacecraft]).days * _S2_ORBITS_PER_DAY) + 1


def _s2_granule_id(level: str, mgrs_tile: str, absolute_orbit: int, when: dt.datetime) -> str:
    # Granule folder: <level>_T<tile>_A<absolute orbit>_<datastrip sensing start> (PSD, compact naming).
    return f"{level}_T{mgrs_tile}_A{absolute_orbit:06d}_{when + dt.timedelta(minutes=2, seconds=51):%Y%m%dT%H%M%S}"


def sentinel2_product_xml(level: str, product_name: str, *, acquired_at: dt.datetime, spacecraft: str,
                          baseline: str, relative_orbit: int, cloud_cover_percent: float,
                          footprint_lonlat: Sequence[tuple[float, float]], granule_id: str, tile_time: str,
                          orbit_direction: str = "DESCENDING", with_offsets: bool | None = None) -> str:
    """``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml`` with the PSD 14.x element names and nesting.

    The offset list (``Radiometric_Offset_List`` / ``BOA_ADD_OFFSET_VALUES_LIST``,
    −1000 for every band) is written from baseline 04.00 on unless
    ``with_offsets`` says otherwise (tests of broken files).
    """
    when = _utc(acquired_at)
    start = _s2_time(when)
    with_offsets = _s2_offset_applies(baseline) if with_offsets is None else with_offsets
    granule = f"GRANULE/{granule_id}/IMG_DATA/"
    absolute = granule_id.split("_")[2].removeprefix("A")
    generated = when + S2_PROCESSING_DELAY[level]
    if level == "L2A":
        root, xsd = "Level-2A_User_Product", "User_Product_Level-2A.xsd"
        files = "".join(f"<IMAGE_FILE>{granule}R10m/{tile_time}_{b}_10m</IMAGE_FILE>"
                        for b in ("B02", "B03", "B04", "B08"))
        files += f"<IMAGE_FILE>{granule}R20m/{tile_time}_SCL_20m</IMAGE_FILE>"
        quant = (f'<QUANTIFICATION_VALUES_LIST><BOA_QUANTIFICATION_VALUE unit="none">{S2_QUANTIFICATION}'
                 '</BOA_QUANTIFICATION_VALUE><AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE>'
                 '<WVP_QUANTIFICATION_VALUE unit="cm">1000.0</WVP_QUANTIFICATION_VALUE></QUANTIFICATION_VALUES_LIST>')
        offsets = ("<BOA_ADD_OFFSET_VALUES_LIST>" + "".join(
            f'<BOA_ADD_OFFSET band_id="{i}">{S2_OFFSET_DN}</BOA_ADD_OFFSET>' for i in range(13))
            + "</BOA_ADD_OFFSET_VALUES_LIST>") if with_offsets else ""
        scl_names = ("NO_DATA", "SATURATED_DEFECTIVE", "DARK_AREA_PIXELS", "CLOUD_SHADOWS", "VEGETATION",
                     "NOT_VEGETATED", "WATER", "UNCLASSIFIED", "CLOUD_MEDIUM_PROBA", "CLOUD_HIGH_PROBA",
                     "THIN_CIRRUS", "SNOW_ICE")
        scl_list = ("<Scene_Classification_List>" + "".join(
            f"<Scene_Classification_ID><SCENE_CLASSIFICATION_TEXT>SC_{n}</SCENE_CLASSIFICATION_TEXT>"
            f"<SCENE_CLASSIFICATION_INDEX>{i}</SCENE_CLASSIFICATION_INDEX></Scene_Classification_ID>"
            for i, n in enumerate(scl_names)) + "</Scene_Classification_List>")
    else:
        root, xsd = "Level-1C_User_Product", "User_Product_Level-1C.xsd"
        files = "".join(f"<IMAGE_FILE>{granule}{tile_time}_{b}</IMAGE_FILE>"
                        for b in ("B02", "B03", "B04", "B08", "B8A"))
        quant = f'<QUANTIFICATION_VALUE unit="none">{S2_QUANTIFICATION}</QUANTIFICATION_VALUE>'
        offsets = ("<Radiometric_Offset_List>" + "".join(
            f'<RADIO_ADD_OFFSET band_id="{i}">{S2_OFFSET_DN}</RADIO_ADD_OFFSET>' for i in range(13))
            + "</Radiometric_Offset_List>") if with_offsets else ""
        scl_list = ""
    ring = [*footprint_lonlat, footprint_lonlat[0]]
    pos_list = " ".join(f"{lat:.9f} {lon:.9f}" for lon, lat in ring)
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<n1:{root} xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/{xsd}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
    <n1:General_Info>
        <Product_Info>
            <PRODUCT_START_TIME>{start}</PRODUCT_START_TIME>
            <PRODUCT_STOP_TIME>{start}</PRODUCT_STOP_TIME>
            <PRODUCT_URI>{product_name}.SAFE</PRODUCT_URI>
            <PROCESSING_LEVEL>Level-{level[1:]}</PROCESSING_LEVEL>
            <PRODUCT_TYPE>S2MSI{level[1:]}</PRODUCT_TYPE>
            <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>
            <PRODUCT_DOI>https://doi.org/10.5270/S2_-{'742ikth' if level == 'L1C' else 'znk9xsj'}</PRODUCT_DOI>
            <GENERATION_TIME>{generated:%Y-%m-%dT%H:%M:%S}.000000Z</GENERATION_TIME>
            <PREVIEW_IMAGE_URL>Not applicable</PREVIEW_IMAGE_URL>
            <PREVIEW_GEO_INFO>Not applicable</PREVIEW_GEO_INFO>
            <Datatake datatakeIdentifier="GS{_s2_unit(spacecraft)}_{when:%Y%m%dT%H%M%S}_{absolute}_N{baseline}">
                <SPACECRAFT_NAME>{spacecraft}</SPACECRAFT_NAME>
                <DATATAKE_TYPE>INS-NOBS</DATATAKE_TYPE>
                <DATATAKE_SENSING_START>{start}</DATATAKE_SENSING_START>
                <SENSING_ORBIT_NUMBER>{relative_orbit}</SENSING_ORBIT_NUMBER>
                <SENSING_ORBIT_DIRECTION>{orbit_direction}</SENSING_ORBIT_DIRECTION>
            </Datatake>
            <Query_Options completeSingleTile="true"><PRODUCT_FORMAT>SAFE_COMPACT</PRODUCT_FORMAT></Query_Options>
            <Product_Organisation><Granule_List>\
<Granule datastripIdentifier="S{_s2_unit(spacecraft)}_OPER_MSI_{level}_DS_{granule_id.split('_')[-1]}" \
granuleIdentifier="{granule_id}" imageFormat="JPEG2000">{files}</Granule>\
</Granule_List></Product_Organisation>
        </Product_Info>
        <Product_Image_Characteristics>
            <Special_Values><SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT><SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX></Special_Values>
            <Special_Values><SPECIAL_VALUE_TEXT>SATURATED</SPECIAL_VALUE_TEXT><SPECIAL_VALUE_INDEX>65535</SPECIAL_VALUE_INDEX></Special_Values>
            <Image_Display_Order><RED_CHANNEL>3</RED_CHANNEL><GREEN_CHANNEL>2</GREEN_CHANNEL><BLUE_CHANNEL>1</BLUE_CHANNEL></Image_Display_Order>
            {quant}
            {offsets}
            {scl_list}
        </Product_Image_Characteristics>
    </n1:General_Info>
    <n1:Geometric_Info>
        <Product_Footprint><Product_Footprint><Global_Footprint>
            <EXT_POS_LIST>{pos_list} </EXT_POS_LIST>
        </Global_Footprint></Product_Footprint><RASTER_CS_TYPE>POINT</RASTER_CS_TYPE><PIXEL_ORIGIN>1</PIXEL_ORIGIN></Product_Footprint>
        <Coordinate_Reference_System><GEO_TABLES version="1">EPSG</GEO_TABLES>\
<HORIZONTAL_CS_TYPE>GEOGRAPHIC</HORIZONTAL_CS_TYPE></Coordinate_Reference_System>
    </n1:Geometric_Info>
    <n1:Quality_Indicators_Info>
        <Cloud_Coverage_Assessment>{cloud_cover_percent!r}</Cloud_Coverage_Assessment>
    </n1:Quality_Indicators_Info>
</n1:{root}>
"""


def sentinel2_tile_xml(level: str, *, grid: Grid, tile_id: str, sensing_time: dt.datetime) -> str:
    """``MTD_TL.xml``: ``Tile_Geocoding`` (EPSG, Size and Geoposition at 10/20/60 m) of a tile on ``grid``."""
    zone, southern = _utm_zone(grid, "a Sentinel-2 tile")
    epsg = grid.crs.to_epsg()
    ulx, uly = grid.transform.c, grid.transform.f
    sizes = "".join(f'<Size resolution="{r}"><NROWS>{-(-grid.rows * 10 // r)}</NROWS>'
                    f"<NCOLS>{-(-grid.cols * 10 // r)}</NCOLS></Size>" for r in (10, 20, 60))
    positions = "".join(f'<Geoposition resolution="{r}"><ULX>{ulx:.0f}</ULX><ULY>{uly:.0f}</ULY>'
                        f"<XDIM>{r}</XDIM><YDIM>-{r}</YDIM></Geoposition>" for r in (10, 20, 60))
    hemisphere = "S" if southern else "N"
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<n1:Level-{level[1:]}_Tile_ID xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-{level[1:]}_Tile_Metadata.xsd">
  <n1:General_Info>
    <TILE_ID metadataLevel="Brief">{tile_id}</TILE_ID>
    <SENSING_TIME metadataLevel="Standard">\
{_utc(sensing_time):%Y-%m-%dT%H:%M:%S}.{_utc(sensing_time).microsecond:06d}Z</SENSING_TIME>
  </n1:General_Info>
  <n1:Geometric_Info>
    <Tile_Geocoding metadataLevel="Brief">
      <HORIZONTAL_CS_NAME>WGS84 / UTM zone {zone}{hemisphere}</HORIZONTAL_CS_NAME>
      <HORIZONTAL_CS_CODE>EPSG:{epsg}</HORIZONTAL_CS_CODE>
      {sizes}{positions}
    </Tile_Geocoding>
  </n1:Geometric_Info>
</n1:Level-{level[1:]}_Tile_ID>
"""


def sentinel2_manifest_xml(level: str, *, acquired_at: dt.datetime, spacecraft: str) -> str:
    """``manifest.safe`` (XFDU): acquisition period, platform and the product metadata data object."""
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<xfdu:XFDU xmlns:gml="http://www.opengis.net/gml" xmlns:safe="http://www.esa.int/safe/sentinel/1.1" \
xmlns:xfdu="urn:ccsds:schema:xfdu:1" \
version="esa/safe/sentinel/1.1/sentinel-2/msi/archive_l{level[1:].lower()}_user_product">
  <informationPackageMap><xfdu:contentUnit unitType="Product_Level-{level[1:]}" \
textInfo="SENTINEL-2 MSI Level-{level[1:]} User Product"/></informationPackageMap>
  <metadataSection>
    <metadataObject ID="acquisitionPeriod" classification="DESCRIPTION" category="DMD">\
<metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Acquisition Period"><xmlData>\
<safe:acquisitionPeriod><safe:startTime>{_s2_time(_utc(acquired_at))}</safe:startTime></safe:acquisitionPeriod>\
</xmlData></metadataWrap></metadataObject>
    <metadataObject ID="platform" classification="DESCRIPTION" category="DMD">\
<metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Platform Description"><xmlData><safe:platform>\
<safe:nssdcIdentifier>{'2015-028A' if spacecraft.endswith('A') else '2017-013A'}</safe:nssdcIdentifier>\
<safe:familyName>SENTINEL</safe:familyName><safe:number>{_s2_unit(spacecraft)}</safe:number>\
<safe:instrument><safe:familyName abbreviation="MSI">Multi-Spectral Instrument</safe:familyName></safe:instrument>\
</safe:platform></xmlData></metadataWrap></metadataObject>
  </metadataSection>
  <dataObjectSection>
    <dataObject ID="S2_Level-{level[1:]}_Product_Metadata"><byteStream mimeType="text/xml">\
<fileLocation href="./MTD_MSI{level}.xml" locatorType="URL"/></byteStream></dataObject>
  </dataObjectSection>
</xfdu:XFDU>
"""


#: SCL classes used for clear pixels: bright surfaces are snow/ice (11), the rest bare ground (5).
SCL_NOT_VEGETATED, SCL_SNOW_ICE, SCL_CLOUD_HIGH, SCL_CLOUD_SHADOW, SCL_NO_DATA = 5, 11, 9, 3, 0
SCL_SNOW_REFLECTANCE = 0.3


def sentinel2_scl(reflectance_10m: np.ndarray, *, cloud: np.ndarray | None = None,
                  shadow: np.ndarray | None = None) -> np.ndarray:
    """A Sen2Cor-like ``SCL`` band at 20 m (uint8) from 10 m reflectance and masks (2 × 2 pixels per SCL pixel).

    0 NO_DATA where all four 10 m pixels are NaN, 9 CLOUD_HIGH_PROBA where any
    is cloud, 3 CLOUD_SHADOWS where any is shadow, else 11 SNOW_ICE where the
    mean reflectance exceeds :data:`SCL_SNOW_REFLECTANCE`, else 5 NOT_VEGETATED.
    """
    refl = np.asarray(reflectance_10m, dtype="float64")
    nodata = _block_reduce(~np.isfinite(refl), 2, "all")
    rows, cols = nodata.shape
    padded = np.full((rows * 2, cols * 2), np.nan)
    padded[: refl.shape[0], : refl.shape[1]] = refl
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks
        mean = np.nanmean(padded.reshape(rows, 2, cols, 2), axis=(1, 3))
    scl = np.where(mean > SCL_SNOW_REFLECTANCE, SCL_SNOW_ICE, SCL_NOT_VEGETATED).astype("uint8")
    if shadow is not None:
        scl[_block_reduce(np.asarray(shadow, bool), 2, "any")] = SCL_CLOUD_SHADOW
    if cloud is not None:
        scl[_block_reduce(np.asarray(cloud, bool), 2, "any")] = SCL_CLOUD_HIGH
    scl[nodata] = SCL_NO_DATA
    return scl


def write_sentinel2_scene(
    root: Path | str,
    *,
    pixels_b08: np.ndarray,
    grid: Grid,
    acquired_at: dt.datetime,
    spacecraft: str = "Sentinel-2A",
    mgrs_tile: str,
    relative_orbit: int,
    cloud_cover_percent: float,
    level: str = "L1C",
    baseline: str = "05.09",
    cloud_mask: np.ndarray | None = None,
    shadow_mask: np.ndarray | None = None,
    scl: np.ndarray | None = None,
    orbit_direction: str = "DESCENDING",
    as_zip: bool = False,
) -> Path:
    """A single-tile Sentinel-2 ``<product name>.SAFE`` folder under ``root`` (or its ``.zip``).

    ``pixels_b08`` is band 8 reflectance on ``grid`` (north-up 10 m, WGS 84 /
    UTM in the zone of ``mgrs_tile``); it is written as
    DN = reflectance · 10000 + 1000 (baseline ≥ 04.00, else without the 1000),
    rounded into 1..65535, NaN as DN 0 (NODATA), lossless JPEG 2000:
    ``GRANULE/<granule>/IMG_DATA/<tile>_<time>_B08.jp2`` (L1C) or
    ``IMG_DATA/R10m/..._B08_10m.jp2`` (L2A). L2A adds ``IMG_DATA/R20m/..._SCL_20m.jp2``:
    ``scl`` (20 m classes) if given, else :func:`sentinel2_scl` from the masks.
    ``acquired_at`` is kept to the millisecond (the PSD time format).
    """
    pixels_b08 = np.asarray(pixels_b08)
    for name, array in (("pixels_b08", pixels_b08), ("cloud_mask", cloud_mask), ("shadow_mask", shadow_mask)):
        _check_on_grid(name, array, grid)
    _north_up(grid, 10.0, "Sentinel-2 band 8")
    zone, _ = _utm_zone(grid, "a Sentinel-2 tile")
    if len(mgrs_tile) != 5 or int(mgrs_tile[:2]) != zone:
        raise ValueError(f"MGRS tile {mgrs_tile!r} is not in UTM zone {zone} of the grid")
    when = _utc(acquired_at)
    when = when.replace(microsecond=when.microsecond // 1000 * 1000)
    name = sentinel2_product_name(spacecraft, level, when, baseline, relative_orbit, mgrs_tile)
    root = Path(root)
    if as_zip and (root / f"{name}.zip").exists():
        raise FileExistsError(f"{root / (name + '.zip')} exists; refusing to overwrite it")
    safe = _new_folder(root / f"{name}.SAFE")
    absolute = _s2_absolute_orbit(spacecraft, when)
    granule_id = _s2_granule_id(level, mgrs_tile, absolute, when)
    tile_time = f"T{mgrs_tile}_{when:%Y%m%dT%H%M%S}"
    granule = safe / "GRANULE" / granule_id
    for sub in ("AUX_DATA", "DATASTRIP", "HTML", "rep_info"):
        (safe / sub).mkdir()
    (granule / "QI_DATA").mkdir(parents=True)
    (safe / "manifest.safe").write_text(sentinel2_manifest_xml(level, acquired_at=when, spacecraft=spacecraft),
                                        encoding="utf-8")
    (safe / f"MTD_MSI{level}.xml").write_text(sentinel2_product_xml(
        level, name, acquired_at=when, spacecraft=spacecraft, baseline=baseline, relative_orbit=relative_orbit,
        cloud_cover_percent=float(cloud_cover_percent), footprint_lonlat=_outer_corners_lonlat(grid),
        granule_id=granule_id, tile_time=tile_time, orbit_direction=orbit_direction), encoding="utf-8")
    unit = _s2_unit(spacecraft)
    processed = when + S2_PROCESSING_DELAY[level]
    tile_id = (f"S{unit}_OPER_MSI_{level}_TL_{unit}PS_{processed:%Y%m%dT%H%M%S}_A{absolute:06d}_T{mgrs_tile}"
               f"_N{baseline}")
    (granule / "MTD_TL.xml").write_text(sentinel2_tile_xml(level, grid=grid, tile_id=tile_id,
                                                           sensing_time=when + dt.timedelta(minutes=2, seconds=51)),
                                        encoding="utf-8")
    offset = -S2_OFFSET_DN if _s2_offset_applies(baseline) else 0
    dn = _quantize(pixels_b08 * S2_QUANTIFICATION + offset, 1, 65535).astype("uint16")
    if level == "L2A":
        _write_gtiff(granule / "IMG_DATA" / "R10m" / f"{tile_time}_B08_10m.jp2", dn, grid, driver="JP2OpenJPEG")
        if scl is None:
            scl = sentinel2_scl(pixels_b08, cloud=cloud_mask, shadow=shadow_mask)
        t = grid.transform
        scl_grid = Grid(grid.crs, Affine(20.0, 0.0, t.c, 0.0, -20.0, t.f), np.shape(scl))
        _write_gtiff(granule / "IMG_DATA" / "R20m" / f"{tile_time}_SCL_20m.jp2", np.asarray(scl, "uint8"),
                     scl_grid, driver="JP2OpenJPEG")
    else:
        if cloud_mask is not None or shadow_mask is not None or scl is not None:
            raise ValueError("an L1C product has no cloud mask band (SCL is L2A only)")
        _write_gtiff(granule / "IMG_DATA" / f"{tile_time}_B08.jp2", dn, grid, driver="JP2OpenJPEG")
    return zip_safe(safe, remove=True) if as_zip else safe


# --------------------------------------------------------------------------- Sentinel-1

#: Slice duration of an IW GRD product (s).
S1_SLICE_SECONDS = 25.0
#: A reference orbit per unit for :func:`sentinel1_absolute_orbit` (S1A orbit 46642 started 2023-01-05 ~23:20 UTC).
_S1_REFERENCE_ORBIT = {"S1A": (46642, dt.datetime(2023, 1, 5, 23, 20, tzinfo=dt.timezone.utc)),
                       "S1B": (30000, dt.datetime(2021, 12, 12, 0, 0, tzinfo=dt.timezone.utc))}
_S1_ORBIT_SECONDS = 12 * 86400 / 175


def _s1_unit(platform: str) -> str:
    if platform not in sentinel1_format.ORBIT_OFFSET:
        raise ValueError(f"platform must be one of {sorted(sentinel1_format.ORBIT_OFFSET)}, got {platform!r}")
    return platform


def _check_s1_orbits(platform: str, relative_orbit: int, absolute_orbit: int) -> None:
    expected = sentinel1_format.relative_orbit_from_absolute(platform, absolute_orbit)
    if expected != relative_orbit:
        raise ValueError(f"{platform} absolute orbit {absolute_orbit} is relative orbit {expected}, not "
                         f"{relative_orbit} (use sentinel1_absolute_orbit)")


def sentinel1_absolute_orbit(platform: str, relative_orbit: int, acquired_at: dt.datetime) -> int:
    """A plausible absolute orbit of ``platform`` near ``acquired_at`` on track ``relative_orbit``.

    Counts 175 orbits per 12-day cycle from a reference orbit, then takes the
    nearest orbit whose relative orbit (ESA Sentinel-1 User Guide, "Revisit
    and coverage": S1A ``(abs - 73) % 175 + 1``) is ``relative_orbit``.
    """
    reference, at = _S1_REFERENCE_ORBIT[_s1_unit(platform)]
    estimate = reference + round((_utc(acquired_at) - at).total_seconds() / _S1_ORBIT_SECONDS)
    offset = sentinel1_format.ORBIT_OFFSET[platform]
    shift = (relative_orbit - 1 + offset - estimate) % 175
    return estimate + (shift if shift <= 87 else shift - 175)


def sentinel1_product_name(platform: str, acquired_at: dt.datetime, absolute_orbit: int, *,
                           polarisations: Sequence[str] = ("VV", "VH"), mission_data_take_id: int | None = None,
                           product_unique_id: str | None = None, duration_s: float = S1_SLICE_SECONDS) -> str:
    """``S1A_IW_GRDH_1SDV_<start>_<stop>_<orbit>_<datatake>_<id>`` (S1 Product Specification, "Product naming").

    The data-take id defaults to one derived from the orbit, the product
    unique id to a CRC of the rest of the name (both deterministic).
    """
    start = _utc(acquired_at)
    stop = start + dt.timedelta(seconds=duration_s)
    pols = tuple(p.upper() for p in polarisations)
    code = {("VV", "VH"): "DV", ("HH", "HV"): "DH", ("VV",): "SV", ("HH",): "SH"}.get(pols)
    if code is None:
        raise ValueError(f"polarisations must be (VV, VH), (HH, HV), (VV,) or (HH,), got {pols}")
    datatake = mission_data_take_id if mission_data_take_id is not None else absolute_orbit * 7 + 39895
    stem = (f"{_s1_unit(platform)}_IW_GRDH_1S{code}_{start:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}_"
            f"{absolute_orbit:06d}_{datatake & 0xFFFFFF:06X}")
    return f"{stem}_{product_unique_id or _hex_id(stem, 4)}"


def _s1_time(when: dt.datetime) -> str:
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond:06d}"  # annotation/manifest times: UTC, no zone


def write_sentinel1_rtc(
    root: Path | str,
    *,
    pixels_amplitude: np.ndarray,
    grid: Grid,
    acquired_at: dt.datetime,
    platform: str = "S1A",
    relative_orbit: int,
    absolute_orbit: int,
    pass_direction: str,
    polarisation: str = "VV",
) -> Path:
    """A terrain-corrected Sentinel-1 GeoTIFF ``root/<ESA product name>_Orb_TC_<pol>.tif``, as SNAP names it.

    Float32 linear amplitude (band ``Amplitude_<pol>``), NaN as nodata, on
    ``grid`` (any map CRS, typically UTM 10 m). The product name carries the
    absolute orbit, from which the ``sentinel-1`` reader derives the relative
    orbit, so the two must agree (:func:`sentinel1_absolute_orbit` gives a
    consistent one). Tags record polarisation, relative orbit and pass direction.
    """
    _check_on_grid("pixels_amplitude", pixels_amplitude, grid)
    _check_s1_orbits(platform, relative_orbit, absolute_orbit)
    pass_direction = pass_direction.upper()
    if pass_direction not in ("ASCENDING", "DESCENDING"):
        raise ValueError(f"pass_direction must be ASCENDING or DESCENDING, got {pass_direction!r}")
    pol = polarisation.upper()
    pols = ("VV", "VH") if pol in ("VV", "VH") else ("HH", "HV")
    name = sentinel1_product_name(platform, acquired_at, absolute_orbit, polarisations=pols)
    band = f"Amplitude_{pol}"
    return write_bands(Path(root) / f"{name}_Orb_TC_{pol}.tif", {band: np.asarray(pixels_amplitude, "float32")},
                       grid, units={band: "linear amplitude"}, cog=False,
                       tags={"POLARISATION": pol, "RELATIVE_ORBIT": str(relative_orbit),
                             "ABSOLUTE_ORBIT": str(absolute_orbit), "PASS": pass_direction, "PRODUCT": name,
                             "PROCESSING_GRAPH": "Apply-Orbit-File, Terrain-Correction"})


def _s1_manifest(name: str, *, platform: str, start: dt.datetime, stop: dt.datetime, relative_orbit: int,
                 absolute_orbit: int, pass_direction: str, datatake: int, polarisations: Sequence[str],
                 stems: Mapping[str, str], footprint_latlon: Sequence[tuple[float, float]]) -> str:
    files = "".join(
        f'<dataObject ID="{kind}{stems[pol][-3:]}"><byteStream mimeType="{mime}"><fileLocation locatorType="URL" '
        f'href="./{folder}/{stems[pol]}{ext}"/></byteStream></dataObject>'
        for pol in polarisations
        for kind, folder, ext, mime in (("product", "annotation", ".xml", "text/xml"),
                                        ("s1Level1Measurement", "measurement", ".tiff", "application/octet-stream")))
    pol_elements = "".join(f"<s1sarl1:transmitterReceiverPolarisation>{p}</s1sarl1:transmitterReceiverPolarisation>"
                           for p in polarisations)
    coordinates = " ".join(f"{lat:.6f},{lon:.6f}" for lat, lon in footprint_latlon)
    cycle = (absolute_orbit - sentinel1_format.ORBIT_OFFSET[platform]) // 175 + 1
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1" \
xmlns:s1sarl1="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-1" \
xmlns:s1="http://www.esa.int/safe/sentinel-1.0/sentinel-1" xmlns:safe="http://www.esa.int/safe/sentinel-1.0" \
xmlns:gml="http://www.opengis.net/gml" version="esa/safe/sentinel-1.0/sentinel-1/sar/level-1/standard/iwdp">
  <metadataSection>
    <metadataObject ID="platform" classification="DESCRIPTION" category="DMD">\
<metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Platform Description"><xmlData>
      <safe:platform>
        <safe:nssdcIdentifier>{'2014-016A' if platform == 'S1A' else '2016-025A'}</safe:nssdcIdentifier>
        <safe:familyName>SENTINEL-1</safe:familyName>
        <safe:number>{platform[-1]}</safe:number>
        <safe:instrument><safe:familyName abbreviation="SAR">Synthetic Aperture Radar</safe:familyName>
          <safe:extension><s1sarl1:instrumentMode><s1sarl1:mode>IW</s1sarl1:mode><s1sarl1:swath>IW</s1sarl1:swath></s1sarl1:instrumentMode></safe:extension>
        </safe:instrument>
      </safe:platform></xmlData></metadataWrap></metadataObject>
    <metadataObject ID="measurementOrbitReference" classification="DESCRIPTION" category="DMD">\
<metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Orbit Reference"><xmlData>
      <safe:orbitReference>
        <safe:orbitNumber type="start">{absolute_orbit}</safe:orbitNumber>
        <safe:orbitNumber type="stop">{absolute_orbit}</safe:orbitNumber>
        <safe:relativeOrbitNumber type="start">{relative_orbit}</safe:relativeOrbitNumber>
        <safe:relativeOrbitNumber type="stop">{relative_orbit}</safe:relativeOrbitNumber>
        <safe:cycleNumber>{cycle}</safe:cycleNumber>
        <safe:extension><s1:orbitProperties><s1:pass>{pass_direction}</s1:pass></s1:orbitProperties></safe:extension>
      </safe:orbitReference></xmlData></metadataWrap></metadataObject>
    <metadataObject ID="generalProductInformation" classification="DESCRIPTION" category="DMD">\
<metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="General Product Information"><xmlData>
      <s1sarl1:standAloneProductInformation>
        <s1sarl1:productConsolidation>SLICE</s1sarl1:productConsolidation>
        <s1sarl1:instrumentConfigurationID>7</s1sarl1:instrumentConfigurationID>
        <s1sarl1:missionDataTakeID>{datatake}</s1sarl1:missionDataTakeID>
        {pol_elements}
        <s1sarl1:productClass>S</s1sarl1:productClass>
        <s1sarl1:productType>GRD</s1sarl1:productType>
      </s1sarl1:standAloneProductInformation></xmlData></metadataWrap></metadataObject>
    <metadataObject ID="acquisitionPeriod" classification="DESCRIPTION" category="DMD">\
<metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Acquisition Period"><xmlData>
      <safe:acquisitionPeriod><safe:startTime>{_s1_time(start)}</safe:startTime><safe:stopTime>{_s1_time(stop)}</safe:stopTime></safe:acquisitionPeriod>
    </xmlData></metadataWrap></metadataObject>
    <metadataObject ID="measurementFrameSet" classification="DESCRIPTION" category="DMD">\
<metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Frame Set"><xmlData>
      <safe:frameSet><safe:frame><safe:footPrint srsName="http://www.opengis.net/gml/srs/epsg.xml#4326">
        <gml:coordinates>{coordinates}</gml:coordinates>
      </safe:footPrint></safe:frame></safe:frameSet>
    </xmlData></metadataWrap></metadataObject>
  </metadataSection>
  <dataObjectSection>{files}</dataObjectSection>
</xfdu:XFDU>
"""


def _s1_annotation(*, platform: str, pol: str, start: dt.datetime, stop: dt.datetime, absolute_orbit: int,
                   datatake: int, image_number: str, pass_direction: str, shape: tuple[int, int],
                   pixel_spacing_m: float) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<product>
  <adsHeader>
    <missionId>{platform}</missionId><productType>GRD</productType><polarisation>{pol}</polarisation><mode>IW</mode>
    <swath>IW</swath><startTime>{_s1_time(start)}</startTime><stopTime>{_s1_time(stop)}</stopTime>
    <absoluteOrbitNumber>{absolute_orbit}</absoluteOrbitNumber><missionDataTakeId>{datatake}</missionDataTakeId><imageNumber>{image_number}</imageNumber>
  </adsHeader>
  <generalAnnotation><productInformation><pass>{pass_direction.title()}</pass><timelinessCategory>Fast-24h</timelinessCategory>
    <platformHeading>{-12.5 if pass_direction == 'ASCENDING' else -167.5:.6e}</platformHeading>
    <projection>Ground Range</projection></productInformation></generalAnnotation>
  <imageAnnotation><imageInformation>
    <productFirstLineUtcTime>{_s1_time(start)}</productFirstLineUtcTime><productLastLineUtcTime>{_s1_time(stop)}</productLastLineUtcTime>
    <rangePixelSpacing>{pixel_spacing_m:.6e}</rangePixelSpacing><azimuthPixelSpacing>{pixel_spacing_m:.6e}</azimuthPixelSpacing>
    <numberOfSamples>{shape[1]}</numberOfSamples><numberOfLines>{shape[0]}</numberOfLines>
  </imageInformation></imageAnnotation>
</product>
"""


def _footprint_from_gcps(gcps: Sequence[GroundControlPoint]) -> list[tuple[float, float]]:
    """(lat, lon) of the GCPs at the image corners: first line near/far, last line far/near."""
    rows, cols = [g.row for g in gcps], [g.col for g in gcps]
    corner = {(g.row, g.col): g for g in gcps}
    order = [(min(rows), min(cols)), (max(rows), min(cols)), (max(rows), max(cols)), (min(rows), max(cols))]
    if not all(c in corner for c in order):
        raise ValueError("the GCPs must include the four image corners")
    return [(corner[c].y, corner[c].x) for c in order]


def write_sentinel1_grd_safe(
    root: Path | str,
    *,
    measurements: Mapping[str, np.ndarray],
    gcps: Sequence[GroundControlPoint],
    acquired_at: dt.datetime,
    platform: str = "S1A",
    relative_orbit: int,
    absolute_orbit: int,
    pass_direction: str = "ASCENDING",
    mission_data_take_id: int | None = None,
    product_unique_id: str | None = None,
    pixel_spacing_m: float = 10.0,
    as_zip: bool = False,
) -> Path:
    """A Sentinel-1 IW GRDH ``.SAFE`` in radar geometry (or its ``.zip``).

    ``measurements`` maps polarisations (``"VV"``, ``"VH"``) to uint16 digital
    numbers (lines × samples; NaN → 0, GRD's no-data border value); each is
    written as ``measurement/s1a-iw-grd-<pol>-...-00N.tiff`` with ``gcps`` (the
    geolocation grid, EPSG:4326, including the four image corners, which give
    the manifest footprint), with its annotation (``annotation/...xml``) and a
    calibration stub (``annotation/calibration/calibration-...xml``).
    """
    _check_s1_orbits(platform, relative_orbit, absolute_orbit)
    pols = tuple(p.upper() for p in measurements)
    pols = tuple(sorted(pols, key=lambda p: p[0] != p[1]))  # co-polarisation first: image 001
    start = _utc(acquired_at)
    stop = start + dt.timedelta(seconds=S1_SLICE_SECONDS)
    name = sentinel1_product_name(platform, start, absolute_orbit, polarisations=pols,
                                  mission_data_take_id=mission_data_take_id, product_unique_id=product_unique_id)
    datatake = int(name.split("_")[7], 16)
    root = Path(root)
    if as_zip and (root / f"{name}.zip").exists():
        raise FileExistsError(f"{root / (name + '.zip')} exists; refusing to overwrite it")
    safe = _new_folder(root / f"{name}.SAFE")
    (safe / "annotation" / "calibration").mkdir(parents=True)
    (safe / "measurement").mkdir()
    (safe / "preview").mkdir()
    (safe / "support").mkdir()
    stems = {pol: (f"{platform.lower()}-iw-grd-{pol.lower()}-{start:%Y%m%dt%H%M%S}-{stop:%Y%m%dt%H%M%S}-"
                   f"{absolute_orbit:06d}-{datatake:06x}-{n:03d}") for n, pol in enumerate(pols, start=1)}
    (safe / "manifest.safe").write_text(_s1_manifest(
        name, platform=platform, start=start, stop=stop, relative_orbit=relative_orbit,
        absolute_orbit=absolute_orbit, pass_direction=pass_direction.upper(), datatake=datatake, polarisations=pols,
        stems=stems, footprint_latlon=_footprint_from_gcps(gcps)), encoding="utf-8")
    by_pol = {p.upper(): v for p, v in measurements.items()}
    for pol in pols:
        image = _quantize(by_pol[pol], 0, 65535).astype("uint16")
        stem = stems[pol]
        (safe / "annotation" / f"{stem}.xml").write_text(_s1_annotation(
            platform=platform, pol=pol, start=start, stop=stop, absolute_orbit=absolute_orbit, datatake=datatake,
            image_number=stem[-3:], pass_direction=pass_direction.upper(), shape=image.shape,
            pixel_spacing_m=pixel_spacing_m), encoding="utf-8")
        (safe / "annotation" / "calibration" / f"calibration-{stem}.xml").write_text(
            f"<?xml version='1.0' encoding='UTF-8'?><calibration><adsHeader><missionId>{platform}</missionId>"
            f"<polarisation>{pol}</polarisation></adsHeader></calibration>", encoding="utf-8")
        with warnings.catch_warnings():  # no geotransform until the GCPs are set: expected
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(safe / "measurement" / f"{stem}.tiff", "w", driver="GTiff", width=image.shape[1],
                               height=image.shape[0], count=1, dtype="uint16") as dst:
                dst.write(image, 1)
                dst.gcps = (list(gcps), CRS.from_epsg(4326))
    return zip_safe(safe, remove=True) if as_zip else safe


# --------------------------------------------------------------------------- UAV orthomosaics

UAV_PLATFORM = "DJI M300 RTK"
UAV_SOFTWARE = "DJI Terra 3.9.0"


def write_uav_orthomosaic(
    root: Path | str,
    *,
    pixels: np.ndarray,
    grid: Grid,
    acquired_at: dt.datetime,
    site: str,
    sidecar: str | None = "json",
    platform: str = UAV_PLATFORM,
) -> Path:
    """A drone orthomosaic ``root/<site>_<YYYYMMDD>_ortho.tif``: RGBA uint8 GeoTIFF plus a sidecar.

    ``pixels`` are grey values 0-255 (rows × cols, the same in R, G and B) or
    an RGB stack (3 × rows × cols) on ``grid`` (any CRS); they are rounded, and
    NaN (in any band) becomes alpha 0, the no-data convention of DJI Terra,
    Pix4D and Metashape exports. ``sidecar="json"`` writes
    ``<stem>.json`` ``{"acquired_at", "platform", "site"}`` (the ``uav`` reader
    puts ``site`` into the scene metadata for pairing); ``"txt"`` writes only
    the date-time line; None relies on the date in the file name.
    """
    pixels = np.asarray(pixels, dtype="float64")
    rgb = np.stack([pixels] * 3) if pixels.ndim == 2 else pixels
    if rgb.shape != (3, *grid.shape):
        raise ValueError(f"pixels must be {grid.shape} or (3, {grid.rows}, {grid.cols}), got {pixels.shape}")
    when = _utc(acquired_at)
    safe_site = "".join(c if c.isalnum() or c in "-_" else "-" for c in site)
    path = Path(root) / f"{safe_site}_{when:%Y%m%d}_ortho.tif"
    if path.exists():
        raise FileExistsError(f"{path} exists; refusing to overwrite it")
    nodata = ~np.isfinite(rgb).all(axis=0)
    bands = np.concatenate([_quantize(rgb, 0, 255), np.where(nodata, 0, 255)[None]]).astype("uint8")
    bands[:3, nodata] = 0
    # PHOTOMETRIC=RGB with an unassociated-alpha extra sample, as the photogrammetry tools write it.
    _write_gtiff(path, bands, grid, photometric="RGB", alpha="YES", compress="deflate", tiled=True, blockxsize=256,
                 blockysize=256, tags={"TIFFTAG_SOFTWARE": UAV_SOFTWARE})
    stamp = when.isoformat().replace("+00:00", "Z")
    if sidecar == "json":
        path.with_suffix(".json").write_text(json.dumps({"acquired_at": stamp, "platform": platform, "site": site},
                                                        indent=2) + "\n", encoding="utf-8")
    elif sidecar == "txt":
        path.with_suffix(".txt").write_text(f"# {platform} survey of {site}\n{stamp}\n", encoding="utf-8")
    elif sidecar is not None:
        raise ValueError(f"sidecar must be 'json', 'txt' or None, got {sidecar!r}")
    return path
