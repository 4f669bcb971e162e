"""Quality figures of a velocity map: stable ground, along-flow strain rates, a reference.

Three families of figures, each a plain function returning a frozen result:

* :func:`stable_ground_statistics` — on ice-free ground the true velocity is
  zero, so the measured velocity is the error: mean, median, std, NMAD, a
  normality test, the invalid share, and GLAFT metric 1.
* :func:`strain_rate_metric` — GLAFT metric 2 on ice: the spread of the
  along-flow normal and shear strain rates.
* :func:`compare_to_reference` — the difference to a reference (UAV) velocity.

GLAFT (Zheng et al. 2023, "Assessment of feature-tracking methods for glacier
surface velocity", The Cryosphere 17:4063-4078, doi:10.5194/tc-17-4063-2023)
rates a map by the spread of a point cloud — (vx, vy) on static terrain, or
(ε_x'x', ε_x'y') on ice — measured with a kernel density estimate (KDE)
thresholded where a normal distribution would be ``thres_sigma`` standard
deviations from its peak. :func:`kde_threshold_spread` implements GLAFT 1.0's
default procedure (Epanechnikov kernel, rule-of-thumb bandwidth, a 60 × 60
evaluation mesh refined once, 2σ threshold) so that our figures can be
compared with published ones; the code is ours.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np
import scipy.ndimage

from gvfuse.model import Grid
from gvfuse.stats import nmad

#: Normality tests run on at most this many points: with more, any real
#: distribution fails them, and they get slow.
NORMALITY_MAX_POINTS = 5000
#: Epanechnikov rule-of-thumb bandwidth constant for 2-D data, as in GLAFT 1.0
#: (see :func:`epanechnikov_bandwidth`).
EPANECHNIKOV_2D_CONSTANT = 2.1991


# --------------------------------------------------------------------------- KDE threshold


@attrs.frozen
class KdeSpread:
    """GLAFT's KDE-threshold figures of a 2-D point cloud (x, y), in the points' unit.

    ``delta_x``/``delta_y`` are half the width and height of the box around the
    evaluation-mesh nodes whose density is at least ``peak / exp(σ²/2)``;
    ``peak_x``/``peak_y`` the mesh node of highest density (the bias);
    ``outside_share`` the fraction of points outside that box ("wrong matches").
    """

    delta_x: float
    delta_y: float
    peak_x: float
    peak_y: float
    outside_share: float
    count: int
    bandwidth: float
    thres_sigma: float

    @property
    def outside_percent(self) -> float:
        return 100.0 * self.outside_share

    def scaled(self, factor: float) -> KdeSpread:
        """The figures of the same cloud multiplied by ``factor`` (the procedure is scale-equivariant)."""
        return attrs.evolve(
            self, delta_x=self.delta_x * factor, delta_y=self.delta_y * factor,
            peak_x=self.peak_x * factor, peak_y=self.peak_y * factor, bandwidth=self.bandwidth * factor,
        )


def geometric_mean_std(x: np.ndarray, y: np.ndarray) -> float:
    """(var_x · var_y)^¼, with sample variances (ddof = 1): the scale GLAFT uses for its KDE."""
    cov = np.cov(np.vstack([x, y]))
    return float((cov[0, 0] * cov[1, 1]) ** 0.25)


def epanechnikov_bandwidth(scale: float, count: int) -> float:
    """Rule-of-thumb bandwidth of a 2-D Epanechnikov KDE: 2.1991 · scale · n^(-1/6).

    The n^(-1/(d+4)) rule for d = 2 with the Epanechnikov kernel's constant, as
    GLAFT 1.0 uses it (Zheng et al. 2023, after Stat. Probab. Lett. 2012,
    doi:10.1016/j.spl.2012.07.020).
    """
    return EPANECHNIKOV_2D_CONSTANT * scale * count ** (-1.0 / 6.0)


def epanechnikov_density(
    x: np.ndarray, y: np.ndarray, mesh_x: np.ndarray, mesh_y: np.ndarray, bandwidth: float
) -> np.ndarray:
    """Unnormalised radial Epanechnikov KDE of points (x, y) on the mesh ``mesh_x`` × ``mesh_y``.

    Returns an array of shape ``(len(mesh_y), len(mesh_x))`` holding
    Σᵢ max(0, 1 − |g − pᵢ|²/h²) at every node g: the density up to a constant
    factor (irrelevant to thresholds relative to the peak). Exact: the kernel
    has compact support, so each mesh column only needs the points of the
    vertical slab |xᵢ − gx| < h, found by a binary search in x-sorted points.
    """
    h2 = float(bandwidth) ** 2
    order = np.argsort(x, kind="stable")
    xs = np.asarray(x, dtype="float64")[order]
    ys = np.asarray(y, dtype="float64")[order]
    density = np.zeros((mesh_y.size, mesh_x.size))
    lo = np.searchsorted(xs, mesh_x - bandwidth, side="right")
    hi = np.searchsorted(xs, mesh_x + bandwidth, side="left")
    for j, gx in enumerate(mesh_x):
        if hi[j] <= lo[j]:
            continue
        slab_y = ys[lo[j]:hi[j]]
        weight_left = 1.0 - (xs[lo[j]:hi[j]] - gx) ** 2 / h2  # what is left for the y distance
        dy2 = np.subtract.outer(mesh_y, slab_y) ** 2 / h2
        np.subtract(weight_left, dy2, out=dy2)
        np.maximum(dy2, 0.0, out=dy2)
        density[:, j] = dy2.sum(axis=1)
    return density


def _threshold_box(
    mesh_x: np.ndarray, mesh_y: np.ndarray, density: np.ndarray, thres_sigma: float
) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max) of the mesh nodes with density ≥ peak · exp(−σ²/2)."""
    keep = density >= density.max() / math.exp(thres_sigma**2 / 2.0)
    cols = np.flatnonzero(keep.any(axis=0))
    rows = np.flatnonzero(keep.any(axis=1))
    return mesh_x[cols[0]], mesh_x[cols[-1]], mesh_y[rows[0]], mesh_y[rows[-1]]


