"""A mask whose coordinates PROJ cannot take to the velocity grid's CRS: one line naming the mask file.

A GeoJSON polygon at latitude 95 (or a raster mask lying there) makes PROJ raise ``Invalid latitude``
when it is reprojected to UTM; ``gvfuse track --stable-mask``, ``gvfuse validate --stable-mask`` and a
run's ``stable_mask`` report it as the mask's :class:`InputError`, never as rasterio's ``CPLE_*`` traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from click.testing import CliRunner

from gvfuse.cli import main
from gvfuse.errors import InputError
from gvfuse.io.masks import load_mask
from gvfuse.io.raster import write_bands
from gvfuse.model import Grid
from gvfuse.testing import make_pair
from tests.helpers.cli import one_line_error
from tests.helpers.scenes import optical_pair_run

#: A polygon beyond the poles, in longitude/latitude.
BEYOND_THE_POLE = [[500, 95], [600, 95], [600, 99], [500, 99], [500, 95]]
WORDS = "cannot be reprojected onto the velocity grid (PROJ: utm: Invalid latitude)"


def _geojson(path: Path) -> Path:
    path.write_text(json.dumps({
        "type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:4326"}},
        "features": [{"type": "Feature", "properties": {},
                      "geometry": {"type": "Polygon", "coordinates": [BEYOND_THE_POLE]}}]}))
    return path


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pair = make_pair("optical", (64, 64), seed=5, max_speed_m_per_day=1.0, cloud_fraction=0.0)
    return pair.write_geotiffs(tmp_path_factory.mktemp("pair"))


def test_load_mask_names_the_file(tmp_path):
    mask = _geojson(tmp_path / "beyond.geojson")
    grid = Grid("EPSG:32647", Affine(15, 0, 250000, 0, -15, 3240000), (64, 64))
    with pytest.raises(InputError, match=r"cannot be reprojected onto the velocity grid \(PROJ: ") as err:
        load_mask(mask, grid, what="stable-ground mask")
    assert err.value.source == mask and err.value.field == "crs"


def test_a_raster_mask_lying_there_is_one_error_too(tmp_path):
    """PROJ gives infinite bounds for it rather than an error: the mask overlaps nothing."""
    grid = Grid("EPSG:4326", Affine(0.5, 0, 500.0, 0, -0.5, 99.0), (8, 8))
    mask = write_bands(tmp_path / "beyond.tif", {"mask": np.ones(grid.shape, "uint8")}, grid, dtype="uint8",
                       cog=False)
    velocity_grid = Grid("EPSG:32647", Affine(15, 0, 250000, 0, -15, 3240000), (64, 64))
    with pytest.raises(InputError, match="does not overlap") as err:
        load_mask(mask, velocity_grid, what="stable-ground mask")
    assert err.value.source == mask


def test_track_with_the_mask_isone_line_error(tmp_path, pair_files):
    mask = _geojson(tmp_path / "beyond.geojson")
    line = one_line_error(["track", pair_files["reference"], pair_files["secondary"], "-o", tmp_path / "v.tif",
                      "--dt", 16, "--stable-mask", mask])
    assert f"{mask} [crs]: its polygons {WORDS}" in line
    assert not (tmp_path / "v.tif").exists()


def test_validate_with_the_mask_isone_line_error(tmp_path, pair_files):
    grid = Grid("EPSG:32647", Affine(15, 0, 250000, 0, -15, 3240000), (64, 64))
    velocity = write_bands(tmp_path / "v.tif", {"vx": np.zeros(grid.shape, "f4"), "vy": np.zeros(grid.shape, "f4")},
                           grid, cog=False)
    mask = _geojson(tmp_path / "beyond.geojson")
    line = one_line_error(["validate", velocity, "--stable-mask", mask])
    assert f"{mask} [crs]: its polygons {WORDS}" in line


def test_a_runs_stable_mask_is_the_pairs_problem_not_a_traceback(tmp_path):
    _geojson(tmp_path / "beyond.geojson")
    run = optical_pair_run(tmp_path, "mask-test", shape=(64, 64),
                           extra='[validation]\nvalidators = ["stable-ground"]\nstable_mask = "beyond.geojson"\n')
    result = CliRunner().invoke(main, ["run", str(run), "--workers", "0"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and "CPLE" not in result.output
    assert f"beyond.geojson [crs]: its polygons {WORDS}" in result.output, result.output
