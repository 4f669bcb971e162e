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


@numba.njit(inline="always")
def _sorted_pair(a: np.float32, b: np.float32) -> tuple[np.float32, np.float32]:  # pragma: no cover
    return min(a, b), max(a, b)


@numba.njit(inline="always")
def _sort8(v0, v1, v2, v3, v4, v5, v6, v7):  # type: ignore[no-untyped-def]  # pragma: no cover
    """The 8 values sorted by :data:`_NETWORK_8`, in registers (so that a loop over cells vectorises)."""
    v0, v2 = _sorted_pair(v0, v2)
    v1, v3 = _sorted_pair(v1, v3)
    v4, v6 = _sorted_pair(v4, v6)
    v5, v7 = _sorted_pair(v5, v7)
    v0, v4 = _sorted_pair(v0, v4)
    v1, v5 = _sorted_pair(v1, v5)
    v2, v6 = _sorted_pair(v2, v6)
    v3, v7 = _sorted_pair(v3, v7)
    v0, v1 = _sorted_pair(v0, v1)
    v2, v3 = _sorted_pair(v2, v3)
    v4, v5 = _sorted_pair(v4, v5)
    v6, v7 = _sorted_pair(v6, v7)
    v2, v4 = _sorted_pair(v2, v4)
    v3, v5 = _sorted_pair(v3, v5)
    v1, v4 = _sorted_pair(v1, v4)
    v3, v6 = _sorted_pair(v3, v6)
    v1, v2 = _sorted_pair(v1, v2)
    v3, v4 = _sorted_pair(v3, v4)
    v5, v6 = _sorted_pair(v5, v6)
    return v0, v1, v2, v3, v4, v5, v6, v7


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _residual_kernel(component: np.ndarray, epsilon_px: np.float32, residual: np.ndarray,
                     count: np.ndarray) -> None:  # pragma: no cover
    """:func:`normalized_median_residual` of every cell, in float32 (see there).

    Cells inside the grid whose 3x3 neighbourhood is all finite (nearly all of them) go through a
    branch-free loop that vectorises over a row; the others (the border, cells next to a gap) gather
    their finite neighbours one by one. Both sort with the same network, so they agree bit for bit.
    """
    rows, cols = component.shape
    if rows == 0 or cols == 0:
        return
    half = np.float32(0.5)
    gap = np.zeros(cols, np.uint8)
    nb = np.empty(8, np.float32)  # the slow path's buffers, once for all its cells
    dev = np.empty(8, np.float32)
    for i in range(1, rows - 1):
        up, mid, down = component[i - 1], component[i], component[i + 1]
        out = residual[i]
        for j in range(1, cols - 1):
            s0, s1, s2, s3, s4, s5, s6, s7 = _sort8(up[j - 1], up[j], up[j + 1], mid[j - 1], mid[j + 1],
                                                    down[j - 1], down[j], down[j + 1])
            med = half * (s3 + s4)
            d = _sort8(abs(s0 - med), abs(s1 - med), abs(s2 - med), abs(s3 - med), abs(s4 - med),
                       abs(s5 - med), abs(s6 - med), abs(s7 - med))
            out[j] = abs(mid[j] - med) / (half * (d[3] + d[4]) + epsilon_px)
        for j in range(cols):
            gap[j] = not (np.isfinite(up[j]) and np.isfinite(mid[j]) and np.isfinite(down[j]))
        for j in range(1, cols - 1):
            count[i, j] = 8
            if gap[j - 1] or gap[j] or gap[j + 1]:
                count[i, j] = _cell_residual(component, i, j, epsilon_px, residual, nb, dev)
        count[i, 0] = _cell_residual(component, i, 0, epsilon_px, residual, nb, dev)
        count[i, cols - 1] = _cell_residual(component, i, cols - 1, epsilon_px, residual, nb, dev)
    for i in (0, rows - 1):
        for j in range(cols):
            count[i, j] = _cell_residual(component, i, j, epsilon_px, residual, nb, dev)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _cell_residual(component: np.ndarray, i: int, j: int, epsilon_px: np.float32, residual: np.ndarray,
                   nb: np.ndarray, dev: np.ndarray) -> int:  # pragma: no cover
    """The residual of cell ``(i, j)`` from its finite neighbours, into ``residual``; returns their number.
    ``nb`` and ``dev``: buffers of 8."""
    rows, cols = component.shape
    nb[:] = np.inf
    dev[:] = np.inf
    n = 0
    for a in range(max(i - 1, 0), min(i + 2, rows)):
        for b in range(max(j - 1, 0), min(j + 2, cols)):
            if (a != i or b != j) and np.isfinite(component[a, b]):
                nb[n] = component[a, b]
                n += 1
    if n == 0:
        residual[i, j] = np.nan
        return 0
    med = _median_of(nb, n, _NETWORK_8)
    for t in range(n):
        dev[t] = abs(nb[t] - med)
    spread = _median_of(dev, n, _NETWORK_8)
    residual[i, j] = abs(component[i, j] - med) / (spread + epsilon_px)
    return n


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