def kde_threshold_spread(
    x: np.ndarray, y: np.ndarray, *, thres_sigma: float = 2.0, mesh_size: int = 60
) -> KdeSpread:
    """GLAFT's KDE-threshold spread of a 2-D point cloud (Zheng et al. 2023, sect. 3).

    The procedure of GLAFT 1.0 with its defaults:

    1. scale s = (var_x · var_y)^¼, bandwidth h = 2.1991 · s · n^(-1/6),
       Epanechnikov kernel;
    2. a coarse ``mesh_size`` × ``mesh_size`` mesh centred on the medians,
       half-width (σ + 1) · s; nodes whose density is at least
       peak / exp(σ²/2) — the level of a normal distribution σ standard
       deviations from its mean — form the thresholded region;
    3. a fine mesh of the same size, centred on the medians, whose half-width is
       the mean of the thresholded region's full width and height;
    4. on the fine mesh: the peak node (bias), the box around the thresholded
       nodes, δx and δy its half width and height, and the share of points
       outside the box (GLAFT's "incorrect matches").

    Non-finite points are dropped. Raises ``ValueError`` with fewer than 3 points
    or a cloud without spread.
    """
    x = np.asarray(x, dtype="float64").ravel()
    y = np.asarray(y, dtype="float64").ravel()
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    if x.size < 3:
        raise ValueError(f"the KDE needs at least 3 valid points, got {x.size}")
    scale = geometric_mean_std(x, y)
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError("the points have no spread in x or y; the KDE is undefined")
    bandwidth = epanechnikov_bandwidth(scale, x.size)
    mid_x, mid_y = float(np.median(x)), float(np.median(y))

    def mesh(half_width: float) -> tuple[np.ndarray, np.ndarray]:
        return (np.linspace(mid_x - half_width, mid_x + half_width, mesh_size),
                np.linspace(mid_y - half_width, mid_y + half_width, mesh_size))

    coarse_x, coarse_y = mesh((thres_sigma + 1.0) * scale)
    x0, x1, y0, y1 = _threshold_box(coarse_x, coarse_y, epanechnikov_density(x, y, coarse_x, coarse_y, bandwidth),
                                    thres_sigma)
    fine_x, fine_y = mesh(((x1 - x0) + (y1 - y0)) / 2.0)
    density = epanechnikov_density(x, y, fine_x, fine_y, bandwidth)
    x0, x1, y0, y1 = _threshold_box(fine_x, fine_y, density, thres_sigma)
    peak_row, peak_col = np.unravel_index(np.argmax(density), density.shape)
    outside = (x < x0) | (x > x1) | (y < y0) | (y > y1)
    return KdeSpread(
        delta_x=float(x1 - x0) / 2.0,
        delta_y=float(y1 - y0) / 2.0,
        peak_x=float(fine_x[peak_col]),
        peak_y=float(fine_y[peak_row]),
        outside_share=float(outside.mean()),
        count=int(x.size),
        bandwidth=float(bandwidth),
        thres_sigma=float(thres_sigma),
    )


