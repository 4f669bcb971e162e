"""Velocity time series per cell from a network of overlapping pair observations.

Each image pair ``p`` measured the mean velocity over its own interval
``[t0_p, t1_p]``. Time is cut into bins of ``bin_days``; the unknowns are the
velocities ``u_k`` of the bins (constant within a bin), and

    d_p = sum_k a_pk u_k + e_p,    a_pk = |[t0_p, t1_p] ∩ bin_k| / (t1_p - t0_p),

with ``e_p`` of standard deviation ``sigma_p``. The estimate minimises, per
cell and per velocity component,

    sum_p w_p (d_p - a_p . u)^2  +  lam * sum_k (u_(k-1) - 2 u_k + u_(k+1))^2,   w_p = 1 / sigma_p^2,

a weighted least-squares inversion of the pair network (Berardino et al. 2002,
IEEE TGRS 40(11), for interferogram networks; Charrier et al. 2022, IEEE TGRS
60:4302810, and Charrier et al. 2025, The Cryosphere 19:4555, "TICOI", for
glacier velocity pairs of several sensors) regularised by second differences
in time (Tikhonov; Hansen 1998, *Rank-deficient and discrete ill-posed
problems*), which bridges bins no pair constrains alone and damps noise
without assuming a seasonal shape. The regularisation weight is chosen by
K-fold cross-validation over pairs (:func:`cross_validate`), blunders are
down-weighted by Tukey's biweight (Holland & Welsch 1977; TICOI does the same),
and a mean over any interval (a calendar month, a UAV survey's interval)
comes with its error from the inverse normal matrix.

Per cell the normal matrix ``A^T W A + lam D^T D`` is banded (a pair spans a
few bins), so it is factorised by a banded Cholesky decomposition vectorised
over cells (:func:`banded_cholesky`): the cost grows with cells x bins x band²,
not with bins³.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence

import attrs
import numba
import numpy as np
import scipy.sparse as sp
from scipy import ndimage

from gvfuse.model import ERROR_BAND, SECONDS_PER_DAY, Grid, Month, PairObservation, VelocityField
from gvfuse.scheduling import configured_scheduler

#: Fewest cells x months two sensors must share for their disagreement to count in the three-cornered hat.
MIN_TCH_CELLS = 1000
#: A sensor's speed scale outside these bounds is not believed (the sensors then disagree on more than scale).
SCALE_BOUNDS = (0.8, 1.25)
#: Tukey biweight tuning constant: 95 % efficiency under Gaussian errors (Holland & Welsch 1977).
TUKEY_C = 4.685
#: Keeps the normal matrix positive definite where the data leave a direction free (a ridge of this
#: size relative to the mean diagonal of the data's part of it).
RIDGE = 1e-9


@attrs.frozen
class TimeBins:
    """Equal time bins from ``start``: bin ``k`` is ``[start + k * bin_days, start + (k + 1) * bin_days)``."""

    start: dt.datetime
    bin_days: float = attrs.field(validator=attrs.validators.gt(0))
    count: int = attrs.field(validator=attrs.validators.ge(3))

    @classmethod
    def covering(cls, start: dt.datetime, end: dt.datetime, bin_days: float) -> TimeBins:
        """Bins from ``start`` that cover ``[start, end]``."""
        span = (end - start).total_seconds() / SECONDS_PER_DAY
        return cls(start, bin_days, max(3, math.ceil(span / bin_days - 1e-9)))

    def days(self, when: dt.datetime) -> float:
        """Days from the first bin's start."""
        return (when - self.start).total_seconds() / SECONDS_PER_DAY

    @property
    def edges_days(self) -> np.ndarray:
        return np.arange(self.count + 1) * self.bin_days

    def overlaps(self, starts_days: np.ndarray, ends_days: np.ndarray) -> np.ndarray:
        """Days of each interval ``[starts, ends]`` (days from ``start``) inside each bin: ``(n, count)``."""
        edges = self.edges_days
        lo = np.maximum(np.asarray(starts_days, float)[:, None], edges[None, :-1])
        hi = np.minimum(np.asarray(ends_days, float)[:, None], edges[None, 1:])
        return np.clip(hi - lo, 0.0, None)

    def averaging(self, start: dt.datetime, end: dt.datetime) -> np.ndarray:
        """Weights of the bins whose weighted sum is the mean velocity over ``[start, end]`` (they sum to 1)."""
        days = self.overlaps(np.array([self.days(start)]), np.array([self.days(end)]))[0]
        total = days.sum()
        if total <= 0:
            raise ValueError(f"[{start.isoformat()}, {end.isoformat()}] lies outside the time bins")
        return np.asarray(days / total)


def design_matrix(bins: TimeBins, starts_days: np.ndarray, ends_days: np.ndarray) -> sp.csr_matrix:
    """``a_pk``: the share of pair ``p``'s interval in bin ``k`` (rows sum to 1 inside the bins)."""
    days = bins.overlaps(starts_days, ends_days)
    length = np.asarray(ends_days, float) - np.asarray(starts_days, float)
    return sp.csr_matrix(days / length[:, None])


def second_difference(count: int) -> sp.csr_matrix:
    """The ``(count - 2, count)`` second-difference operator."""
    return sp.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(count - 2, count), format="csr")


def bandwidth(matrix: sp.spmatrix) -> int:
    """How far from the diagonal ``matrix^T matrix`` reaches: the largest column span of a row."""
    coo = sp.coo_matrix(matrix)
    if coo.nnz == 0:
        return 0
    rows = sp.csr_matrix(coo)
    spans = [int(rows.indices[a:b].max() - rows.indices[a:b].min()) for a, b in
             zip(rows.indptr[:-1], rows.indptr[1:]) if b > a]
    return max(spans)


def normal_bands(design: sp.csr_matrix, weights: np.ndarray, band: int) -> np.ndarray:
    """``A^T diag(w_n) A`` of every cell ``n`` in upper band storage: ``out[n, k, j] = M[k, k + j]``.

    ``weights`` is ``(cells, pairs)``; the products of the design's columns are
    sparse, so the cost is cells x non-zeros, not cells x pairs x bins.
    """
    cells, count = weights.shape[0], design.shape[1]
    out = np.zeros((cells, count, band + 1))
    csc = sp.csc_matrix(design)
    by_pair = np.ascontiguousarray(weights.T)  # once: a sparse product with a transposed view copies it each time
    for j in range(band + 1):
        product = csc[:, : count - j].multiply(csc[:, j:])  # (pairs, count - j): a_pk a_p(k+j)
        out[:, : count - j, j] = np.asarray(sp.csr_matrix(product).T @ by_pair).T
    return out


