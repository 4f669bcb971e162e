"""The compiled cubic B-spline warp (gvfuse.tracking.warping) against scipy.ndimage and known shifts."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from gvfuse.tracking.warping import SplineImage, warp_by_field


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 23), cols=st.integers(1, 23), seed=st.integers(0, 10_000),
       reach=st.floats(0.0, 30.0))
def test_the_warp_is_scipys_cubic_b_spline_with_nan_outside(rows, cols, seed, reach):
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(rows, cols)).astype(np.float32)
    dx = rng.uniform(-reach, reach, (rows, cols)).astype(np.float32)
    dy = rng.uniform(-reach, reach, (rows, cols)).astype(np.float32)
    spline = SplineImage(image)
    got = spline.warp(dx, dy)
    map_x = np.arange(cols)[None, :] + dx.astype(np.float64)
    map_y = np.arange(rows)[:, None] + dy.astype(np.float64)
    want = ndimage.map_coordinates(spline.coefficients, [map_y, map_x], order=3, prefilter=False, mode="mirror")
    outside = (map_x < 0) | (map_x > cols - 1) | (map_y < 0) | (map_y > rows - 1)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(got), outside)
    assert (np.abs(got[~outside] - want[~outside]) <= 2e-5 * (1 + np.abs(want[~outside]))).all()


def test_a_constant_field_shifts_a_smooth_image_to_interpolation_accuracy():
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float64)
    image = np.sin(xx / 5.0) * np.cos(yy / 7.0)
    out = warp_by_field(image.astype(np.float32), np.full((64, 64), 0.3, np.float32),
                        np.full((64, 64), -0.6, np.float32))
    truth = np.sin((xx + 0.3) / 5.0) * np.cos((yy - 0.6) / 7.0)
    inner = np.s_[8:-8, 8:-8]
    # row 0 - 0.6 and column 63 + 0.3 leave the image
    assert np.isnan(out[0]).all() and np.isnan(out[:, -1]).all() and np.isfinite(out[1:, :-1]).all()
    assert np.abs(out[inner] - truth[inner]).max() < 1e-3


def test_no_data_comes_back_as_no_data_around_where_it_lands():
    image = np.random.default_rng(1).normal(size=(40, 40)).astype(np.float32)
    image[20, 20] = np.nan
    out = SplineImage(image).warp(np.full((40, 40), 2.0, np.float32), np.zeros((40, 40), np.float32))
    assert np.isnan(out[20, 18]) and np.isfinite(out[20, 10])