# --------------------------------------------------------------------------- stable ground


@attrs.frozen
class NormalityTest:
    """D'Agostino–Pearson K² test (D'Agostino & Pearson 1973) on a random subsample."""

    statistic: float
    p_value: float
    sample_size: int

    @property
    def normal_at_5_percent(self) -> bool:
        """True when normality is not rejected at the 5 % level."""
        return self.p_value >= 0.05


def normality_test(values: np.ndarray, *, max_points: int = NORMALITY_MAX_POINTS, seed: int = 0) -> NormalityTest:
    """D'Agostino–Pearson normality test (``scipy.stats.normaltest``) on at most ``max_points`` values.

    The subsample is drawn without replacement with a fixed seed, so the
    result is reproducible. Needs at least 20 values.
    """
    values = np.asarray(values, dtype="float64")
    if values.size < 20:
        raise ValueError(f"the normality test needs at least 20 values, got {values.size}")
    if values.size > max_points:
        values = np.random.default_rng(seed).choice(values, size=max_points, replace=False)
    import scipy.stats  # here, not at the top: ~0.5 s to import, few commands need it

    result = scipy.stats.normaltest(values)
    return NormalityTest(float(result.statistic), float(result.pvalue), int(values.size))


@attrs.frozen
class ComponentStats:
    """Plain statistics of one velocity component (m/day)."""

    mean_m_per_day: float
    median_m_per_day: float
    std_m_per_day: float
    nmad_m_per_day: float
    normality: NormalityTest | None


def component_stats(values: np.ndarray) -> ComponentStats:
    values = np.asarray(values, dtype="float64")
    return ComponentStats(
        mean_m_per_day=float(values.mean()),
        median_m_per_day=float(np.median(values)),
        std_m_per_day=float(values.std(ddof=1)) if values.size > 1 else float("nan"),
        nmad_m_per_day=nmad(values),
        normality=normality_test(values) if values.size >= 20 else None,
    )


@attrs.frozen
class StableGroundStats:
    """Velocity on stable ground (its true value is zero): the map's error.

    ``kde`` is GLAFT metric 1 in m/day: δx, δy (``delta_x``/``delta_y``), the
    KDE peak (bias) and the share of wrong matches.
    """

    cell_count: int
    valid_count: int
    vx: ComponentStats
    vy: ComponentStats
    kde: KdeSpread

    @property
    def invalid_share(self) -> float:
        return 1.0 - self.valid_count / self.cell_count

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "cell_count": self.cell_count,
            "valid_count": self.valid_count,
            "invalid_percent": 100.0 * self.invalid_share,
        }
        for name, comp in (("vx", self.vx), ("vy", self.vy)):
            for key in ("mean", "median", "std", "nmad"):
                out[f"{name}_{key}_m_per_day"] = getattr(comp, f"{key}_m_per_day")
            if comp.normality is not None:
                out[f"{name}_normality_statistic"] = comp.normality.statistic
                out[f"{name}_normality_p_value"] = comp.normality.p_value
                out[f"{name}_normal_at_5_percent"] = comp.normality.normal_at_5_percent
        out.update({
            "delta_x_m_per_day": self.kde.delta_x,
            "delta_y_m_per_day": self.kde.delta_y,
            "kde_peak_vx_m_per_day": self.kde.peak_x,
            "kde_peak_vy_m_per_day": self.kde.peak_y,
            "wrong_match_percent": self.kde.outside_percent,
            "kde_bandwidth_m_per_day": self.kde.bandwidth,
            "thres_sigma": self.kde.thres_sigma,
        })
        return out


