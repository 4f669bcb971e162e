"""Round trips through the provider layouts: write a scene, ``scan`` it with the registered readers, ``load`` it.

Each writer of :mod:`gvfuse.testing.provider_layouts` gets known pixels, grid,
time and masks; the readers must give back the metadata (sensor, platform,
id, time, cloud cover, the pair planner's footprint key) and the pixels
(within the format's quantisation, NaN where fill, cloud or shadow), both on
the scene's own grid and on a smaller sub-grid. Rasters are tiny.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.warp import transform_bounds
from scipy import ndimage

from gvfuse.formats import sentinel1 as s1_format
from gvfuse.model import Grid
from gvfuse.pipeline.pairing import footprint
from gvfuse.pipeline.scan import FoundScene, scan
from gvfuse.plugins import get_plugins
from gvfuse.testing import provider_layouts as layouts

UTC = dt.timezone.utc
UTM47 = "EPSG:32647"
X0, Y0 = 254010.0, 3246000.0  # inside the Gangrigab area


def _scan_one(root: Path) -> FoundScene:
    report = scan(root, get_plugins().classes("readers"))
    assert len(report.scenes) == 1, report.to_dict()
    assert not report.skipped, report.to_dict()
    return report.scenes[0]


def _reader(name: str):
    return get_plugins().get("readers", name).cls()


def _upsample(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.repeat(np.repeat(mask, 2, axis=0), 2, axis=1)[: shape[0], : shape[1]]


def _block(mask: np.ndarray, how: str) -> np.ndarray:
    rows, cols = mask.shape
    blocks = mask.reshape(rows // 2, 2, cols // 2, 2)
    return blocks.any(axis=(1, 3)) if how == "any" else blocks.all(axis=(1, 3))


def _sub_grid(grid: Grid, row: int, col: int, shape: tuple[int, int]) -> Grid:
    t = grid.transform
    return Grid(grid.crs, t * Affine.translation(col, row), shape)


def _assert_footprint_covers(found: FoundScene, grid: Grid) -> None:
    west, south, east, north = transform_bounds(grid.crs, "EPSG:4326", *grid.bounds)
    w, s, e, n = found.footprint_lonlat_bounds
    tol = 1e-3  # corner points vs. densified edges
    assert w <= west + tol and s <= south + tol and e >= east - tol and n >= north - tol


def _check_loads(reader, scene, grid: Grid, expected: np.ndarray, atol: float) -> None:
    """Native load and a sub-grid load both give ``expected`` (NaN where expected is NaN)."""
    native = reader.load(scene)
    assert native.grid == grid
    np.testing.assert_array_equal(np.isnan(native.pixels), np.isnan(expected))
    np.testing.assert_allclose(native.pixels, expected, atol=atol, rtol=0, equal_nan=True)
    sub = _sub_grid(grid, 6, 8, (14, 18))
    part = reader.load(scene, sub)
    assert part.grid == sub
    np.testing.assert_allclose(part.pixels, expected[6:20, 8:26], atol=atol, rtol=0, equal_nan=True)


def _digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- Landsat


def _landsat_inputs():
    grid = Grid(UTM47, Affine(15, 0, X0, 0, -15, Y0), (40, 48))
    pixels = np.random.default_rng(1).integers(5000, 30000, grid.shape).astype("float32")
    pixels[-4:, -6:] = np.nan  # a whole fill corner (QA fill too)
    pixels[11, 31] = np.nan  # a lone fill pixel (band 8 DN 0 only)
    cloud = np.zeros(grid.shape, bool)
    cloud[4:10, 6:12] = True
    shadow = np.zeros(grid.shape, bool)
    shadow[20:24, 30:36] = True
    return grid, pixels, cloud, shadow


@pytest.mark.parametrize("flavour,as_tar", [("txt", False), ("json", True), ("xml", False)])
def test_landsat_round_trip(tmp_path, flavour, as_tar):
    grid, pixels, cloud, shadow = _landsat_inputs()
    when = dt.datetime(2023, 3, 14, 4, 21, 7, 250000, tzinfo=UTC)
    path = layouts.write_landsat_scene(
        tmp_path, pixels_b8=pixels, grid=grid, acquired_at=when, spacecraft="LANDSAT_9", wrs_path=135, wrs_row=40,
        cloud_cover_percent=23.456, cloud_mask=cloud, shadow_mask=shadow, flavour=flavour, as_tar=as_tar)
    product_id = "LC09_L1TP_135040_20230314_20230323_02_T1"
    assert path.name == product_id + (".tar" if as_tar else "")
    found = _scan_one(tmp_path)
    scene = found.scene
    assert (found.reader, found.sensor, found.platform, found.scene_id) == (
        "landsat", "landsat", "landsat-9", product_id)
    assert found.acquired_at == when and found.cloud_cover_percent == pytest.approx(23.46)
    assert scene.grid == grid and found.crs == UTM47 and found.resolution_m == 15.0
    assert footprint(scene) == "wrs_path=135,wrs_row=40"
    assert scene.metadata["mtl_member"].endswith(f"_MTL.{flavour}")
    _assert_footprint_covers(found, grid)
    # QA_PIXEL at 30 m: cloud and shadow where any 15 m pixel is, dilated cloud one pixel around, fill where all are.
    cloud30 = _block(cloud, "any")
    dilated = ndimage.binary_dilation(cloud30, np.ones((3, 3), bool))
    unusable30 = dilated | _block(shadow, "any") | _block(np.isnan(pixels), "all")
    expected = np.where(_upsample(unusable30, grid.shape) | np.isnan(pixels), np.nan, pixels)
    _check_loads(_reader("landsat"), scene, grid, expected, atol=0)


def test_landsat_qa_pixel_values_follow_collection2():
    fill = np.zeros((4, 8), bool)
    fill[:, 6:] = True
    cloud = np.zeros((4, 8), bool)
    cloud[0:2, 0:2] = True
    qa = layouts.landsat_qa_pixel((2, 4), fill=fill, cloud=cloud, shadow=None, dilated_cloud_px=1)
    # USGS values: 22280 cloud (high confidence), 21762 dilated cloud (clear bit off, as USGS defines it),
    # 21824 clear land (clear bit and low confidences), 1 fill.
    assert qa.tolist() == [[22280, 21762, 21824, 1], [21762, 21762, 21824, 1]]


def test_landsat_rejects_a_grid_the_mtl_cannot_describe(tmp_path):
    grid, pixels, _, _ = _landsat_inputs()
    with pytest.raises(ValueError, match="15 m"):
        layouts.write_landsat_scene(tmp_path, pixels_b8=pixels,
                                    grid=Grid(UTM47, Affine(30, 0, X0, 0, -30, Y0), grid.shape),
                                    acquired_at=dt.datetime(2023, 3, 14, tzinfo=UTC), wrs_path=135, wrs_row=40,
                                    cloud_cover_percent=0.0)


# --------------------------------------------------------------------------- Sentinel-2


@pytest.mark.parametrize("level,as_zip", [("L1C", True), ("L2A", False), ("L2A", True)])
def test_sentinel2_round_trip(tmp_path, level, as_zip):
    grid = Grid(UTM47, Affine(10, 0, X0, 0, -10, Y0), (30, 36))
    reflectance = np.random.default_rng(2).uniform(0.05, 0.8, grid.shape).astype("float32")
    reflectance[-4:, -4:] = np.nan
    cloud = shadow = None
    if level == "L2A":
        cloud = np.zeros(grid.shape, bool)
        cloud[2:8, 4:10] = True
        shadow = np.zeros(grid.shape, bool)
        shadow[12:16, 0:6] = True
    when = dt.datetime(2023, 8, 2, 4, 37, 11, 523000, tzinfo=UTC)
    path = layouts.write_sentinel2_scene(
        tmp_path, pixels_b08=reflectance, grid=grid, acquired_at=when, spacecraft="Sentinel-2A", mgrs_tile="47RLQ",
        relative_orbit=62, cloud_cover_percent=31.25, level=level, cloud_mask=cloud, shadow_mask=shadow, as_zip=as_zip)
    name = f"S2A_MSI{level}_20230802T043711_N0509_R062_T47RLQ_"
    assert path.name.startswith(name) and path.suffix == (".zip" if as_zip else ".SAFE")
    found = _scan_one(tmp_path)
    scene = found.scene
    assert found.reader == "sentinel-2" and found.platform == "sentinel-2a" and found.scene_id.startswith(name)
    assert found.acquired_at == when and found.cloud_cover_percent == 31.25
    m = scene.metadata
    assert (m["processing_level"], m["processing_baseline"], m["band8_offset_dn"], m["quantification_value"]) == (
        level, "05.09", -1000.0, 10000.0)
    assert scene.grid == grid and footprint(scene) == "mgrs_tile=47RLQ" and m["relative_orbit"] == 62
    _assert_footprint_covers(found, grid)
    unusable = np.isnan(reflectance)
    if level == "L2A":
        unusable |= _upsample(_block(cloud | shadow, "any"), grid.shape)
    expected = np.where(unusable, np.nan, reflectance)
    _check_loads(_reader("sentinel-2"), scene, grid, expected, atol=0.5e-4 + 1e-6)  # half a DN


def test_sentinel2_scl_classes():
    refl = np.full((4, 6), 0.1)
    refl[:, 2:4] = 0.6
    refl[2:, 4:] = np.nan
    cloud = np.zeros((4, 6), bool)
    cloud[0, 0] = True
    assert layouts.sentinel2_scl(refl, cloud=cloud).tolist() == [[9, 11, 5], [5, 11, 0]]


def test_sentinel2_tile_must_match_the_grid_zone(tmp_path):
    grid = Grid("EPSG:32646", Affine(10, 0, 700000, 0, -10, Y0), (4, 4))
    with pytest.raises(ValueError, match="zone 46"):
        layouts.write_sentinel2_scene(tmp_path, pixels_b08=np.zeros((4, 4)), grid=grid,
                                      acquired_at=dt.datetime(2023, 8, 2, tzinfo=UTC), mgrs_tile="47RLQ",
                                      relative_orbit=62, cloud_cover_percent=0.0)


# --------------------------------------------------------------------------- Sentinel-1


def test_sentinel1_rtc_round_trip(tmp_path):
    grid = Grid(UTM47, Affine(10, 0, X0, 0, -10, Y0), (30, 36))
    amplitude = np.random.default_rng(3).gamma(2.0, 0.1, grid.shape).astype("float32") + 0.01
    amplitude[:3] = np.nan
    when = dt.datetime(2023, 6, 10, 23, 45, 20, tzinfo=UTC)
    absolute = layouts.sentinel1_absolute_orbit("S1A", 20, when)
    assert s1_format.relative_orbit_from_absolute("S1A", absolute) == 20
    path = layouts.write_sentinel1_rtc(tmp_path, pixels_amplitude=amplitude, grid=grid, acquired_at=when,
                                       platform="S1A", relative_orbit=20, absolute_orbit=absolute,
                                       pass_direction="ASCENDING", polarisation="VV")
    assert path.name.startswith(f"S1A_IW_GRDH_1SDV_20230610T234520_20230610T234545_{absolute:06d}_")
    assert path.name.endswith("_Orb_TC_VV.tif")
    found = _scan_one(tmp_path)
    scene = found.scene
    assert (found.reader, found.sensor, found.platform, found.acquired_at) == (
        "sentinel-1", "sentinel-1", "sentinel-1a", when)
    assert found.cloud_cover_percent is None and scene.grid == grid
    assert scene.metadata["polarisation"] == "VV" and scene.metadata["absolute_orbit"] == absolute
    assert footprint(scene) == "relative_orbit=20"
    _check_loads(_reader("sentinel-1"), scene, grid, amplitude, atol=0)


def test_sentinel1_orbits_must_agree(tmp_path):
    # The reference: S1A absolute orbit 46642 (5 Jan 2023) is relative orbit 20.
    assert layouts.sentinel1_absolute_orbit("S1A", 20, dt.datetime(2023, 1, 5, 23, 45, tzinfo=UTC)) == 46642
    grid = Grid(UTM47, Affine(10, 0, X0, 0, -10, Y0), (4, 4))
    with pytest.raises(ValueError, match="relative orbit 20"):
        layouts.write_sentinel1_rtc(tmp_path, pixels_amplitude=np.ones((4, 4)), grid=grid,
                                    acquired_at=dt.datetime(2023, 1, 5, tzinfo=UTC), relative_orbit=21,
                                    absolute_orbit=46642, pass_direction="ASCENDING")


def test_sentinel1_grd_safe_round_trip(tmp_path):
    shape = (60, 50)

    def lonlat(row, col):
        return 96.47 + 0.00103 * col + 0.00012 * row, 29.25 + 0.00081 * row - 0.00008 * col

    gcps = [GroundControlPoint(row=r, col=c, x=lonlat(r, c)[0], y=lonlat(r, c)[1], z=3000.0)
            for r in range(0, shape[0] + 1, 20) for c in range(0, shape[1] + 1, 25)]
    dn = np.random.default_rng(4).uniform(50, 400, shape)
    when = dt.datetime(2023, 2, 10, 23, 45, 12, 345678, tzinfo=UTC)
    absolute = layouts.sentinel1_absolute_orbit("S1A", 20, when)
    path = layouts.write_sentinel1_grd_safe(tmp_path, measurements={"VH": dn, "VV": dn}, gcps=gcps,
                                            acquired_at=when, relative_orbit=20, absolute_orbit=absolute,
                                            pass_direction="ASCENDING", as_zip=True)
    assert path.suffix == ".zip" and path.name.startswith("S1A_IW_GRDH_1SDV_20230210T234512_20230210T234537_")
    found = _scan_one(tmp_path)
    m = found.scene.metadata
    assert found.scene_id == path.stem and found.acquired_at == when and found.platform == "sentinel-1a"
    assert (m["relative_orbit"], m["absolute_orbit"], m["pass_direction"], m["polarisations"], m["polarisation"]) == (
        20, absolute, "ASCENDING", ["VV", "VH"], "VV")
    assert m["band_member"].endswith(f"-vv-20230210t234512-20230210t234537-{absolute:06d}-"
                                     f"{path.stem.split('_')[7].lower()}-001.tiff")
    assert footprint(found.scene) == "relative_orbit=20"
    image = _reader("sentinel-1").load(found.scene)
    assert image.grid.crs.to_epsg() == 32647
    finite = image.pixels[np.isfinite(image.pixels)]
    assert finite.size > 0.3 * image.pixels.size and finite.min() >= 49 and finite.max() <= 401


# --------------------------------------------------------------------------- UAV


@pytest.mark.parametrize("crs,pixel", [(UTM47, 1.0), ("EPSG:4326", 1e-5)])
def test_uav_round_trip(tmp_path, crs, pixel):
    origin = (X0, Y0) if crs == UTM47 else (96.5, 29.3)
    grid = Grid(crs, Affine(pixel, 0, origin[0], 0, -pixel, origin[1]), (30, 36))
    grey = np.random.default_rng(5).integers(10, 250, grid.shape).astype("float32")
    grey[:, :4] = np.nan
    when = dt.datetime(2023, 9, 3, 5, 12, tzinfo=UTC)
    path = layouts.write_uav_orthomosaic(tmp_path, pixels=grey, grid=grid, acquired_at=when,
                                         site="Gangrigab terminus")
    assert path.name == "Gangrigab-terminus_20230903_ortho.tif" and path.with_suffix(".json").is_file()
    with rasterio.open(path) as src:
        assert src.count == 4 and src.dtypes[0] == "uint8" and src.colorinterp[3].name == "alpha"
    found = _scan_one(tmp_path)
    scene = found.scene
    assert (found.reader, found.sensor, found.platform, found.acquired_at) == ("uav", "uav", "DJI M300 RTK", when)
    assert scene.metadata["site"] == "Gangrigab terminus" and footprint(scene) == "site=Gangrigab terminus"
    assert scene.grid == grid and scene.metadata["time_source"].startswith("sidecar")
    _check_loads(_reader("uav"), scene, grid, grey, atol=0)


# --------------------------------------------------------------------------- determinism


def test_writers_are_deterministic(tmp_path):
    grid, pixels, cloud, _shadow = _landsat_inputs()
    when = dt.datetime(2023, 3, 14, 4, 21, 7, tzinfo=UTC)
    s2_grid = Grid(UTM47, Affine(10, 0, X0, 0, -10, Y0), (8, 8))
    for root in (tmp_path / "a", tmp_path / "b"):
        layouts.write_landsat_scene(root, pixels_b8=pixels, grid=grid, acquired_at=when, wrs_path=135, wrs_row=40,
                                    cloud_cover_percent=5.0, cloud_mask=cloud, as_tar=True)
        layouts.write_sentinel2_scene(root, pixels_b08=np.full((8, 8), 0.2), grid=s2_grid, acquired_at=when,
                                      mgrs_tile="47RLQ", relative_orbit=62, cloud_cover_percent=0.0, level="L2A",
                                      as_zip=True)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
