"""Scene builders for the reader tests: tiny scenes laid out exactly as the providers ship them.

The layouts, names and metadata come from :mod:`gvfuse.testing.provider_layouts`
(one implementation, shared with ``gvfuse demo``); this module fixes the
fixtures' values (ids, times, shapes, cloud and shadow blocks) and keeps the
test-only odd cases: replaced or broken metadata files and hostile XML.
Real provider metadata is read from ``../shared/data/metadata-samples/`` by
``test_real_samples.py`` only, so these fixtures work without ``../shared``.
Rasters are small (≤ 300 × 300) and placed in the Gangrigab product area (UTM 47N).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.warp import transform_bounds

from gvfuse.formats import landsat
from gvfuse.model import Grid
from gvfuse.testing import provider_layouts as layouts
from gvfuse.testing.provider_layouts import mtl_json, mtl_odl, mtl_xml  # noqa: F401 - re-exported for the tests
from tests.helpers import SHARED

SAMPLES = SHARED / "data" / "metadata-samples"

UTM47 = "EPSG:32647"
#: Upper-left corner of every fixture raster: inside the Gangrigab area (≈ 96.5° E, 29.3° N).
ORIGIN_X, ORIGIN_Y = 255000.0, 3245000.0
UTC = dt.timezone.utc


def textured(rows: int, cols: int, seed: int, low: int = 1000, high: int = 9000) -> np.ndarray:
    """A smooth random texture as uint16 DNs (never 0, the fill value)."""
    rng = np.random.default_rng(seed)
    noise = rng.random((rows, cols))
    for _ in range(3):
        noise = (noise + np.roll(noise, 1, 0) + np.roll(noise, 1, 1)) / 3
    noise = (noise - noise.min()) / (np.ptp(noise) or 1)
    return (low + noise * (high - low)).astype("uint16")


def write_raster(path: Path, data: np.ndarray, transform: Affine, crs: str = UTM47, driver: str = "GTiff",
                 nodata: float | None = None, **options) -> None:
    """A plain georeferenced raster (loose GeoTIFFs of the UAV, generic and loading tests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if driver == "JP2OpenJPEG":
        options.update(QUALITY=100, REVERSIBLE="YES")
    data = data if data.ndim == 3 else data[None]
    with rasterio.open(path, "w", driver=driver, width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs=crs, transform=transform, nodata=nodata, **options) as dst:
        dst.write(data)


def product_toml(grid: Grid, product_id: str, description: str, first_month: str, last_month: str) -> str:
    """A product definition (TOML text) whose area lies just inside ``grid``, on the 30 m UTM 47N grid."""
    west, south, east, north = transform_bounds(grid.crs, "EPSG:4326", *grid.bounds)
    return f'''
id = "{product_id}"
title = "{product_id.replace("-", " ")}"
description = "{description}"
license = "CC-BY-4.0"
[area]
west_deg = {west + 0.001}
south_deg = {south + 0.001}
east_deg = {east - 0.001}
north_deg = {north - 0.001}
[grid]
crs = "EPSG:32647"
resolution_m = 30.0
[time]
first_month = "{first_month}"
last_month = "{last_month}"
'''


def optical_pair_run(root: Path, product_id: str, *, shape: tuple[int, int] = (96, 96),
                     days: tuple[str, str] = ("20230105", "20230125"),
                     tracker_parameters: str = "{ window_px = 32, step_px = 4 }", extra: str = "",
                     seed: int = 1) -> Path:
    """A one-month run on one optical pair of dated GeoTIFFs: ``root/scenes``, ``product.toml``, ``run.toml``.

    The run reads with ``geotiff``, tracks with ``ncc`` and weighs with ``inverse-variance``; ``extra`` is
    TOML appended to ``run.toml`` (a ``[validation]`` section, say). Returns ``root/run.toml``.
    """
    from gvfuse.io.raster import write_bands
    from gvfuse.testing import make_pair

    first, last = (dt.datetime.strptime(d, "%Y%m%d") for d in days)
    pair = make_pair("optical", shape, dt_days=(last - first).days, max_speed_m_per_day=0.5, cloud_fraction=0.0,
                     seed=seed)
    (root / "scenes").mkdir(parents=True, exist_ok=True)
    write_bands(root / "scenes" / f"optical_{days[0]}.tif", {"B8": pair.reference}, pair.grid, cog=False)
    write_bands(root / "scenes" / f"optical_{days[1]}.tif", {"B8": pair.secondary}, pair.grid, cog=False)
    month = f"{first:%Y-%m}"
    (root / "product.toml").write_text(product_toml(pair.grid, product_id, "one month", month, month))
    (root / "run.toml").write_text(f'''product = "product.toml"
output_dir = "out"
[sensors.optical]
reader = "geotiff"
pairing = "optical"
tracker = "ncc"
tracker_parameters = {tracker_parameters}
max_speed_m_per_day = 1.0
[weighting]
name = "inverse-variance"
{extra}''')
    return root / "run.toml"


def _grid(pixel_m: float, shape: tuple[int, int]) -> Grid:
    return Grid(UTM47, Affine(pixel_m, 0, ORIGIN_X, 0, -pixel_m, ORIGIN_Y), shape)


# --------------------------------------------------------------------------- Landsat


LANDSAT_ID = "LC09_L1TP_135040_20230115_20230116_02_T1"
LANDSAT_PAN_SHAPE = (200, 200)  # 15 m: 3 km
LANDSAT_QA_SHAPE = (100, 100)  # 30 m
LANDSAT_TIME = dt.time(4, 21, 33, 123456)
LANDSAT_CLOUD = 12.34


def _landsat_fields(product_id: str) -> dict:
    pid = landsat.parse_product_id(product_id)
    return {"spacecraft": f"LANDSAT_{pid.satellite}", "wrs_path": pid.wrs_path, "wrs_row": pid.wrs_row,
            "acquired_at": dt.datetime.combine(pid.acquired_on, LANDSAT_TIME, tzinfo=UTC),
            "processed_on": pid.processed_on, "tier": pid.tier}


def landsat_groups(product_id: str = LANDSAT_ID, *, cloud: float = LANDSAT_CLOUD) -> dict[str, dict[str, str]]:
    """The MTL groups the fixture scene gets (tests edit them to make broken files)."""
    return layouts.landsat_mtl_groups(product_id, grid=_grid(15.0, LANDSAT_PAN_SHAPE),
                                      acquired_at=_landsat_fields(product_id)["acquired_at"],
                                      cloud_cover_percent=cloud)


def make_landsat_folder(root: Path, product_id: str = LANDSAT_ID, flavour: str = "txt",
                        groups: dict | None = None, as_tar: bool = False) -> Path:
    """A USGS C2L1 scene folder: ``<id>_MTL.<flavour>``, ``<id>_B8.TIF`` (15 m), ``<id>_QA_PIXEL.TIF`` (30 m).

    QA_PIXEL marks a cloud block at 30 m rows 0-19, cols 0-19 (dilated by one
    pixel) and a cloud shadow at rows 40-49, cols 60-79; the rest is clear.
    ``groups`` replaces the MTL content (broken-file tests).
    """
    cloud = np.zeros(LANDSAT_PAN_SHAPE, bool)
    cloud[0:40, 0:40] = True
    shadow = np.zeros(LANDSAT_PAN_SHAPE, bool)
    shadow[80:100, 120:160] = True
    path = layouts.write_landsat_scene(
        root, pixels_b8=textured(*LANDSAT_PAN_SHAPE, seed=8).astype("float32"), grid=_grid(15.0, LANDSAT_PAN_SHAPE),
        cloud_cover_percent=LANDSAT_CLOUD, cloud_mask=cloud, shadow_mask=shadow, flavour=flavour,
        as_tar=as_tar and groups is None, **_landsat_fields(product_id))
    assert path.name.removesuffix(".tar") == product_id, path
    if groups is not None:
        (path / f"{product_id}_MTL.{flavour}").write_text(layouts.format_mtl(groups, flavour), encoding="utf-8")
        if as_tar:
            path = layouts.tar_folder(path)
    return path


def make_landsat_tar(root: Path, product_id: str = LANDSAT_ID, flavour: str = "txt") -> Path:
    """The USGS bundle: ``<id>.tar`` with the scene's files at the archive root."""
    root.mkdir(parents=True, exist_ok=True)
    return make_landsat_folder(root, product_id, flavour, as_tar=True)


# --------------------------------------------------------------------------- Sentinel-2

S2_TIME = dt.datetime(2023, 7, 15, 4, 37, 9, 24000, tzinfo=UTC)
S2_SHAPE = (300, 300)  # 10 m: 3 km
S2_SCL_SHAPE = (150, 150)  # 20 m
S2_FIELDS = {"spacecraft": "Sentinel-2B", "mgrs_tile": "47RLQ", "relative_orbit": 33, "cloud_cover_percent": 7.5}
S2_L1C = layouts.sentinel2_product_name("Sentinel-2B", "L1C", S2_TIME, "05.09", 33, "47RLQ")
S2_L2A = layouts.sentinel2_product_name("Sentinel-2B", "L2A", S2_TIME, "05.09", 33, "47RLQ")


def s2_product_xml(level: str, product: str, *, baseline: str = "05.09", with_offsets: bool | None = None) -> str:
    """The fixture's ``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml`` text (tests cut elements out of it)."""
    return layouts.sentinel2_product_xml(
        level, product, acquired_at=S2_TIME, spacecraft="Sentinel-2B", baseline=baseline, relative_orbit=33,
        cloud_cover_percent=7.5,
        footprint_lonlat=[(96.48, 29.33), (96.511, 29.331), (96.511, 29.303), (96.481, 29.302)],
        granule_id=f"{level}_T47RLQ_A033333_20230715T044000", tile_time="T47RLQ_20230715T043709",
        with_offsets=with_offsets)


def s2_scl() -> np.ndarray:
    """SCL at 20 m: vegetation (4) and snow/ice (11, must stay), cloud high (9) at rows 0-24 cols 0-24,
    cloud shadow (3) at rows 50-59 cols 100-119, thin cirrus (10) at rows 100-109 cols 0-9."""
    scl = np.full(S2_SCL_SHAPE, 4, dtype="uint8")
    scl[:, 75:] = 11
    scl[0:25, 0:25] = 9
    scl[50:60, 100:120] = 3
    scl[100:110, 0:10] = 10
    return scl


def make_s2_safe(root: Path, level: str = "L1C", product: str | None = None, *, product_xml: str | None = None,
                 baseline: str = "05.09", offset: int | None = -1000) -> Path:
    """A single-tile ``.SAFE`` folder with manifest, product and tile metadata, band 8 JP2 (and SCL for L2A).

    Band 8 is a texture with a NODATA corner (last 5 × 5 pixels). Test-only odd
    cases: ``product`` renames the SAFE, ``product_xml`` replaces the product
    metadata, ``offset=None`` drops the offset list whatever the baseline.
    """
    dn = textured(*S2_SHAPE, seed=2).astype("float32")
    dn[-5:, -5:] = np.nan
    shift = 1000 if float(baseline) >= 4 else 0
    safe = layouts.write_sentinel2_scene(
        root, pixels_b08=(dn - shift) / 10000, grid=_grid(10.0, S2_SHAPE), acquired_at=S2_TIME, level=level,
        baseline=baseline, scl=s2_scl() if level == "L2A" else None, **S2_FIELDS)
    metadata = safe / f"MTD_MSI{level}.xml"
    if product_xml is None and offset is None:
        product_xml = metadata.read_text(encoding="utf-8")
        for tag in ("Radiometric_Offset_List", "BOA_ADD_OFFSET_VALUES_LIST"):
            if f"<{tag}>" in product_xml:
                product_xml = product_xml[: product_xml.index(f"<{tag}>")] + product_xml[
                    product_xml.index(f"</{tag}>") + len(tag) + 3:]
    if product_xml is not None:
        metadata.write_text(product_xml, encoding="utf-8")
    if product is not None and f"{product}.SAFE" != safe.name:
        safe = safe.rename(safe.with_name(f"{product}.SAFE"))
    return safe


def zip_folder(folder: Path, zip_path: Path | None = None) -> Path:
    """Zip a SAFE folder the way the Copernicus hubs do: the ``X.SAFE/`` folder at the archive root."""
    return layouts.zip_safe(folder, zip_path)


# --------------------------------------------------------------------------- Sentinel-1

S1_TIME = dt.datetime(2023, 1, 5, 23, 45, 12, 345678, tzinfo=UTC)
S1_PRODUCT = "S1A_IW_GRDH_1SDV_20230105T234512_20230105T234537_046642_059735_1A2B"
S1_SHAPE = (120, 100)  # lines, samples


def s1_lonlat(row: np.ndarray | float, col: np.ndarray | float) -> tuple:
    """The fixture's radar geometry: an ascending, slightly rotated swath over the product area.

    Lines run north (azimuth), samples east (range); ~90 m per line, ~100 m per sample.
    """
    lon = 96.45 + 0.00103 * np.asarray(col) + 0.00012 * np.asarray(row)
    lat = 29.20 + 0.00081 * np.asarray(row) - 0.00008 * np.asarray(col)
    return lon, lat


def s1_gcps() -> list[GroundControlPoint]:
    gcps = []
    for line in range(0, S1_SHAPE[0] + 1, 20):
        for pixel in range(0, S1_SHAPE[1] + 1, 20):
            lon, lat = s1_lonlat(line, pixel)
            gcps.append(GroundControlPoint(row=line, col=pixel, x=float(lon), y=float(lat), z=3000.0))
    return gcps


S1_MARKER = (60, 40)  # (line, sample) of the bright marker in the measurement image


def make_s1_safe(root: Path) -> Path:
    """A GRD IW SAFE: manifest, VV/VH annotations (+ calibration folder), measurement TIFFs with GCPs."""
    image = textured(*S1_SHAPE, seed=11, low=50, high=400).astype("float32")
    image[:, :3] = np.nan  # no-data border, as in real GRD near range (written as DN 0)
    image[S1_MARKER] = 4000
    safe = layouts.write_sentinel1_grd_safe(
        root, measurements={"VV": image, "VH": image}, gcps=s1_gcps(), acquired_at=S1_TIME, platform="S1A",
        relative_orbit=20, absolute_orbit=46642, pass_direction="ASCENDING", mission_data_take_id=0x59735,
        product_unique_id="1A2B")
    assert safe.name == f"{S1_PRODUCT}.SAFE", safe
    return safe


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<n1:Level-1C_User_Product xmlns:n1="x"><PRODUCT_START_TIME>&lol9;</PRODUCT_START_TIME></n1:Level-1C_User_Product>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<n1:Level-1C_User_Product xmlns:n1="x"><PRODUCT_START_TIME>&xxe;</PRODUCT_START_TIME></n1:Level-1C_User_Product>
"""