def stable_ground_statistics(
    vx_m_per_day: np.ndarray, vy_m_per_day: np.ndarray, stable_mask: np.ndarray, *, thres_sigma: float = 2.0
) -> StableGroundStats:
    """Error figures of a velocity map from its cells on stable ground (``stable_mask`` True).

    A cell is valid when vx and vy are both finite. Reports mean, median, std
    (ddof 1), NMAD and a D'Agostino–Pearson normality test of each component,
    the invalid share, and GLAFT metric 1 (Zheng et al. 2023): the
    KDE-threshold spread δx, δy of (vx, vy), its peak and the % of wrong
    matches (:func:`kde_threshold_spread`). Raises ``ValueError`` when the mask
    selects no valid cell.
    """
    stable_mask = np.asarray(stable_mask, dtype=bool)
    vx = np.asarray(vx_m_per_day)[stable_mask]
    vy = np.asarray(vy_m_per_day)[stable_mask]
    valid = np.isfinite(vx) & np.isfinite(vy)
    if stable_mask.sum() == 0 or valid.sum() < 3:
        raise ValueError(f"the stable-ground mask holds {int(valid.sum())} valid cell(s); need at least 3")
    vx, vy = vx[valid].astype("float64"), vy[valid].astype("float64")
    return StableGroundStats(
        cell_count=int(stable_mask.sum()),
        valid_count=int(valid.sum()),
        vx=component_stats(vx),
        vy=component_stats(vy),
        kde=kde_threshold_spread(vx, vy, thres_sigma=thres_sigma),
    )


# --------------------------------------------------------------------------- strain rates

#: GLAFT differentiates with an unnormalised Sobel operator; its "strain
#: rates" are this many times the velocity gradient.
GLAFT_SOBEL_GAIN = 8.0


