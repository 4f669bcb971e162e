"""Sentinel-2 L1C/L2A: SAFE folders and zips, baseline offset, SCL clouds, windowed loading."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import rasterio
from affine import Affine

from gvfuse.errors import MetadataError
from gvfuse.formats import sentinel2
from gvfuse.model import Grid
from gvfuse_plugins.readers import Sentinel2Reader
from tests.helpers.scenes import (
    S2_L1C,
    S2_L2A,
    make_s2_safe,
    s2_product_xml,
    zip_folder,
)


def _band8(safe):
    return next(safe.rglob("*_B08*.jp2"))


@pytest.mark.parametrize("level,product", [("L1C", S2_L1C), ("L2A", S2_L2A)])
@pytest.mark.parametrize("as_zip", [False, True])
def test_detect_and_open_folder_and_zip(tmp_path, level, product, as_zip):
    path = make_s2_safe(tmp_path, level)
    if as_zip:
        path = zip_folder(path)
    assert Sentinel2Reader.detect(path)
    scene = Sentinel2Reader().open(path)
    assert scene.scene_id == product and scene.platform == "sentinel-2b" and scene.sensor == "sentinel-2"
    assert scene.acquired_at == dt.datetime(2023, 7, 15, 4, 37, 9, 24000, tzinfo=dt.timezone.utc)
    assert scene.cloud_cover_percent == 7.5
    m = scene.metadata
    assert (m["processing_level"], m["processing_baseline"], m["mgrs_tile"], m["relative_orbit"]) == (
        level, "05.09", "47RLQ", 33)
    assert m["crs"] == "EPSG:32647" and m["resolution_m"] == 10.0 and m["band8_offset_dn"] == -1000.0
    assert m["band_member"].endswith("_B08_10m.jp2" if level == "L2A" else "_B08.jp2")
    assert (m["scl_member"] is not None) == (level == "L2A")
    image = Sentinel2Reader().load(scene)
    assert image.pixels.shape == (300, 300)


def test_jp2_is_real_jpeg2000(s2_l1c):
    with rasterio.open(_band8(s2_l1c)) as src:
        assert src.driver == "JP2OpenJPEG"


def test_offset_applied_and_nodata_nan(s2_l1c):
    reader = Sentinel2Reader()
    image = reader.load(reader.open(s2_l1c))
    with rasterio.open(_band8(s2_l1c)) as src:
        dn = src.read(1).astype("float32")
    expected = (dn - 1000) / 10000
    valid = dn != 0
    np.testing.assert_allclose(image.pixels[valid], expected[valid], rtol=1e-6)
    assert np.isnan(image.pixels[-5:, -5:]).all()


def test_no_offset_before_baseline_04(tmp_path):
    safe = make_s2_safe(tmp_path, "L1C", baseline="03.01", offset=None)
    reader = Sentinel2Reader()
    scene = reader.open(safe)
    assert scene.metadata["band8_offset_dn"] == 0.0
    with rasterio.open(_band8(safe)) as src:
        dn = src.read(1, window=((0, 10), (0, 10))).astype("float32")
    np.testing.assert_allclose(reader.load(scene).pixels[:10, :10], dn / 10000, rtol=1e-6)


def test_missing_offset_from_baseline_04_is_an_error(tmp_path):
    safe = make_s2_safe(tmp_path, "L1C", baseline="05.09", offset=None)
    with pytest.raises(MetadataError) as err:
        Sentinel2Reader().open(safe)
    assert err.value.field == "Radiometric_Offset_List" and "MTD_MSIL1C.xml" in str(err.value)


def test_scl_clouds_become_nan_snow_kept(s2_l2a):
    reader = Sentinel2Reader()
    pixels = reader.load(reader.open(s2_l2a)).pixels
    assert np.isnan(pixels[0:50, 0:50]).all()  # cloud high (SCL 9), 20 m rows 0-24
    assert np.isnan(pixels[100:120, 200:240]).all()  # cloud shadow (3)
    assert np.isnan(pixels[200:220, 0:20]).all()  # thin cirrus (10)
    assert np.isfinite(pixels[60:90, 60:140]).all()  # vegetation (4)
    assert np.isfinite(pixels[150:250, 160:290]).all()  # snow/ice (11) stays
    assert sentinel2.scl_unusable(np.arange(12)).nonzero()[0].tolist() == [0, 3, 8, 9, 10]


def test_load_onto_smaller_grid_equals_direct_read_zip(tmp_path):
    safe = make_s2_safe(tmp_path, "L1C")
    with rasterio.open(_band8(safe)) as src:
        direct = src.read(1, window=((150, 170), (30, 55))).astype("float32")
    scene = Sentinel2Reader().open(zip_folder(safe))
    grid = Grid("EPSG:32647", Affine(10, 0, 255000 + 300, 0, -10, 3245000 - 1500), (20, 25))
    image = Sentinel2Reader().load(scene, grid)
    np.testing.assert_allclose(image.pixels, (direct - 1000) / 10000, rtol=1e-6)


def test_missing_band8_names_it(tmp_path):
    safe = make_s2_safe(tmp_path, "L2A")
    _band8(safe).unlink()
    with pytest.raises(MetadataError) as err:
        Sentinel2Reader().open(safe)
    assert err.value.field == "B08"


@pytest.mark.parametrize("element", ["PROCESSING_BASELINE", "PRODUCT_START_TIME", "SPACECRAFT_NAME",
                                     "Cloud_Coverage_Assessment", "QUANTIFICATION_VALUE"])
def test_missing_element_names_file_and_field(tmp_path, element):
    xml = s2_product_xml("L1C", S2_L1C)
    start, end = xml.index(f"<{element}"), xml.index(f"</{element}>") + len(element) + 3
    safe = make_s2_safe(tmp_path, "L1C", product_xml=xml[:start] + xml[end:])
    with pytest.raises(MetadataError) as err:
        Sentinel2Reader().open(safe)
    assert err.value.field == element and "MTD_MSIL1C.xml" in str(err.value)


def test_missing_tile_epsg(tmp_path):
    safe = make_s2_safe(tmp_path, "L1C")
    tile = next(safe.rglob("MTD_TL.xml"))
    tile.write_text(tile.read_text().replace("<HORIZONTAL_CS_CODE>EPSG:32647</HORIZONTAL_CS_CODE>", ""))
    with pytest.raises(MetadataError) as err:
        Sentinel2Reader().open(safe)
    assert err.value.field == "HORIZONTAL_CS_CODE" and "MTD_TL.xml" in str(err.value)


def test_product_name_parts():
    parts = sentinel2.parse_product_name(S2_L1C + ".SAFE")
    assert parts["tile"] == "47RLQ" and parts["baseline"] == "0509" and parts["level"] == "L1C"
