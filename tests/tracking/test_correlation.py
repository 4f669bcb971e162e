"""The shared correlation primitives (gvfuse.tracking.correlation) against brute force and known answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gvfuse.tracking.correlation import (
    EXACT_PEAK_CORRELATION,
    all_pixel_box_sums,
    central_gradient,
    gradient_refinement,
    n_windows,
    peak_from_stack,
    refinement_step,
    window_sums,
)
from tests.helpers.textures import shifted_pair


def brute_window_sums(region: np.ndarray, w: int, s: int, rows: int, cols: int) -> np.ndarray:
    out = np.empty((rows, cols))
    for i in range(rows):
        for j in range(cols):
            out[i, j] = region[i * s : i * s + w, j * s : j * s + w].astype(np.float64).sum()
    return out


def test_n_windows_counts_the_windows_that_fit():
    # 100 px, 10 px margin each side: 80 px hold windows at 0, 8, ..., 64 (a 16 px window ends at 80)
    assert n_windows(100, origin_px=10, window_px=16, step_px=8) == 9
    assert n_windows(100, origin_px=10, window_px=16, step_px=7) == 10  # 0..63, the last ends at 79
    assert n_windows(20, origin_px=5, window_px=16, step_px=4) == 0  # does not fit: zero, never negative


@pytest.mark.parametrize(
    ("window", "step"),
    [(8, 4), (12, 3), (6, 1), (9, 4), (7, 3), (5, 5)],
    ids=["multiple", "multiple-3", "step-1", "not-multiple", "not-multiple-3", "window-is-step"],
)
def test_window_sums_equal_brute_force(window, step):
    rng = np.random.default_rng(window * 10 + step)
    rows, cols = 7, 5
    # a larger region than the windows need: the extra rows and columns must be ignored
    region = rng.normal(size=((rows - 1) * step + window + 3, (cols - 1) * step + window + 2)).astype(np.float32)
    got = window_sums(region, window_px=window, step_px=step, rows=rows, cols=cols)
    assert got.shape == (rows, cols) and got.dtype == np.float32
    np.testing.assert_allclose(got, brute_window_sums(region, window, step, rows, cols), rtol=0, atol=2e-4)


@settings(max_examples=30, deadline=None)
@given(window=st.integers(1, 12), step=st.integers(1, 6), rows=st.integers(1, 6), cols=st.integers(1, 6),
       seed=st.integers(0, 1000))
def test_window_sums_of_ones_count_the_pixels(window, step, rows, cols, seed):
    """Any window and step: a mask's window sums are its pixel counts (exact small integers in float32)."""
    rng = np.random.default_rng(seed)
    mask = (rng.random(((rows - 1) * step + window, (cols - 1) * step + window)) < 0.5).astype(np.float32)
    got = window_sums(mask, window_px=window, step_px=step, rows=rows, cols=cols)
    np.testing.assert_allclose(got, brute_window_sums(mask, window, step, rows, cols), rtol=0, atol=1e-3)


def test_all_pixel_box_sums_at_every_corner_with_zeros_beyond_the_array():
    rng = np.random.default_rng(1)
    image = rng.normal(size=(13, 11)).astype(np.float32)
    w = 4
    got = all_pixel_box_sums(image, w)
    assert got.shape == image.shape and got.dtype == np.float32
    padded = np.pad(image.astype(np.float64), ((0, w), (0, w)))
    expected = np.array([[padded[y : y + w, x : x + w].sum() for x in range(11)] for y in range(13)])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def quadratic_stack(r: int, peaks: list[tuple[float, float, float]]) -> np.ndarray:
    """A ``(2r+1, 2r+1, 1, n)`` stack: window k is a 2-D quadratic with its maximum ``top`` at ``(x0, y0)``."""
    side = 2 * r + 1
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    stack = np.empty((side, side, 1, len(peaks)), np.float32)
    for k, (x0, y0, top) in enumerate(peaks):
        # an oblique, elongated peak: the 2-D fit must not treat the axes separately
        u, v = dx - x0, dy - y0
        stack[:, :, 0, k] = top - 0.05 * u * u - 0.03 * u * v - 0.08 * v * v
    return stack