def flow_direction_kernel_px(pixel_size_m: float) -> int:
    """GLAFT's median-filter size for the flow direction: 1500 m in pixels, odd, at most 35."""
    size = int((1500.0 / pixel_size_m) // 2 * 2 + 1)
    return min(size, 35)


def _north_up_spacing(grid: Grid) -> tuple[float, float]:
    t = grid.transform
    if t.b != 0 or t.d != 0:
        raise ValueError("strain rates need a north-up grid (no rotation terms in the transform)")
    return t.a, t.e


def median_flow_direction(
    vx_m_per_day: np.ndarray, vy_m_per_day: np.ndarray, cells: np.ndarray, kernel_px: int
) -> np.ndarray:
    """Flow direction atan2(vy, vx) (radians, counter-clockwise from east), median-filtered.

    As GLAFT 1.0 does (Zheng et al. 2023): the angle itself is median-filtered
    over a ``kernel_px`` square, the grid padded with zeros; cells without a
    valid velocity count with angle zero (GLAFT sees its nodata value -9999
    there; the difference is immaterial where most cells are valid). The angle
    is not unwrapped, so ice flowing west (angles near ±π) gets a poor median —
    GLAFT's limitation, kept so that figures stay comparable. Only ``cells``
    (a boolean mask) are computed; the rest is NaN.
    """
    theta = np.arctan2(vy_m_per_day, vx_m_per_day).astype("float64")
    theta[~np.isfinite(theta)] = 0.0
    half = kernel_px // 2
    padded = np.pad(theta, half, mode="constant", constant_values=0.0)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kernel_px, kernel_px))
    rows, cols = np.nonzero(cells)
    out = np.full(theta.shape, np.nan)
    chunk = max(1, 2_000_000 // (kernel_px * kernel_px))
    for start in range(0, rows.size, chunk):
        r, c = rows[start:start + chunk], cols[start:start + chunk]
        out[r, c] = np.median(windows[r, c].reshape(r.size, -1), axis=1)
    return out


@attrs.frozen(eq=False)
class StrainRates:
    """Strain rates (1/day) in map axes and rotated into the local flow direction."""

    exx_per_day: np.ndarray
    eyy_per_day: np.ndarray
    exy_per_day: np.ndarray
    flow_direction_rad: np.ndarray
    along_flow_normal_per_day: np.ndarray  # ε_x'x'
    along_flow_shear_per_day: np.ndarray  # ε_x'y'


def strain_rates(
    vx_m_per_day: np.ndarray,
    vy_m_per_day: np.ndarray,
    grid: Grid,
    area: np.ndarray | None = None,
    *,
    kernel_px: int | None = None,
) -> StrainRates:
    """Along-flow strain rates from the velocity gradients (Zheng et al. 2023, metric 2).

    Gradients by the Sobel operator, normalised (divided by 8 · pixel size) so
    that the rates are true velocity gradients in 1/day; cells next to a cell
    outside ``area`` or without data get NaN (the Sobel sees NaN there).
    ε_xx = ∂vx/∂x, ε_yy = ∂vy/∂y, ε_xy = ½(∂vx/∂y + ∂vy/∂x), x east, y north.
    Rotated by the median-filtered flow direction θ
    (:func:`median_flow_direction`, ``kernel_px`` defaulting to
    :func:`flow_direction_kernel_px`):
    ε_x'x' = ε_xx cos²θ + ε_yy sin²θ + ε_xy sin 2θ and
    ε_x'y' = ½(ε_yy − ε_xx) sin 2θ + ε_xy cos 2θ.
    """
    dx_m, dy_m = _north_up_spacing(grid)  # dy_m < 0 for north-up grids: rows run south
    vx_all = np.asarray(vx_m_per_day, dtype="float64")
    vy_all = np.asarray(vy_m_per_day, dtype="float64")
    area = np.ones(grid.shape, dtype=bool) if area is None else np.asarray(area, dtype=bool)
    vx = np.where(area, vx_all, np.nan)
    vy = np.where(area, vy_all, np.nan)

    def gradient(values: np.ndarray, axis: int, spacing_m: float) -> np.ndarray:
        return scipy.ndimage.sobel(values, axis=axis, mode="constant", cval=np.nan) / (8.0 * spacing_m)

    exx = gradient(vx, 1, dx_m)
    eyy = gradient(vy, 0, dy_m)
    exy = 0.5 * (gradient(vx, 0, dy_m) + gradient(vy, 1, dx_m))
    wanted = np.isfinite(exx) & np.isfinite(eyy) & np.isfinite(exy)
    kernel_px = kernel_px or flow_direction_kernel_px(abs(dx_m))
    theta = median_flow_direction(vx_all, vy_all, wanted, kernel_px)
    sin2, cos2 = np.sin(2 * theta), np.cos(2 * theta)
    normal = exx * np.cos(theta) ** 2 + eyy * np.sin(theta) ** 2 + exy * sin2
    shear = 0.5 * (eyy - exx) * sin2 + exy * cos2
    return StrainRates(exx, eyy, exy, theta, normal, shear)


@attrs.frozen
class StrainRateMetric:
    """GLAFT metric 2: the KDE-threshold spread of (ε_x'x', ε_x'y') on ice, in 1/day.

    ``kde`` holds true strain rates (velocity gradients). GLAFT's published
    figures use an unnormalised Sobel operator and are 8× larger; the
    ``*_glaft`` figures of :meth:`to_dict` are in that convention.
    """

    cell_count: int
    valid_count: int
    kde: KdeSpread

    @property
    def invalid_share(self) -> float:
        return 1.0 - self.valid_count / self.cell_count

    @property
    def kde_glaft(self) -> KdeSpread:
        return self.kde.scaled(GLAFT_SOBEL_GAIN)

    def to_dict(self) -> dict[str, Any]:
        glaft = self.kde_glaft
        return {
            "cell_count": self.cell_count,
            "valid_count": self.valid_count,
            "invalid_percent": 100.0 * self.invalid_share,
            "delta_xx_per_day": self.kde.delta_x,
            "delta_xy_per_day": self.kde.delta_y,
            "kde_peak_exx_per_day": self.kde.peak_x,
            "kde_peak_exy_per_day": self.kde.peak_y,
            "outside_percent": self.kde.outside_percent,
            "delta_xx_glaft_per_day": glaft.delta_x,
            "delta_xy_glaft_per_day": glaft.delta_y,
            "thres_sigma": self.kde.thres_sigma,
        }


def strain_rate_metric(
    vx_m_per_day: np.ndarray,
    vy_m_per_day: np.ndarray,
    grid: Grid,
    on_ice_mask: np.ndarray,
    *,
    thres_sigma: float = 2.0,
    kernel_px: int | None = None,
) -> StrainRateMetric:
    """GLAFT metric 2 (Zheng et al. 2023): δx'x' and δx'y' of the along-flow strain rates on ice.

    :func:`strain_rates` restricted to ``on_ice_mask``, then
    :func:`kde_threshold_spread` of (ε_x'x', ε_x'y') over the cells where both
    are finite. Raises ``ValueError`` when fewer than 3 such cells remain.
    """
    on_ice_mask = np.asarray(on_ice_mask, dtype=bool)
    rates = strain_rates(vx_m_per_day, vy_m_per_day, grid, on_ice_mask, kernel_px=kernel_px)
    normal, shear = rates.along_flow_normal_per_day, rates.along_flow_shear_per_day
    valid = np.isfinite(normal) & np.isfinite(shear)
    if valid.sum() < 3:
        raise ValueError(f"the on-ice mask leaves {int(valid.sum())} cell(s) with a strain rate; need at least 3")
    return StrainRateMetric(
        cell_count=int(on_ice_mask.sum()),
        valid_count=int(valid.sum()),
        kde=kde_threshold_spread(normal[valid], shear[valid], thres_sigma=thres_sigma),
    )


# --------------------------------------------------------------------------- reference (UAV)


@attrs.frozen
class DifferenceStats:
    """Statistics of map − reference for one quantity (m/day)."""

    bias_m_per_day: float
    std_m_per_day: float
    rmse_m_per_day: float
    nmad_m_per_day: float
    count: int


def difference_stats(difference: np.ndarray) -> DifferenceStats:
    d = np.asarray(difference, dtype="float64")
    return DifferenceStats(
        bias_m_per_day=float(d.mean()),
        std_m_per_day=float(d.std(ddof=1)) if d.size > 1 else float("nan"),
        rmse_m_per_day=float(np.sqrt(np.mean(d**2))),
        nmad_m_per_day=nmad(d),
        count=int(d.size),
    )


@attrs.frozen
class ReferenceComparison:
    """Map − reference on the cells where both are valid: per component and for the speed."""

    vx: DifferenceStats
    vy: DifferenceStats
    speed: DifferenceStats
    reference_count: int

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"count": self.vx.count, "reference_count": self.reference_count}
        for name in ("vx", "vy", "speed"):
            for key, value in attrs.asdict(getattr(self, name)).items():
                if key != "count":
                    out[f"{name}_{key}"] = value
        return out


