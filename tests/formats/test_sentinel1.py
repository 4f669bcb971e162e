"""Sentinel-1 GRD SAFE (folder, zip) with the GCP warp, and terrain-corrected S1 GeoTIFFs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import transform as transform_points

from gvfuse.errors import MetadataError
from gvfuse.formats import sentinel1
from gvfuse.formats.loading import gcp_window_for_grid
from gvfuse.model import Grid
from gvfuse_plugins.readers import Sentinel1Reader
from tests.helpers.scenes import (
    S1_MARKER,
    S1_PRODUCT,
    S1_SHAPE,
    make_s1_safe,
    s1_gcps,
    s1_lonlat,
    textured,
    write_raster,
    zip_folder,
)


@pytest.mark.parametrize("as_zip", [False, True])
def test_open_safe_folder_and_zip(tmp_path, as_zip):
    path = make_s1_safe(tmp_path)
    if as_zip:
        path = zip_folder(path)
    assert Sentinel1Reader.detect(path)
    scene = Sentinel1Reader().open(path)
    assert scene.scene_id == S1_PRODUCT and scene.platform == "sentinel-1a" and scene.grid is None
    assert scene.acquired_at == dt.datetime(2023, 1, 5, 23, 45, 12, 345678, tzinfo=dt.timezone.utc)
    m = scene.metadata
    assert (m["pass_direction"], m["relative_orbit"], m["absolute_orbit"], m["mission_data_take_id"]) == (
        "ASCENDING", 20, 46642, 366389)
    assert m["polarisations"] == ["VV", "VH"] and m["polarisation"] == "VV"
    assert m["band_member"].endswith("-vv-20230105t234512-20230105t234537-046642-059735-001.tiff")
    assert m["resolution_m"] == 10.0
    assert m["footprint_lonlat_bounds"] == pytest.approx((96.45, 29.192, 96.5674, 29.2972))


def test_relative_orbit_formula_matches_the_manifest():
    # Manifest says relative orbit 20 for absolute orbit 46642 of S1A (and 59 for 39156 in the ESA sample).
    assert sentinel1.relative_orbit_from_absolute("S1A", 46642) == 20
    assert sentinel1.relative_orbit_from_absolute("S1A", 39156) == 59


def _utm_grid(resolution_m: float = 30.0) -> Grid:
    lon, lat = s1_lonlat(np.array([0, 0, S1_SHAPE[0], S1_SHAPE[0]]), np.array([0, S1_SHAPE[1], 0, S1_SHAPE[1]]))
    xs, ys = transform_points("EPSG:4326", "EPSG:32647", lon, lat)
    return Grid.from_bounds("EPSG:32647", min(xs), min(ys), max(xs), max(ys), resolution_m)


def test_gcp_warp_puts_the_marker_where_the_gcps_say(s1_safe):
    reader = Sentinel1Reader()
    scene = reader.open(s1_safe)
    grid = _utm_grid(30.0)
    image = reader.load(scene, grid)
    lon, lat = s1_lonlat(S1_MARKER[0] + 0.5, S1_MARKER[1] + 0.5)
    (x,), (y,) = transform_points("EPSG:4326", "EPSG:32647", [float(lon)], [float(lat)])
    col, row = ~grid.transform @ (x, y)
    peak_row, peak_col = np.unravel_index(np.nanargmax(image.pixels), grid.shape)
    # The marker (one 100 x 90 m pixel) lands within one 30 m output cell of its GCP position.
    assert abs(peak_row + 0.5 - row) <= 1.5 and abs(peak_col + 0.5 - col) <= 1.5
    assert np.isnan(image.pixels).any() and np.isfinite(image.pixels).sum() > 0.5 * image.pixels.size


def test_small_grid_reads_only_its_window(s1_safe):
    # A 600 m tile around the marker: the image window is a small part of the 120 x 100 image.
    lon, lat = s1_lonlat(S1_MARKER[0] + 0.5, S1_MARKER[1] + 0.5)
    (x,), (y,) = transform_points("EPSG:4326", "EPSG:32647", [float(lon)], [float(lat)])
    grid = Grid.from_bounds("EPSG:32647", x - 300, y - 300, x + 300, y + 300, 30.0)
    window = gcp_window_for_grid(s1_gcps(), rasterio.crs.CRS.from_epsg(4326), S1_SHAPE, grid, margin_px=2)
    assert window.width * window.height < 0.15 * S1_SHAPE[0] * S1_SHAPE[1]
    assert window.row_off <= S1_MARKER[0] < window.row_off + window.height
    assert window.col_off <= S1_MARKER[1] < window.col_off + window.width
    reader = Sentinel1Reader()
    full = reader.load(reader.open(s1_safe), grid)
    assert np.nanmax(full.pixels) > 1000  # the marker is inside the tile


def test_native_load_builds_a_utm_grid(s1_safe):
    reader = Sentinel1Reader()
    image = reader.load(reader.open(s1_safe))
    assert image.grid.crs.to_epsg() == 32647 and image.grid.pixel_size_m == pytest.approx((10.0, 10.0))
    assert np.nanmax(image.pixels) > 3000  # the marker, bilinearly resampled from ~100 m to 10 m


def test_terrain_corrected_geotiff(tmp_path):
    name = f"{S1_PRODUCT}_Orb_Cal_TC_VH.tif"
    data = textured(50, 60, seed=3).astype("float32") / 1000
    data[:2] = 0
    write_raster(tmp_path / name, data, Affine(30, 0, 255000, 0, -30, 3245000))
    assert Sentinel1Reader.detect(tmp_path / name)
    scene = Sentinel1Reader().open(tmp_path / name)
    assert scene.metadata["format"] == "terrain-corrected" and scene.metadata["polarisation"] == "VH"
    assert scene.metadata["relative_orbit"] == 20 and scene.platform == "sentinel-1a"
    assert scene.acquired_at == dt.datetime(2023, 1, 5, 23, 45, 12, tzinfo=dt.timezone.utc)
    image = Sentinel1Reader().load(scene)
    assert np.isnan(image.pixels[:2]).all() and np.isfinite(image.pixels[2:]).all()


def test_hyp3_name_and_polarisation_tag(tmp_path):
    path = tmp_path / "S1A_IW_20230117T234511_DVP_RTC30_G_gpuned_4C2D.tif"
    write_raster(path, textured(10, 10, seed=1), Affine(30, 0, 255000, 0, -30, 3245000))
    with rasterio.open(path, "r+") as dst:
        dst.update_tags(POLARIZATION="VV")
    scene = Sentinel1Reader().open(path)
    assert scene.metadata["polarisation"] == "VV" and scene.acquired_at.day == 17


def test_radar_geometry_tiff_alone_is_refused(s1_safe, tmp_path):
    loose = tmp_path / f"{S1_PRODUCT}.tif"
    loose.write_bytes(next((s1_safe / "measurement").glob("*vv*.tiff")).read_bytes())
    with pytest.raises(MetadataError) as err:
        Sentinel1Reader().open(loose)
    assert err.value.field == "crs"


@pytest.mark.parametrize("element", ["pass", "relativeOrbitNumber", "startTime", "productType"])
def test_missing_manifest_element_names_it(s1_safe, element):
    manifest = s1_safe / "manifest.safe"
    text = manifest.read_text()
    import re
    manifest.write_text(re.sub(rf"<[a-z0-9]+:{element}[^>]*>[^<]*</[a-z0-9]+:{element}>", "", text))
    with pytest.raises(MetadataError) as err:
        Sentinel1Reader().open(s1_safe)
    assert err.value.field == element and "manifest.safe" in str(err.value)