def test_peak_from_stack_finds_a_known_sub_pixel_peak():
    peaks = [(0.3, -0.4, 0.9), (-1.7, 2.2, 0.8), (2.45, 0.05, 0.95)]
    est = peak_from_stack(quadratic_stack(4, peaks))
    # a quadratic surface is fitted exactly by the 2-D quadratic: only float32 rounding is left
    np.testing.assert_allclose(est.dx_px[0], [p[0] for p in peaks], atol=1e-4)
    np.testing.assert_allclose(est.dy_px[0], [p[1] for p in peaks], atol=1e-4)
    assert est.dx_px.dtype == np.float32 and est.dx_px.shape == (1, 3)


def test_peak_from_stack_snr_and_peak_value():
    stack = quadratic_stack(3, [(0.2, 0.1, 0.9)])
    stack[0, 0, 0, 0] = np.nan  # an excluded shift counts neither in the peak nor in the mean
    est = peak_from_stack(stack)
    values = stack[:, :, 0, 0]
    assert est.peak_correlation[0, 0] == np.float32(np.nanmax(values))
    expected_snr = np.nanmax(values) / np.nanmean(np.abs(values))
    np.testing.assert_allclose(est.snr[0, 0], expected_snr, rtol=1e-5)


def test_peak_from_stack_rejects_edge_peaks_and_keeps_their_quality():
    stack = quadratic_stack(3, [(3.0, 0.0, 0.9), (0.0, -3.4, 0.9)])
    est = peak_from_stack(stack)
    assert np.isnan(est.dx_px).all() and np.isnan(est.dy_px).all()
    assert np.isfinite(est.peak_correlation).all() and np.isfinite(est.snr).all()
    kept = peak_from_stack(stack, reject_edge_peaks=False)
    assert np.isfinite(kept.dx_px).all()


def test_peak_from_stack_keeps_an_exact_integer_match():
    stack = quadratic_stack(3, [(1.0, -2.0, 1.0)])
    # an asymmetric neighbourhood, which the quadratic fit would move off the integer shift
    stack[-2 + 3, 2 + 3, 0, 0] = 0.99
    est = peak_from_stack(stack)
    assert stack[-2 + 3, 1 + 3, 0, 0] >= EXACT_PEAK_CORRELATION
    assert est.dx_px[0, 0] == 1.0 and est.dy_px[0, 0] == -2.0


def test_peak_from_stack_without_any_value_is_nan():
    stack = np.full((5, 5, 2, 2), np.nan, np.float32)
    est = peak_from_stack(stack)
    for band in (est.dx_px, est.dy_px, est.peak_correlation, est.snr):
        assert band.shape == (2, 2) and np.isnan(band).all()


def test_central_gradient_matches_numpy_inside_and_is_nan_on_the_ring():
    image = np.random.default_rng(2).normal(size=(9, 12)).astype(np.float32)
    gx, gy = central_gradient(image)
    assert gx.dtype == np.float32 and gy.dtype == np.float32
    ny, nx = np.gradient(image)
    np.testing.assert_array_equal(gx[:, 1:-1], nx[:, 1:-1])
    np.testing.assert_array_equal(gy[1:-1, :], ny[1:-1, :])
    assert np.isnan(gx[:, [0, -1]]).all() and np.isnan(gy[[0, -1], :]).all()


W, S, ORIGIN = 32, 8, 2


def _grid(size: int) -> dict[str, int]:
    rows = n_windows(size, origin_px=ORIGIN, window_px=W, step_px=S)
    return {"window_px": W, "step_px": S, "origin_px": ORIGIN, "rows": rows, "cols": rows}