def compare_to_reference(
    vx_m_per_day: np.ndarray,
    vy_m_per_day: np.ndarray,
    reference_vx_m_per_day: np.ndarray,
    reference_vy_m_per_day: np.ndarray,
    area: np.ndarray | None = None,
) -> ReferenceComparison:
    """Bias, std, RMSE and NMAD of the map minus a reference velocity on the same grid.

    Cells count where all four components are finite (and ``area`` is True
    when given). The speed difference compares speeds cell by cell, which is
    what validation against UAV velocities reports (e.g. the Gangrigab 2023
    dataset); averages of speeds are never formed. Raises ``ValueError``
    without a common valid cell.
    """
    arrays = [np.asarray(a, dtype="float64") for a in
              (vx_m_per_day, vy_m_per_day, reference_vx_m_per_day, reference_vy_m_per_day)]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"map and reference have different shapes: {sorted(shapes)}")
    vx, vy, rvx, rvy = arrays
    reference_valid = np.isfinite(rvx) & np.isfinite(rvy)
    valid = reference_valid & np.isfinite(vx) & np.isfinite(vy)
    if area is not None:
        valid &= np.asarray(area, dtype=bool)
        reference_valid &= np.asarray(area, dtype=bool)
    if not valid.any():
        raise ValueError("the map and the reference have no valid cell in common")
    speed = np.hypot(vx[valid], vy[valid]) - np.hypot(rvx[valid], rvy[valid])
    return ReferenceComparison(
        vx=difference_stats(vx[valid] - rvx[valid]),
        vy=difference_stats(vy[valid] - rvy[valid]),
        speed=difference_stats(speed),
        reference_count=int(reference_valid.sum()),
    )
