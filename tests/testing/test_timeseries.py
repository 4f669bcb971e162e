"""Series of acquisitions over one seasonal landscape: truth, exactness, determinism, sensors."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from scipy import ndimage

from gvfuse.testing.glacier import ValleyGlacier
from gvfuse.testing.timeseries import (
    Landscape,
    render_series,
    series_speckle_correlation,
)

# A long, straight, wide glacier with a plug-like profile: over a 32 px window
# in its middle the motion is uniform to ~1e-5, so a whole-window shift
# estimate measures the truth, not an average of a varying field.
PLUG = ValleyGlacier(
    head_m=(1500.0, -40000.0), terminus_m=(1500.0, 40000.0), half_width_m=1000.0,
    max_speed_m_per_day=0.5, profile_exponent=8.0,
)
LANDSCAPE = Landscape(glaciers=[PLUG], size_m=(3000.0, 1800.0), seed=3)
JUNE, AUGUST = datetime(2023, 6, 1), datetime(2023, 8, 1)


def _shift(
    reference: np.ndarray, moved: np.ndarray, centre: tuple[int, int], half: int = 20, start: tuple[int, int] = (0, 0)
) -> np.ndarray:
    """Shift (dx, dy) of ``moved`` relative to ``reference`` over a window: Gauss-Newton image registration.

    Finds ``d`` with ``moved(x + d) = gain * reference(x) + offset`` over the
    window (cubic-spline resampling of ``moved``; gain and offset absorb the
    dates' radiometry), the least-squares estimator of a uniform shift.
    """
    window = (slice(centre[0] - half, centre[0] + half), slice(centre[1] - half, centre[1] + half))
    ref = reference[window].astype(np.float64).ravel()
    d = np.array(start, dtype=np.float64)  # a whole-pixel start keeps Gauss-Newton in its basin
    for _ in range(20):
        warped = ndimage.shift(moved.astype(np.float64), (-d[1], -d[0]), order=3, mode="nearest")
        gy, gx = (g[window].ravel() for g in np.gradient(warped))
        design = np.column_stack([gx, gy, -ref, -np.ones_like(ref)])
        step = np.linalg.lstsq(design, -warped[window].ravel(), rcond=None)[0][:2]
        d += step
        if np.abs(step).max() < 1e-4:
            break
    return d


def test_seasonal_factor_and_mean_velocity_over_an_interval() -> None:
    grid = LANDSCAPE.grid(30.0)
    start, end = datetime(2023, 5, 1), datetime(2023, 6, 1)
    steps = 400
    samples = np.stack([
        np.stack(LANDSCAPE.velocity_m_per_day(grid, start + (end - start) * i / steps)) for i in range(steps + 1)
    ]).astype(np.float64)
    integrated = (samples[1:] + samples[:-1]).sum(axis=0) / (2 * steps)  # trapezoid rule, mean over the month
    east_mean, north_mean = LANDSCAPE.mean_velocity_m_per_day(grid, start, end)
    assert (north_mean[:, 50] < 0).all()  # the glacier flows south, down the rows
    assert np.abs(north_mean - integrated[1]).max() <= 1e-6 * np.abs(north_mean).max()
    assert np.abs(east_mean).max() < 1e-9
    # Summer peak, winter trough, annual mean 1.
    assert LANDSCAPE.speed_factor(datetime(2023, 7, 19)) == pytest.approx(1.3, abs=1e-3)
    assert LANDSCAPE.speed_factor(datetime(2023, 1, 17)) == pytest.approx(0.7, abs=1e-3)
    year = timedelta(days=365.25)
    assert LANDSCAPE.motion_days(datetime(2023, 1, 1), datetime(2023, 1, 1) + year) == pytest.approx(365.25)


def test_the_truth_is_the_velocity_of_the_ice_that_is_there() -> None:
    # A short glacier whose speed varies along the flow (1 - xi^2): the speed pattern moves with the ice, so
    # the velocity at a map position changes with the date beyond the seasonal factor.
    short = ValleyGlacier(head_m=(900.0, -500.0), terminus_m=(900.0, 2500.0), half_width_m=400.0,
                          max_speed_m_per_day=0.6)
    landscape = Landscape(glaciers=[short], size_m=(1800.0, 1800.0), seed=3)
    grid = landscape.grid(30.0)
    january = datetime(2023, 1, 10)  # half a year of motion from the epoch (July)
    advection = landscape.motion_days(landscape.epoch, january)
    dx, dy = landscape._material_shape(grid, advection)
    flow, _ = landscape._flow(grid)
    rows, cols = np.mgrid[0:grid.rows, 0:grid.cols] + 0.5
    # the ice found at each pixel, moved by its own epoch velocity, lands on that pixel
    epoch_dx, epoch_dy, _ = flow.evaluate(rows - dy * advection, cols - dx * advection)
    assert np.abs(epoch_dx - dx).max() * abs(advection) < 1e-5
    assert np.abs(epoch_dy - dy).max() * abs(advection) < 1e-5
    # ... which is not the speed pattern at the pixel: the old shortcut was wrong by up to a few per cent
    _, north = landscape.velocity_m_per_day(grid, january)
    shortcut = flow.evaluate(rows, cols)[1] * 30.0 * landscape.speed_factor(january)
    moving = np.abs(north) > 0.05
    assert np.abs(-north - shortcut)[moving].max() > 0.005 * np.abs(north).max()
    # at the epoch both agree
    _, at_epoch = landscape.velocity_m_per_day(grid, landscape.epoch)
    assert np.allclose(-at_epoch, flow.evaluate(rows, cols)[1] * 30.0 * landscape.speed_factor(landscape.epoch),
                       atol=1e-6)
    # the mean over an interval is the time mean of the instantaneous velocity (dense midpoint rule)
    start, end = datetime(2023, 3, 1), datetime(2023, 4, 15)
    steps = 300
    dense = np.mean([landscape.velocity_m_per_day(grid, start + (end - start) * ((i + 0.5) / steps))[1]
                     for i in range(steps)], axis=0)
    assert np.abs(landscape.mean_velocity_m_per_day(grid, start, end)[1] - dense).max() < 1e-5


def test_displacement_between_rendered_dates_is_the_truth() -> None:
    scenes = render_series(LANDSCAPE, "optical", 15.0, [JUNE, AUGUST], psf_fwhm_px=2.0, seed=1,
                           geolocation_shifts_px=[(0.0, 0.0), (0.0, 0.0)])
    grid = scenes[0].grid
    centre = (60, 100)  # map x = 1507 m: the glacier's middle
    _, north = LANDSCAPE.mean_velocity_m_per_day(grid, JUNE, AUGUST)
    days = (AUGUST - JUNE).days
    truth = np.array([0.0, -north[centre] * days / 15.0])  # px along rows
    measured = _shift(scenes[0].pixels, scenes[1].pixels, centre, start=(0, 2))
    assert truth[1] > 1.5
    assert np.abs(measured - truth).max() <= 0.05, (measured, truth)


def test_geolocation_shift_adds_to_the_motion() -> None:
    shift = (0.4, -1.7)
    scenes = render_series(LANDSCAPE, "optical", 15.0, [JUNE, JUNE + timedelta(minutes=1)], psf_fwhm_px=2.0, seed=1,
                           geolocation_shifts_px=[(0.0, 0.0), shift])
    measured = _shift(scenes[0].pixels, scenes[1].pixels, (60, 30), start=(0, -2))  # stable ground, left of the glacier
    assert np.abs(measured - np.array(shift)).max() <= 0.05, measured
    assert scenes[1].geolocation_shift_px == shift


def test_deterministic_per_seed_and_clouds_per_date() -> None:
    dates = [JUNE, JUNE + timedelta(days=16), JUNE + timedelta(days=32)]
    fractions = [0.0, 0.2, 0.5]
    first = render_series(LANDSCAPE, "optical", 30.0, dates, cloud_fractions=fractions, seed=5)
    again = render_series(LANDSCAPE, "optical", 30.0, dates, cloud_fractions=fractions, seed=5)
    other = render_series(LANDSCAPE, "optical", 30.0, dates, cloud_fractions=fractions, seed=6)
    for a, b, c, fraction in zip(first, again, other, fractions):
        assert np.array_equal(a.pixels, b.pixels, equal_nan=True)
        assert not np.array_equal(a.pixels, c.pixels, equal_nan=True)
        assert a.cloud_mask.mean() == pytest.approx(fraction, abs=0.01)
        assert np.array_equal(np.isnan(a.pixels), a.cloud_mask)
        assert a.pixels.dtype == np.float32
    assert not np.array_equal(first[1].cloud_mask, first[2].cloud_mask)


def test_sar_dates_further_apart_correlate_less() -> None:
    assert series_speckle_correlation(12.0) == pytest.approx(0.95 * np.exp(-12 / 48), rel=1e-5)
    still = Landscape(glaciers=[], size_m=(1200.0, 1200.0), seed=2)
    offsets = [0, 12, 48, 120]
    scenes = render_series(still, "sar", 10.0, [JUNE + timedelta(days=d) for d in offsets], seed=4)
    intensity = [s.pixels.astype(np.float64) ** 2 for s in scenes]
    corr = [np.corrcoef(intensity[0].ravel(), i.ravel())[0, 1] for i in intensity[1:]]
    assert corr[0] > corr[1] + 0.1 > corr[2] + 0.2, corr
    # Speckle dominates: the 12-day correlation is near the model's 0.74 (texture adds a little).
    assert 0.65 < corr[0] < 0.9, corr


def test_grids_and_glaciers_agree_across_sensors_and_extents() -> None:
    landsat = render_series(LANDSCAPE, "optical", 15.0, [JUNE])[0].grid
    sentinel = render_series(LANDSCAPE, "sar", 10.0, [JUNE])[0].grid
    assert (landsat.transform.c, landsat.transform.f) == (sentinel.transform.c, sentinel.transform.f)
    assert landsat.shape == (120, 200) and sentinel.shape == (180, 300)

    def ice_edges_x(grid) -> tuple[float, float]:
        row = LANDSCAPE.ice_mask(grid)[grid.rows // 2]
        cols = np.flatnonzero(row)
        return tuple((grid.transform * (c + 0.5, 0.5))[0] for c in (cols[0], cols[-1]))

    # The same glacier at the same map position: margins agree to within one 15 m pixel.
    assert np.allclose(ice_edges_x(landsat), ice_edges_x(sentinel), atol=15.0)
    # A sub-extent (a UAV survey) sees exactly the same cells as the full grid at that resolution.
    extent = (200.0, 600.0, 800.0, 600.0)  # across the glacier's western margin
    uav = render_series(LANDSCAPE, "uav", 10.0, [JUNE], extent_m=extent)[0]
    assert (uav.grid.transform.c, uav.grid.transform.f) == (
        LANDSCAPE.origin_m[0] + 200.0, LANDSCAPE.origin_m[1] - 600.0)
    assert uav.pixels.shape == (60, 80)
    full = LANDSCAPE.ice_mask(sentinel)
    assert np.array_equal(LANDSCAPE.ice_mask(uav.grid), full[60:120, 20:100])
    ice, stable = LANDSCAPE.ice_mask(uav.grid), LANDSCAPE.stable_mask(uav.grid, 30.0)
    assert uav.pixels[ice].mean() > uav.pixels[stable].mean() + 20  # ice is brighter, where the truth says
    assert not (ice & stable).any()
    with pytest.raises(ValueError, match="not within"):
        LANDSCAPE.grid(10.0, (2500.0, 0.0, 800.0, 600.0))


def test_motion_that_folds_the_surface_is_refused() -> None:
    narrow = ValleyGlacier(head_m=(600.0, -3000.0), terminus_m=(600.0, 3000.0), half_width_m=150.0,
                           max_speed_m_per_day=2.0)
    fast = Landscape(glaciers=[narrow], size_m=(1200.0, 1200.0))
    with pytest.raises(ValueError, match="folds the surface.*Lower the glaciers' speeds, make them wider"):
        render_series(fast, "optical", 30.0, [datetime(2023, 1, 1)])
    # Near the epoch the same glacier has not moved far enough to fold.
    render_series(fast, "optical", 30.0, [fast.epoch + timedelta(days=5)])
