"""The bundled tracker plugins: registration, defaults, parameters."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from gvfuse.config import SENSOR_DEFAULTS
from gvfuse.interfaces import Tracker
from gvfuse.model import Grid, Image
from gvfuse.tracking.dense_ncc import DenseNccMatcher
from gvfuse_plugins import trackers


def test_hook_returns_tracker_classes_with_unique_names():
    classes = trackers.gvfuse_register_trackers()
    names = [c.name for c in classes]
    assert {"fft-phase", "ncc"} <= set(names) and len(names) == len(set(names))
    assert all(issubclass(c, Tracker) for c in classes)


def test_reference_defaults_and_unknown_parameter():
    # issue 15: fft-phase's own defaults are chosen on real texture (128 px, 40 % valid data); the reference
    # method's COSI-Corr settings (32 px, step 2 for Landsat, 60 % valid) are what the landsat sensor runs
    assert (trackers.FftPhaseTracker.defaults["window_px"], trackers.FftPhaseTracker.defaults["step_px"]) == (128, 3)
    landsat = trackers.FftPhaseTracker(**SENSOR_DEFAULTS["landsat"]["tracker_parameters"]).parameters
    assert (landsat["window_px"], landsat["step_px"], landsat["min_valid_fraction"]) == (32, 2, 0.6)
    # acceptance at the chance level (12 / window, the integer NCC peak too) with the forward-backward check by
    # default; the landsat sensor keeps the coherence at 16 / window without the gate (as before issue 15); the
    # reference method's fixed 0.95 stays an explicit setting
    assert trackers.FftPhaseTracker.defaults["min_peak_correlation"] == "auto"
    assert trackers.FftPhaseTracker().driver_parameters()["min_peak_correlation"] == 12 / 128
    assert trackers.FftPhaseTracker()._matcher().ncc_gate_px == 12
    reference = trackers.FftPhaseTracker(**SENSOR_DEFAULTS["landsat"]["tracker_parameters"])
    assert reference.driver_parameters()["min_peak_correlation"] == 0.5
    assert reference._matcher().ncc_gate_px == 0
    # the forward-backward check's way back: dense NCC by default, the phase correlation for the reference
    assert isinstance(trackers.FftPhaseTracker()._backward_matcher(), DenseNccMatcher)
    assert reference._backward_matcher() is None
    with pytest.raises(ValueError, match="backward_matcher"):
        trackers.FftPhaseTracker(backward_matcher="fft")
    assert trackers.FftPhaseTracker(min_peak_correlation=0.95).driver_parameters()["min_peak_correlation"] == 0.95
    with pytest.raises(TypeError, match="no parameter"):
        trackers.NccTracker(windw_px=3)


@pytest.mark.parametrize("cls", [trackers.FftPhaseTracker, trackers.NccTracker, trackers.TemplateTracker])
def test_the_dense_ncc_way_back_is_refined_by_backward_refine_iterations(cls):
    way_back = cls()._backward_matcher()
    assert isinstance(way_back, DenseNccMatcher) and way_back.refine_iterations == 1
    assert cls(backward_refine_iterations=3)._backward_matcher().refine_iterations == 3
    if cls is trackers.NccTracker:  # its forward pass keeps its own passes
        assert cls()._matcher().refine_iterations == 3
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="backward_refine_iterations"):
            cls(backward_refine_iterations=bad)


@pytest.mark.parametrize("cls", [trackers.FftPhaseTracker, trackers.NccTracker, trackers.TemplateTracker])
def test_false_switches_the_forward_backward_check_off(cls):
    assert cls().driver_parameters()["max_forward_backward_px"] == 0.5
    assert cls(max_forward_backward_px=False).driver_parameters()["max_forward_backward_px"] is None
    with pytest.raises(ValueError, match="max_forward_backward_px"):
        cls(max_forward_backward_px=True)


@pytest.mark.parametrize("cls", [trackers.FftPhaseTracker, trackers.NccTracker])
def test_track_returns_offsets_on_output_grid(cls):
    from scipy import ndimage

    rng = np.random.default_rng(0)
    base = ndimage.gaussian_filter(rng.standard_normal((160, 160)), 1.5).astype(np.float32)
    g = Grid(32647, Affine(15, 0, 0, 0, -15, 0), (128, 128))
    ref, sec = base[16:144, 16:144], base[15:143, 14:142]  # content moves by (+2, +1)
    field = cls(window_px=32, step_px=4, correct_stable_ground=False).track(
        Image(ref, g, "r"), Image(sec, g, "s"), search_radius_px=4)
    assert field.grid == g.window_centre_grid(4, 32)
    assert np.nanmedian(field.dx_px) == pytest.approx(2, abs=0.01)
    assert np.nanmedian(field.dy_px) == pytest.approx(1, abs=0.01)
    assert field.parameters["tracker"] == cls.name
