"""UAV orthomosaics (sidecar, tag, name dates; RGBA) and the generic GeoTIFF fallback."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import rasterio
from affine import Affine

from gvfuse.errors import MetadataError
from gvfuse.formats.geotiff import date_from_name
from gvfuse.model import Grid
from gvfuse_plugins.readers import GeoTiffReader, UavReader
from tests.helpers.scenes import textured, write_raster

UTM = Affine(0.1, 0, 260000, 0, -0.1, 3240000)  # 10 cm drone pixels


def _ortho(path, *, bands=4, transform=UTM, crs="EPSG:32647", tags=None):
    rgb = np.stack([textured(80, 90, seed=s, low=1, high=250).astype("uint8") for s in (1, 2, 3)])
    if bands == 4:
        alpha = np.full((1, 80, 90), 255, "uint8")
        alpha[0, :, :10] = 0
        rgb = np.concatenate([rgb, alpha])
    write_raster(path, rgb, transform, crs=crs)
    if tags:
        with rasterio.open(path, "r+") as dst:
            dst.update_tags(**tags)
    return path


def test_sidecar_json_wins(tmp_path):
    path = _ortho(tmp_path / "site3_20230710.tif", tags={"TIFFTAG_DATETIME": "2023:08:01 10:00:00"})
    (tmp_path / "site3_20230710.json").write_text(json.dumps(
        {"acquired_at": "2023-07-15T11:30:00+06:00", "platform": "DJI M300 RTK"}))
    assert UavReader.detect(path)
    scene = UavReader().open(path)
    assert scene.acquired_at == dt.datetime(2023, 7, 15, 5, 30, tzinfo=dt.timezone.utc)
    assert scene.platform == "DJI M300 RTK" and scene.metadata["time_source"] == "sidecar site3_20230710.json"


def test_sidecar_txt(tmp_path):
    path = _ortho(tmp_path / "survey.tif")
    (tmp_path / "survey.txt").write_text("# flown by the field team\n2023-07-20\n")
    assert UavReader().open(path).acquired_at == dt.datetime(2023, 7, 20, tzinfo=dt.timezone.utc)


def test_tag_then_name(tmp_path):
    tagged = _ortho(tmp_path / "a_20230101.tif", tags={"TIFFTAG_DATETIME": "2023:08:01 10:00:00"})
    scene = UavReader().open(tagged)
    assert scene.acquired_at == dt.datetime(2023, 8, 1, 10, tzinfo=dt.timezone.utc)
    assert "assumed UTC" in scene.metadata["time_source"]
    named = _ortho(tmp_path / "ortho_2023-09-02.tif")
    assert UavReader().open(named).acquired_at == dt.datetime(2023, 9, 2, tzinfo=dt.timezone.utc)


def test_no_date_anywhere_is_a_metadata_error(tmp_path):
    path = _ortho(tmp_path / "ortho.tif")
    with pytest.raises(MetadataError) as err:
        UavReader().open(path)
    assert err.value.field == "acquired_at" and "ortho.tif" in str(err.value)


def test_bad_sidecar_names_it(tmp_path):
    path = _ortho(tmp_path / "ortho_20230101.tif")
    (tmp_path / "ortho_20230101.json").write_text('{"acquired_at": "mid July"}')
    with pytest.raises(MetadataError) as err:
        UavReader().open(path)
    assert err.value.field == "acquired_at" and "ortho_20230101.json" in str(err.value)


def test_any_crs_green_band_alpha_mask_and_windowed_warp(tmp_path):
    # An orthomosaic in geographic coordinates, loaded onto a UTM grid.
    lonlat = Affine(1e-6, 0, 96.5, 0, -1e-6, 29.3)
    path = _ortho(tmp_path / "dji_20230715.tif", transform=lonlat, crs="EPSG:4326")
    reader = UavReader()
    scene = reader.open(path)
    native = reader.load(scene)
    with rasterio.open(path) as src:
        green = src.read(2).astype("float32")
    np.testing.assert_array_equal(native.pixels[:, 10:], green[:, 10:])
    assert np.isnan(native.pixels[:, :10]).all()  # alpha 0
    x0, y0 = rasterio.warp.transform("EPSG:4326", "EPSG:32647", [96.50002], [29.29998])
    grid = Grid("EPSG:32647", Affine(0.5, 0, x0[0], 0, -0.5, y0[0]), (6, 8))
    warped = reader.load(scene, grid)
    assert warped.grid == grid and np.isfinite(warped.pixels).mean() > 0.5


def test_generic_geotiff_is_the_fallback(tmp_path):
    path = tmp_path / "velocity_reference_2023-03-01.tif"
    write_raster(path, textured(20, 20, seed=4).astype("float32"), Affine(30, 0, 255000, 0, -30, 3245000))
    assert GeoTiffReader.detect(path) and not UavReader.detect(path)
    scene = GeoTiffReader().open(path)
    assert scene.acquired_at == dt.datetime(2023, 3, 1, tzinfo=dt.timezone.utc)
    assert GeoTiffReader().load(scene).pixels.shape == (20, 20)
    undated = tmp_path / "dem.tif"
    write_raster(undated, textured(5, 5, seed=4), Affine(30, 0, 255000, 0, -30, 3245000))
    with pytest.raises(MetadataError) as err:
        GeoTiffReader().open(undated)
    assert err.value.field == "file name"


@pytest.mark.parametrize("name,expected", [
    ("LC08_L1TP_135039_20230105_20230110_02_T1_B8.TIF", dt.datetime(2023, 1, 5, tzinfo=dt.timezone.utc)),
    ("x_20230105T101112.tif", dt.datetime(2023, 1, 5, 10, 11, 12, tzinfo=dt.timezone.utc)),
    ("a_2023_07_02.tif", dt.datetime(2023, 7, 2, tzinfo=dt.timezone.utc)),
    ("id_123456789012.tif", None),
    ("d_20231345.tif", None),
])
def test_dates_from_names(name, expected):
    assert date_from_name(name) == expected
