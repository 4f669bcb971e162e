"""Matcher properties on textures with exactly known shifts (both matchers, through the Matcher protocol)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gvfuse.tracking.correlation import ncc_score_stack
from gvfuse.tracking.dense_ncc import DenseNccMatcher
from gvfuse.tracking.phase_correlation import PhaseCorrelationMatcher
from tests.helpers.textures import shifted_pair

MATCHERS = {"ncc": DenseNccMatcher(), "fft-phase": PhaseCorrelationMatcher()}
R = 4


def run(matcher, ref, sec, window=32, step=4):
    pad = lambda a: np.pad(a, R, constant_values=np.nan)  # noqa: E731
    return matcher(pad(ref), pad(sec), window_px=window, step_px=step, search_radius_px=R)


def interior(a: np.ndarray) -> np.ndarray:
    return a[2:-2, 2:-2]


@pytest.mark.parametrize("name", MATCHERS)
def test_self_match_is_zero(name):
    ref, _ = shifted_pair(128, 0, 0)
    res = run(MATCHERS[name], ref, ref)
    assert np.isfinite(res.dx_px).all()
    assert np.abs(res.dx_px).max() < 1e-3 and np.abs(res.dy_px).max() < 1e-3


@pytest.mark.parametrize("name", MATCHERS)
@pytest.mark.parametrize("shift", [(1, 0), (-2, 1), (3, -3)])
def test_integer_shift_recovered_exactly(name, shift):
    ref, sec = shifted_pair(128, *shift)
    res = run(MATCHERS[name], ref, sec)
    dx, dy = interior(res.dx_px), interior(res.dy_px)
    assert np.isfinite(dx).mean() > 0.95
    np.testing.assert_allclose(np.nanmedian(dx), shift[0], atol=1e-3)
    np.testing.assert_allclose(np.nanmedian(dy), shift[1], atol=1e-3)
    assert np.nanmax(np.abs(dx - shift[0])) < 0.01


@pytest.mark.parametrize("name", MATCHERS)
@settings(max_examples=10, deadline=None)
@given(dx=st.floats(-2.5, 2.5), dy=st.floats(-2.5, 2.5), seed=st.integers(0, 20))
def test_subpixel_shift_within_005(name, dx, dy, seed):
    ref, sec = shifted_pair(96, dx, dy, seed=seed)
    res = run(MATCHERS[name], ref, sec)
    ex, ey = interior(res.dx_px) - dx, interior(res.dy_px) - dy
    assert np.isfinite(ex).mean() > 0.95
    assert np.nanmax(np.abs(ex)) < 0.05 and np.nanmax(np.abs(ey)) < 0.05


@pytest.mark.parametrize("name", MATCHERS)
@settings(max_examples=8, deadline=None)
@given(dx=st.floats(-2, 2), dy=st.floats(-2, 2))
def test_swapping_the_pair_negates_the_field(name, dx, dy):
    ref, sec = shifted_pair(96, dx, dy, noise=0.1)
    a = run(MATCHERS[name], ref, sec)
    b = run(MATCHERS[name], sec, ref)
    both = np.isfinite(a.dx_px) & np.isfinite(b.dx_px)
    assert both.mean() > 0.9
    assert np.abs(a.dx_px + b.dx_px)[both].max() < 0.05
    assert np.abs(a.dy_px + b.dy_px)[both].max() < 0.05


def test_pixel_locking_bias_curve_is_small():
    """Mean error against the true sub-pixel shift, over a full pixel (the bias curve)."""
    bias = []
    for frac in np.linspace(0, 1, 9):
        ref, sec = shifted_pair(96, frac, 0.0, seed=3)
        res = run(MATCHERS["ncc"], ref, sec)
        bias.append(np.nanmean(res.dx_px) - frac)
    assert np.max(np.abs(bias)) < 0.01


@pytest.mark.parametrize("name", MATCHERS)
@pytest.mark.parametrize("holes_in", ["secondary", "reference"])
def test_windows_with_no_data_match_on_their_valid_pixels(name, holes_in):
    """A window partly covered by NaN (in either image) still matches on the pixels valid in both, unbiased;
    a window with less than ``min_valid_fraction`` (0.6) valid pixels has no value."""
    ref, sec = shifted_pair(96, 1.3, -0.4, seed=5)
    holed = sec if holes_in == "secondary" else ref
    holed[:, 40:60] = np.nan
    res = run(MATCHERS[name], ref, sec)
    ok = np.isfinite(res.dx_px)
    assert 0.3 < ok.mean() < 1.0
    assert np.abs(res.dx_px[ok] - 1.3).max() < 0.05
    assert np.abs(res.dy_px[ok] + 0.4).max() < 0.05
    # window j covers columns 4j .. 4j + 31 of the image: j = 4 (16-47) has 8 / 32 columns of NaN (75 % valid),
    # j = 7 (28-59) 20 / 32 (38 %)
    assert ok[2:-2, 4].all()  # the outer rows search into the padding
    assert not ok[:, 7].any()


def test_windows_with_too_little_data_are_nan():
    ref, sec = shifted_pair(96, 0.5, 0.5)
    sec[:, :] = np.nan
    sec[:, :10] = 1.0
    stack = ncc_score_stack(np.pad(ref, R), np.pad(sec, R), window_px=32, step_px=4, search_radius_px=R)
    assert np.isnan(stack).all()