def row_nanmedian(values: np.ndarray) -> np.ndarray:
    """The median of each row's finite values (NaN for a row without one); ``np.nanmedian(values, axis=1)``
    without its masked-array path, which is many times slower on wide rows."""
    ordered = np.sort(np.where(np.isfinite(values), values, np.inf), axis=1)
    count = np.isfinite(values).sum(axis=1)
    low = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[:, None], axis=1)[:, 0]
    high = np.take_along_axis(ordered, np.maximum(count // 2, 0)[:, None], axis=1)[:, 0]
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, (low + high) / 2, np.nan)


def operator_bands(operator: sp.csr_matrix, band: int) -> np.ndarray:
    """``D^T D`` of a (regularisation) operator in the upper band storage of :func:`normal_bands`."""
    gram = (operator.T @ operator).toarray()
    count = gram.shape[0]
    out = np.zeros((count, band + 1))
    for j in range(min(band, count - 1) + 1):
        out[: count - j, j] = np.diagonal(gram, j)
    return out


def banded_cholesky(bands: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of symmetric positive-definite banded matrices, one per cell.

    ``bands[n, k, j] = M_n[k, k + j]``; returns ``L[n, i, j] = L_n[i, i - j]``
    with ``M_n = L_n L_n^T``. A non-positive pivot is set to NaN (that cell's
    solution is NaN). Compiled (:func:`_cholesky_kernel`): each solve factors
    thousands of small systems, and a numpy loop over bins and band paid
    Python's overhead per bin (a third of the demo's inversion time).
    """
    lower = np.zeros(bands.shape)
    _cholesky_kernel(np.ascontiguousarray(bands, dtype=float), lower)
    return lower


def forward_substitution(lower: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve ``L y = b`` per cell; ``rhs`` is ``(cells, bins)`` or ``(cells, bins, columns)``."""
    return _per_column(_forward_kernel, lower, rhs)


def back_substitution(lower: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve ``L^T x = y`` per cell (``rhs`` as in :func:`forward_substitution`)."""
    return _per_column(_back_kernel, lower, rhs)


def _per_column(kernel: Callable[..., None], lower: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """A substitution kernel on ``rhs`` seen as ``(cells, bins, columns)``, answered in ``rhs``'s shape."""
    out = np.zeros((rhs.shape[0], rhs.shape[1], int(np.prod(rhs.shape[2:], dtype=int))))
    kernel(np.ascontiguousarray(lower, dtype=float), np.ascontiguousarray(rhs, dtype=float).reshape(out.shape), out)
    return out.reshape(rhs.shape)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _cholesky_kernel(bands: np.ndarray, lower: np.ndarray) -> None:  # pragma: no cover - compiled
    cells, count, width = bands.shape
    band = width - 1
    for n in range(cells):
        for k in range(count):
            pivot = bands[n, k, 0]
            for q in range(1, width):
                pivot -= lower[n, k, q] * lower[n, k, q]
            lower[n, k, 0] = math.sqrt(pivot) if pivot > 0 else math.nan
            for d in range(1, min(band, count - 1 - k) + 1):
                i = k + d
                dot = 0.0
                for q in range(band - d):  # earlier columns where rows i and k both have factors
                    dot += lower[n, i, d + 1 + q] * lower[n, k, 1 + q]
                lower[n, i, d] = (bands[n, k, d] - dot) / lower[n, k, 0]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _forward_kernel(lower: np.ndarray, rhs: np.ndarray, y: np.ndarray) -> None:  # pragma: no cover - compiled
    cells, count, width = lower.shape
    for n in range(cells):
        for c in range(rhs.shape[2]):
            for k in range(count):
                acc = rhs[n, k, c]
                for q in range(1, min(width - 1, k) + 1):
                    acc -= lower[n, k, q] * y[n, k - q, c]
                y[n, k, c] = acc / lower[n, k, 0]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _back_kernel(lower: np.ndarray, rhs: np.ndarray, x: np.ndarray) -> None:  # pragma: no cover - compiled
    cells, count, width = lower.shape
    for n in range(cells):
        for c in range(rhs.shape[2]):
            for k in range(count - 1, -1, -1):
                acc = rhs[n, k, c]
                for d in range(1, min(width - 1, count - 1 - k) + 1):
                    acc -= lower[n, k + d, d] * x[n, k + d, c]
                x[n, k, c] = acc / lower[n, k, 0]


@attrs.frozen(eq=False)
class Network:
    """The pair network in one frame of time: bins, the design matrix and its regularisation."""

    bins: TimeBins
    design: sp.csr_matrix
    band: int
    smoothing: np.ndarray  # D^T D in band storage
    starts_days: np.ndarray
    ends_days: np.ndarray

    @classmethod
    def build(cls, bins: TimeBins, starts: Sequence[dt.datetime], ends: Sequence[dt.datetime]) -> Network:
        starts_days = np.array([bins.days(t) for t in starts])
        ends_days = np.array([bins.days(t) for t in ends])
        design = design_matrix(bins, starts_days, ends_days)
        band = max(bandwidth(design), 2)
        return cls(bins, design, band, operator_bands(second_difference(bins.count), band), starts_days, ends_days)

    def overlapping(self, start: dt.datetime, end: dt.datetime) -> np.ndarray:
        """Which pairs' intervals overlap ``[start, end)``."""
        return np.asarray((self.starts_days < self.bins.days(end)) & (self.ends_days > self.bins.days(start)))

    @property
    def pairs(self) -> int:
        return int(self.design.shape[0])


@attrs.frozen(eq=False)
class Solution:
    """Per-cell bin velocities of both components and the factor of the normal matrix they came from."""

    vx: np.ndarray  # (cells, bins)
    vy: np.ndarray
    lower: np.ndarray  # Cholesky factor, (cells, bins, band + 1)
    robust_weights: np.ndarray  # (cells, pairs), 1 = kept, 0 = rejected, NaN where no observation

    def mean(self, averaging: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mean velocity ``sum_k f_k u_k`` of every cell, for bin weights ``f``."""
        return self.vx @ averaging, self.vy @ averaging

    def mean_error(self, averaging: np.ndarray) -> np.ndarray:
        """1-sigma of that mean per component: ``sqrt(f^T M^-1 f)`` (the same for vx and vy)."""
        f = np.broadcast_to(averaging, self.vx.shape)
        y = forward_substitution(self.lower, f)
        return np.asarray(np.sqrt(np.sum(y * y, axis=1)))


def _predict(design: sp.csr_matrix, u: np.ndarray) -> np.ndarray:
    """``A u`` of every cell: ``(cells, pairs)``."""
    return np.asarray((design @ u.T).T)


def reference_weight(sigma: np.ndarray) -> float:
    """The median weight ``1 / sigma^2`` of the valid observations: the unit regularisation weights are given in."""
    valid = np.isfinite(sigma) & (sigma > 0)
    return float(np.median(1.0 / sigma[valid] ** 2)) if valid.any() else 1.0


#: Cells of one part when a solve in the main thread is split over dask's threads (:func:`solve`).
SOLVE_PART_CELLS = 2048


def solve(network: Network, vx: np.ndarray, vy: np.ndarray, sigma: np.ndarray, smoothing: float, *,
          robust_iterations: int = 3) -> Solution:
    """Invert the pair velocities of every cell into bin velocities.

    ``vx``, ``vy``, ``sigma`` are ``(cells, pairs)``, NaN where a pair has no
    value. ``smoothing`` is ``lam`` itself, in the units of the weights
    ``1 / sigma^2``: the same for every cell, so that a cell with more or
    better pairs leans less on the regularisation. Each
    robust iteration re-weights by Tukey's biweight of the residuals in units of
    their robust spread (never below the stated errors).

    Cells are independent: called from the main thread (the calibration's
    many solves on sample cells), the cells are split into parts solved on
    dask's thread pool at once (the kernels release the GIL); inside a task
    (a block of the grid, already one of many in parallel) they are solved here.
    """
    cells = vx.shape[0]
    parts = min(default_threads(), cells // SOLVE_PART_CELLS)
    if parts >= 2 and threading.current_thread() is threading.main_thread():
        import dask

        edges = np.linspace(0, cells, parts + 1).astype(int)
        pieces = dask.compute(*[dask.delayed(_solve_cells, pure=False)(
            network, vx[a:b], vy[a:b], sigma[a:b], smoothing, robust_iterations)
            for a, b in itertools.pairwise(edges)], scheduler="threads")
        return Solution(*(np.concatenate([getattr(p, name) for p in pieces])
                          for name in ("vx", "vy", "lower", "robust_weights")))
    return _solve_cells(network, vx, vy, sigma, smoothing, robust_iterations)


def default_threads() -> int:
    """Threads of dask's default pool: one per core."""
    import dask.system

    return max(1, int(dask.system.CPU_COUNT))


def _solve_cells(network: Network, vx: np.ndarray, vy: np.ndarray, sigma: np.ndarray, smoothing: float,
                 robust_iterations: int) -> Solution:
    valid = np.isfinite(vx) & np.isfinite(vy) & np.isfinite(sigma) & (sigma > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        base = np.where(valid, 1.0 / np.where(valid, sigma, 1.0) ** 2, 0.0)
    dx, dy = np.where(valid, vx, 0.0), np.where(valid, vy, 0.0)
    robust = np.where(valid, 1.0, np.nan)
    weights = base
    for iteration in range(robust_iterations + 1):
        bands = normal_bands(network.design, weights, network.band)
        ridge = RIDGE * np.maximum(bands[:, :, 0].mean(axis=1), 1e-30)
        bands += smoothing * network.smoothing[None]
        bands[:, :, 0] += ridge[:, None]
        lower = banded_cholesky(bands)
        rhs = np.stack([np.asarray((network.design.T @ (weights * d).T).T) for d in (dx, dy)], axis=-1)
        u = back_substitution(lower, forward_substitution(lower, rhs))
        if iteration == robust_iterations:
            break
        rx = (dx - _predict(network.design, u[..., 0])) * np.sqrt(base)
        ry = (dy - _predict(network.design, u[..., 1])) * np.sqrt(base)
        residual = np.where(valid, np.hypot(rx, ry) / math.sqrt(2.0), np.nan)
        # the median of a 2-D Gaussian residual's norm over sqrt(2) is sqrt(ln 2) sigma; cells without a
        # residual keep scale 1
        scale = np.maximum(np.nan_to_num(row_nanmedian(residual), nan=0.0) / math.sqrt(math.log(2.0)), 1.0)
        scaled = residual / scale[:, None]
        robust = np.where(valid, np.where(scaled < TUKEY_C, (1 - (scaled / TUKEY_C) ** 2) ** 2, 0.0), np.nan)
        weights = base * np.nan_to_num(robust)
    return Solution(u[..., 0], u[..., 1], lower, robust)


def coverage(network: Network, valid: np.ndarray, averaging_days: np.ndarray) -> np.ndarray:
    """Share of an interval (its days per bin: ``averaging_days``) in bins some valid pair of the cell overlaps."""
    touched = (sp.csr_matrix(network.design > 0).T @ valid.T.astype(float)).T > 0  # (cells, bins)
    total = averaging_days.sum()
    return np.asarray((touched * averaging_days[None, :]).sum(axis=1) / total)


@attrs.frozen
class CrossValidation:
    """The regularisation weight chosen by K-fold cross-validation, and every weight's score."""

    smoothing_weight: float
    scores: tuple[tuple[float, float], ...]  # (weight, mean squared held-out residual in units of the errors)
    folds: int
    cells: int
    #: Mean squared held-out residual (in units of the stated errors) of each sensor at the chosen
    #: weight: how much larger (> 1) or smaller the sensor's real errors are than stated.
    variance_factors: tuple[tuple[str, float], ...] = ()
    #: The same for each pair (NaN where too few of its cells were sampled).
    pair_variance_factors: np.ndarray = attrs.field(factory=lambda: np.zeros(0), eq=False)
    #: The held-out residuals at the chosen weight, ``(cells, pairs)``, in units of the stated errors.
    held_residuals: np.ndarray = attrs.field(factory=lambda: np.zeros((0, 0)), eq=False)
    #: The median observation weight the candidate weights are relative to (:func:`reference_weight`).
    unit_weight: float = 1.0

    @property
    def smoothing(self) -> float:
        """The chosen regularisation weight in the units of the observation weights."""
        return self.smoothing_weight * self.unit_weight


def scene_folds(network: Network, sensors: Sequence[str], folds: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """K folds over scenes: in fold ``f`` the pairs with both scenes in ``f`` are held out and predicted by
    the pairs with no scene in ``f`` (pairs with one scene in ``f`` are left out of both).

    A scene is a sensor's acquisition (its start or end instant); scenes are
    dealt to folds in time order, so every fold spans the period. No held-out
    pair shares a scene with a training pair, so no scene's geolocation error
    leaks into its own prediction, and the training network keeps every
    sensor.
    """
    scenes = sorted({(s, round(t, 6)) for s, a, b in zip(sensors, network.starts_days, network.ends_days)
                     for t in (a, b)}, key=lambda k: (k[1], k[0]))
    fold_of = {scene: i % folds for i, scene in enumerate(scenes)}
    first = np.array([fold_of[s, round(a, 6)] for s, a in zip(sensors, network.starts_days)])
    second = np.array([fold_of[s, round(b, 6)] for s, b in zip(sensors, network.ends_days)])
    held = [(first == f) & (second == f) for f in range(folds)]
    touched = [(first == f) | (second == f) for f in range(folds)]
    return held, touched


def cross_validate(network: Network, vx: np.ndarray, vy: np.ndarray, sigma: np.ndarray, sensors: Sequence[str],
                   candidates: Sequence[float], *, folds: int = 5, robust_iterations: int = 1,
                   by_sensor: bool = False, by_scene: bool = False) -> CrossValidation:
    """Choose the regularisation weight that best predicts held-out pairs (K-fold over pairs).

    Pair ``p`` is held out in fold ``p mod folds``; for each candidate weight the
    cells are inverted without the fold and the held-out pairs are predicted.
    The score is the mean squared held-out residual in units of the pairs'
    stated errors (robust: residuals beyond Tukey's constant count as that
    constant, so a blunder cannot choose the weight). At the chosen weight the
    same residuals, per sensor, give each sensor's variance factor.
    """
    valid = np.isfinite(vx) & np.isfinite(vy) & np.isfinite(sigma) & (sigma > 0)
    unit = reference_weight(sigma)
    if by_sensor:  # leave one sensor out: its pairs share no scene, so no scene error leaks into the prediction
        legend = sorted(set(sensors))
        pair_fold = np.array([legend.index(s) for s in sensors])
        folds = len(legend)
        held_out = [pair_fold == fold for fold in range(folds)]
        left_out = held_out
    elif by_scene:
        held_out, left_out = scene_folds(network, sensors, folds)
    else:
        pair_fold = np.arange(network.pairs) % folds
        held_out = [pair_fold == fold for fold in range(folds)]
        left_out = held_out
    results = []
    residuals_at: dict[float, np.ndarray] = {}
    for weight in candidates:
        held = np.full(vx.shape, np.nan)
        for fold in range(folds):
            out = held_out[fold]
            if not (valid[:, out]).any():
                continue
            train_sigma = np.where(left_out[fold][None, :], np.nan, sigma)
            fit = solve(network, vx, vy, train_sigma, weight * unit, robust_iterations=robust_iterations)
            px, py = _predict(network.design, fit.vx), _predict(network.design, fit.vy)
            r = np.hypot(vx - px, vy - py) / math.sqrt(2.0)
            held[:, out] = np.where(valid[:, out], r[:, out] / sigma[:, out], np.nan)
        clipped = np.minimum(held, TUKEY_C)
        results.append((float(weight), float(np.mean(clipped[np.isfinite(clipped)] ** 2))
                        if np.isfinite(clipped).any() else math.nan))
        residuals_at[float(weight)] = held
    if not any(math.isfinite(score) for _, score in results):
        raise ValueError("no held-out pair has a value: the network is too small to cross-validate this way")
    best = min((r for r in results if math.isfinite(r[1])), key=lambda r: (r[1], -r[0]))[0]
    held = residuals_at[best]
    names = np.asarray(sensors)
    factors = []
    # robust: the median of the squared residual norm over its chi-square(2)/2 median (ln 2) estimates
    # the variance factor, blunders or not
    for name in sorted(set(sensors)):
        values = held[:, names == name]
        values = values[np.isfinite(values)]
        if values.size >= 30:
            factors.append((name, float(np.median(values**2) / math.log(2.0))))
    enough = np.isfinite(held).sum(axis=0) >= 30
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pairs without a sampled cell get their sensor's factor
        per_pair = np.where(enough, np.nanmedian(held**2, axis=0) / math.log(2.0), np.nan)
    return CrossValidation(best, tuple(results), folds, int(vx.shape[0]), tuple(factors), per_pair, held, unit)


# --------------------------------------------------------------------------- on a product grid, month by month


@attrs.frozen
class InversionSettings:
    """How :func:`invert_period` inverts a product period (the ``time-series`` fusion's parameters)."""

    bin_days: float = attrs.field(default=6.0, validator=attrs.validators.gt(0))
    #: Regularisation weights tried by cross-validation (relative to an observation's typical weight).
    smoothing_candidates: tuple[float, ...] = attrs.field(default=(3.0, 30.0, 300.0, 3000.0),
                                                          converter=tuple[float, ...])
    folds: int = attrs.field(default=4, validator=attrs.validators.ge(2))
    #: Cells sampled (in blocks spread over the grid) for cross-validation and the error factors ...
    sample_cells: int = attrs.field(default=4096, validator=attrs.validators.ge(64))
    #: ... and for the speed scales, which need many cells of fast ice (three solves, no folds).
    scale_sample_cells: int = attrs.field(default=16384, validator=attrs.validators.ge(64))
    robust_iterations: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    #: A month is published where valid pairs cover at least this share of it.
    min_month_coverage: float = attrs.field(default=0.5, validator=attrs.validators.and_(
        attrs.validators.ge(0.0), attrs.validators.le(1.0)))
    min_observations: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    #: Rescale each pair's stated errors (cross-validation, three-cornered hat; see :func:`calibrate`).
    calibrate_errors: bool = True
    #: The three-cornered hat and the speed scales compare sensors inverted alone: each needs this many pairs.
    min_pairs_per_sensor: int = attrs.field(default=10, validator=attrs.validators.ge(3))
    #: Speed-proportional bias: "auto" scales every sensor to the one with the smallest tracking window on the
    #: ground (it smears the shear least; the smallest errors when windows are unknown), a sensor name to that
    #: one, "none" leaves them as they are.
    scale_reference: str = "auto"
    #: Remove each sensor's steady per-cell offset from the reference sensor (:func:`cell_offsets`).
    cell_offsets: bool = True
    #: Block side (cells) of the tiles the grid is inverted in (a small grid: a quarter of its side, >= 32).
    block_cells: int = attrs.field(default=128, validator=attrs.validators.ge(8))
    #: Blocks computed at once (dask tasks in flight); their results wait in memory until assembled.
    blocks_in_flight: int = attrs.field(default=8, validator=attrs.validators.ge(1))


@attrs.frozen
class Observations:
    """Pair observations as arrays for a set of cells: ``(cells, pairs)`` each."""

    vx: np.ndarray
    vy: np.ndarray
    sigma: np.ndarray

    def select(self, cells: np.ndarray) -> Observations:
        return Observations(self.vx[cells], self.vy[cells], self.sigma[cells])


def read_blocks(observations: Sequence[PairObservation], windows: list[tuple[slice, slice]]) -> Observations:
    """Every observation's vx, vy and error in blocks of the product grid, cells of all blocks in a row:
    ``(cells, pairs)``. Each pair's file is opened once for all the blocks."""
    columns = [obs.read_blocks(windows) for obs in observations]  # [pair][block]

    def stack(get: Callable[[VelocityField], np.ndarray]) -> np.ndarray:
        return np.stack([np.concatenate([get(f).ravel() for f in blocks]) for blocks in columns],
                        axis=1).astype(float)

    return Observations(stack(lambda f: f.vx_m_per_day), stack(lambda f: f.vy_m_per_day),
                        stack(lambda f: np.asarray(f.quality[ERROR_BAND])))


def sample_windows(grid: Grid, cells: int, side: int = 16) -> list[tuple[slice, slice]]:
    """Blocks of ``side`` x ``side`` cells spread evenly over the grid, about ``cells`` cells in all."""
    count = max(1, cells // (side * side))
    per_axis = max(1, math.ceil(math.sqrt(count)))
    rows = np.linspace(0, max(grid.rows - side, 0), per_axis).astype(int)
    cols = np.linspace(0, max(grid.cols - side, 0), per_axis).astype(int)
    return [(slice(r, min(r + side, grid.rows)), slice(c, min(c + side, grid.cols))) for r in rows for c in cols]


@attrs.frozen(eq=False)
class Calibration:
    """What the sample taught: the regularisation weight, each pair's error factor, each sensor's speed scale."""

    cross_validation: CrossValidation
    error_factors: dict[str, float]  # a sensor's typical factor on its stated errors (reported)
    pair_error_factors: np.ndarray  # (pairs,) multiply each pair's stated errors by this
    scale_factors: dict[str, float]  # multiply a sensor's velocities (and errors) by this
    scale_reference: str | None
    #: Multiplies the monthly means' posterior errors (:func:`posterior_inflation`); None: not measured.
    posterior_inflation: float | None = None

    def to_dict(self) -> dict[str, object]:
        cv = self.cross_validation
        factors = self.pair_error_factors
        return {"smoothing_weight": cv.smoothing_weight, "smoothing_per_weight_unit": cv.unit_weight,
                "cross_validation_scores": [list(s) for s in cv.scores],
                "cross_validation_folds": cv.folds, "cross_validation_cells": cv.cells,
                "error_factors": dict(self.error_factors),
                "pair_error_factor_range": [float(np.min(factors)), float(np.max(factors))] if factors.size else [],
                "scale_factors": dict(self.scale_factors), "scale_reference": self.scale_reference,
                "posterior_inflation": self.posterior_inflation}


def _scaled(data: Observations, sensors: Sequence[str], pair_error: np.ndarray,
            scale: dict[str, float]) -> Observations:
    k = np.array([scale.get(s, 1.0) for s in sensors])
    e = pair_error if pair_error.size else np.ones(len(sensors))
    return Observations(data.vx * k, data.vy * k, data.sigma * e * k)


@attrs.frozen(eq=False)
class SensorFit:
    """One sensor inverted alone: its solution and which of its pairs have a value in each cell."""

    solution: Solution
    kept: np.ndarray  # (cells, pairs)


def single_sensor_fits(network: Network, data: Observations, sensors: Sequence[str], smoothing: float,
                       robust_iterations: int) -> dict[str, SensorFit]:
    """Every sensor inverted alone, on the same cells."""
    names = np.asarray(sensors)
    fits = {}
    for name in sorted(set(sensors)):
        own = np.where((names == name)[None, :], data.sigma, np.nan)
        kept = np.isfinite(own) & np.isfinite(data.vx) & np.isfinite(data.vy)
        fits[name] = SensorFit(solve(network, data.vx, data.vy, own, smoothing,
                                     robust_iterations=robust_iterations), kept)
    return fits


def speed_scales(network: Network, fits: dict[str, SensorFit], reference: str) -> dict[str, float]:
    """Factors that bring each sensor's speeds to the reference sensor's, on cells and times both measured.

    With every sensor inverted alone (:func:`single_sensor_fits`), on every
    cell the mean velocity over the bins both a sensor and the reference
    constrain is compared, over the cells where the reference's speed is in
    its top quarter (fast ice, where a speed scale shows and noise does not):
    the factor is the ratio of the summed speeds, reference over sensor. A
    factor outside :data:`SCALE_BOUNDS` is dropped: it would say more than a
    window's smearing ever does.
    """
    if reference not in fits:
        return {}
    touched_by = (sp.csr_matrix(network.design > 0)).T

    def touched(fit: SensorFit) -> np.ndarray:
        return np.asarray((touched_by @ fit.kept.T.astype(float)).T) > 0  # (cells, bins)

    ref = fits[reference]
    ref_touched = touched(ref)
    scales = {}
    for name, fit in fits.items():
        both = ref_touched & touched(fit)
        n = both.sum(axis=1)
        ok = n >= 3
        with np.errstate(invalid="ignore", divide="ignore"):
            ref_speed = np.hypot((ref.solution.vx * both).sum(axis=1), (ref.solution.vy * both).sum(axis=1)) / n
            own_speed = np.hypot((fit.solution.vx * both).sum(axis=1), (fit.solution.vy * both).sum(axis=1)) / n
        ok &= np.isfinite(ref_speed) & np.isfinite(own_speed)
        if ok.sum() < 30:
            continue
        fast = ok & (ref_speed > np.quantile(ref_speed[ok], 0.75))
        if own_speed[fast].sum() > 0:
            factor = float(ref_speed[fast].sum() / own_speed[fast].sum())
            if SCALE_BOUNDS[0] <= factor <= SCALE_BOUNDS[1]:
                scales[name] = factor
    return scales


def _trimmed_variance(values: np.ndarray) -> float:
    """Mean square of ``values`` within 5 NMAD of their median: the blunders out, the heavy tails in."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan
    centre = np.median(values)
    spread = 1.4826 * np.median(np.abs(values - centre))
    kept = values[np.abs(values - centre) <= 5 * max(spread, 1e-12)]
    return float(np.mean(kept**2))


def single_sensor_months(network: Network, fits: dict[str, SensorFit], months: Sequence[Month],
                         min_coverage: float) -> dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Each sensor's monthly means alone: per month, vx, vy and predicted 1-sigma per cell (NaN uncovered)."""
    means: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for name, fit in fits.items():
        per_month = []
        for month in months:
            days = network.bins.overlaps(np.array([network.bins.days(month.start)]),
                                         np.array([network.bins.days(month.end)]))[0]
            if days.sum() <= 0:
                nan = np.full(fit.kept.shape[0], np.nan)
                per_month.append((nan, nan, nan))
                continue
            covered = coverage(network, fit.kept, days) >= min_coverage
            vx, vy = fit.solution.mean(days / days.sum())
            error = fit.solution.mean_error(days / days.sum())
            per_month.append((np.where(covered, vx, np.nan), np.where(covered, vy, np.nan),
                              np.where(covered, error, np.nan)))
        means[name] = per_month
    return means


def three_cornered_hat(means: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]],
                       cells: np.ndarray | None = None, *, min_cells: int = MIN_TCH_CELLS,
                       non_negative: bool = False) -> dict[str, tuple[float, float]]:
    """Each sensor's real error of a monthly mean, from how the sensors disagree (no truth needed).

    ``means`` are the sensors' monthly means (:func:`single_sensor_months`),
    compared pairwise on the cells (``cells``, a mask) and months both cover.
    For independent sensors the variance of a difference is the sum of their
    variances, ``v_st = s_s^2 + s_t^2``; with three or more sensors these
    equations give each ``s_s^2`` (least squares; the three-cornered hat, Gray
    & Allan 1974, Proc. 28th Frequency Control Symp., used for glacier
    velocity products by e.g. Millan et al. 2022, Nature Geoscience 15:124).
    Unlike residuals against the rest of the network, this sees the errors a
    sensor's pairs share (scene geolocation errors, a window's response to
    shear repeat from pair to pair). Returns ``{sensor: (real variance,
    variance the inversion predicts)}`` per velocity component; empty with
    fewer than three sensors or too few common cells (``min_cells`` per couple).
    ``non_negative`` solves by non-negative least squares (Lawson & Hanson 1974)
    and accepts a zero variance (a sensor far better than the others, whose
    share of the disagreements is below their noise) instead of saying nothing.
    """
    legend = sorted(means)
    if len(legend) < 3:
        return {}
    rows, observed, predicted = [], [], []
    for a_index, a in enumerate(legend):
        for b in legend[a_index + 1:]:
            dx, dy, ea, eb = [], [], [], []
            for (ax, ay, ae), (bx, by, be) in zip(means[a], means[b]):
                both = np.isfinite(ax) & np.isfinite(bx)
                if cells is not None:
                    both &= cells
                dx.append(ax[both] - bx[both])
                dy.append(ay[both] - by[both])
                ea.append(ae[both])
                eb.append(be[both])
            diff_x, diff_y = np.concatenate(dx), np.concatenate(dy)
            if diff_x.size < min_cells:
                continue
            row = np.zeros(len(legend))
            row[legend.index(a)] = row[legend.index(b)] = 1.0
            rows.append(row)
            observed.append(_component_variance(diff_x, diff_y))
            # medians: a month a sensor barely constrains has a huge posterior error that would swamp a mean
            predicted.append((float(np.median(np.concatenate(ea) ** 2)), float(np.median(np.concatenate(eb) ** 2)),
                              a, b))
    if len(rows) < len(legend):
        return {}
    if non_negative:
        from scipy.optimize import nnls

        variances, _ = nnls(np.array(rows), np.array(observed))
    else:
        variances, *_ = np.linalg.lstsq(np.array(rows), np.array(observed), rcond=None)
    if not non_negative and not np.all(variances > 0):
        # a variance at or below zero: the disagreements do not fit independent sensors; say nothing
        return {}
    out = {}
    for index, name in enumerate(legend):
        own_predicted = [pa if a == name else pb for pa, pb, a, b in predicted if name in (a, b)]
        if own_predicted:
            out[name] = (float(variances[index]), float(np.mean(own_predicted)))
    return out


def moving_cells(data: Observations) -> np.ndarray:
    """Cells whose median pair speed is above five times their median error: ice that moves measurably."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # cells without a value are not moving
        speed = np.nanmedian(np.hypot(data.vx, data.vy), axis=1)
        noise = np.nanmedian(data.sigma, axis=1)
    return np.asarray(np.nan_to_num(speed) > 5 * np.nan_to_num(noise, nan=np.inf))


#: Fewest moving cells the regularisation weight is chosen on (else: on every sampled cell).
MIN_SMOOTHING_CELLS = 256
#: A pair's three-cornered hat needs this many cells where it and the two other sensors all have a value.
MIN_PAIR_TCH_CELLS = 30
#: ... and the other sensors must have pairs over this share of its interval in those cells.
PAIR_TCH_COVERAGE = 0.9


def _component_variance(dx: np.ndarray, dy: np.ndarray) -> float:
    """The trimmed variance per velocity component of differences ``(dx, dy)``."""
    return (_trimmed_variance(dx) + _trimmed_variance(dy)) / 2


def pair_three_cornered_hat(network: Network, fits: dict[str, SensorFit], data: Observations,
                            sensors: Sequence[str]) -> np.ndarray:
    """Each pair's real error variance (per component), from how it disagrees with two other sensors.

    For pair ``p`` of sensor ``a`` and two other sensors ``b`` and ``c``
    inverted alone (``fits``, on the cells of ``data``), their mean velocities
    over ``p``'s own interval, ``b_p`` and ``c_p``, are independent
    measurements of what ``p`` measured, so over the cells all three have

        var(p - b_p) + var(p - c_p) - var(b_p - c_p) = 2 s_p^2

    (the three-cornered hat, Gray & Allan 1974, applied pair by pair: no
    truth, and no error ``p`` shares with pairs of its own sensor — a scene's
    geolocation error, its window's response to shear — can hide in the
    comparison). Variances are trimmed (:func:`_trimmed_variance`); with more
    than two other sensors the estimates of every couple are averaged.
    Returns ``(pairs,)``, NaN where a pair has too few common cells
    (:data:`MIN_PAIR_TCH_CELLS`) or the estimate is not positive.
    """
    names = np.asarray(sensors)
    touched_by = sp.csr_matrix(network.design > 0).T
    touched = {name: np.asarray((touched_by @ fit.kept.T.astype(float)).T) > 0 for name, fit in fits.items()}
    out = np.full(len(sensors), np.nan)
    for p in range(network.pairs):
        own = names[p]
        others = sorted(n for n in fits if n != own)
        row = network.design.getrow(p)
        bins, share = row.indices, row.data
        ok = np.isfinite(data.vx[:, p]) & np.isfinite(data.vy[:, p])
        predictions = {}
        for name in others:
            cover = (touched[name][:, bins] * share[None, :]).sum(axis=1)
            solution = fits[name].solution
            predictions[name] = (solution.vx[:, bins] @ share, solution.vy[:, bins] @ share,
                                 cover >= PAIR_TCH_COVERAGE)
        estimates = []
        for i, b in enumerate(others):
            for c in others[i + 1:]:
                (bx, by, b_ok), (cx, cy, c_ok) = predictions[b], predictions[c]
                cells = ok & b_ok & c_ok & np.isfinite(bx) & np.isfinite(cx)
                if cells.sum() < MIN_PAIR_TCH_CELLS:
                    continue
                px, py = data.vx[cells, p], data.vy[cells, p]
                estimate = (_component_variance(px - bx[cells], py - by[cells])
                            + _component_variance(px - cx[cells], py - cy[cells])
                            - _component_variance(bx[cells] - cx[cells], by[cells] - cy[cells])) / 2
                if estimate > 0:
                    estimates.append(estimate)
        if estimates:
            out[p] = float(np.mean(estimates))
    return out


def posterior_inflation(network: Network, data: Observations, sensors: Sequence[str], smoothing: float,
                        robust_iterations: int, months: Sequence[Month], min_coverage: float,
                        own_means: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]],
                        excluded: np.ndarray | None = None) -> float | None:
    """How much the fused monthly means' posterior error understates their real error on moving ice.

    The posterior error assumes independent pairs; pairs that share a scene
    share its geolocation error, and a sensor's windows respond alike to
    shear in every pair, so on ice it is too small. Measured without truth:
    for each sensor ``s``, the other sensors are fused and their monthly means
    compared with ``s``'s own (``own_means``) on moving cells (median pair
    speed above five times the median error) of the months both cover. For
    independent sensors ``var(F_-s - X_s) = real_F_-s + real_s``, and ``real_s``
    comes from the three-cornered hat of the same cells, so ``real_F_-s`` over
    ``F_-s``'s median posterior variance is the understatement. The
    inflation is the square root of its mean over the sensors (at least 1);
    ``None`` when it cannot be measured (fewer than three sensors, too few
    moving cells). ``excluded`` cells (``(cells,)``) are left out of the comparison when enough others remain.
    """
    legend = sorted(own_means)
    if len(legend) < 3:
        return None
    moving = moving_cells(data)
    if excluded is not None and (moving & ~excluded).sum() >= MIN_TCH_CELLS // 10:
        moving &= ~excluded
    if moving.sum() < MIN_TCH_CELLS // 10:
        return None
    # Unmeasured would mean "no inflation", an optimistic error (measured: 2.2x too small on a one-month
    # demo whose sensors shared 800-2200 moving cells). Then the hat is asked again on fewer common cells
    # and allowed a zero variance: the sensor it gives zero is charged the whole of its disagreement with
    # the others, so the inflation errs large.
    real = three_cornered_hat(own_means, moving) or three_cornered_hat(
        own_means, moving, min_cells=MIN_TCH_CELLS // 4, non_negative=True)
    names = np.asarray(sensors)
    ratios = []
    for name in legend:
        if name not in real:
            continue
        others = np.where((names == name)[None, :], np.nan, data.sigma)
        fit = solve(network, data.vx, data.vy, others, smoothing, robust_iterations=robust_iterations)
        kept = np.isfinite(others) & np.isfinite(data.vx) & np.isfinite(data.vy)
        differences, posterior = [], []
        for month, (ox, oy, _) in zip(months, own_means[name]):
            days = network.bins.overlaps(np.array([network.bins.days(month.start)]),
                                         np.array([network.bins.days(month.end)]))[0]
            if days.sum() <= 0:
                continue
            fx, fy = fit.mean(days / days.sum())
            error = fit.mean_error(days / days.sum())
            both = moving & np.isfinite(ox) & (coverage(network, kept, days) >= min_coverage)
            differences += [fx[both] - ox[both], fy[both] - oy[both]]
            posterior.append(error[both] ** 2)
        if not differences or np.concatenate(differences).size < MIN_TCH_CELLS:
            continue
        fused_real = _trimmed_variance(np.concatenate(differences)) - real[name][0]
        stated = float(np.median(np.concatenate(posterior)))
        if fused_real > 0 and stated > 0:
            ratios.append(fused_real / stated)
    return max(1.0, math.sqrt(float(np.mean(ratios)))) if ratios else None


#: The smallest error factor a pair's three-cornered hat may give it, as a share of its sensor's median factor.
MIN_PAIR_FACTOR_SHARE = 0.5


def _pair_hat_factors(network: Network, fits: dict[str, SensorFit], data: Observations, sensors: Sequence[str],
                      scale: dict[str, float], fallback: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """Each pair's error factor from its three-cornered hat (:func:`pair_three_cornered_hat`) after the speed
    scales: the real error over the median stated one. A pair the hat cannot measure takes the median
    factor of its sensor's measured pairs, or ``fallback`` when none was. Also each sensor's median factor."""
    k = {name: scale.get(name, 1.0) for name in fits}
    scaled_fits = {name: SensorFit(attrs.evolve(fit.solution, vx=fit.solution.vx * k[name],
                                                vy=fit.solution.vy * k[name]), fit.kept)
                   for name, fit in fits.items()}
    scaled = _scaled(data, sensors, np.ones(len(sensors)), scale)
    real = pair_three_cornered_hat(network, scaled_fits, scaled, sensors)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pairs with no value in the sample
        stated = np.nanmedian(np.where(np.isfinite(scaled.vx), scaled.sigma, np.nan) ** 2, axis=0)
    factor = np.sqrt(real / stated)
    names = np.asarray(sensors)
    per_sensor: dict[str, float] = {}
    out = fallback.copy()
    for name in sorted(set(sensors)):
        own = (names == name) & np.isfinite(factor)
        if own.any():
            per_sensor[name] = float(np.median(factor[own]))
            # a hat is a difference of variances: near zero it is noise, not a pair 30x better than its sensor's
            floor = MIN_PAIR_FACTOR_SHARE * per_sensor[name]
            out = np.where(names == name, np.where(np.isfinite(factor), np.maximum(factor, floor), per_sensor[name]),
                           out)
    return out, per_sensor


def calibrate(network: Network, data: Observations, sensors: Sequence[str], settings: InversionSettings, *,
              scale_data: Observations | None = None, months: Sequence[Month] = (),
              windows_m: Sequence[float | None] = (), near_edges: np.ndarray | None = None) -> Calibration:
    """The regularisation weight, each pair's error and each sensor's speed scale, from sample cells.

    1. Cross-validation with the stated errors: a pair's held-out residuals
       against the rest of the network say how much its error is too small or
       too large (a variance-component estimate, Koch 1999, *Parameter
       estimation and hypothesis testing in linear models*, ch. 3.6); pairs
       with too few sampled cells take their sensor's factor. This is the
       error model with fewer than three sensors.
    2. Speed scales: a sensor that under-reads speed in proportion to it
       (large windows smear the shear margins) is scaled to the reference
       sensor, the one with the smallest window on the ground unless named
       (:func:`speed_scales`).
    3. With three or more sensors, each pair's error is its three-cornered
       hat against two other sensors (:func:`pair_three_cornered_hat`),
       which sees the errors a pair shares with its own sensor's pairs and
       the residuals against the network cannot.
    4. The regularisation weight, cross-validated on the calibrated pairs of
       the moving cells, holding out pairs by scene (:func:`scene_folds`).
    5. The posterior inflation of the monthly means (:func:`posterior_inflation`), on the cells not
       ``near_edges`` (``(cells,)`` of ``scale_data``, True within reach of a glacier's edge) when given:
       there the error has its own term (:func:`margin_smear_variance`), and counting the sensors' disagreement at the
       edges in the inflation too would inflate every cell for it.
    """
    scale_data = scale_data if scale_data is not None else data
    first = cross_validate(network, data.vx, data.vy, data.sigma, sensors, settings.smoothing_candidates,
                           folds=settings.folds)
    names = np.asarray(sensors)
    sensor_factor = {name: math.sqrt(f) for name, f in first.variance_factors}
    pair = np.ones(len(sensors))
    if settings.calibrate_errors:
        fallback = np.array([sensor_factor.get(s, 1.0) for s in sensors])
        with np.errstate(invalid="ignore"):
            pair = np.where(np.isfinite(first.pair_variance_factors), np.sqrt(first.pair_variance_factors), fallback)
    else:
        sensor_factor = {}
    fits: dict[str, SensorFit] = {}
    counts = {name: int((names == name).sum()) for name in set(sensors)}
    # sensors inverted alone are compared only when each has enough pairs to stand alone
    comparable = len(counts) >= 2 and min(counts.values()) >= settings.min_pairs_per_sensor
    if comparable and ((settings.calibrate_errors and months and len(counts) >= 3)
                       or settings.scale_reference != "none"):
        single = _scaled(scale_data, sensors, pair, {})
        fits = single_sensor_fits(network, single, sensors, first.smoothing_weight * reference_weight(single.sigma),
                                  settings.robust_iterations)
    measure_inflation = bool(fits) and settings.calibrate_errors and bool(months) and len(counts) >= 3
    scale: dict[str, float] = {}
    reference: str | None = None
    if fits and settings.scale_reference != "none":
        typical = {name: float(np.nanmedian(scale_data.sigma[:, names == name] * pair[names == name][None, :]))
                   for name in sorted(set(sensors))}
        footprint = {name: float(np.median([w for w, s in zip(windows_m, sensors) if s == name and w]))
                     for name in typical if any(w for w, s in zip(windows_m, sensors) if s == name)}
        if settings.scale_reference == "auto" and len(footprint) == len(typical):
            reference = min(footprint, key=lambda n: (footprint[n], typical[n], n))
        elif settings.scale_reference == "auto":
            reference = min(typical, key=lambda n: (typical[n], n))
        elif settings.scale_reference in typical:
            reference = settings.scale_reference
        if reference is not None:
            scale = speed_scales(network, fits, reference)
    if fits and settings.calibrate_errors and len(counts) >= 3:
        pair, hat_factors = _pair_hat_factors(network, fits, scale_data, sensors, scale, pair)
        sensor_factor.update(hat_factors)
    final = _scaled(data, sensors, pair, scale)
    # The smoothing matters only where the ice moves: on ice-free ground (most of a scene) any smoothing
    # predicts a zero velocity, and the more the better, so those cells would choose it.
    wide = _scaled(scale_data, sensors, pair, scale)
    moving = moving_cells(wide)
    chosen = wide.select(moving) if moving.sum() >= MIN_SMOOTHING_CELLS else final
    # Pairs that share a scene share its geolocation error: held out pair by pair, they let the fit learn
    # that error as if it were motion, and the weakest smoothing wins. Held out by scene, they cannot.
    try:
        cv = cross_validate(network, chosen.vx, chosen.vy, chosen.sigma, sensors, settings.smoothing_candidates,
                            folds=settings.folds, by_scene=True)
    except ValueError:  # too few pairs with both scenes in one fold: pair by pair it must be
        cv = cross_validate(network, chosen.vx, chosen.vy, chosen.sigma, sensors, settings.smoothing_candidates,
                            folds=settings.folds)
    inflation = None
    if measure_inflation:
        if settings.cell_offsets and reference is not None:
            # measured as the blocks will be inverted: without each sensor's steady offset, which the
            # inversion removes (else the inflation would count the offsets as error a second time)
            ox, oy = cell_offsets(network, wide, sensors, reference, cv.smoothing)
            wide = Observations(wide.vx - ox, wide.vy - oy, wide.sigma)
            corrected = single_sensor_fits(network, wide, sensors, cv.smoothing, settings.robust_iterations)
            own_means = single_sensor_months(network, corrected, months, settings.min_month_coverage)
        else:
            means = single_sensor_months(network, fits, months, settings.min_month_coverage)
            own_means = {name: [(x * scale.get(name, 1.0), y * scale.get(name, 1.0), e) for x, y, e in per_month]
                         for name, per_month in means.items()}
        inflation = posterior_inflation(network, wide, sensors, cv.smoothing,
                                        settings.robust_iterations, months, settings.min_month_coverage, own_means,
                                        excluded=near_edges)
        if inflation is None and near_edges is not None:  # unmeasured away from the edges: better with them
            inflation = posterior_inflation(network, wide, sensors, cv.smoothing, settings.robust_iterations,
                                            months, settings.min_month_coverage, own_means)
    return Calibration(cv, sensor_factor, pair, scale, reference, inflation)


#: Fewest pairs of a sensor, over intervals the reference sensor covers, for a cell's offset to be measured.
MIN_OFFSET_PAIRS = 8


def cell_offsets(network: Network, data: Observations, sensors: Sequence[str], reference: str,
                 smoothing: float) -> tuple[np.ndarray, np.ndarray]:
    """Each sensor's steady offset from the reference sensor, cell by cell: ``(cells, pairs)`` to subtract.

    A tracking window reports a weighted mean of the motion under it, so a
    large window carries the fast centre of a glacier into its slow margins
    and the margins' stillness into the centre: an offset that repeats in
    every pair of that sensor, which averaging more of its pairs does not
    remove and a global speed scale cannot describe. The reference sensor
    (the smallest window) is inverted alone; for every other sensor, the
    median over its pairs of (pair - reference over the pair's interval),
    where the reference covers the interval, is that cell's offset. It is
    shrunk towards zero by ``d^2 / (d^2 + se^2)`` (``se`` its standard error),
    so that noise is not subtracted where there is no offset to measure, and
    is zero where fewer than :data:`MIN_OFFSET_PAIRS` pairs measure it.
    """
    names = np.asarray(sensors)
    offsets_x, offsets_y = np.zeros(data.vx.shape), np.zeros(data.vx.shape)
    own = np.where((names == reference)[None, :], data.sigma, np.nan)
    fit = solve(network, data.vx, data.vy, own, smoothing, robust_iterations=1)
    kept = np.isfinite(own) & np.isfinite(data.vx) & np.isfinite(data.vy)
    touched = np.asarray((sp.csr_matrix(network.design > 0).T @ kept.T.astype(float)).T) > 0  # (cells, bins)
    cover = np.asarray((network.design @ touched.T.astype(float)).T)  # share of each pair's interval covered
    px, py = _predict(network.design, fit.vx), _predict(network.design, fit.vy)
    valid = np.isfinite(data.vx) & np.isfinite(data.vy) & (cover >= PAIR_TCH_COVERAGE)
    for name in sorted(set(sensors) - {reference}):
        of = valid & (names == name)[None, :]
        count = of.sum(axis=1)
        own = np.flatnonzero(names == name)
        with np.errstate(all="ignore"):  # cells without such a pair get no offset
            for values, prediction, out in ((data.vx, px, offsets_x), (data.vy, py, offsets_y)):
                difference = np.where(of[:, own], values[:, own] - prediction[:, own], np.nan)
                d = row_nanmedian(difference)
                spread = 1.4826 * row_nanmedian(np.abs(difference - d[:, None]))
                se = 1.2533 * spread / np.sqrt(np.maximum(count, 1))
                shrunk = np.where(count >= MIN_OFFSET_PAIRS, d * d**2 / (d**2 + se**2), 0.0)
                out[:, own] = np.nan_to_num(shrunk)[:, None]
    return offsets_x, offsets_y


def window_error_variance(offsets_x: np.ndarray, offsets_y: np.ndarray, sensors: Sequence[str],
                          windows_m: Mapping[str, float], reference: str) -> np.ndarray:
    """The reference sensor's own window error per cell (a variance per component), from the others' offsets.

    The offsets of :func:`cell_offsets` are relative to the reference sensor,
    whose own window smears too; that error is common to every sensor, so no
    comparison between them shows it. A window of side ``W`` averages the
    motion under it, which near a margin or a shear band biases the velocity
    by about ``W^2`` times the local curvature of the flow (the second moment
    of the window), so a sensor ``s`` differs from the reference ``r`` by
    ``(W_s^2 - W_r^2) k`` and the reference's own bias is ``W_r^2 k``: its
    offset times ``W_r^2 / (W_s^2 - W_r^2)`` (Richardson's extrapolation to a
    zero window, Richardson 1911, Phil. Trans. R. Soc. A 210:307). It is not
    subtracted — the curvature is too noisy, cell by cell, for that — but
    enters the error (the mean of every sensor's estimate). Sensors without a
    known window, or not larger than the reference's, say nothing. Returns
    ``(cells,)``, zeros when nothing can be said.
    """
    names = np.asarray(sensors)
    reference_window = windows_m.get(reference)
    estimates = []
    for name in sorted(set(sensors) - {reference}):
        window = windows_m.get(name)
        if reference_window is None or window is None or window <= reference_window:
            continue
        factor = reference_window**2 / (window**2 - reference_window**2)
        column = np.flatnonzero(names == name)[0]
        estimates.append(((offsets_x[:, column] * factor) ** 2 + (offsets_y[:, column] * factor) ** 2) / 2)
    return np.mean(estimates, axis=0) if estimates else np.zeros(offsets_x.shape[0])


#: Fewest ice-free cells a distance band (or the far ice-free ground) needs for its smear to be measured.
MIN_MARGIN_CELLS = 30


def margin_bands(windows_m: Sequence[float | None], cell_m: float) -> int:
    """How many cells from the glacier's edge a window's smear reaches: half the largest window (0 if unknown)."""
    known = [w for w in windows_m if w]
    return math.ceil(max(known) / 2.0 / cell_m) if known else 0


def edge_distances(glacier: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whole cells from each glacier cell to the nearest ice-free one (``inside``) and from each ice-free cell
    to the nearest glacier cell (``outside``); zero on the other side, and everywhere when there is no edge."""
    glacier = np.asarray(glacier, dtype=bool)
    if glacier.all() or not glacier.any():  # no edge (scipy would measure to one beyond the array)
        return np.zeros(glacier.shape), np.zeros(glacier.shape)
    return np.rint(ndimage.distance_transform_edt(glacier)), np.rint(ndimage.distance_transform_edt(~glacier))


def near_edges(distances: tuple[np.ndarray, np.ndarray], bands: int) -> np.ndarray:
    """Cells within ``bands`` cells of a glacier's edge, on either side of it (``distances``:
    :func:`edge_distances`)."""
    inside, outside = distances
    return ((inside >= 1) & (inside <= bands)) | ((outside >= 1) & (outside <= bands))


def margin_smear_variance(vx: np.ndarray, vy: np.ndarray, glacier: np.ndarray, bands: int, *,
                          distances: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, list[float]]:
    """The error variance a tracking window's smear across the glacier's edge adds, measured on the ice-free side.

    A window straddling the edge of a glacier averages moving ice with still
    ground: inside, the slow margin is given some of the faster ice's speed,
    and outside, still ground is given a speed it does not have. Across a
    straight edge where the speed rises from zero (a kink), the two errors are
    mirror images at equal distances from the edge (the box average of
    ``s max(x, 0)`` departs from it by ``s (W/2 - |x|)^2 / (2W)`` on both
    sides), so the ice-free side *measures* what the ice side suffers, whatever
    the window's size, shape or taper, and whatever else blurs the map
    (resampling to the grid). For each band of cells ``k`` = 1..``bands`` from
    the edge, the mean square speed of the ice-free cells at distance ``k``
    beyond that of far ice-free ground (more than ``bands`` cells away; both
    with blunders out, :func:`_trimmed_variance`) is the band's variance; the
    ice cells at distance ``k`` get it scaled by their speed squared over the
    band's mean (at a given distance the smear grows with the shear, i.e. with
    the speed there); the ice-free cells of the band get the band's variance
    (their speed is smear, not motion). A band with fewer than
    :data:`MIN_MARGIN_CELLS` ice-free cells says nothing. ``distances`` are
    :func:`edge_distances` of ``glacier`` when already computed. Returns the
    variance per cell (zero beyond the bands) and each band's RMS smear (m/d,
    NaN where unmeasured).
    """
    speed = np.hypot(vx, vy)
    finite = np.isfinite(speed)
    variance = np.zeros(speed.shape)
    glacier = np.asarray(glacier, dtype=bool)
    if bands < 1 or not glacier.any() or glacier.all():
        return variance, []
    inside, outside = distances if distances is not None else edge_distances(glacier)
    far = ~glacier & (outside > bands) & finite
    rms: list[float] = [math.nan] * bands
    if far.sum() < MIN_MARGIN_CELLS:
        return variance, rms
    base = _trimmed_variance(speed[far])
    for k in range(1, bands + 1):
        off, on = ~glacier & (outside == k) & finite, glacier & (inside == k) & finite
        if off.sum() < MIN_MARGIN_CELLS or not on.any():
            continue
        excess = max(_trimmed_variance(speed[off]) - base, 0.0)
        rms[k - 1] = math.sqrt(excess)
        variance[off] = excess
        mean_square = float(np.mean(speed[on] ** 2))
        if excess > 0 and mean_square > 0:
            variance[on] = excess * speed[on] ** 2 / mean_square
    return variance, rms


def invert_block(network: Network, observations: Sequence[PairObservation], window: tuple[slice, slice],
                 periods: Sequence[tuple[dt.datetime, dt.datetime]], calibration: Calibration,
                 settings: InversionSettings) -> dict[str, np.ndarray]:
    """The mean velocities of one block over each period ``[start, end)`` (the calendar months, the
    reference's survey intervals): arrays ``(periods, rows, cols)`` of vx, vy, their 1-sigma, the part of it
    that is the reference window's error (:func:`window_error_variance`), count and coverage, and a boolean
    ``(periods, sensors, rows, cols)`` of where each sensor contributed."""
    sensors = [obs.sensor for obs in observations]
    rows, cols = window[0].stop - window[0].start, window[1].stop - window[1].start
    data = _scaled(read_blocks(observations, [window]), sensors, calibration.pair_error_factors,
                   calibration.scale_factors)
    valid = np.isfinite(data.vx) & np.isfinite(data.vy) & np.isfinite(data.sigma) & (data.sigma > 0)
    enough = valid.sum(axis=1) >= settings.min_observations
    out = {key: np.full((len(periods), rows * cols), np.nan)
           for key in ("vx", "vy", "sigma", "window_sigma", "count", "coverage")}
    legend = sorted(set(sensors))
    contributing = np.zeros((len(periods), len(legend), rows * cols), dtype=bool)
    if enough.any():
        sub = np.flatnonzero(enough)
        vx_sub, vy_sub = data.vx[sub], data.vy[sub]
        window_variance = np.zeros(sub.size)
        if settings.cell_offsets and calibration.scale_reference is not None and len(legend) >= 2:
            ox, oy = cell_offsets(network, data.select(sub), sensors, calibration.scale_reference,
                                  calibration.cross_validation.smoothing)
            vx_sub, vy_sub = vx_sub - ox, vy_sub - oy
            windows = {name: float(np.median([o.window_m for o in observations if o.sensor == name]))
                       for name in legend if all(o.window_m for o in observations if o.sensor == name)}
            window_variance = window_error_variance(ox, oy, sensors, windows, calibration.scale_reference)
        fit = solve(network, vx_sub, vy_sub, data.sigma[sub], calibration.cross_validation.smoothing,
                    robust_iterations=settings.robust_iterations)
        kept = np.nan_to_num(fit.robust_weights) > 0
        names = np.asarray(sensors)
        mean_speed = np.hypot(fit.vx, fit.vy).mean(axis=1)
        for m, (start, end) in enumerate(periods):
            days = network.bins.overlaps(np.array([network.bins.days(start)]), np.array([network.bins.days(end)]))[0]
            if days.sum() <= 0:
                continue
            averaging = days / days.sum()
            vx, vy = fit.mean(averaging)
            # the window's bias follows the flow it smears: scaled by the period's speed over the cell's mean
            with np.errstate(all="ignore"):
                season = np.clip(np.nan_to_num(np.hypot(vx, vy) / mean_speed, nan=1.0), 0.0, 3.0)
            window_sigma = np.sqrt(window_variance) * season
            sigma = np.sqrt((fit.mean_error(averaging) * (calibration.posterior_inflation or 1.0)) ** 2
                            + window_sigma**2)
            cover = coverage(network, kept, days)
            overlapping = network.overlapping(start, end)
            count = (kept & overlapping[None, :]).sum(axis=1)
            publish = cover >= settings.min_month_coverage
            out["vx"][m, sub] = np.where(publish, vx, np.nan)
            out["vy"][m, sub] = np.where(publish, vy, np.nan)
            out["sigma"][m, sub] = np.where(publish, sigma, np.nan)
            out["window_sigma"][m, sub] = np.where(publish, window_sigma, np.nan)
            out["count"][m, sub] = np.where(publish, count, 0)
            out["coverage"][m, sub] = cover
            for s, name in enumerate(legend):
                of_sensor = kept & overlapping[None, :] & (names == name)[None, :]
                contributing[m, s, sub] = publish & of_sensor.any(axis=1)
    result: dict[str, np.ndarray] = {key: value.reshape(len(periods), rows, cols) for key, value in out.items()}
    result["count"] = np.nan_to_num(result["count"])
    result["contributing"] = contributing.reshape(len(periods), len(legend), rows, cols)
    return result


#: The smallest block side :func:`invert_period` cuts a small grid into.
MIN_BLOCK_CELLS = 32


def block_windows(grid: Grid, side: int) -> list[tuple[slice, slice]]:
    """Blocks of at most ``side`` x ``side`` cells covering the grid, row by row."""
    return [(slice(r, min(r + side, grid.rows)), slice(c, min(c + side, grid.cols)))
            for r in range(0, grid.rows, side) for c in range(0, grid.cols, side)]


#: An interval ``[start, end)`` a mean velocity is asked for.
Interval = tuple[dt.datetime, dt.datetime]


@attrs.frozen(eq=False)
class PeriodInversion:
    """Every month's arrays on the product grid (and every extra interval's), the sensors in ``legend``
    order, and the calibration used."""

    months: dict[Month, dict[str, np.ndarray]]
    legend: tuple[str, ...]
    calibration: Calibration
    bins: TimeBins
    intervals: dict[Interval, dict[str, np.ndarray]] = attrs.field(factory=dict)
    #: Per period ``(start, end)``: the RMS smear (m/d) of each band of cells from the glaciers' edge
    #: (:func:`margin_smear_variance`); empty without a glacier mask.
    margin_smear: dict[Interval, list[float]] = attrs.field(factory=dict)


def invert_period(observations: Sequence[PairObservation], months: Sequence[Month], grid: Grid,
                  settings: InversionSettings, *, intervals: Sequence[Interval] = (),
                  glacier_mask: np.ndarray | None = None) -> PeriodInversion:
    """Invert every cell of ``grid`` over the period of ``observations``; the monthly means of ``months``
    and the mean velocity over each of ``intervals`` (a UAV survey's, say; inside the pairs' period).

    With ``glacier_mask`` (the glaciers' extent on ``grid``), each period's
    error near the glaciers' edges is the larger of the reference window's
    error (:func:`window_error_variance`) and the smear measured on the
    ice-free side (:func:`margin_smear_variance`); the bands' smear is in
    ``margin_smear``.

    Calibration (:func:`calibrate`) runs once on sample blocks; the grid is then
    inverted block by block as dask tasks (a distributed client when one is
    active, else dask's thread pool), each task reading only its block of
    every pair, so memory stays bounded whatever the grid's size.
    """
    import dask

    if len(observations) < settings.min_observations:
        raise ValueError(f"{len(observations)} pair observation(s); at least {settings.min_observations} needed")
    bins = TimeBins.covering(min(o.start for o in observations), max(o.end for o in observations), settings.bin_days)
    network = Network.build(bins, [o.start for o in observations], [o.end for o in observations])
    sensors = [o.sensor for o in observations]
    if glacier_mask is not None:
        if np.shape(glacier_mask) != grid.shape:
            raise ValueError(f"glacier mask has shape {np.shape(glacier_mask)}, the grid {grid.shape}")
        glacier_mask = np.nan_to_num(np.asarray(glacier_mask, dtype=float)) > 0  # NaN is not ice
    bands = margin_bands([o.window_m for o in observations], grid.pixel_size_m[0])
    distances = None if glacier_mask is None else edge_distances(glacier_mask)
    near = None if distances is None else near_edges(distances, bands)

    def sampled(windows: list[tuple[slice, slice]]) -> tuple[Observations, np.ndarray | None]:
        data = read_blocks(observations, windows)
        enough = (np.isfinite(data.vx) & np.isfinite(data.vy)).sum(axis=1) >= settings.min_observations
        return data.select(enough), None if near is None else np.concatenate([near[w].ravel() for w in windows])[enough]

    sample, sample_near = sampled(sample_windows(grid, settings.sample_cells))
    if sample.vx.shape[0] == 0:
        raise ValueError("no sampled cell has enough pair observations to calibrate the inversion")
    if settings.scale_sample_cells > settings.sample_cells and settings.scale_reference != "none":
        scale_sample, scale_near = sampled(sample_windows(grid, settings.scale_sample_cells, side=32))
    else:
        scale_sample, scale_near = sample, sample_near
    calibration = calibrate(network, sample, sensors, settings, scale_data=scale_sample, months=months,
                            windows_m=[o.window_m for o in observations], near_edges=scale_near)
    # blocks small enough that a small grid still gives every core a few (cells are independent: the block
    # side changes no result)
    windows = block_windows(grid, min(settings.block_cells, max(MIN_BLOCK_CELLS, math.ceil(max(grid.shape) / 4))))
    extra = list(dict.fromkeys(intervals))
    periods = [(month.start, month.end) for month in months] + extra
    legend = tuple(sorted(set(sensors)))
    keys = ("vx", "vy", "sigma", "count", "coverage")
    # the products, float32 like the published bands, filled as blocks come in: what is held at once is
    # the output plus a batch of blocks, not every block's output and then a copy of it
    out = {key: np.full((len(periods), *grid.shape), np.nan, dtype="float32") for key in keys}
    # the window's share of sigma, kept only to be compared with the edge's smear
    window_sigma = None if distances is None else np.full((len(periods), *grid.shape), np.nan, dtype="float32")
    out["count"][:] = 0.0
    used = np.zeros((len(periods), len(legend), *grid.shape), dtype=bool)
    batch = max(1, settings.blocks_in_flight)
    for first in range(0, len(windows), batch):
        group = windows[first:first + batch]
        tasks = [dask.delayed(invert_block, pure=False)(network, observations, w, periods, calibration, settings)
                 for w in group]
        for window, block in zip(group, dask.compute(*tasks, scheduler=configured_scheduler())):
            for key in keys:
                out[key][(slice(None), *window)] = block[key]
            if window_sigma is not None:
                window_sigma[(slice(None), *window)] = block["window_sigma"]
            used[(slice(None), slice(None), *window)] = block["contributing"]
    smear: dict[Interval, list[float]] = {}
    if glacier_mask is not None and window_sigma is not None:
        for m, period in enumerate(periods):
            margin, smear[period] = margin_smear_variance(out["vx"][m], out["vy"][m], glacier_mask, bands,
                                                          distances=distances)
            window = np.nan_to_num(window_sigma[m])
            out["sigma"][m] = np.sqrt(out["sigma"][m] ** 2 + np.maximum(margin - window**2, 0.0))
    assembled = []
    for m in range(len(periods)):
        arrays = {key: out[key][m] for key in keys}
        arrays.update({f"contributing:{name}": used[m, s] for s, name in enumerate(legend)})
        assembled.append(arrays)
    return PeriodInversion(dict(zip(months, assembled)), legend, calibration, bins,
                           dict(zip(extra, assembled[len(months):])), margin_smear=smear)