def test_gradient_refinement_of_identical_images_is_exactly_zero():
    ref, _ = shifted_pair(96, 0.0, 0.0, seed=4)
    dx, dy = gradient_refinement(ref, ref.copy(), **_grid(96))
    assert (dx == 0).all() and (dy == 0).all()


@pytest.mark.parametrize("shift", [(0.1, 0.05), (-0.08, 0.12)])
def test_gradient_refinement_measures_a_small_remaining_shift(shift):
    ref, sec = shifted_pair(96, *shift, seed=4)
    dx, dy = gradient_refinement(ref, sec, **_grid(96))
    # one linearised step: the error grows with the square of the shift, ~0.01 px at 0.1 px
    assert np.abs(dx - shift[0]).max() < 0.02 and np.abs(dy - shift[1]).max() < 0.02


def test_refinement_step_ncc_and_no_data():
    ref, sec = shifted_pair(96, 0.1, -0.1, seed=6, noise=0.05)
    grid = _grid(96)
    dx, dy, ncc = refinement_step(ref, sec, **grid)
    dx2, dy2, no_ncc = refinement_step(ref, sec, **grid, with_ncc=False)
    np.testing.assert_array_equal(dx, dx2)
    np.testing.assert_array_equal(dy, dy2)
    assert np.isnan(no_ncc).all()
    assert (ncc > 0.9).all() and (ncc <= 1).all()
    holed = sec.copy()
    holed[: 2 * W, :] = np.nan  # the first windows lose more than half their pixels
    hx, _, hn = refinement_step(ref, holed, **grid)
    assert np.isnan(hx[0]).all() and np.isnan(hn[0]).all() and np.isfinite(hx[-1]).all()


def brute_refinement(ref, sec, w, s, o, rows, cols, min_valid_fraction):
    """Per-window least squares of R - S = dx gx + dy gy + (a - 1) S + b, with numpy's lstsq."""
    both = np.isfinite(ref) & np.isfinite(sec)
    level = 0.5 * (ref[both].mean() + sec[both].mean())
    scale = ref[both].std()
    r, q = (ref.astype(np.float64) - level) / scale, (sec.astype(np.float64) - level) / scale
    gx, gy = central_gradient(0.5 * (r + q))
    out = np.full((2, rows, cols), np.nan)
    for i in range(rows):
        for j in range(cols):
            win = np.s_[o + i * s : o + i * s + w, o + j * s : o + j * s + w]
            ok = np.isfinite(gx[win]) & np.isfinite(gy[win]) & np.isfinite(r[win]) & np.isfinite(q[win])
            if ok.sum() < min_valid_fraction * w * w - 0.5:
                continue
            design = np.stack([gx[win][ok], gy[win][ok], q[win][ok], np.ones(ok.sum())], axis=1)
            theta = np.linalg.lstsq(design, (r[win] - q[win])[ok], rcond=None)[0]
            out[:, i, j] = theta[:2]
    return out


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), w=st.integers(6, 20), s=st.integers(1, 7), o=st.integers(0, 4),
       hole=st.booleans())
def test_refinement_step_solves_each_windows_least_squares(seed, w, s, o, hole):
    ref, sec = shifted_pair(48, 0.2, -0.15, seed=seed % 50, noise=0.05)
    if hole:
        sec[10:19, 5:30] = np.nan
    rows = n_windows(48, origin_px=o, window_px=w, step_px=s)
    dx, dy, _ = refinement_step(ref, sec, window_px=w, step_px=s, origin_px=o, rows=rows, cols=rows,
                                min_valid_fraction=0.5)
    want = brute_refinement(ref, sec, w, s, o, rows, rows, 0.5)
    np.testing.assert_array_equal(np.isnan(dx), np.isnan(want[0]))
    np.testing.assert_allclose(dx[np.isfinite(dx)], want[0][np.isfinite(dx)], atol=1e-4)
    np.testing.assert_allclose(dy[np.isfinite(dy)], want[1][np.isfinite(dy)], atol=1e-4)
