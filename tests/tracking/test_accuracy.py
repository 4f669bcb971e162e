"""Accuracy of the bundled trackers on synthetic pairs with known motion (issue 3 targets).

Definitions used by every figure here (also in docs/tracking.md):

- truth: :meth:`SyntheticPair.true_displacement_on` on the output grid with
  ``window_px`` = the tracker's window (the window-mean displacement);
- a window's ice / cloud / stable share: the fraction of its pixels in
  ``ice_mask`` / ``cloud_mask`` (secondary clouds) / ``stable_mask``;
- clear ice: ice share >= 0.5 and cloud share == 0 (no cloud pixel in the window);
- cloud point: cloud share > 0.5 (the window is mostly cloud);
- stable ground: stable share >= 0.9 and no cloud.

Targets: RMSE on clear ice <= 0.1 px, error > 1 px on <= 1 % of clear ice,
>= 95 % of clear ice given a value, <= 10 % of cloud points given a value,
|mean| on stable ground after the stable-ground correction <= 0.02 px per
component (the pair has a 0.3 px geolocation offset); SAR RMSE <= 0.2 px.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gvfuse.config import REFERENCE_PHASE_PARAMETERS, SAR_NCC_PARAMETERS, UAV_TEMPLATE_PARAMETERS
from gvfuse.model import Image
from gvfuse.testing import make_pair
from gvfuse.testing.motion import Translation
from gvfuse.tracking.correlation import window_sums
from gvfuse.tracking.search import search_radius_px
from gvfuse_plugins.trackers import FftPhaseTracker, NccTracker, TemplateTracker

GEOLOCATION_SHIFT = (0.3, -0.2)


def _share(mask: np.ndarray, window: int, step: int, shape: tuple[int, int]) -> np.ndarray:
    sums = window_sums(mask.astype(np.float32), window_px=window, step_px=step, rows=shape[0], cols=shape[1])
    return sums / window**2


def accuracy(pair, field, window: int, step: int) -> dict[str, float]:
    """The issue's figures for one tracked pair (see the module docstring for the definitions)."""
    shape = field.grid.shape
    tx, ty = pair.true_displacement_on(field.grid, window_px=window)
    ice, cloud = _share(pair.ice_mask, window, step, shape), _share(pair.cloud_mask, window, step, shape)
    stable = (_share(pair.stable_mask, window, step, shape) >= 0.9) & (cloud == 0)
    clear_ice = (ice >= 0.5) & (cloud == 0) & np.isfinite(tx)
    ex, ey = field.dx_px - tx, field.dy_px - ty
    err = np.hypot(ex, ey)
    measured = clear_ice & np.isfinite(err)
    cloud_points = cloud > 0.5
    on_stable = stable & np.isfinite(err)
    return {
        "rmse_px": float(np.sqrt(np.mean(err[measured] ** 2))),
        "over_1px": float(np.mean(err[measured] > 1.0)),
        "coverage": float(measured.sum() / clear_ice.sum()),
        "cloud_valued": float(np.isfinite(field.dx_px[cloud_points]).mean()) if cloud_points.any() else 0.0,
        "stable_mean_px": float(max(abs(np.mean(ex[on_stable])), abs(np.mean(ey[on_stable])))),
        "n_clear_ice": int(clear_ice.sum()),
        "n_cloud": int(cloud_points.sum()),
    }


def optical_pair(size: int, seed: int):
    # 15 m Landsat-like, 16 days, up to 1.5 m/day = 1.6 px, 10 % clouds on the secondary
    return make_pair("optical", (size, size), pixel_size_m=15.0, dt_days=16.0, max_speed_m_per_day=1.5,
                     cloud_fraction=0.1, geolocation_shift_px=GEOLOCATION_SHIFT, seed=seed)


def track(tracker, pair, max_speed_m_per_day: float = 2.0):
    radius = search_radius_px(max_speed_m_per_day, pair.dt_days, pair.pixel_size_m)
    return tracker.track(Image(pair.reference, pair.grid, "ref"), Image(pair.secondary, pair.grid, "sec"),
                         search_radius_px=radius)


