"""Rejection of untrustworthy offsets: quality thresholds and the normalized median test."""

from __future__ import annotations

import numba
import numpy as np

#: A sorting network for 8 values (19 compare-exchanges; Knuth, TAOCP vol. 3, 5.3.4): branch-free, unlike a sort.
_NETWORK_8 = np.array([(0, 2), (1, 3), (4, 6), (5, 7), (0, 4), (1, 5), (2, 6), (3, 7), (0, 1), (2, 3), (4, 5),
                       (6, 7), (2, 4), (3, 5), (1, 4), (3, 6), (1, 2), (3, 4), (5, 6)], dtype=np.int64)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _median_of(values: np.ndarray, n: int, network: np.ndarray) -> np.float32:  # pragma: no cover
    """Median of the first ``n`` of 8 ``values`` whose rest are +inf (sorted in place; the mean of the middle
    two when ``n`` is even)."""
    for c in range(network.shape[0]):
        a, b = network[c, 0], network[c, 1]
        lo, hi = min(values[a], values[b]), max(values[a], values[b])
        values[a] = lo
        values[b] = hi
    return np.float32(0.5) * (values[(n - 1) // 2] + values[n // 2])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _residual_kernel(component: np.ndarray, epsilon_px: np.float32, residual: np.ndarray,
                     count: np.ndarray) -> None:  # pragma: no cover
    """:func:`normalized_median_residual` of every cell, in float32 (see there)."""
    rows, cols = component.shape
    nb = np.empty(8, np.float32)
    dev = np.empty(8, np.float32)
    network = _NETWORK_8
    for i in range(rows):
        for j in range(cols):
            n = 0
            nb[:] = np.inf
            dev[:] = np.inf
            for a in range(max(i - 1, 0), min(i + 2, rows)):
                for b in range(max(j - 1, 0), min(j + 2, cols)):
                    if (a != i or b != j) and np.isfinite(component[a, b]):
                        nb[n] = component[a, b]
                        n += 1
            count[i, j] = n
            if n == 0:
                residual[i, j] = np.nan
                continue
            med = _median_of(nb, n, network)
            for t in range(n):
                dev[t] = abs(nb[t] - med)
            spread = _median_of(dev, n, network)
            residual[i, j] = abs(component[i, j] - med) / (spread + epsilon_px)


def normalized_median_residual(component: np.ndarray, *, epsilon_px: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Westerweel & Scarano (2005, Exp. Fluids 39:1096) normalized median residual of one component.

    ``r = |u - median(neighbours)| / (median(|neighbours - median(neighbours)|) + epsilon)``
    over the 8 neighbours of each cell (NaN neighbours ignored), in float32
    by a compiled loop. Returns the residual (NaN where the cell or all its
    neighbours are NaN) and the number of valid neighbours.
    """
    component = np.ascontiguousarray(component, dtype=np.float32)
    residual = np.empty(component.shape, np.float32)
    count = np.empty(component.shape, np.int64)
    _residual_kernel(component, np.float32(epsilon_px), residual, count)
    return residual, count


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
