"""Small synthetic textures with exactly known shifts, for the tracking unit tests."""

from __future__ import annotations

import numpy as np
from affine import Affine
from scipy import ndimage

from gvfuse.model import Grid, Image


def smooth_noise(shape: tuple[int, int], *, sigma_px: float = 1.5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.standard_normal(shape), sigma_px)


def fourier_shift(image: np.ndarray, dx_px: float, dy_px: float) -> np.ndarray:
    """``out(p) = image(p - d)``: content at ``p`` in ``image`` is found at ``p + d`` in ``out``."""
    ky = np.fft.fftfreq(image.shape[0])[:, None]
    kx = np.fft.fftfreq(image.shape[1])[None, :]
    return np.real(np.fft.ifft2(np.fft.fft2(image) * np.exp(-2j * np.pi * (kx * dx_px + ky * dy_px))))


def shifted_pair(size: int, dx_px: float, dy_px: float, *, seed: int = 0, noise: float = 0.0,
                 sigma_px: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    pad = 32
    base = smooth_noise((size + 2 * pad, size + 2 * pad), sigma_px=sigma_px, seed=seed)
    ref = base[pad:-pad, pad:-pad]
    sec = fourier_shift(base, dx_px, dy_px)[pad:-pad, pad:-pad]
    if noise:
        rng = np.random.default_rng(seed + 1000)
        sec = sec + noise * ref.std() * rng.standard_normal(sec.shape)
    return ref.astype(np.float32), sec.astype(np.float32)


def grid(shape: tuple[int, int], pixel_m: float = 15.0) -> Grid:
    return Grid(32647, Affine(pixel_m, 0, 500000, 0, -pixel_m, 3300000), shape)


def images(ref: np.ndarray, sec: np.ndarray) -> tuple[Image, Image]:
    g = grid(ref.shape)
    return Image(ref, g, "ref.tif"), Image(sec, g, "sec.tif")
