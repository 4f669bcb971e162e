"""Band-limited fractal terrain texture by spectral synthesis.

A random field with power spectrum ``P(f) ~ (f^2 + f0^2)^(-beta/2)`` is made by
filtering white Gaussian noise in the Fourier domain and transforming back once
(Saupe 1988, "Algorithms for random fractals", in Peitgen & Saupe (eds.),
*The Science of Fractal Images*, Springer). ``beta = 2`` (amplitude ~ 1/f) is the
classic spectrum of natural scenes; ``beta = 4`` gives smooth, large relief.

Why the texture is oversampled and band-limited: the synthetic secondary image
is made by resampling the reference, and any interpolator is only exact for
content well below the Nyquist frequency of the grid it works on. So the
texture is synthesized on a grid ``oversample`` times finer than the sensor,
shaped by a Gaussian optical point-spread function (its MTF), warped there, and
only then integrated over ``oversample x oversample`` blocks to sensor pixels
(:func:`block_mean`), which is what a detector does. On the fine grid the
texture has almost no energy near Nyquist (MTF ~0.03 there with the default
PSF of 1 sensor pixel FWHM), so cubic-spline warping is accurate to ~1e-3 px,
while the sensor image still shows realistic contrast at pixel scale.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def gaussian_mtf(frequency_per_px: np.ndarray, psf_fwhm_px: float) -> np.ndarray:
    """MTF of a Gaussian point-spread function of the given FWHM, at frequencies in cycles per pixel."""
    sigma = psf_fwhm_px / FWHM_PER_SIGMA
    return np.exp(-2.0 * (math.pi * sigma) ** 2 * frequency_per_px**2)


def _frequency_grid(fft_shape: tuple[int, int], oversample: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column frequencies of an rfft2 layout, in cycles per *sensor* pixel."""
    fy = scipy.fft.fftfreq(fft_shape[0]).astype(np.float32) * oversample
    fx = scipy.fft.rfftfreq(fft_shape[1]).astype(np.float32) * oversample
    return fy[:, None], fx[None, :]


def _power_law_filter(radius: np.ndarray, beta: float, outer_scale_px: float) -> np.ndarray:
    # The outer scale flattens the spectrum below 1/outer_scale: a finite image
    # of a pure power law would be dominated by its lowest frequency.
    f0 = 1.0 / outer_scale_px
    return (radius**2 + f0**2) ** (-beta / 4.0)


def _unit_variance(filter_: np.ndarray) -> np.ndarray:
    # Parseval: white noise through H has variance proportional to sum |H|^2,
    # so dividing by its root gives each component unit variance before mixing.
    return filter_ / np.float32(np.sqrt(np.sum(np.square(filter_, dtype=np.float64))))


def _synthesize(
    shape: tuple[int, int],
    filters: list[tuple[float, float, float]],
    *,
    rng: np.random.Generator,
    oversample: int,
    psf_fwhm_px: float | None,
) -> np.ndarray:
    """A Gaussian field whose amplitude spectrum is a sum of power laws ``(weight, beta, outer_scale_px)``.

    Each power law is scaled to unit variance before weighting; one white
    noise draw and one inverse FFT make the whole field.
    """
    fft_shape = (scipy.fft.next_fast_len(shape[0], real=True), scipy.fft.next_fast_len(shape[1], real=True))
    fy, fx = _frequency_grid(fft_shape, oversample)
    radius = np.sqrt(fy**2 + fx**2)
    mtf = gaussian_mtf(radius, psf_fwhm_px) if psf_fwhm_px else None
    amplitude = np.zeros(radius.shape, dtype=np.float32)
    for weight, beta, outer_scale_px in filters:
        filt = _power_law_filter(radius, beta, outer_scale_px)
        if mtf is not None:
            filt *= mtf
        amplitude += _unit_variance(filt) * np.float32(weight)
    del radius, mtf, filt
    # White Gaussian noise drawn directly in the Fourier domain: same
    # statistics as transforming spatial white noise, one FFT cheaper. Real
    # and imaginary parts one after the other keep the peak memory down.
    spectrum = np.empty(amplitude.shape, dtype=np.complex64)
    spectrum.real = rng.standard_normal(amplitude.shape, dtype=np.float32) * amplitude
    spectrum.imag = rng.standard_normal(amplitude.shape, dtype=np.float32) * amplitude
    del amplitude
    spectrum[0, 0] = 0.0
    field = scipy.fft.irfft2(spectrum, s=fft_shape, workers=1)[: shape[0], : shape[1]]
    # Statistics from every 4th row: as good for standardizing, 4x cheaper.
    sample = field[::4]
    field -= np.float32(sample.mean(dtype=np.float64))
    field /= np.float32(sample.std(dtype=np.float64))
    return field.astype(np.float32, copy=False)


def fractal_noise(
    shape: tuple[int, int],
    *,
    rng: np.random.Generator,
    beta: float = 2.0,
    outer_scale_px: float = 64.0,
    psf_fwhm_px: float | None = None,
    oversample: int = 1,
) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian noise with a ``1/f^beta`` power spectrum.

    ``shape`` is in sensor pixels; the result has ``shape * oversample`` samples.
    Frequencies, ``outer_scale_px`` and ``psf_fwhm_px`` are in sensor pixels.
    ``beta = 0`` with a PSF gives band-limited white noise (used for speckle).
    """
    fine = (int(shape[0]) * oversample, int(shape[1]) * oversample)
    return _synthesize(fine, [(1.0, beta, outer_scale_px)], rng=rng, oversample=oversample, psf_fwhm_px=psf_fwhm_px)


def terrain_texture(
    shape: tuple[int, int],
    *,
    rng: np.random.Generator,
    oversample: int = 2,
    beta: float = 2.0,
    texture_scale_px: float = 48.0,
    relief_weight: float = 0.8,
    relief_scale_px: float | None = None,
    psf_fwhm_px: float = 1.0,
) -> np.ndarray:
    """Standardized terrain radiance texture on a grid ``oversample`` times finer than ``shape``.

    The amplitude spectrum adds pixel-scale fractal texture (``beta``, flattened
    beyond ``texture_scale_px``) and large-scale relief (``beta = 4``, scale of a
    quarter of the scene by default) weighted ``relief_weight`` relative to the
    texture, all seen through a Gaussian PSF of ``psf_fwhm_px`` sensor pixels.
    Deterministic for a given ``rng`` state and arguments.
    """
    if oversample < 1 or int(oversample) != oversample:
        raise ValueError(f"oversample must be a positive integer, got {oversample}")
    relief_scale_px = relief_scale_px or max(shape) / 4.0
    fine = (int(shape[0]) * oversample, int(shape[1]) * oversample)
    components = [(1.0, beta, texture_scale_px), (relief_weight, 4.0, relief_scale_px)]
    return _synthesize(fine, components, rng=rng, oversample=oversample, psf_fwhm_px=psf_fwhm_px)


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over non-overlapping ``factor x factor`` blocks of the last two axes (detector integration).

    Fine pixel ``I`` spans ``[I/factor, (I+1)/factor)`` in coarse pixels, so the
    mean over block ``i`` is exactly the integral over coarse pixel ``[i, i+1)``.
    """
    if factor == 1:
        return image
    *lead, rows, cols = image.shape
    if rows % factor or cols % factor:
        raise ValueError(f"shape {image.shape[-2:]} is not a multiple of {factor}")
    blocks = image.reshape(*lead, rows // factor, factor, cols // factor, factor)
    return blocks.mean(axis=(-3, -1), dtype=np.float32)
