"""The shared loader: window selection, NaN conventions, disjoint grids."""

from __future__ import annotations

import numpy as np
from affine import Affine

from gvfuse.formats.loading import load_band, window_for_grid
from gvfuse.model import Grid
from tests.helpers.scenes import textured, write_raster


def test_window_covers_grid_plus_margin_only():
    src = Affine(15, 0, 255000, 0, -15, 3245000)
    grid = Grid("EPSG:32647", Affine(30, 0, 255000 + 1500, 0, -30, 3245000 - 1500), (10, 10))
    window = window_for_grid(src, "EPSG:32647", (20000, 20000), grid, margin_px=4)
    assert (window.col_off, window.row_off, window.width, window.height) == (96, 96, 28, 28)


def test_window_across_crs_and_disjoint():
    src = Affine(15, 0, 255000, 0, -15, 3245000)
    far = Grid("EPSG:32647", Affine(30, 0, 900000, 0, -30, 3245000), (10, 10))
    assert window_for_grid(src, "EPSG:32647", (200, 200), far) is None
    lonlat = Grid("EPSG:4326", Affine(0.0001, 0, 96.49, 0, -0.0001, 29.29), (10, 10))
    window = window_for_grid(src, "EPSG:32647", (20000, 20000), lonlat)
    assert window is not None and window.width < 200 and window.height < 200


def test_disjoint_grid_gives_all_nan_and_nodata_is_nan(tmp_path):
    data = textured(30, 30, seed=5)
    data[0, 0] = 7
    write_raster(tmp_path / "a.tif", data, Affine(30, 0, 255000, 0, -30, 3245000), nodata=7)
    native = load_band(str(tmp_path / "a.tif"))
    assert np.isnan(native.pixels[0, 0]) and np.isfinite(native.pixels[1:, 1:]).all()
    far = Grid("EPSG:32647", Affine(30, 0, 900000, 0, -30, 3245000), (5, 5))
    assert np.isnan(load_band(str(tmp_path / "a.tif"), far).pixels).all()
