"""The shared driver: errors naming the input, tiling, output grid, thresholds, stable-ground correction."""

from __future__ import annotations

import numpy as np
import pytest

from gvfuse.errors import GridError, InputError, TrackingError
from gvfuse.model import Image
from gvfuse.tracking.dense_ncc import DenseNccMatcher
from gvfuse.tracking.driver import TrackingSettings, track_images
from gvfuse.tracking.search import search_radius_px
from gvfuse.tracking.stable_ground import estimate_stable_shift, remove_stable_shift
from tests.helpers.textures import grid, images, shifted_pair

SETTINGS = TrackingSettings(window_px=32, step_px=4, search_radius_px=4, prefilter="wallis")


def test_output_on_window_centre_grid_and_tiles_agree():
    ref, sec = shifted_pair(160, 1.4, -0.7, seed=2)
    r, s = images(ref, sec)
    whole = track_images(r, s, DenseNccMatcher(), SETTINGS)
    tiled = track_images(r, s, DenseNccMatcher(), TrackingSettings(
        window_px=32, step_px=4, search_radius_px=4, tile_memory_bytes=1))  # 16-cell tiles
    assert whole.grid == r.grid.window_centre_grid(4, 32)
    assert whole.dx_px.shape == whole.grid.shape
    ok = np.isfinite(whole.dx_px)
    assert ok.mean() > 0.95
    # a uniform shift of the whole image may be motion: without stable ground nothing is removed
    assert whole.parameters["stable_shift_decision"] == "skipped" and abs(np.nanmean(whole.dx_px) - 1.4) < 0.02
    np.testing.assert_allclose(tiled.dx_px[ok], whole.dx_px[ok], atol=0.02)


def test_stable_mask_and_parameters_recorded():
    ref, sec = shifted_pair(128, 0.3, 0.3, seed=4)
    r, s = images(ref, sec)
    mask = np.zeros(ref.shape, bool)
    mask[:, :64] = True
    field = track_images(r, s, DenseNccMatcher(), SETTINGS, stable_mask=mask, tracker_name="ncc")
    p = field.parameters
    assert p["tracker"] == "ncc" and p["window_px"] == 32 and p["search_radius_px"] == 4
    assert p["stable_shift_source"] == "mask" and p["stable_shift_count"] > 10
    assert abs(p["stable_shift_dx_px"] - 0.3) < 0.02
    assert {"peak_correlation", "snr", "valid"} <= set(field.quality)


def test_peak_correlation_threshold_leaves_nan_not_numbers():
    ref, sec = shifted_pair(128, 0.5, 0.5, seed=6)
    rng = np.random.default_rng(0)
    sec[:, 64:] = rng.standard_normal((128, 64))  # unrelated content: no true match
    r, s = images(ref, sec)
    field = track_images(r, s, DenseNccMatcher(), TrackingSettings(
        window_px=32, step_px=4, search_radius_px=4, min_peak_correlation=0.5, correct_stable_ground=False))
    cols_right = field.grid.shape[1] // 2 + 6
    assert np.isnan(field.dx_px[:, cols_right:]).all()
    assert np.isfinite(field.dx_px[:, :5]).mean() > 0.9


def test_errors_name_the_input():
    ref, sec = shifted_pair(64, 0, 0)
    r, s = images(ref, sec)
    other = Image(sec, grid(sec.shape, pixel_m=10.0), "other.tif")
    with pytest.raises(GridError, match="other.tif"):
        track_images(r, other, DenseNccMatcher(), SETTINGS)
    with pytest.raises(TrackingError, match="sec.tif.*all NaN"):
        track_images(r, Image(np.full_like(sec, np.nan), s.grid, "sec.tif"), DenseNccMatcher(), SETTINGS)
    with pytest.raises(TrackingError, match="ref.tif.*constant"):
        track_images(Image(np.ones_like(ref), r.grid, "ref.tif"), s, DenseNccMatcher(), SETTINGS)
    with pytest.raises(InputError, match="window"):
        track_images(r, s, DenseNccMatcher(), TrackingSettings(window_px=128, step_px=2, search_radius_px=2))


def test_stable_ground_plane_fit_and_stats():
    _rows, cols = np.indices((50, 60))
    dx = (0.3 + 0.001 * cols).astype(np.float32)
    dy = np.full((50, 60), -0.2, np.float32)
    corr = estimate_stable_shift(dx, dy, np.ones((50, 60), bool), model="plane")
    cx, cy = remove_stable_shift(dx, dy, corr)
    assert np.abs(cx).max() < 1e-4 and np.abs(cy).max() < 1e-4
    assert corr.count == 3000 and corr.residual_nmad_dx_px < 1e-4


def test_search_radius_from_speed():
    assert search_radius_px(1.5, 16, 15.0, geolocation_margin_px=1) == 4
    with pytest.raises(ValueError):
        search_radius_px(1.0, 0, 15.0)


def test_tiles_give_the_same_field_on_dask_threads_and_one_after_another():
    from gvfuse.testing import make_pair
    from gvfuse.tracking.driver import iter_tiles, run_tiles

    pair = make_pair("optical", (200, 200), seed=4, cloud_fraction=0.1)
    ref, sec = np.array(pair.reference, "f4"), np.array(pair.secondary, "f4")
    settings = TrackingSettings(window_px=32, step_px=4, search_radius_px=4)
    tiles = list(iter_tiles(43, 43, 16))
    assert len(tiles) == 9
    threaded = run_tiles(tiles, ref, sec, settings, DenseNccMatcher(), scheduler="threads")
    serial = run_tiles(tiles, ref, sec, settings, DenseNccMatcher(), scheduler="sync")
    for a, b in zip(threaded, serial):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])
