"""Pre-filters applied to both images before matching, NaN-aware.

No-data (NaN) pixels stay NaN and do not spread further than the filter's own
footprint needs: local statistics are computed by normalized convolution
(sums of the valid pixels divided by the count of valid pixels), so a hole
only shrinks the support of its neighbours' statistics.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

#: Names accepted by :func:`apply_prefilter`.
PREFILTERS: tuple[str, ...] = ("none", "wallis", "high-pass", "log-wallis")


def _valid_and_filled(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    valid = np.isfinite(image)
    filled = np.where(valid, image, 0.0).astype(np.float32)
    return valid, filled


def nan_box_mean(image: np.ndarray, window_px: int, *, min_valid_fraction: float = 0.25) -> np.ndarray:
    """Mean of the valid pixels in a ``window_px`` square around each pixel (normalized convolution).

    NaN where fewer than ``min_valid_fraction`` of the window is valid.
    """
    valid, filled = _valid_and_filled(image)
    k = (int(window_px), int(window_px))
    total = cv2.boxFilter(filled, cv2.CV_32F, k, normalize=True, borderType=cv2.BORDER_CONSTANT)
    count = cv2.boxFilter(valid.astype(np.float32), cv2.CV_32F, k, normalize=True, borderType=cv2.BORDER_CONSTANT)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    mean[count < min_valid_fraction] = np.nan
    return mean


def wallis_filter(image: np.ndarray, window_px: int = 21, *, min_std: float = 1e-6) -> np.ndarray:
    """Wallis filter: ``(I - local mean) / local std`` over a ``window_px`` square window.

    Flattens contrast and brightness differences between acquisitions
    (Wallis 1976; the default pre-filter of autoRIFT, Gardner et al. 2018).
    Local statistics use only valid pixels; input NaN stays NaN, and pixels
    whose neighbourhood has no contrast (std < ``min_std``) become NaN.
    """
    image = np.asarray(image, dtype=np.float32)
    valid, filled = _valid_and_filled(image)
    # subtract a global offset first so the E[x^2] - E[x]^2 variance does not cancel catastrophically
    offset = float(np.mean(filled[valid])) if valid.any() else 0.0
    centred = np.where(valid, image - offset, 0.0).astype(np.float32)
    k = (int(window_px), int(window_px))
    count = cv2.boxFilter(valid.astype(np.float32), cv2.CV_32F, k, normalize=True, borderType=cv2.BORDER_CONSTANT)
    s1 = cv2.boxFilter(centred, cv2.CV_32F, k, normalize=True, borderType=cv2.BORDER_CONSTANT)
    s2 = cv2.boxFilter(centred * centred, cv2.CV_32F, k, normalize=True, borderType=cv2.BORDER_CONSTANT)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / count
        var = s2 / count - mean * mean
        std = np.sqrt(np.maximum(var, 0.0))
        out = (centred - mean) / std
    out[~valid | (std < min_std) | (count < 0.25)] = np.nan
    return out.astype(np.float32)


def high_pass(image: np.ndarray, sigma_px: float = 3.0) -> np.ndarray:
    """Image minus its (NaN-aware) Gaussian blur of standard deviation ``sigma_px``.

    Removes slowly varying illumination and shading (a common optical
    pre-filter, e.g. Heid & Kääb 2012 compare it with orientation correlation).
    """
    image = np.asarray(image, dtype=np.float32)
    valid, filled = _valid_and_filled(image)
    blur = cv2.GaussianBlur(filled, (0, 0), sigma_px, borderType=cv2.BORDER_CONSTANT)
    weight = cv2.GaussianBlur(valid.astype(np.float32), (0, 0), sigma_px, borderType=cv2.BORDER_CONSTANT)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = image - blur / weight
    out[~valid] = np.nan
    return out.astype(np.float32)


def log_amplitude(image: np.ndarray) -> np.ndarray:
    """Natural log of SAR amplitude (or intensity): turns multiplicative speckle into additive noise.

    Values <= 0 (no signal) become NaN.
    """
    image = np.asarray(image, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.log(image)
    out[~(image > 0)] = np.nan
    return out.astype(np.float32)


def orientation_image(image: np.ndarray, *, min_gradient: float | None = None) -> np.ndarray:
    """Orientation image ``(gx + i*gy) / |gx + i*gy|`` (complex64), 0 where the gradient is tiny.

    Orientation correlation (Fitch, Kadyrov, Christmas & Kittler 2002, "Orientation
    correlation", BMVC; Heid & Kääb 2012, Remote Sens. Environ. 118) matches
    these unit vectors instead of grey values, which makes it robust to
    illumination changes. Central differences; a NaN pixel makes its
    neighbours' gradients NaN (one pixel of spread), which stay NaN.
    ``min_gradient`` defaults to 1e-3 of the median gradient magnitude.
    """
    image = np.asarray(image, dtype=np.float32)
    gy, gx = np.gradient(image)
    g = (gx + 1j * gy).astype(np.complex64)
    mag = np.abs(g)
    if min_gradient is None:
        finite = mag[np.isfinite(mag)]
        min_gradient = 1e-3 * float(np.median(finite)) if finite.size else 0.0
        min_gradient = max(min_gradient, 1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(mag > min_gradient, g / mag, 0).astype(np.complex64)
    out[~np.isfinite(mag)] = np.nan
    return out


def _none(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float32)


def _log_wallis(image: np.ndarray) -> np.ndarray:
    return wallis_filter(log_amplitude(image))


_FILTERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": _none,
    "wallis": wallis_filter,
    "high-pass": high_pass,
    "log-wallis": _log_wallis,
}


def prefilter_margin_px(name: str) -> int:
    """How many pixels beyond a region the filter ``name`` reads (for tiled processing)."""
    return {"none": 0, "wallis": 11, "high-pass": 12, "log-wallis": 11}[name]


def apply_prefilter(name: str, image: np.ndarray) -> np.ndarray:
    """Apply the pre-filter called ``name`` (one of :data:`PREFILTERS`) with its default settings."""
    try:
        return _FILTERS[name](image)
    except KeyError:
        raise ValueError(f"unknown pre-filter {name!r}; known: {', '.join(PREFILTERS)}") from None