def check_optical_targets(figures: dict[str, float]) -> None:
    assert figures["n_clear_ice"] > 50 and figures["n_cloud"] > 20, figures
    assert figures["rmse_px"] <= 0.1, figures
    assert figures["over_1px"] <= 0.01, figures
    assert figures["coverage"] >= 0.95, figures
    assert figures["cloud_valued"] <= 0.10, figures
    assert figures["stable_mean_px"] <= 0.02, figures


# at the reference method's 32 px window (fft-phase with the landsat sensor's settings), where sub-pixel accuracy
# is hardest; both trackers' defaults (128 px) are chosen for coverage on real texture (docs/tracking.md)
OPTICAL_TRACKERS = {"fft-phase": lambda: FftPhaseTracker(**REFERENCE_PHASE_PARAMETERS, step_px=2),
                    "ncc": lambda: NccTracker(window_px=32)}


@pytest.mark.parametrize("name", sorted(OPTICAL_TRACKERS))
def test_optical_targets_small(name):
    tracker = OPTICAL_TRACKERS[name]()
    pair = optical_pair(256, seed=1)
    p = tracker.parameters
    check_optical_targets(accuracy(pair, track(tracker, pair), p["window_px"], p["step_px"]))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 5])
@pytest.mark.parametrize("name", sorted(OPTICAL_TRACKERS))
def test_optical_targets_full_size(name, seed):
    tracker = OPTICAL_TRACKERS[name]()
    pair = optical_pair(768, seed=seed)
    p = tracker.parameters
    check_optical_targets(accuracy(pair, track(tracker, pair), p["window_px"], p["step_px"]))


def test_a_changing_surface_costs_small_windows_their_matches_not_large_ones():
    """Real glacier texture changes between dates (melt, fresh snow, wind); ``surface_change`` renews that
    share of the ice's texture variance. Measured (512 px, 10 m, 16 days, up to 1 m/day, no clouds, seed 4;
    clear-ice coverage / RMSE against the window-mean truth): unchanged, every window matches (fft-phase 32 px
    100 % / 0.03 px); at 0.9 ncc 32 px 48 % / 0.23 px, 128 px 100 % / 0.18 px; at 0.95 26 % against 66 %;
    fft-phase alike (32 px 45 % and 22 %, 128 px 100 % and 66 %). Real Sentinel-2 crops show the same order
    (the Rhone, fft-phase: 13 % of the glacier at 32 px, 59 % at 128 px; docs/tracking.md)."""
    pair = make_pair("optical", (512, 512), pixel_size_m=10.0, dt_days=16.0, max_speed_m_per_day=1.0,
                     cloud_fraction=0.0, surface_change=0.9, seed=4)
    small = accuracy(pair, track(NccTracker(window_px=32, fallback_window_px=False), pair, 1.0), 32, 3)
    large = accuracy(pair, track(NccTracker(fallback_window_px=False), pair, 1.0), 128, 3)
    assert small["coverage"] < 0.6 and large["coverage"] >= 0.95, (small, large)
    # fewer answers, not wrong ones
    assert small["over_1px"] <= 0.01 and large["over_1px"] <= 0.01, (small, large)
    assert large["rmse_px"] <= 0.25, large
    # the larger-window fallback (on by default: 44 px for a 32 px window) answers where the small window
    # did not, as well as the large window does (measured: 86 % at 0.22 px)
    rescued = accuracy(pair, track(NccTracker(window_px=32), pair, 1.0), 32, 3)
    assert rescued["coverage"] >= 0.8 and rescued["over_1px"] <= 0.01 and rescued["rmse_px"] <= 0.25, rescued


def sar_pair(size: int, seed: int):
    return make_pair("sar", (size, size), pixel_size_m=10.0, dt_days=24.0, seed=seed)


#: ncc as the sentinel-1 sensor runs it (its optical defaults are tuned on real optical texture), at 64 px
SAR_TRACKER = {"window_px": 64, **SAR_NCC_PARAMETERS}


