"""Warping accuracy: the displacement the synthetic images show is the one they claim, to < 0.01 px."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage
from skimage.filters import window
from skimage.registration import phase_cross_correlation

from gvfuse.testing import (
    GlacierFlow,
    Rotation,
    Translation,
    ValleyGlacier,
    make_pair,
    sample_bilinear,
    sample_motion,
    warp,
)
from gvfuse.testing.texture import _synthesize

FAST = settings(max_examples=10, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
CLEAN = {"illumination_change": 0.0, "radiometric_change": False, "noise": False}


def phase_plane_shift(reference: np.ndarray, secondary: np.ndarray, max_frequency: float = 0.25) -> np.ndarray:
    """``(dx, dy)`` with ``secondary(q) = reference(q - d)``, from the slope of the cross-spectrum phase.

    The reference estimate: a whole-pixel start from cross-correlation, then a
    weighted least-squares plane fitted to the phase over frequencies below
    ``max_frequency`` cycles/px (well sampled, free of aliasing), on
    Hann-windowed images (Leprince et al. 2007's frequency masking, simplified),
    then once more on the secondary shifted back by that estimate: the fixed
    taper weights the content differently once it has moved, a bias that grows
    with the shift (0.011 px at 2.5 px) and is gone when what is left is small.
    """
    first = _phase_plane_once(reference, secondary, max_frequency)
    back = np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(secondary), (-first[1], -first[0]))).real
    return first + _phase_plane_once(reference, back, max_frequency)


def _phase_plane_once(reference: np.ndarray, secondary: np.ndarray, max_frequency: float) -> np.ndarray:
    start = phase_cross_correlation(reference, secondary, upsample_factor=10, normalization=None)[0]
    taper = window("hann", reference.shape)
    a = np.fft.fft2((reference - reference.mean()) * taper)
    b = np.fft.fft2((secondary - secondary.mean()) * taper)
    fy = np.fft.fftfreq(reference.shape[0])[:, None] * np.ones(reference.shape)
    fx = np.fft.fftfreq(reference.shape[1])[None, :] * np.ones(reference.shape)
    cross = b * np.conj(a) * np.exp(-2j * np.pi * (fx * start[1] + fy * start[0]))
    radius = np.hypot(fx, fy)
    use = (radius > 0) & (radius < max_frequency)
    weight = np.sqrt(np.abs(cross[use]))
    design = -2 * np.pi * np.stack([fx[use], fy[use]], axis=1) * weight[:, None]
    residual = np.linalg.lstsq(design, np.angle(cross[use]) * weight, rcond=None)[0]
    return residual - (start[1], start[0])


def local_shift(reference: np.ndarray, secondary: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """``(dx, dy)`` of one window by Gauss-Newton least squares, resampling the whole secondary (no window edges)."""
    coefficients = ndimage.spline_filter(secondary.astype(np.float64), order=3)
    rows, cols = np.mgrid[top : top + size, left : left + size].astype(np.float64)
    target = reference[top : top + size, left : left + size].astype(np.float64)
    shift = np.zeros(2)
    for _ in range(8):
        moved = ndimage.map_coordinates(coefficients, [rows + shift[1], cols + shift[0]], order=3, prefilter=False)
        gy, gx = np.gradient(moved)
        jacobian = np.stack([gx.ravel(), gy.ravel()], axis=1)
        shift += np.linalg.lstsq(jacobian, (target - moved).ravel(), rcond=None)[0]
    return shift


def periodic_texture(n: int, seed: int) -> np.ndarray:
    """A band-limited texture that is exactly periodic on n x n, so Fourier shifting it is exact."""
    return _synthesize((n, n), [(1.0, 2.0, 48.0), (0.8, 4.0, 64.0)], rng=np.random.default_rng(seed),
                       oversample=2, psf_fwhm_px=1.0)


def fourier_shift(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    fy = np.fft.fftfreq(image.shape[0])[:, None]
    fx = np.fft.fftfreq(image.shape[1])[None, :]
    return np.real(np.fft.ifft2(np.fft.fft2(image) * np.exp(-2j * np.pi * (fx * dx + fy * dy))))


@FAST
@given(dx=st.floats(-3.0, 3.0), dy=st.floats(-3.0, 3.0), seed=st.integers(0, 1000))
def test_warp_matches_exact_fourier_shift(dx: float, dy: float, seed: int) -> None:
    texture = periodic_texture(128, seed)
    zero = np.zeros_like(texture)
    warped = warp(texture, zero + dx, zero + dy)
    exact = fourier_shift(texture, dx, dy)
    inner = (slice(8, -8), slice(8, -8))
    difference = (warped - exact)[inner]
    assert np.sqrt(np.mean(difference**2)) < 0.02 * texture.std()
    # The same difference read as a displacement error, by least squares on the gradient.
    gy, gx = np.gradient(exact)
    design = np.stack([-gx[inner].ravel(), -gy[inner].ravel()], axis=1)
    error = np.linalg.lstsq(design, difference.ravel(), rcond=None)[0]
    assert np.abs(error).max() < 0.005
    measured = phase_cross_correlation(exact[inner], warped[inner], upsample_factor=1000, normalization=None)[0]
    assert np.abs(measured).max() <= 0.01


def test_integer_shift_is_a_roll_of_the_interior() -> None:
    texture = periodic_texture(96, 3)
    zero = np.zeros_like(texture)
    warped = warp(texture, zero + 3.0, zero - 2.0)
    rolled = np.roll(texture, (-2, 3), axis=(0, 1))
    np.testing.assert_allclose(warped[4:-4, 4:-4], rolled[4:-4, 4:-4], rtol=0, atol=2e-6)


def test_zero_field_is_identity_and_stacks_share_positions() -> None:
    texture = periodic_texture(64, 4)
    zero = np.zeros_like(texture)
    np.testing.assert_allclose(warp(texture, zero, zero), texture, rtol=0, atol=2e-6)
    stack = warp(np.stack([texture, 2 * texture]), zero + 0.4, zero - 0.7)
    np.testing.assert_allclose(stack[1], 2 * stack[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(stack[0], warp(texture, zero + 0.4, zero - 0.7))


def test_integrate_blocks_equals_block_mean_of_the_fine_warp() -> None:
    texture = periodic_texture(64, 5)
    zero = np.zeros_like(texture)
    fine = warp(texture, zero + 0.7, zero + 0.2)
    coarse = warp(texture, zero + 0.7, zero + 0.2, integrate_blocks=4, chunk_rows=24)
    np.testing.assert_allclose(coarse, fine.reshape(16, 4, 16, 4).mean(axis=(1, 3)), rtol=0, atol=1e-5)


def test_fixed_point_solves_the_inverse_on_a_glacier() -> None:
    """Warping coordinate ramps returns the source positions p of each pixel q: p + d(p) + shift = q."""
    glacier = ValleyGlacier(head_m=(1500, -500), terminus_m=(1600, 2600), half_width_m=500,
                            max_speed_m_per_day=2.0, meander_amplitude_m=300, meander_wavelength_m=3000)
    dx, dy, _ = sample_motion(GlacierFlow([glacier], 10.0, 30.0), (256, 320))
    assert np.hypot(dx, dy).max() > 5.0  # a real test of the iteration, not of a trivial field
    rows, cols = np.meshgrid(np.arange(256.0), np.arange(320.0), indexing="ij")
    shift = (0.3, -0.2)
    p_row, p_col = warp(np.stack([rows, cols]).astype(np.float32), dx, dy, shift_px=shift)
    # warp() defines d between centres bilinearly; continuous coordinates are index + 0.5.
    d_col = sample_bilinear(dx, p_row + 0.5, p_col + 0.5)
    d_row = sample_bilinear(dy, p_row + 0.5, p_col + 0.5)
    # Away from the edges, where p leaves the image (by up to max |d|) and the ramps are mirrored.
    inner = (slice(10, -10), slice(10, -10))
    assert np.abs((p_col + d_col + shift[0] - cols)[inner]).max() < 1e-3
    assert np.abs((p_row + d_row + shift[1] - rows)[inner]).max() < 1e-3


def test_non_uniform_warp_of_a_smooth_image_is_analytic() -> None:
    """A small rotation of a smooth pattern: the warp equals the pattern at the exactly inverted positions."""
    shape = (96, 96)
    rotation = Rotation(angle_deg=3.0, centre_row_px=48.0, centre_col_px=48.0)
    dx, dy, _ = sample_motion(rotation, shape)
    rows, cols = np.meshgrid(np.arange(96.0) + 0.5, np.arange(96.0) + 0.5, indexing="ij")

    def pattern(r: np.ndarray, c: np.ndarray) -> np.ndarray:
        return np.sin(0.31 * c + 0.12 * r) + np.cos(0.07 * c - 0.26 * r)

    warped = warp(pattern(rows, cols).astype(np.float32), dx, dy)
    # The inverse of a rotation is the opposite rotation.
    back_dx, back_dy, _ = Rotation(-3.0, 48.0, 48.0).evaluate(rows, cols)
    expected = pattern(rows + back_dy, cols + back_dx)
    inner = (slice(10, -10), slice(10, -10))
    assert np.abs(warped - expected)[inner].max() < 2e-3


def test_fold_over_is_refused() -> None:
    field = np.tile(np.linspace(0.0, 60.0, 32, dtype=np.float32), (32, 1))  # gradient ~1.9 px/px
    with pytest.raises(ValueError, match="not invertible"):
        warp(np.ones((32, 32), np.float32), field, np.zeros_like(field))


def test_non_finite_inputs_are_refused() -> None:
    image = np.ones((16, 16), np.float32)
    image[3, 3] = np.nan
    zero = np.zeros_like(image)
    with pytest.raises(ValueError, match="non-finite"):
        warp(image, zero, zero)


@FAST
@given(dx=st.floats(-2.5, 2.5), dy=st.floats(-2.5, 2.5), seed=st.integers(0, 10_000))
def test_optical_pair_shows_its_subpixel_shift(dx: float, dy: float, seed: int) -> None:
    pair = make_pair("optical", (192, 192), motion=Translation(dx, dy), cloud_fraction=0.0, seed=seed, **CLEAN)
    assert np.abs(phase_plane_shift(pair.reference, pair.secondary) - (dx, dy)).max() <= 0.005


# Derandomized: the speckle's warp has a tail (worst of 120 random cases 0.0100 px, 95 % below 0.005), so a
# fresh random draw in CI could land on it; the same examples every run keep CI deterministic.
@settings(max_examples=6, deadline=None, database=None, derandomize=True)
@given(dx=st.floats(-2.0, 2.0), dy=st.floats(-2.0, 2.0), seed=st.integers(0, 10_000))
def test_sar_pair_shows_its_subpixel_shift(dx: float, dy: float, seed: int) -> None:
    pair = make_pair("sar", (192, 192), motion=Translation(dx, dy), coherence=1.0, seed=seed)
    assert np.abs(phase_plane_shift(pair.reference, pair.secondary) - (dx, dy)).max() <= 0.01


def test_geolocation_shift_adds_to_the_motion() -> None:
    pair = make_pair("uav", (192, 192), motion=Translation(0.5, 0.25), geolocation_shift_px=(0.3, -0.2),
                     seed=11, **CLEAN)
    np.testing.assert_allclose(phase_plane_shift(pair.reference, pair.secondary), (0.8, 0.05), atol=0.01)
    assert pair.geolocation_shift_px == (0.3, -0.2)
    np.testing.assert_array_equal(pair.dx_px, 0.5)


def test_integer_shift_through_the_whole_pipeline_is_exact() -> None:
    pair = make_pair("optical", (96, 128), motion=Translation(2.0, -1.0), cloud_fraction=0.0, seed=2, **CLEAN)
    # sec(q) = ref(q - d): sec[i, j] = ref[i + 1, j - 2]; the entering strip is real texture too, so skip it only.
    np.testing.assert_allclose(pair.secondary[:-1, 2:], pair.reference[1:, :-2], rtol=0, atol=0.01)


def test_glacier_windows_move_by_their_true_displacement() -> None:
    """Windows on a wide glacier: locally measured shift = mean true displacement + geolocation shift."""
    glacier = ValleyGlacier(head_m=(3840, -3000), terminus_m=(3840, 7000), half_width_m=2000,
                            max_speed_m_per_day=2.0)
    pair = make_pair("optical", (256, 512), glaciers=[glacier], dt_days=16.0, cloud_fraction=0.0,
                     geolocation_shift_px=(0.3, -0.2), seed=7, **CLEAN)
    for top, left in ((40, 232), (120, 180), (160, 300)):
        window_ = (slice(top, top + 48), slice(left, left + 48))
        truth = np.array([pair.dx_px[window_].mean() + 0.3, pair.dy_px[window_].mean() - 0.2])
        assert abs(truth[1]) > 0.5
        assert np.abs(local_shift(pair.reference, pair.secondary, top, left, 48) - truth).max() < 0.02
