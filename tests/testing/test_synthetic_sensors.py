"""Texture, clouds and per-sensor rendering: statistics as stated, reproducible by seed."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gvfuse.testing import (
    block_mean,
    cloud_cover,
    fractal_noise,
    make_pair,
    terrain_texture,
)
from gvfuse.testing.optical import render_optical
from gvfuse.testing.sar import circular_speckle, sar_amplitude_pair, speckle_coherence

FAST = settings(max_examples=12, deadline=None, database=None)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_fractal_noise_has_the_requested_power_law() -> None:
    field = fractal_noise((512, 512), rng=rng(0), beta=2.0, outer_scale_px=1e6)
    assert abs(field.mean()) < 1e-3 and field.std() == pytest.approx(1.0, abs=1e-3)
    power = np.abs(np.fft.fft2(field)) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(512), np.fft.fftfreq(512), indexing="ij")
    radius = np.hypot(fx, fy)
    bands = np.geomspace(0.01, 0.4, 12)
    centres, means = [], []
    for lo, hi in itertools.pairwise(bands):
        ring = (radius >= lo) & (radius < hi)
        centres.append(math.sqrt(lo * hi))
        means.append(power[ring].mean())
    slope = np.polyfit(np.log(centres), np.log(means), 1)[0]
    assert slope == pytest.approx(-2.0, abs=0.15)


def test_texture_is_deterministic_band_limited_and_any_shape() -> None:
    a = terrain_texture((37, 53), rng=rng(5), oversample=3)
    b = terrain_texture((37, 53), rng=rng(5), oversample=3)
    c = terrain_texture((37, 53), rng=rng(6), oversample=3)
    assert a.shape == (111, 159) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # Almost no energy above 0.4 cycles per fine pixel, where cubic splines lose accuracy: the PSF band-limits it.
    fine = terrain_texture((128, 128), rng=rng(1), oversample=2)
    power = np.abs(np.fft.fft2(fine)) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(256), np.fft.fftfreq(256), indexing="ij")
    radius = np.hypot(fx, fy)
    assert power[radius > 0.4].sum() < 1e-3 * power.sum()
    # ...while the sensor image keeps contrast at pixel scale (neighbour differences are not tiny).
    sensor = block_mean(fine, 2)
    assert np.diff(sensor, axis=1).std() > 0.05 * sensor.std()


@FAST
@given(fraction=st.floats(0.0, 0.7), rows=st.integers(40, 200), cols=st.integers(40, 200), seed=st.integers(0, 9999))
def test_clouds_cover_the_requested_fraction(fraction: float, rows: int, cols: int, seed: int) -> None:
    cover = cloud_cover((rows, cols), fraction, rng=rng(seed))
    assert abs(cover.fraction - fraction) <= 0.03
    np.testing.assert_array_equal(cover.mask, cover.opacity > 0)
    assert cover.opacity.min() >= 0 and cover.opacity.max() <= 1


def test_clouds_are_smooth_blobs_with_semi_transparent_edges() -> None:
    cover = cloud_cover((256, 256), 0.25, rng=rng(3))
    opacity = cover.opacity
    assert ((opacity > 0) & (opacity < 1)).sum() > 0.05 * cover.mask.sum()  # thin edges exist
    assert (opacity == 1).sum() > 0.3 * cover.mask.sum()  # and opaque cores
    # Blobs, not salt and pepper: independent pixels would change between neighbours 2 * 0.25 * 0.75 = 37 % of the time.
    assert (cover.mask[:, 1:] != cover.mask[:, :-1]).mean() < 0.1


def test_optical_clouds_are_nan_or_painted_bright() -> None:
    hidden = make_pair("optical", (128, 128), cloud_fraction=0.2, reference_cloud_fraction=0.05, seed=4)
    np.testing.assert_array_equal(np.isnan(hidden.secondary), hidden.cloud_mask)
    np.testing.assert_array_equal(np.isnan(hidden.reference), hidden.reference_cloud_mask)
    assert abs(hidden.cloud_mask.mean() - 0.2) <= 0.03 and abs(hidden.reference_cloud_mask.mean() - 0.05) <= 0.03
    painted = make_pair("optical", (128, 128), cloud_fraction=0.2, clouds_as_nan=False, seed=4)
    np.testing.assert_array_equal(painted.cloud_mask, hidden.cloud_mask)
    assert np.isfinite(painted.secondary).all()
    opaque = painted.secondary[painted.cloud_mask]
    assert np.median(opaque) > np.median(painted.secondary[~painted.cloud_mask]) + 10_000


def test_optical_digital_numbers_are_realistic() -> None:
    pair = make_pair("optical", (128, 128), cloud_fraction=0.0, seed=9)
    for image in (pair.reference, pair.secondary):
        assert image.dtype == np.float32
        assert 0 < image.min() and image.max() < 65535
        np.testing.assert_array_equal(image, np.round(image))  # whole DN, as a uint16 band
    ice_dn, rock_dn = np.median(pair.reference[pair.ice_mask]), np.median(pair.reference[pair.stable_mask])
    assert 5000 < rock_dn < 20000 and ice_dn > rock_dn + 5000  # ice brighter than rock in the NIR
    uav = make_pair("uav", (128, 128), seed=9)
    assert 0 <= uav.reference.min() and uav.reference.max() <= 255


def test_secondary_radiometry_differs_but_noise_free_rendering_is_exact() -> None:
    reflectance = np.full((64, 64), 0.2, np.float32)
    noisy = render_optical(reflectance, rng=rng(1))
    assert noisy.std() == pytest.approx(40.0, rel=0.1)
    assert noisy.mean() == pytest.approx(15000.0, abs=10.0)  # inverse of the Landsat C2 rescaling
    changed = render_optical(reflectance, rng=rng(1), gain=1.1, offset_dn=100.0)
    assert changed.mean() == pytest.approx(5000.0 + 100.0 + 1.1 * 10000.0, abs=10.0)


def test_speckle_is_circular_gaussian_with_unit_power() -> None:
    z = circular_speckle((256, 256), rng=rng(2), resolution_px=2.0)
    intensity = np.abs(z) ** 2
    assert intensity.mean() == pytest.approx(1.0, abs=0.05)
    assert np.mean(z.real * z.imag) == pytest.approx(0.0, abs=0.03)
    # Rayleigh amplitude: coefficient of variation sqrt(4/pi - 1) = 0.523.
    amplitude = np.abs(z)
    assert amplitude.std() / amplitude.mean() == pytest.approx(math.sqrt(4 / math.pi - 1), abs=0.03)


def _flat_pair(coherence: float, looks: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    flat = np.ones((256, 256), np.float32)
    everything = (slice(None), slice(None))
    return sar_amplitude_pair(flat, lambda stack: stack, everything, coherence, rng=rng(seed), looks=looks,
                              oversample=2)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_speckle_correlation_follows_the_coherence() -> None:
    same_ref, same_sec = _flat_pair(1.0)
    np.testing.assert_allclose(same_sec, same_ref, rtol=1e-5)
    fresh_ref, fresh_sec = _flat_pair(0.0)
    assert abs(_correlation(fresh_ref**2, fresh_sec**2)) < 0.05
    # Intensities of circular Gaussian speckle correlate by the squared complex coherence, rho here.
    half_ref, half_sec = _flat_pair(0.5)
    assert _correlation(half_ref**2, half_sec**2) == pytest.approx(0.5, abs=0.06)
    # Multi-looking averages independent speckle: equivalent number of looks of the intensity.
    ref4, _ = _flat_pair(1.0, looks=4)
    intensity = ref4**2
    assert intensity.mean() ** 2 / intensity.var() == pytest.approx(4.0, rel=0.15)


def test_sar_pair_with_full_coherence_and_no_motion_is_identical() -> None:
    from gvfuse.testing import Translation

    pair = make_pair("sar", (96, 96), motion=Translation(0.0, 0.0), coherence=1.0, seed=5)
    np.testing.assert_allclose(pair.secondary, pair.reference, rtol=1e-5)
    decorrelated = make_pair("sar", (96, 96), motion=Translation(0.0, 0.0), coherence=0.0, seed=5)
    np.testing.assert_array_equal(decorrelated.reference, pair.reference)
    # The backscatter texture stays common; the speckle does not.
    assert _correlation(np.log(decorrelated.reference), np.log(decorrelated.secondary)) < 0.6
    assert pair.reference.dtype == np.float32 and (pair.reference > 0).all()


def test_default_sar_coherence_falls_on_fast_ice_and_with_time() -> None:
    assert speckle_coherence(np.array(0.0), 12.0) > speckle_coherence(np.array(0.0), 36.0)
    assert speckle_coherence(np.array(0.0), 12.0) > speckle_coherence(np.array(5.0), 12.0)
    pair = make_pair("sar", (128, 128), seed=1, max_speed_m_per_day=4.0)
    assert pair.coherence is not None
    assert pair.coherence[pair.ice_mask].min() < pair.coherence[pair.stable_mask].min()


def test_sar_has_no_clouds_and_no_noise_switch() -> None:
    with pytest.raises(ValueError, match="no clouds"):
        make_pair("sar", (64, 64), cloud_fraction=0.1)
    with pytest.raises(ValueError, match="speckle"):
        make_pair("sar", (64, 64), noise=False)
