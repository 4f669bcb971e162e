"""``gvfuse scan``: scenes found in a provider-style download folder, skipped files with reasons, JSON output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from affine import Affine
from click.testing import CliRunner

import gvfuse.plugins
import gvfuse_plugins.readers as readers_module
from gvfuse.cli.scan import scan_command
from gvfuse.pipeline.scan import (
    SKIP_DUPLICATE,
    SKIP_MALFORMED,
    SKIP_OUTSIDE,
    SKIP_UNRECOGNISED,
    choose_reader,
    scan,
)
from gvfuse.plugins import PluginInfo, PluginSet
from gvfuse.product import load_product
from tests.helpers.scenes import (
    BILLION_LAUGHS,
    LANDSAT_ID,
    S1_PRODUCT,
    S2_L1C,
    S2_L2A,
    make_landsat_folder,
    make_landsat_tar,
    make_s1_safe,
    make_s2_safe,
    textured,
    write_raster,
    zip_folder,
)

READERS = readers_module.READERS


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("downloads")
    make_landsat_folder(root / "landsat")
    make_landsat_tar(root / "landsat-tar", product_id="LC08_L1TP_135040_20230123_20230124_02_T1")
    make_s2_safe(root / "s2", "L1C")
    zip_folder(make_s2_safe(root / "s2zip", "L2A"), root / f"{S2_L2A}.zip")
    shutil.rmtree(root / "s2zip")  # only the zip, as downloaded
    make_s1_safe(root / "s1")
    uav = root / "uav"
    uav.mkdir()
    write_raster(uav / "ortho_site1.tif", textured(20, 20, seed=1), Affine(0.1, 0, 260000, 0, -0.1, 3240000))
    (uav / "ortho_site1.json").write_text('{"acquired_at": "2023-07-15"}')
    # A dated GeoTIFF far outside the product area (UTM 47N, ~36 deg N).
    write_raster(root / "elsewhere_20230301.tif", textured(10, 10, seed=2), Affine(30, 0, 700000, 0, -30, 4000000))
    broken = make_s2_safe(root / "broken", "L1C", product=S2_L1C.replace("R033", "R034"), product_xml=BILLION_LAUGHS)
    assert broken.exists()
    (root / "notes.md").write_text("download log")
    return root


def test_scan_finds_every_scene_once(downloads):
    report = scan(downloads, READERS)
    ids = sorted(s.scene_id for s in report.scenes)
    assert ids == sorted([LANDSAT_ID, "LC08_L1TP_135040_20230123_20230124_02_T1", S2_L2A, S1_PRODUCT,
                          "ortho_site1", "elsewhere_20230301"])
    # the L1C product of the same acquisition is a copy: the L2A (with its cloud classification) is kept
    (copy,) = [k for k in report.skipped if k.reason == SKIP_DUPLICATE]
    assert S2_L1C in copy.path and f"same acquisition as {S2_L2A}, which is kept: higher preference" in copy.message
    by_id = {s.scene_id: s for s in report.scenes}
    assert by_id[S2_L2A].reader == "sentinel-2" and by_id[S2_L2A].path.endswith(".zip")
    assert by_id["ortho_site1"].reader == "uav"
    assert by_id[S1_PRODUCT].crs is None and by_id[S1_PRODUCT].resolution_m == 10.0
    # Nothing inside a SAFE or a Landsat folder is reported as a loose file.
    assert not any(".SAFE/" in k.path or f"{LANDSAT_ID}/" in k.path for k in report.skipped)
    reasons = {Path(k.path).name: k.reason for k in report.skipped}
    assert reasons["notes.md"] == SKIP_UNRECOGNISED
    assert "ortho_site1.json" not in reasons  # a sidecar belongs to its orthomosaic
    malformed = next(k for k in report.skipped if k.reason == SKIP_MALFORMED)
    assert "MTD_MSIL1C.xml" in malformed.message and "DOCTYPE" in malformed.message


def test_scene_outside_the_product_area_is_reported_not_loaded(downloads, monkeypatch):
    loaded = []
    monkeypatch.setattr(readers_module.GeoTiffReader, "load", lambda self, *a, **k: loaded.append(a))
    report = scan(downloads, READERS, load_product("gangrigab-2023"))
    outside = [k for k in report.skipped if k.reason == SKIP_OUTSIDE]
    assert [Path(k.path).name for k in outside] == ["elsewhere_20230301.tif"] and not loaded
    assert all(s.overlap_fraction is not None and 0 < s.overlap_fraction < 1 for s in report.scenes)


def test_priority_decides_between_detecting_readers(downloads):
    assert choose_reader(downloads / "uav" / "ortho_site1.tif", READERS).name == "uav"
    assert choose_reader(downloads / "elsewhere_20230301.tif", READERS).name == "geotiff"
    assert choose_reader(downloads / "notes.md", READERS) is None


@pytest.fixture
def registered(monkeypatch):
    plugins = PluginSet()
    plugins.add(readers_module, PluginInfo("readers", "gvfuse", "test", "gvfuse_plugins.readers"))
    monkeypatch.setattr(gvfuse.plugins, "get_plugins", lambda: plugins)
    return plugins


def test_cli_json(downloads, registered):
    result = CliRunner().invoke(scan_command, [str(downloads), "--json", "--product", "gangrigab-2023"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["product"] == "gangrigab-2023"
    landsat = next(s for s in data["scenes"] if s["scene_id"] == LANDSAT_ID)
    assert landsat["acquired_at"] == "2023-01-15T04:21:33.123456Z"
    assert (landsat["sensor"], landsat["platform"], landsat["crs"], landsat["resolution_m"]) == (
        "landsat", "landsat-9", "EPSG:32647", 15.0)
    assert landsat["cloud_cover_percent"] == 12.34 and landsat["overlap_fraction"] > 0
    assert {k["reason"] for k in data["skipped"]} == {SKIP_UNRECOGNISED, SKIP_MALFORMED, SKIP_OUTSIDE, SKIP_DUPLICATE}


def test_cli_text_and_exit_status(downloads, registered, tmp_path):
    result = CliRunner().invoke(scan_command, [str(downloads)])
    assert result.exit_code == 0 and "6 scene(s)" in result.output and "malformed metadata" in result.output
    assert "duplicate - same acquisition as" in result.output
    missing = CliRunner().invoke(scan_command, [str(tmp_path / "nope")])
    assert missing.exit_code != 0
