"""SAR amplitude rendering with speckle that is attached to the surface and partly decorrelates.

Speckle is the interference of many scatterers within a resolution cell; for
fully developed speckle the complex field is circular Gaussian and the
amplitude Rayleigh distributed (Goodman 1976, "Some fundamental properties of
speckle", JOSA 66(11), 1145-1150). It is made here as complex white noise
seen through the system's point-spread function (speckle grains are one
resolution cell, ~2 px for Sentinel-1 GRD at 10 m spacing), in the reference
frame, so it can be warped with the surface like the texture: what the ice
carries, the speckle carries.

Between the dates the scatterers change. The secondary speckle mixes the
warped reference speckle with fresh, independent speckle,
``z2 = sqrt(rho) * warp(z1) + sqrt(1 - rho) * z_fresh``, which keeps
``E|z2|^2 = 1``; the complex correlation of ``z1`` and ``z2`` is ``sqrt(rho)``,
so ``rho`` is the correlation coefficient of the two speckle *intensities*
(the squared magnitude of the interferometric coherence), the quantity an
amplitude tracker feels. It falls with the time baseline and with motion
(Zebker & Villasenor 1992, "Decorrelation in interferometric radar echoes",
IEEE TGRS 30(5), 950-959): :func:`speckle_coherence` is a simple exponential model of both.

Reflectivity and speckle are drawn on a grid ``oversample`` times finer than
the pixel spacing and band-limited by the PSF (resolution ~2 px), so cubic
warping there is accurate (speckle is the signal a SAR tracker follows, and
at the pixel spacing alone cubic interpolation of 2-px grains errs by ~5 %).
The complex image is then averaged over each output pixel, as a GRD pixel
averages the focused signal, before taking the amplitude.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gvfuse.testing.texture import block_mean, fractal_noise

SIGMA0_CALIBRATION = 660.0
"""Sentinel-1 GRD ``sigmaNought`` calibration constant: ``sigma0 = DN^2 / A^2``."""


def circular_speckle(
    shape: tuple[int, int], *, rng: np.random.Generator, resolution_px: float = 2.0, oversample: int = 1
) -> np.ndarray:
    """Complex circular Gaussian speckle with ``E|z|^2 = 1`` and grains of ``resolution_px`` (PSF FWHM).

    ``shape`` and ``resolution_px`` are in output pixels; the result has
    ``shape * oversample`` samples.
    """
    real = fractal_noise(shape, rng=rng, beta=0.0, psf_fwhm_px=resolution_px, oversample=oversample)
    imag = fractal_noise(shape, rng=rng, beta=0.0, psf_fwhm_px=resolution_px, oversample=oversample)
    # Two independent unit-variance Gaussian fields make a circular complex one.
    speckle = np.empty(real.shape, dtype=np.complex64)
    speckle.real = real * np.float32(np.sqrt(0.5))
    speckle.imag = imag * np.float32(np.sqrt(0.5))
    return speckle


def speckle_coherence(
    displacement_px: np.ndarray,
    dt_days: float,
    *,
    rho_0: float = 0.95,
    tau_days: float = 48.0,
    decorrelation_px: float = 8.0,
) -> np.ndarray:
    """Speckle correlation ``rho_0 * exp(-dt / tau) * exp(-|d| / decorrelation_px)``, ``|d|`` in px.

    An empirical model with plausible C-band magnitudes (0.74 on stable ground
    at 12 days, less on fast ice), not a fit to data.
    """
    rho = rho_0 * np.exp(-dt_days / tau_days) * np.exp(-np.abs(displacement_px) / decorrelation_px)
    return np.clip(rho, 0.0, 1.0).astype(np.float32)


def backscatter_amplitude(
    texture: np.ndarray,
    ice_weight: np.ndarray,
    *,
    rock_db: float = -8.0,
    ice_db: float = -13.0,
    contrast_db: float = 2.5,
) -> np.ndarray:
    """Amplitude reflectivity ``sqrt(sigma0)`` from a standardized texture (dB contrast), ice darker than rock."""
    sigma0_db = rock_db + ice_weight * (ice_db - rock_db) + contrast_db * texture
    return (10.0 ** (sigma0_db / 20.0)).astype(np.float32)


def _echo(amplitude: np.ndarray, real: np.ndarray, imag: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary parts of ``amplitude * (real + i imag)`` averaged over output pixels.

    Kept as two float32 arrays: complex temporaries would be complex128 and twice the memory.
    """
    return block_mean(amplitude * real, factor), block_mean(amplitude * imag, factor)


def _intensity(real: np.ndarray, imag: np.ndarray) -> np.ndarray:
    return real * real + imag * imag


def sar_amplitude_pair(
    backscatter: np.ndarray,
    warp_bands: Callable[[np.ndarray], np.ndarray],
    crop: tuple[slice, slice],
    coherence: np.ndarray | np.floating | float,
    *,
    rng: np.random.Generator,
    looks: int = 1,
    resolution_px: float = 2.0,
    oversample: int = 1,
    calibration: float = SIGMA0_CALIBRATION,
) -> tuple[np.ndarray, np.ndarray]:
    """Reference and secondary amplitude (DN-like, linear, float32) of a surface that moves.

    ``backscatter`` (amplitude reflectivity) is on the fine working grid,
    ``oversample`` times finer than the output; the reference speckle is drawn
    there too. ``warp_bands`` moves a ``(bands, rows, cols)`` stack with the
    surface (fine grid in and out), ``crop`` cuts the scene out of the
    block-averaged working grid, and ``coherence`` (scalar or scene-shaped)
    sets how much speckle survives. ``looks`` independent speckle realisations
    are averaged in intensity (multi-looking).
    """
    if looks < 1:
        raise ValueError(f"looks must be >= 1, got {looks}")
    k = oversample
    coarse = (backscatter.shape[0] // k, backscatter.shape[1] // k)
    speckles = [circular_speckle(coarse, rng=rng, resolution_px=resolution_px, oversample=k) for _ in range(looks)]
    # Warp the reflectivity and each speckle separately: each is band-limited
    # and so interpolates accurately, while their product would not.
    stack = np.stack([backscatter] + [part for z in speckles for part in (z.real, z.imag)])
    moved = warp_bands(stack)
    del stack
    carried_weight = np.sqrt(np.asarray(coherence, dtype=np.float32))
    fresh_weight = np.sqrt(1.0 - np.asarray(coherence, dtype=np.float32))
    reference_intensity = np.zeros(coarse, dtype=np.float32)[crop]
    secondary_intensity = np.zeros_like(reference_intensity)
    for look, z in enumerate(speckles):
        reference_intensity += _intensity(*(part[crop] for part in _echo(backscatter, z.real, z.imag, k)))
        carried = (part[crop] for part in _echo(moved[0], moved[1 + 2 * look], moved[2 + 2 * look], k))
        z_fresh = circular_speckle(coarse, rng=rng, resolution_px=resolution_px, oversample=k)
        fresh = (part[crop] for part in _echo(moved[0], z_fresh.real, z_fresh.imag, k))
        mixed = [carried_weight * c + fresh_weight * f for c, f in zip(carried, fresh)]
        secondary_intensity += _intensity(*mixed)
    reference = calibration * np.sqrt(reference_intensity / looks)
    secondary = calibration * np.sqrt(secondary_intensity / looks)
    return reference.astype(np.float32), secondary.astype(np.float32)