def test_sar_target_small():
    pair = sar_pair(320, seed=1)
    tracker = NccTracker(**SAR_TRACKER)
    figures = accuracy(pair, track(tracker, pair, 1.5), tracker.parameters["window_px"], tracker.parameters["step_px"])
    assert figures["n_clear_ice"] > 100 and figures["rmse_px"] <= 0.2, figures


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 5])
def test_sar_target_full_size(seed):
    pair = sar_pair(768, seed=seed)
    tracker = NccTracker(**SAR_TRACKER)
    figures = accuracy(pair, track(tracker, pair, 1.5), tracker.parameters["window_px"], tracker.parameters["step_px"])
    assert figures["rmse_px"] <= 0.2 and figures["coverage"] >= 0.95, figures


# --- coarse-to-fine -------------------------------------------------------------------------------

C2F_TRACKERS = {"fft-phase": FftPhaseTracker, "ncc": NccTracker, "template": TemplateTracker}


@pytest.mark.parametrize("name", sorted(C2F_TRACKERS))
def test_coarse_to_fine_recovers_12_px_with_a_small_fine_radius(name):
    motion = Translation(11.7, -6.2)
    pair = make_pair("optical", (160, 160), motion=motion, cloud_fraction=0.0, seed=4)
    tracker = C2F_TRACKERS[name](window_px=32, step_px=4, coarse_to_fine=4, fine_search_radius_px=3,
                                 correct_stable_ground=False)
    field = tracker.track(Image(pair.reference, pair.grid), Image(pair.secondary, pair.grid), search_radius_px=15)
    assert field.parameters["coarse_to_fine_applied"] and field.parameters["fine_search_radius_px"] == 3
    err = np.hypot(field.dx_px - motion.dx_px, field.dy_px - motion.dy_px)
    assert np.isfinite(err).mean() > 0.9
    assert np.sqrt(np.nanmean(err**2)) < 0.1


def test_coarse_to_fine_is_off_by_default_and_both_meet_the_target_on_slow_ice():
    """Off by default (not measured on real images yet). On 1-2 px synthetic motion, with the Wallis pre-filter
    it was no better (the prior only added interpolation error); with ncc's high-pass default it is better
    (0.024 against 0.062 px here): a candidate default once real closure confirms it."""
    assert all(cls.defaults["coarse_to_fine"] == 1 for cls in C2F_TRACKERS.values())
    pair = optical_pair(256, seed=1)
    plain = accuracy(pair, track(NccTracker(window_px=32), pair), 32, 3)
    c2f = accuracy(pair, track(NccTracker(window_px=32, coarse_to_fine=2), pair), 32, 3)
    check_optical_targets(plain)
    check_optical_targets(c2f)
    assert c2f["rmse_px"] <= plain["rmse_px"] + 0.005, (plain, c2f)


# --- properties on make_pair textures -------------------------------------------------------------

PROPERTY_TRACKERS = {
    "fft-phase": lambda: FftPhaseTracker(window_px=32, step_px=8, correct_stable_ground=False),
    "ncc": lambda: NccTracker(window_px=32, step_px=8, correct_stable_ground=False),
    # the uav sensor's drone settings (orientation correlation, no pre-filter; template's defaults before issue 15):
    # the matcher's own exactness, which a pre-filter's image-edge footprint would hide; its NCC method (today's
    # default) is held to the same properties in tests/tracking/test_template_match.py
    "template": lambda: TemplateTracker(**{**UAV_TEMPLATE_PARAMETERS, "step_px": 8}, correct_stable_ground=False),
}
SIZE = 96


def _known_miss(name: str, trackers: tuple[str, ...], reason: str) -> list:
    """Known misses of the matchers (dense_ncc.py / phase_correlation.py), reported, not hidden by tolerances."""
    return [pytest.param(n, marks=pytest.mark.xfail(reason=reason, strict=False)) if n in trackers else n
            for n in sorted(PROPERTY_TRACKERS)]


