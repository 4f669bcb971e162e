"""Known-truth tests of the ImGRAFT-style template matcher (NCC and orientation correlation).

Synthetic pairs: smooth random texture shifted exactly in the Fourier domain
(periodic texture, so the shift has no border artefacts), small images.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from gvfuse.errors import TrackingError
from gvfuse.tracking.matching import MatchResult
from gvfuse.tracking.template_match import orientation_field, template_match

W, S, R = 24, 12, 4  # window, step, search radius used by most tests
METHODS = ("ncc", "oc")


def texture(n: int = 96, sigma: float = 1.2, seed: int = 0) -> np.ndarray:
    """Periodic smooth random texture with unit variance, float32."""
    rng = np.random.default_rng(seed)
    a = ndimage.gaussian_filter(rng.standard_normal((n, n)), sigma, mode="wrap")
    return (a / a.std()).astype(np.float32)


def fourier_shift(a: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """``a`` moved by (dy, dx) px: out[y, x] = a[y - dy, x - dx] (periodic, exact for band-limited a)."""
    ky = np.fft.fftfreq(a.shape[0])[:, None]
    kx = np.fft.fftfreq(a.shape[1])[None, :]
    return np.real(np.fft.ifft2(np.fft.fft2(a) * np.exp(-2j * np.pi * (ky * dy + kx * dx)))).astype(np.float32)


def match(ref: np.ndarray, sec: np.ndarray, method: str, **kw: object) -> MatchResult:
    args: dict[str, object] = {"window_px": W, "step_px": S, "search_radius_px": R, "method": method}
    args.update(kw)
    return template_match(ref, sec, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", METHODS)
def test_result_shape_follows_the_protocol(method: str) -> None:
    ref = texture(100)
    res = match(ref, ref, method)
    n = (100 - 2 * R - W) // S + 1
    assert isinstance(res, MatchResult)
    assert res.dx_px.shape == (n, n)
    assert res.dx_px.dtype == np.float32


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shift", [(0, 0), (2, -3), (-1, 1), (3, 0)])
def test_integer_shift_recovered_exactly(method: str, shift: tuple[int, int]) -> None:
    ref = texture()
    sec = np.roll(ref, shift, axis=(0, 1))
    res = match(ref, sec, method)
    assert np.isfinite(res.dx_px).all()
    np.testing.assert_array_equal(res.dy_px, shift[0])
    np.testing.assert_array_equal(res.dx_px, shift[1])
    np.testing.assert_allclose(res.peak_correlation, 1.0, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_self_match_is_zero(method: str) -> None:
    ref = texture(seed=3)
    res = match(ref, ref.copy(), method)
    np.testing.assert_array_equal(res.dx_px, 0.0)
    np.testing.assert_array_equal(res.dy_px, 0.0)
    assert (res.snr > 1).all()


@settings(max_examples=15, deadline=None)
@given(
    dy=st.floats(-2.9, 2.9, allow_nan=False),
    dx=st.floats(-2.9, 2.9, allow_nan=False),
    seed=st.integers(0, 1000),
)
def test_subpixel_shift_ncc_within_005_px(dy: float, dx: float, seed: int) -> None:
    ref = texture(seed=seed)
    res = match(ref, fourier_shift(ref, dy, dx), "ncc")
    assert np.isfinite(res.dx_px).all()
    assert np.abs(res.dx_px - dx).max() <= 0.05
    assert np.abs(res.dy_px - dy).max() <= 0.05
    # Pixel locking would show as a bias of the mean towards whole pixels.
    assert abs(float(np.mean(res.dx_px)) - dx) <= 0.01


@settings(max_examples=10, deadline=None)
@given(
    dy=st.floats(-2.9, 2.9, allow_nan=False),
    dx=st.floats(-2.9, 2.9, allow_nan=False),
    seed=st.integers(0, 1000),
)
def test_subpixel_shift_oc_within_005_px(dy: float, dx: float, seed: int) -> None:
    ref = texture(seed=seed)
    res = match(ref, fourier_shift(ref, dy, dx), "oc")
    assert np.isfinite(res.dx_px).all()
    # OC's surface is rougher (unit vectors amplify interpolation error where
    # gradients are weak): every point within 0.1 px, the RMSE within 0.05 px.
    err = np.hypot(res.dx_px - dx, res.dy_px - dy)
    assert err.max() <= 0.1
    assert np.sqrt(np.mean(err**2)) <= 0.05


@pytest.mark.parametrize("method", METHODS)
def test_swapped_pair_negates(method: str) -> None:
    ref = texture(seed=5)
    sec = fourier_shift(ref, 0.37, -1.61)
    fwd = match(ref, sec, method)
    back = match(sec, ref, method)
    tol = 0.01 if method == "ncc" else 0.06
    np.testing.assert_allclose(back.dx_px, -fwd.dx_px, atol=tol)
    np.testing.assert_allclose(back.dy_px, -fwd.dy_px, atol=tol)


def test_oc_robust_to_illumination_change_where_ncc_correlation_drops() -> None:
    ref = texture(seed=7)
    moved = fourier_shift(ref, 1.3, -0.6)
    # Gain, offset and a strong gamma on a positive version of the image.
    lit = (0.3 * ((moved - moved.min() + 0.05) / (np.ptp(moved) + 0.1)) ** 3.0 + 5.0).astype(np.float32)
    oc = match(ref, lit, "oc")
    np.testing.assert_allclose(oc.dx_px, -0.6, atol=0.1)
    np.testing.assert_allclose(oc.dy_px, 1.3, atol=0.1)
    ncc_clean = match(ref, moved, "ncc")
    ncc_lit = match(ref, lit, "ncc")
    assert np.nanmedian(ncc_lit.peak_correlation) < np.nanmedian(ncc_clean.peak_correlation) - 0.05
    # OC barely notices: its peak drops much less than NCC's.
    oc_clean = match(ref, moved, "oc")
    oc_drop = np.median(oc_clean.peak_correlation) - np.median(oc.peak_correlation)
    ncc_drop = np.nanmedian(ncc_clean.peak_correlation) - np.nanmedian(ncc_lit.peak_correlation)
    assert oc_drop < ncc_drop


@pytest.mark.parametrize("method", METHODS)
def test_peak_on_search_edge_is_nan(method: str) -> None:
    ref = texture(seed=11)
    # A shift of exactly R puts the true peak on the outer ring of the search region.
    res = match(ref, np.roll(ref, (0, R), axis=(0, 1)), method)
    assert np.isnan(res.dx_px).all()
    assert np.isnan(res.dy_px).all()
    assert np.nanmin(res.peak_correlation) > 0.99  # the surface existed; the peak was rejected
    # With the truth outside the search, whatever is found is a weak, random peak.
    res = match(ref, np.roll(ref, (0, R + 2), axis=(0, 1)), method)
    assert np.all(np.isnan(res.dx_px) | (res.peak_correlation < 0.6))
    # One pixel inside the edge is still measured.
    res = match(ref, np.roll(ref, (0, R - 1), axis=(0, 1)), method)
    np.testing.assert_array_equal(res.dx_px, R - 1)


@pytest.mark.parametrize("method", METHODS)
def test_mostly_nan_window_is_nan_and_partial_nan_is_matched(method: str) -> None:
    ref = texture(seed=13)
    sec = np.roll(ref, (1, 2), axis=(0, 1))
    ref_holes = ref.copy()
    # Window (0, 0) covers ref[R:R+W, R:R+W]: blank 60 % of it.
    ref_holes[R : R + W, R : R + int(0.6 * W)] = np.nan
    # Window (0, 2) loses 20 %: still matched on its valid pixels.
    c = R + 2 * S
    ref_holes[R : R + W, c : c + int(0.2 * W)] = np.nan
    res = match(ref_holes, sec, method)
    assert np.isnan(res.dx_px[0, 0]) and np.isnan(res.dy_px[0, 0])
    assert res.dx_px[0, 2] == pytest.approx(2.0, abs=0.02)
    assert res.dy_px[0, 2] == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("method", METHODS)
def test_nan_in_search_region_makes_no_false_peak(method: str) -> None:
    ref = texture(seed=17)
    sec = np.roll(ref, (1, -1), axis=(0, 1))
    # No data over part of each search region: the filled area must not attract the peak.
    sec[:, 30:40] = np.nan
    res = match(ref, sec, method)
    good = np.isfinite(res.dx_px)
    assert good.mean() > 0.5
    np.testing.assert_allclose(res.dx_px[good], -1.0, atol=0.05)
    np.testing.assert_allclose(res.dy_px[good], 1.0, atol=0.05)


@pytest.mark.parametrize("method", METHODS)
def test_constant_window_is_nan(method: str) -> None:
    ref = texture(seed=19)
    sec = np.roll(ref, (1, 1), axis=(0, 1))
    ref[R : R + W, R : R + W] = 0.25  # window (0, 0) is textureless
    sec[R : R + W + 1, R : R + W + 1] = 0.25
    res = match(ref, sec, method)
    assert np.isnan(res.dx_px[0, 0])
    assert np.isfinite(res.dx_px[-1, -1])


@pytest.mark.parametrize("method", METHODS)
def test_constant_or_empty_images_give_all_nan(method: str) -> None:
    flat = np.full((80, 80), 3.0, np.float32)
    res = match(flat, flat, method)
    assert np.isnan(res.dx_px).all() and np.isnan(res.peak_correlation).all()
    empty = np.full((80, 80), np.nan, np.float32)
    assert np.isnan(match(texture(80), empty, method).dx_px).all()


def test_bad_arguments() -> None:
    ref = texture(64)
    with pytest.raises(ValueError, match="method"):
        template_match(ref, ref, window_px=16, step_px=4, search_radius_px=4, method="phase")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="search_radius_px"):
        template_match(ref, ref, window_px=16, step_px=4, search_radius_px=1)
    with pytest.raises(ValueError, match="shape"):
        template_match(ref, ref[:-1], window_px=16, step_px=4, search_radius_px=4)
    with pytest.raises(TrackingError, match="does not fit"):
        template_match(ref, ref, window_px=60, step_px=4, search_radius_px=4)


def test_orientation_field_is_unit_or_zero() -> None:
    img = texture(48)
    img[10:20, 10:20] = 1.0  # flat: no orientation inside
    img[30, 30] = np.nan
    f = orientation_field(img)
    mag = np.abs(f)
    assert np.all((np.abs(mag - 1) < 1e-12) | (mag == 0))
    assert (mag[12:18, 12:18] == 0).all()
    assert mag[30, 29] == 0 and mag[29, 30] == 0  # neighbours of no data have no centred gradient
    assert (mag[0] == 0).all()  # outer ring has no centred gradient


def _reference_samples(image: np.ndarray, top: float, left: float, size: int) -> np.ndarray:
    """``image`` sampled at ``(top + a, left + b)`` by scipy's cubic B-spline, NaN within one pixel of no-data."""
    from gvfuse.tracking.template_match import _spline_coefficients

    coef = _spline_coefficients(image)[0][_PAD:-_PAD, _PAD:-_PAD]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    out = ndimage.map_coordinates(coef, [top + yy, left + xx], order=3, prefilter=False, mode="mirror")
    nan = np.isnan(image)
    for y in (np.floor(top), np.ceil(top)):  # the one or two nearest rows and columns of each sample
        for x in (np.floor(left), np.ceil(left)):
            out[nan[int(y) : int(y) + size, int(x) : int(x) + size]] = np.nan
    return out


