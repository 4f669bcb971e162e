"""The compiled phase-plane fit against the plain numpy estimator it implements (Leprince et al. 2007)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import fft as sfft

from gvfuse.tracking.phase_correlation import (
    _cut_joint,
    _fit_kernel,
    _frequency_grid,
    _taper,
    fit_phase_plane,
)
from tests.helpers.textures import shifted_pair


@settings(max_examples=25, deadline=None)
@given(dx=st.floats(-0.9, 0.9), dy=st.floats(-0.9, 0.9), w=st.sampled_from([16, 32, 48]),
       holes=st.booleans(), seed=st.integers(0, 1000))
def test_the_fit_kernel_is_the_numpy_estimator(dx, dy, w, holes, seed):
    ref, sec = shifted_pair(w + 8, dx, dy, seed=seed)
    ref, sec = ref.astype(np.float32), sec.astype(np.float32)
    if holes:  # no-data in one image: the joint cut ignores those pixels in both
        sec[2 : w // 3, 3 : w // 2] = np.nan
    taper = _taper(w, 0.5)
    y0 = x0 = np.array([4])
    rp, sp = np.empty((1, w, w), np.float32), np.empty((1, w, w), np.float32)
    ok = np.empty(1, bool)
    _cut_joint(ref, sec, y0, x0, w, taper, 0.4 * w * w, rp, sp, ok)
    assert ok[0]
    fr, fs = sfft.rfft2(rp).reshape(1, -1), sfft.rfft2(sp).reshape(1, -1)
    wx, wy, usable = _frequency_grid(w)
    ky = (2 * np.pi * sfft.fftfreq(w)).astype(np.float64)
    kx = (2 * np.pi * sfft.rfftfreq(w)).astype(np.float64)
    got = [np.empty(1, np.float32) for _ in range(3)]
    _fit_kernel(fr, fs, usable, kx, ky, 0.9, *got)
    want = fit_phase_plane(fs * np.conj(fr), wx, wy, usable, mask_factor=0.9)
    np.testing.assert_allclose(got[0], want[0], atol=2e-4)
    np.testing.assert_allclose(got[1], want[1], atol=2e-4)
    np.testing.assert_allclose(got[2], want[2], atol=1e-4)
