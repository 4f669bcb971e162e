"""The ``template`` tracker plugin: registration, parameters, and a tracked synthetic pair."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from scipy import ndimage

from gvfuse.interfaces import Tracker
from gvfuse.model import Grid, Image
from gvfuse_plugins.trackers import TemplateTracker, gvfuse_register_trackers


def _pair(n: int = 128, dy: float = 0.6, dx: float = -1.3) -> tuple[Image, Image]:
    rng = np.random.default_rng(42)
    a = ndimage.gaussian_filter(rng.standard_normal((n, n)), 1.2, mode="wrap")
    ky, kx = np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :]
    b = np.real(np.fft.ifft2(np.fft.fft2(a) * np.exp(-2j * np.pi * (ky * dy + kx * dx))))
    grid = Grid(32647, Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 3200000.0), (n, n))
    return (Image(a.astype(np.float32), grid, "ref.tif"), Image(b.astype(np.float32), grid, "sec.tif"))


def test_hook_registers_the_class() -> None:
    assert TemplateTracker in gvfuse_register_trackers()
    assert issubclass(TemplateTracker, Tracker)
    assert TemplateTracker.name == "template"
    assert TemplateTracker.defaults["method"] in ("ncc", "oc")


def test_parameters_are_checked() -> None:
    with pytest.raises(TypeError, match="no parameter"):
        TemplateTracker(chip_size=32)
    with pytest.raises(ValueError, match="method"):
        TemplateTracker(method="phase")


@pytest.mark.parametrize("method", ["ncc", "oc"])
def test_tracks_a_uniform_shift(method: str) -> None:
    ref, sec = _pair()
    # no pre-filter: on this small periodic pair the high-pass default's border effect (its 12 px footprint
    # at the image edge, where the driver pads with no data) would be measured instead of the matcher
    tracker = TemplateTracker(method=method, window_px=24, step_px=8, prefilter="none", correct_stable_ground=False)
    field = tracker.track(ref, sec, search_radius_px=3.2)
    assert field.grid == ref.grid.window_centre_grid(8, 24)
    valid = np.isfinite(field.dx_px)
    assert valid.mean() > 0.8
    # Windows at the image border search partly into the driver's NaN padding: a little less precise.
    tol = 0.02 if method == "ncc" else 0.06
    np.testing.assert_allclose(field.dx_px[valid], -1.3, atol=tol)
    np.testing.assert_allclose(field.dy_px[valid], 0.6, atol=tol)
    assert {"peak_correlation", "snr"} <= set(field.quality)
    assert field.parameters["method"] == method
    assert field.parameters["tracker"] == "template"
