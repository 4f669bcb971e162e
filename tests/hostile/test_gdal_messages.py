"""A CRS PROJ does not know is gvfuse's one line on standard error, and nothing else.

GDAL prints its own ``ERROR 1: PROJ: internal_proj_create_from_database: crs not found`` on the process's
standard error (file descriptor 2, below Python's ``sys.stderr``) when a CRS is parsed outside a
``rasterio.Env``: a second line before gvfuse's own. ``capfd`` sees what GDAL writes there, the command's
own output is CliRunner's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gvfuse.cli import main
from gvfuse.errors import MetadataError
from gvfuse.formats.sentinel2 import parse_tile_metadata
from tests.helpers.scenes import landsat_groups, make_landsat_folder, make_s2_safe

PRODUCT = ('id = "p"\ntitle = "t"\ndescription = "d"\nlicense = "CC0-1.0"\n[area]\nwest_deg = 96.4\n'
           'south_deg = 29.1\neast_deg = 96.5\nnorth_deg = 29.2\n[grid]\ncrs = "EPSG:999999"\nresolution_m = 30\n'
           '[time]\nfirst_month = "2023-01"\nlast_month = "2023-02"\n')
RUN = ('product = "product.toml"\ninput_dir = "scenes"\noutput_dir = "out"\n[sensors.landsat]\n'
       '[weighting]\nname = "inverse-variance"\n')


def _only_gvfuse_line(args: list[object], capfd: pytest.CaptureFixture[str]) -> str:
    """The command fails with exit 1 and one ``gvfuse: error:`` line, and nothing reaches file descriptor 2."""
    capfd.readouterr()
    result = CliRunner().invoke(main, [str(a) for a in args])
    written = capfd.readouterr()
    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("gvfuse: error: "), line
    assert written.err == "" and written.out == "", written.err  # GDAL's own "ERROR 1: PROJ: ..." line
    return line


@pytest.fixture
def unknown_crs_run(tmp_path: Path) -> Path:
    (tmp_path / "scenes").mkdir()
    (tmp_path / "product.toml").write_text(PRODUCT)
    (tmp_path / "run.toml").write_text(RUN)
    return tmp_path / "run.toml"


@pytest.mark.parametrize("command", [["pairs"], ["run", "--dry-run"], ["run", "--workers", "0"]])
def test_an_unknown_product_crs_is_one_line_without_gdals_own(unknown_crs_run, command, capfd):
    line = _only_gvfuse_line([*command, unknown_crs_run], capfd)
    assert "product.toml [grid.crs]: 'EPSG:999999' is not a coordinate reference system PROJ knows" in line
    assert not (unknown_crs_run.parent / "out").exists()


def test_scan_with_an_unknown_product_crs_is_one_line_too(unknown_crs_run, capfd):
    line = _only_gvfuse_line(["scan", unknown_crs_run.parent / "scenes", "--product",
                              unknown_crs_run.parent / "product.toml"], capfd)
    assert "[grid.crs]" in line


def test_an_mtl_utm_zone_99_is_one_line_without_gdals_own(tmp_path, capfd):
    groups = landsat_groups()
    groups["PROJECTION_ATTRIBUTES"]["UTM_ZONE"] = "99"
    folder = make_landsat_folder(tmp_path, groups=groups)
    line = _only_gvfuse_line(["track", folder, folder, "-o", tmp_path / "v.tif"], capfd)
    assert "_MTL.txt [UTM_ZONE]" in line and "within 1..60" in line
    assert not (tmp_path / "v.tif").exists()


def test_a_sentinel_2_tile_in_an_unknown_epsg_code_is_the_readers_error_and_nothing_else(tmp_path, capfd):
    safe = make_s2_safe(tmp_path)
    [tile] = safe.glob("GRANULE/*/MTD_TL.xml")
    text = tile.read_text(encoding="utf-8")
    assert "EPSG:32647" in text
    capfd.readouterr()
    with pytest.raises(MetadataError, match="unusable tile geometry") as err:
        parse_tile_metadata(text.replace("EPSG:32647", "EPSG:99999").encode(), tile)
    assert err.value.field == "Geoposition"
    assert capfd.readouterr().err == ""