#: What remains: the matchers recover these shifts exactly (integer: < 1e-6 px, self: 0) with ``prefilter="none"``
#: and away from the image edge; windows within the pre-filter's footprint (Wallis 21 px, high-pass 12 px) of the
#: image edge see local statistics over a truncated neighbourhood, truncated at the same pixels in both images
#: while the content moved, so the two filtered images are not shifted copies there: up to ~0.07 px (ncc, Wallis)
#: and ~0.015 px (fft-phase, high-pass). Blanking that frame makes them exact but costs the edge windows a third of
#: their pixels and breaks the optical RMSE target for ncc (0.113 px at 256 px), so it was not done.
_EDGE_PREFILTER = "image-edge windows: the pre-filter's truncated footprint (see _EDGE_PREFILTER's comment)"


def texture_pair(dx: float, dy: float, seed: int):
    return make_pair("optical", (SIZE, SIZE), motion=Translation(dx, dy), cloud_fraction=0.0, noise=False,
                     illumination_change=0.0, radiometric_change=False, seed=seed)


def _field(name: str, a: np.ndarray, b: np.ndarray, grid):
    return PROPERTY_TRACKERS[name]().track(Image(a, grid), Image(b, grid), search_radius_px=4)


@pytest.mark.parametrize("name", sorted(PROPERTY_TRACKERS))
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_self_tracking_gives_zero(name, seed):
    pair = texture_pair(0.0, 0.0, seed)
    f = _field(name, pair.reference, pair.reference, pair.grid)
    assert np.isfinite(f.dx_px).mean() > 0.9
    # ncc gives exactly 0 (exact integer peak kept, zero residual -> zero step); fft-phase ~1e-8 (FFT rounding)
    assert np.nanmax(np.abs(f.dx_px)) < 2e-3 and np.nanmax(np.abs(f.dy_px)) < 2e-3


@pytest.mark.parametrize("name", sorted(PROPERTY_TRACKERS))
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000), dx=st.floats(-2.5, 2.5), dy=st.floats(-2.5, 2.5))
def test_swapping_the_pair_negates_the_field(name, seed, dx, dy):
    pair = texture_pair(dx, dy, seed)
    forward = _field(name, pair.reference, pair.secondary, pair.grid)
    backward = _field(name, pair.secondary, pair.reference, pair.grid)
    both = np.isfinite(forward.dx_px) & np.isfinite(backward.dx_px)
    assert both.mean() > 0.8
    # windows sit at the same pixels in both directions, so the content differs by the shift: compare means.
    # Orientation correlation (template's default) is precise to ~0.01-0.02 px by method (unit gradient
    # vectors amplify interpolation error where gradients are weak; tests/tracking/test_template_match.py),
    # so it is held to the sub-pixel tolerance, 0.05 px; the NCC and phase matchers to 0.02 px.
    tolerance = 0.05 if name == "template" else 0.02
    assert abs(np.mean(forward.dx_px[both] + backward.dx_px[both])) < tolerance
    assert abs(np.mean(forward.dy_px[both] + backward.dy_px[both])) < tolerance


@pytest.mark.parametrize("name", _known_miss("int", ("fft-phase", "ncc"), _EDGE_PREFILTER))
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000), dx=st.integers(-3, 3), dy=st.integers(-3, 3))
def test_integer_shift_recovered_exactly(name, seed, dx, dy):
    pair = texture_pair(float(dx), float(dy), seed)
    f = _field(name, pair.reference, pair.secondary, pair.grid)
    assert np.isfinite(f.dx_px).mean() > 0.9
    assert np.nanmax(np.abs(f.dx_px - dx)) < 0.01 and np.nanmax(np.abs(f.dy_px - dy)) < 0.01


@pytest.mark.parametrize("name", _known_miss("sub", ("ncc",), _EDGE_PREFILTER))
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000), dx=st.floats(-2.5, 2.5), dy=st.floats(-2.5, 2.5))
def test_subpixel_shift_within_005_px(name, seed, dx, dy):
    pair = texture_pair(dx, dy, seed)
    f = _field(name, pair.reference, pair.secondary, pair.grid)
    assert np.isfinite(f.dx_px).mean() > 0.9
    assert np.nanmax(np.abs(f.dx_px - dx)) < 0.05 and np.nanmax(np.abs(f.dy_px - dy)) < 0.05
