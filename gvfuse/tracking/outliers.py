"""Rejection of untrustworthy offsets: quality thresholds and the normalized median test."""

from __future__ import annotations

import numpy as np


def _neighbour_stack(field: np.ndarray) -> np.ndarray:
    """The 8 neighbours of every cell, shape (8, rows, cols), NaN outside the field."""
    padded = np.pad(field, 1, mode="constant", constant_values=np.nan)
    rows, cols = field.shape
    out = np.empty((8, rows, cols), dtype=field.dtype)
    k = 0
    for a in (0, 1, 2):
        for b in (0, 1, 2):
            if a == 1 and b == 1:
                continue
            out[k] = padded[a : a + rows, b : b + cols]
            k += 1
    return out


def _nan_median_axis0(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median over axis 0 ignoring NaN (NaN sort last), and the count of finite values."""
    s = np.sort(stack, axis=0)
    n = np.isfinite(stack).sum(axis=0)
    lo = np.clip((n - 1) // 2, 0, stack.shape[0] - 1)
    hi = np.clip(n // 2, 0, stack.shape[0] - 1)
    med = 0.5 * (np.take_along_axis(s, lo[None], 0)[0] + np.take_along_axis(s, hi[None], 0)[0])
    med[n == 0] = np.nan
    return med, n


def normalized_median_residual(component: np.ndarray, *, epsilon_px: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Westerweel & Scarano (2005, Exp. Fluids 39:1096) normalized median residual of one component.

    ``r = |u - median(neighbours)| / (median(|neighbours - median(neighbours)|) + epsilon)``
    over the 8 neighbours of each cell (NaN neighbours ignored). Returns the
    residual and the number of valid neighbours.
    """
    nb = _neighbour_stack(component.astype(np.float32))
    med, n = _nan_median_axis0(nb)
    spread, _ = _nan_median_axis0(np.abs(nb - med[None]))
    with np.errstate(invalid="ignore"):
        residual = np.abs(component - med) / (spread + epsilon_px)
    return residual, n


def normalized_median_test(
    dx_px: np.ndarray,
    dy_px: np.ndarray,
    *,
    threshold: float = 2.0,
    epsilon_px: float = 0.1,
    iterations: int = 2,
    min_neighbours: int = 2,
) -> np.ndarray:
    """Boolean mask of outliers by the normalized median test (Westerweel & Scarano 2005).

    A vector is rejected when the residual of either component exceeds
    ``threshold`` or when it has fewer than ``min_neighbours`` valid
    neighbours (an isolated match cannot be checked). The test is repeated
    ``iterations`` times, rejected vectors no longer counting as neighbours.
    NaN input cells are never reported (they are already missing).
    """
    dx = np.array(dx_px, dtype=np.float32, copy=True)
    dy = np.array(dy_px, dtype=np.float32, copy=True)
    rejected = np.zeros(dx.shape, dtype=bool)
    for _ in range(max(1, iterations)):
        valid = np.isfinite(dx) & np.isfinite(dy)
        rx, n = normalized_median_residual(dx, epsilon_px=epsilon_px)
        ry, _ = normalized_median_residual(dy, epsilon_px=epsilon_px)
        with np.errstate(invalid="ignore"):
            bad = valid & ((rx > threshold) | (ry > threshold) | (n < min_neighbours))
        if not bad.any():
            break
        rejected |= bad
        dx[bad] = np.nan
        dy[bad] = np.nan
    return rejected


def quality_mask(
    peak_correlation: np.ndarray,
    snr: np.ndarray,
    *,
    min_peak_correlation: float,
    min_snr: float = 0.0,
) -> np.ndarray:
    """True where the match passes the peak-correlation and SNR thresholds (NaN fails)."""
    with np.errstate(invalid="ignore"):
        return (peak_correlation >= min_peak_correlation) & (snr >= min_snr)


def fill_nearest(field: np.ndarray) -> np.ndarray:
    """NaN cells replaced by the value of the nearest finite cell (all-NaN input returns zeros)."""
    from scipy import ndimage

    missing = ~np.isfinite(field)
    if not missing.any():
        return field
    if missing.all():
        return np.zeros_like(field)
    idx = ndimage.distance_transform_edt(missing, return_distances=False, return_indices=True)
    return field[tuple(idx)]
