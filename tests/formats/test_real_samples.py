"""The parsers against unmodified provider metadata in ``../shared/data/metadata-samples`` (skipped when absent)."""

from __future__ import annotations

import datetime as dt

import pytest

from gvfuse.formats import landsat, sentinel1, sentinel2
from gvfuse_plugins.readers import Sentinel2Reader
from tests.helpers.scenes import SAMPLES, make_s2_safe

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"provider metadata samples not found at {SAMPLES}")

L8 = "LC08_L1TP_016030_20140704_20200911_02_T1"


@pytest.mark.parametrize("suffix", ["_MTL.txt", "_MTL.json"])
def test_landsat_mtl_both_flavours(suffix):
    path = SAMPLES / "landsat-c2l1" / f"{L8}{suffix}"
    meta = landsat.metadata_from_mtl(landsat.parse_mtl(path.name, path.read_bytes(), path), path)
    assert meta.product.product_id == L8 and meta.spacecraft == "LANDSAT_8"
    assert meta.acquired_at == dt.datetime(2014, 7, 4, 15, 51, 14, 621305, tzinfo=dt.timezone.utc)
    assert meta.cloud_cover_percent == 33.6 and meta.crs_epsg == 32618
    assert meta.band8_grid.shape == (16021, 15801) and meta.band8_grid.transform.c == 217800.0 - 7.5


def test_level2_mtl_is_refused_for_band8_naming_the_field():
    path = SAMPLES / "landsat-c2l1" / "LC09_L2SP_010065_20220129_20220131_02_T1_MTL.txt"
    groups = landsat.parse_mtl(path.name, path.read_bytes(), path)
    with pytest.raises(Exception) as err:
        landsat.metadata_from_mtl(groups, path)
    assert path.name in str(err.value)


@pytest.mark.parametrize("level,baseline,cloud,epsg", [("l1c", "05.10", 16.896532105784, 32646),
                                                        ("l2a", "05.09", 15.047897000000003, 32601)])
def test_sentinel2_product_and_tile(level, baseline, cloud, epsg):
    folder = SAMPLES / f"sentinel2-{level}"
    product = sentinel2.parse_product_metadata((folder / f"MTD_MSI{level.upper()}.xml").read_bytes(), folder)
    assert product["processing_baseline"] == baseline and product["cloud_cover_percent"] == cloud
    assert product["band8_offset_dn"] == -1000.0 and product["quantification_value"] == 10000.0
    assert product["spacecraft"] == "Sentinel-2A"
    tile_epsg, grid = sentinel2.parse_tile_metadata((folder / "MTD_TL.xml").read_bytes(), folder)
    assert tile_epsg == epsg and grid.shape == (10980, 10980) and grid.pixel_size_m == (10.0, 10.0)


def test_real_l1c_metadata_inside_a_fixture_safe(tmp_path):
    # The real MTD_MSIL1C.xml in our SAFE layout: the reader takes the real file's values.
    real = (SAMPLES / "sentinel2-l1c" / "MTD_MSIL1C.xml").read_text(encoding="utf-8")
    safe = make_s2_safe(tmp_path, "L1C", product_xml=real)
    scene = Sentinel2Reader().open(safe)
    assert scene.scene_id == "S2A_MSIL1C_20240101T102431_N0510_R065_T30NWM_20240101T122107"
    assert scene.metadata["processing_baseline"] == "05.10" and scene.metadata["relative_orbit"] == 65
    assert scene.metadata["mgrs_tile"] == "30NWM"


def test_sentinel1_manifest_and_annotation():
    folder = SAMPLES / "sentinel1-grd"
    manifest = sentinel1.parse_manifest((folder / "manifest.safe").read_bytes(), folder / "manifest.safe")
    assert (manifest["platform"], manifest["pass_direction"], manifest["relative_orbit"]) == (
        "sentinel-1a", "ASCENDING", 59)
    assert manifest["polarisations"] == ("VV", "VH") and manifest["mission_data_take_id"] == 302867
    annotation = next(folder.glob("s1a-iw-grd-vv-*.xml"))
    info = sentinel1.parse_annotation(annotation.read_bytes(), annotation)
    assert info["polarisation"] == "VV" and info["pixel_spacing_m"] == 10.0
    assert info["start_time"] == manifest["start_time"]
