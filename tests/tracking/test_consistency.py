"""Forward-backward consistency: the error of a field against its way back, and the driver's check."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gvfuse.model import Image
from gvfuse.testing import make_pair
from gvfuse.tracking.consistency import forward_backward_error
from gvfuse.tracking.correlation import window_sums
from gvfuse_plugins.trackers import FftPhaseTracker, NccTracker


@settings(max_examples=30, deadline=None)
@given(dx=st.floats(-3, 3), dy=st.floats(-3, 3), gradient=st.floats(-0.05, 0.05), step=st.integers(1, 4))
def test_a_field_and_its_exact_inverse_are_consistent(dx, dy, gradient, step):
    # Forward d(col) = dx + g * col (px); the backward field at position q (in px) is -d(p) with q = p + d(p).
    _rows, cols = np.indices((20, 30), dtype=np.float64)
    fx = dx + gradient * cols * step
    fy = np.full(fx.shape, dy)
    # Invert q = p + dx + g p  =>  p = (q - dx) / (1 + g); backward(q) = -(dx + g p)
    q = cols * step
    p = (q - dx) / (1 + gradient)
    bx, by = -(dx + gradient * p), np.full(fx.shape, -dy)
    error = forward_backward_error((fx, fy), (bx, by), step_px=step)
    checked = np.isfinite(error)
    assert checked.mean() > 0.3
    on_grid = (q + fx >= 0) & (q + fx <= q[0, -1])
    assert np.nanmax(np.where(on_grid, error, np.nan), initial=0.0) < 1e-9
    # moved off the grid by up to a cell: checked against the edge cell, off by the field's change over a step
    assert np.nanmax(error) <= abs(gradient) / (1 - abs(gradient)) * step + 1e-9


def test_an_inconsistent_way_back_shows_its_size():
    fx, fy = np.full((10, 10), 1.0), np.zeros((10, 10))
    error = forward_backward_error((fx, fy), (np.full((10, 10), -0.6), np.full((10, 10), 0.3)), step_px=2)
    assert np.nanmedian(error) == np.hypot(0.4, 0.3)
    assert np.isfinite(error[:, -1]).all()  # half a cell off the grid: checked against the edge cell
    far = forward_backward_error((np.full((10, 10), 3.0), fy), (-fx, fy), step_px=2)
    assert np.isnan(far[:, -1]).all() and np.isfinite(far[:, -2]).all()  # 1.5 cells off: cannot be checked


def test_the_driver_drops_only_inconsistent_cells():
    pair = make_pair("optical", (160, 160), pixel_size_m=15.0, dt_days=16.0, max_speed_m_per_day=1.5,
                     cloud_fraction=0.1, seed=4)
    ref, sec = Image(pair.reference, pair.grid, "ref"), Image(pair.secondary, pair.grid, "sec")
    checked = NccTracker(window_px=32, correct_stable_ground=False).track(ref, sec, search_radius_px=5)
    unchecked = NccTracker(window_px=32, correct_stable_ground=False, max_forward_backward_px=None).track(
        ref, sec, search_radius_px=5)
    kept, before = np.isfinite(checked.dx_px), np.isfinite(unchecked.dx_px)
    assert not (kept & ~before).any()  # the check only removes
    np.testing.assert_array_equal(checked.dx_px[kept], unchecked.dx_px[kept])
    assert (checked.quality["forward_backward_px"][kept] <= 0.5).all()
    assert kept.sum() >= 0.97 * before.sum()  # a clean synthetic pair is consistent
    assert "forward_backward_px" not in unchecked.quality


def test_the_reason_band_says_why_a_cell_is_empty():
    pair = make_pair("optical", (160, 160), pixel_size_m=15.0, dt_days=16.0, max_speed_m_per_day=1.5,
                     cloud_fraction=0.15, seed=5)
    ref, sec = Image(pair.reference, pair.grid, "ref"), Image(pair.secondary, pair.grid, "sec")
    field = NccTracker(window_px=32, correct_stable_ground=False).track(ref, sec, search_radius_px=5)
    reason = field.quality["reason"]
    np.testing.assert_array_equal(reason == 0, np.isfinite(field.dx_px))
    assert set(np.unique(reason)) <= {0, 1, 2, 3, 4, 5}
    # windows more than 40 % cloud (NaN in the secondary) are below min_valid_fraction=0.6: no data
    cloud = window_sums(pair.cloud_mask.astype(np.float32), window_px=32, step_px=3, rows=reason.shape[0],
                        cols=reason.shape[1]) / 32**2
    assert (reason[cloud > 0.4] == 1).all()
    median_peak = float(np.nanmedian(field.quality["peak_correlation"][reason == 0]))
    strict = NccTracker(window_px=32, correct_stable_ground=False, min_peak_correlation=median_peak).track(
        ref, sec, search_radius_px=5)
    below = (strict.quality["reason"] == 3).sum()
    assert 0.4 * (reason == 0).sum() <= below  # about half of the kept cells fall below their median peak



def test_fft_phase_says_no_match_or_below_threshold_where_the_data_are_there():
    # The right half of the secondary is unrelated texture: the data are there, the match is not. fft-phase
    # stops early there (a peak on the search edge, or below its NCC gate) and computes no coherence, which
    # used to leave those windows marked "no data" (1). (The cloud detection is off: unrelated texture has
    # bright changes, which it rightly masks as no data.)
    kw = {"pixel_size_m": 15.0, "dt_days": 16.0, "max_speed_m_per_day": 1.5, "cloud_fraction": 0.0}
    pair, other = make_pair("optical", (160, 160), seed=6, **kw), make_pair("optical", (160, 160), seed=7, **kw)
    secondary = pair.secondary.copy()
    secondary[:, 80:] = other.secondary[:, 80:]
    ref, sec = Image(pair.reference, pair.grid, "ref"), Image(secondary, pair.grid, "sec")
    field = FftPhaseTracker(window_px=32, step_px=3, correct_stable_ground=False, bright_change_nmad=False).track(
        ref, sec, search_radius_px=5)
    reason = field.quality["reason"]
    start = np.arange(reason.shape[1]) * 3  # each window's first column
    unrelated = reason[:, start >= 80]
    assert not (unrelated == 1).any()  # every pixel is valid
    assert (unrelated == 2).mean() > 0.2 and (unrelated == 3).mean() > 0.2  # edge peaks; refused by the gate
    assert (reason[:, start + 32 <= 80] == 0).mean() > 0.95  # the related half is matched