def _reference_ncc(t: np.ndarray, p: np.ndarray) -> float:
    both = np.isfinite(t) & np.isfinite(p)
    return float(np.corrcoef(t[both], p[both])[0, 1])


def _reference_oc(f_t: np.ndarray, t_defined: np.ndarray, patch: np.ndarray) -> float:
    gx = 0.5 * (patch[1:-1, 2:] - patch[1:-1, :-2])
    gy = 0.5 * (patch[2:, 1:-1] - patch[:-2, 1:-1])
    defined = np.isfinite(gx) & np.isfinite(gy)
    f = orientation_field(patch)[1:-1, 1:-1]
    n_t = (np.abs(f_t) ** 2 * defined).sum()
    n_f = (np.abs(f) ** 2 * t_defined).sum()
    return float((np.conj(f_t) * f).sum().real / np.sqrt(n_t * n_f))


_PAD = 6  # template_match's padding of the spline coefficients


@settings(max_examples=25, deadline=None)
@given(
    top=st.floats(20.0, 40.0), left=st.floats(20.0, 40.0), h=st.sampled_from([1.0, 0.25, 0.5]),
    hole=st.booleans(), seed=st.integers(0, 50),
)
def test_compiled_lag_scores_equal_a_plain_resampling_and_correlation(
    top: float, left: float, h: float, hole: bool, seed: int
) -> None:
    """The refinement's compiled kernels (NCC and OC at the nine lags ``(-h, 0, h)²``) equal scipy's cubic
    B-spline sampling followed by a plain masked correlation, within 1e-9, with and without no-data in both
    images (the numpy version they replace dropped a spline tap when a lag crossed a whole pixel)."""
    from gvfuse.tracking.template_match import (
        _gradient_defined,
        _ncc_neighbourhood,
        _oc_neighbourhood,
        _spline_coefficients,
    )

    w = 12
    sec = texture(80, seed=seed).astype(np.float64)
    ref = texture(80, seed=seed + 100).astype(np.float64)
    if hole:
        sec[30:36, 28:33] = np.nan
        ref[24:27, 22:30] = np.nan
    sec_pad = _spline_coefficients(sec)
    t_top, t_left = 22, 24
    tmpl = ref[t_top : t_top + w, t_left : t_left + w][None]
    valid = np.isfinite(tmpl)
    ncc = _ncc_neighbourhood(np.where(valid, tmpl, 0.0), valid.astype(np.float64), sec_pad,
                             np.array([top]), np.array([left]), h)[0]
    f_ref, defined = orientation_field(ref), _gradient_defined(ref)
    f_t = f_ref[None, t_top : t_top + w, t_left : t_left + w]
    d_t = defined[None, t_top : t_top + w, t_left : t_left + w]
    oc = _oc_neighbourhood(f_t, d_t, sec_pad, np.array([top]), np.array([left]), h)[0]
    for u, oy in enumerate((-h, 0.0, h)):
        for v, ox in enumerate((-h, 0.0, h)):
            assert ncc[u, v] == pytest.approx(_reference_ncc(tmpl[0], _reference_samples(sec, top + oy, left + ox, w)),
                                              abs=1e-9)
            patch = _reference_samples(sec, top + oy - 1.0, left + ox - 1.0, w + 2)
            assert oc[u, v] == pytest.approx(_reference_oc(f_t[0], d_t[0], patch), abs=1e-9)
