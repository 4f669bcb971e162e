"""Landsat C2L1: product id, the three MTL flavours, QA_PIXEL masking, folder and .tar scenes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import rasterio
from affine import Affine

from gvfuse.errors import MetadataError
from gvfuse.formats import landsat
from gvfuse.formats.containers import Container
from gvfuse.model import Grid
from gvfuse_plugins.readers import LandsatReader
from tests.helpers.scenes import (
    LANDSAT_ID,
    landsat_groups,
    make_landsat_folder,
    make_landsat_tar,
    mtl_json,
    mtl_odl,
    mtl_xml,
)


def test_product_id_parts():
    pid = landsat.parse_product_id("LC08_L1TP_135039_20230105_20230110_02_T1")
    assert (pid.sensor, pid.satellite, pid.platform, pid.level) == ("OLI_TIRS", 8, "landsat-8", "L1TP")
    assert (pid.wrs_path, pid.wrs_row, pid.collection, pid.tier) == (135, 39, "02", "T1")
    assert pid.acquired_on == dt.date(2023, 1, 5) and pid.processed_on == dt.date(2023, 1, 10)


@pytest.mark.parametrize("bad", ["LC08_L1TP_135039_20230105_20230110_02", "LC08_L1TP_135039_20231305_20230110_02_T1",
                                 "S2A_MSIL1C_20240101T102431"])
def test_bad_product_id_names_the_field(bad):
    with pytest.raises(MetadataError) as err:
        landsat.parse_product_id(bad, source="x_MTL.txt")
    assert err.value.field == "LANDSAT_PRODUCT_ID" and "x_MTL.txt" in str(err.value)


@pytest.mark.parametrize("flavour,writer", [("txt", mtl_odl), ("json", mtl_json), ("xml", mtl_xml)])
def test_three_mtl_flavours_give_the_same_metadata(flavour, writer):
    groups = landsat_groups()
    text = writer(groups)
    meta = landsat.metadata_from_mtl(landsat.parse_mtl(f"{LANDSAT_ID}_MTL.{flavour}", text.encode(), "src"), "src")
    assert meta.product.product_id == LANDSAT_ID
    assert meta.spacecraft == "LANDSAT_9"
    assert meta.acquired_at == dt.datetime(2023, 1, 15, 4, 21, 33, 123456, tzinfo=dt.timezone.utc)
    assert meta.cloud_cover_percent == pytest.approx(12.34)
    assert meta.crs_epsg == 32647
    assert meta.band8_file == f"{LANDSAT_ID}_B8.TIF"
    # Corner coordinates are pixel centres: the grid edge is half a pixel further out.
    assert meta.band8_grid.transform.c == 255000.0 and meta.band8_grid.transform.f == 3245000.0
    assert meta.band8_grid.shape == (200, 200)


def test_json_values_are_strings_and_blanks_stripped():
    groups = landsat.parse_mtl_json(mtl_json(landsat_groups()), "src")
    assert groups["IMAGE_ATTRIBUTES"]["WRS_PATH"] == "135"
    assert groups["PRODUCT_CONTENTS"]["ORIGIN"] == "ImagecourtesyoftheU.S.GeologicalSurvey"


def test_qa_pixel_bits():
    qa = np.array([1 << 6, 1, 1 << 1, 1 << 3, 1 << 4, 1 << 5, 1 << 2, (1 << 5) | (1 << 6)], dtype="uint16")
    # clear, fill, dilated cloud, cloud, shadow, snow (kept: glaciers), cirrus (kept by default), snow+clear
    assert landsat.qa_pixel_unusable(qa).tolist() == [False, True, True, True, True, False, False, False]


@pytest.mark.parametrize("flavour", ["txt", "json", "xml"])
def test_reader_opens_folder_in_every_flavour(tmp_path, flavour):
    folder = make_landsat_folder(tmp_path, flavour=flavour)
    assert LandsatReader.detect(folder)
    scene = LandsatReader().open(folder)
    assert scene.scene_id == LANDSAT_ID and scene.platform == "landsat-9" and scene.sensor == "landsat"
    assert scene.metadata["wrs_path"] == 135 and scene.metadata["wrs_row"] == 40
    assert scene.metadata["crs"] == "EPSG:32647" and scene.metadata["resolution_m"] == 15.0
    assert scene.metadata["mtl_member"].endswith(f"_MTL.{flavour}")
    with rasterio.open(folder / f"{LANDSAT_ID}_B8.TIF") as src:
        assert scene.grid == Grid(src.crs, src.transform, (src.height, src.width))


def test_reader_opens_tar_and_loads_through_vsitar(tmp_path):
    tar_path = make_landsat_tar(tmp_path)
    assert LandsatReader.detect(tar_path)
    scene = LandsatReader().open(tar_path)
    assert scene.scene_id == LANDSAT_ID
    image = LandsatReader().load(scene)
    assert image.pixels.shape == (200, 200) and image.pixels.dtype == np.float32
    assert Container.open(tar_path).gdal_path("a.TIF").startswith("/vsitar/")


def test_clouds_and_shadows_become_nan(landsat_folder):
    reader = LandsatReader()
    image = reader.load(reader.open(landsat_folder))
    # QA cloud block rows/cols 0-19 at 30 m = 0-39 at 15 m; shadow rows 40-49, cols 60-79 at 30 m.
    assert np.isnan(image.pixels[0:40, 0:40]).all()
    assert np.isnan(image.pixels[80:100, 120:160]).all()
    clear = image.pixels[100:, 100:]
    assert np.isfinite(clear).all()
    with rasterio.open(landsat_folder / f"{LANDSAT_ID}_B8.TIF") as src:
        np.testing.assert_array_equal(clear, src.read(1)[100:, 100:].astype("float32"))


def test_load_onto_smaller_grid_equals_direct_read(landsat_folder):
    reader = LandsatReader()
    scene = reader.open(landsat_folder)
    # A 30 x 40 px window of the native grid, away from clouds.
    grid = Grid("EPSG:32647", Affine(15, 0, 255000 + 15 * 120, 0, -15, 3245000 - 15 * 110), (30, 40))
    image = reader.load(scene, grid)
    with rasterio.open(landsat_folder / f"{LANDSAT_ID}_B8.TIF") as src:
        direct = src.read(1, window=((110, 140), (120, 160))).astype("float32")
    np.testing.assert_allclose(image.pixels, direct, rtol=1e-6)


def test_missing_field_names_file_and_field(tmp_path):
    groups = landsat_groups()
    del groups["IMAGE_ATTRIBUTES"]["DATE_ACQUIRED"]
    folder = make_landsat_folder(tmp_path, groups=groups)
    with pytest.raises(MetadataError) as err:
        LandsatReader().open(folder)
    assert err.value.field == "DATE_ACQUIRED" and f"{LANDSAT_ID}_MTL.txt" in str(err.value)


@pytest.mark.parametrize("flavour,cut", [("txt", 0.5), ("json", 0.5), ("xml", 0.5)])
def test_truncated_mtl_is_a_metadata_error(tmp_path, flavour, cut):
    folder = make_landsat_folder(tmp_path, flavour=flavour)
    mtl = folder / f"{LANDSAT_ID}_MTL.{flavour}"
    text = mtl.read_text()
    mtl.write_text(text[: int(len(text) * cut)])
    with pytest.raises(MetadataError) as err:
        LandsatReader().open(folder)
    assert mtl.name in str(err.value) and err.value.field


def test_malformed_odl_line_names_the_line():
    with pytest.raises(MetadataError) as err:
        landsat.parse_mtl_odl("GROUP = LANDSAT_METADATA_FILE\n  this is not odl\nEND_GROUP = LANDSAT_METADATA_FILE\n",
                              "x_MTL.txt")
    assert err.value.field == "line 2"


def test_folder_without_mtl_is_not_detected(tmp_path):
    (tmp_path / "empty").mkdir()
    assert not LandsatReader.detect(tmp_path / "empty")
