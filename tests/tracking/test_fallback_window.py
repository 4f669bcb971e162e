"""A larger window as a fallback where the base window finds no match (driver.fill_from_larger_window)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gvfuse.model import Image
from gvfuse.testing import make_pair
from gvfuse.testing.motion import Translation
from gvfuse.tracking.driver import FALLBACK_WINDOW_RATIO, TrackingSettings, fallback_window
from gvfuse_plugins.trackers import FftPhaseTracker, NccTracker, TemplateTracker

MOTION = Translation(1.3, -0.6)


def noisy_right_half(noise_sd: float):
    """A pair with known motion whose right half drowns in independent noise (correlation ~ 1 / (1 + sd^2))."""
    pair = make_pair("optical", (192, 192), motion=MOTION, cloud_fraction=0.0, seed=7)
    rng = np.random.default_rng(0)
    sd = float(np.nanstd(pair.reference))
    ref, sec = pair.reference.copy(), pair.secondary.copy()
    ref[:, 96:] += rng.normal(0.0, noise_sd * sd, (192, 96)).astype(np.float32)
    sec[:, 96:] += rng.normal(0.0, noise_sd * sd, (192, 96)).astype(np.float32)
    return Image(ref, pair.grid), Image(sec, pair.grid)


def test_the_larger_window_answers_where_the_base_window_cannot_and_says_so():
    reference, secondary = noisy_right_half(1.0)
    # the acceptance at the chance level of unrelated textures (16 / window), which the noisy half fails at 32 px
    fields = {fallback: NccTracker(window_px=32, step_px=2, fallback_window_px=fallback, correct_stable_ground=False,
                                   chance_correlation_px=16.0)
              .track(reference, secondary, search_radius_px=4) for fallback in (False, 64)}
    centre = np.arange(fields[False].grid.shape[1]) * 2 + 16
    noisy = centre >= 96 + 16  # base windows entirely in the noisy half
    base, both = (np.isfinite(fields[f].dx_px[:, noisy]) for f in (False, 64))
    assert base.mean() < 0.1 and both.mean() > 0.5  # chance-level threshold 0.5 at 32 px, 0.25 at 64 px
    window = fields[64].quality["window_px"]
    assert set(np.unique(window[:, noisy][both & ~base])) == {64.0}
    np.testing.assert_array_equal(np.isfinite(window), np.isfinite(fields[64].dx_px))
    # where the base window answered, the fallback changes nothing
    answered = np.isfinite(fields[False].dx_px)
    np.testing.assert_array_equal(fields[64].dx_px[answered], fields[False].dx_px[answered])
    err = np.hypot(fields[64].dx_px[:, noisy] - MOTION.dx_px, fields[64].dy_px[:, noisy] - MOTION.dy_px)[both]
    assert np.sqrt(np.mean(err**2)) < 0.15 and err.max() < 0.5


def test_the_two_windows_must_share_their_cell_centres():
    with pytest.raises(ValueError, match=r"multiple of 2 x step_px = 6 .*try 70"):
        TrackingSettings(window_px=64, step_px=3, search_radius_px=2, fallback_window_px=72)
    with pytest.raises(ValueError, match="larger than window_px"):
        TrackingSettings(window_px=64, step_px=3, search_radius_px=2, fallback_window_px=64)
    TrackingSettings(window_px=64, step_px=3, search_radius_px=2, fallback_window_px=70)  # 70 - 64 = 6


def test_false_switches_the_fallback_off_and_auto_scales_its_threshold_with_the_window():
    assert NccTracker(fallback_window_px=False).driver_parameters()["fallback_window_px"] is None
    params = NccTracker(window_px=32, step_px=2, fallback_window_px=64).driver_parameters()
    assert params["min_peak_correlation"] == 12 / 32 and params["fallback_min_peak_correlation"] == 12 / 64
    params = NccTracker(window_px=32, step_px=2, fallback_window_px=64, chance_correlation_px=16.0).driver_parameters()
    assert params["min_peak_correlation"] == 0.5 and params["fallback_min_peak_correlation"] == 0.25


@pytest.mark.parametrize("bad", [0, -8.0, float("nan"), float("inf"), True, "12"])
def test_the_chance_level_per_pixel_must_be_a_positive_number(bad):
    with pytest.raises(ValueError, match="chance_correlation_px must be a number > 0"):
        NccTracker(chance_correlation_px=bad)


@given(window=st.integers(4, 512), step=st.integers(1, 16))
def test_auto_is_the_smallest_window_on_the_shared_cell_lattice_at_least_the_ratio_larger(window, step):
    larger = fallback_window("auto", window_px=window, step_px=step)
    assert larger >= FALLBACK_WINDOW_RATIO * window and (larger - window) % (2 * step) == 0
    smaller = larger - 2 * step  # the lattice's next smaller window: the base one, or below the ratio
    assert smaller <= window or smaller < FALLBACK_WINDOW_RATIO * window
    TrackingSettings(window_px=window, step_px=step, search_radius_px=2, fallback_window_px=larger)  # accepted


def test_the_trackers_fall_back_by_default_and_record_the_window_the_reference_and_drone_settings_do_not():
    from gvfuse.config import REFERENCE_PHASE_PARAMETERS, SAR_NCC_PARAMETERS, UAV_TEMPLATE_PARAMETERS

    assert NccTracker().parameters["fallback_window_px"] == 176  # 128 px at step 3
    assert TemplateTracker().parameters["fallback_window_px"] == 176
    assert FftPhaseTracker(window_px=32, step_px=2).parameters["fallback_window_px"] == 44
    for tracker in (FftPhaseTracker(**REFERENCE_PHASE_PARAMETERS), NccTracker(**SAR_NCC_PARAMETERS),
                    TemplateTracker(**UAV_TEMPLATE_PARAMETERS)):
        assert tracker.driver_parameters()["fallback_window_px"] is None
    assert NccTracker(fallback_window_px=False).driver_parameters()["fallback_window_px"] is None
    assert fallback_window(False, window_px=32, step_px=2) is None
    assert fallback_window(None, window_px=32, step_px=2) is None
