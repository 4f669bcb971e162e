"""Geolocation offset between the two images, measured on stable ground, and its removal.

Stable ground is given as a boolean mask (on the output grid, or on the image
grid, where a window counts as stable when at least ``min_stable_share`` of it
is stable), or, without a mask, taken as the slowest ``slowest_fraction`` of
the measured points, as ITS_LIVE does (``stable_shift_flag`` 2, slowest 25 %;
Gardner et al. 2018, The Cryosphere 12:521, and the ITS_LIVE granule
documentation). A robust constant (median) or plane (least squares on the
points within 3 NMAD of a first median fit) is fitted and subtracted.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from gvfuse.stats import nmad


@attrs.frozen
class StableGroundCorrection:
    """The fitted geolocation shift (pixels), where it came from, and the residual statistics after removal."""

    dx_px: float
    dy_px: float
    count: int
    source: str  # "mask", "slowest-fraction" or "none"
    model: str = "constant"
    plane_x: tuple[float, float, float] = (0.0, 0.0, 0.0)  # c0 + c1 * col + c2 * row (output cells)
    plane_y: tuple[float, float, float] = (0.0, 0.0, 0.0)
    residual_mean_dx_px: float = float("nan")
    residual_mean_dy_px: float = float("nan")
    residual_std_dx_px: float = float("nan")
    residual_std_dy_px: float = float("nan")
    residual_nmad_dx_px: float = float("nan")
    residual_nmad_dy_px: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _fit(values: np.ndarray, rows: np.ndarray, cols: np.ndarray, model: str) -> tuple[float, float, float]:
    med = float(np.median(values))
    if model == "constant" or values.size < 10:
        return (med, 0.0, 0.0)
    spread = max(nmad(values), 1e-6)
    keep = np.abs(values - med) <= 3 * spread
    a = np.stack([np.ones(int(keep.sum())), cols[keep], rows[keep]], axis=1)
    coef, *_ = np.linalg.lstsq(a, values[keep], rcond=None)
    return (float(coef[0]), float(coef[1]), float(coef[2]))


def stable_points(
    dx_px: np.ndarray,
    dy_px: np.ndarray,
    stable_mask: np.ndarray | None,
    *,
    slowest_fraction: float = 0.25,
    centre_px: tuple[float, float] = (0.0, 0.0),
) -> tuple[np.ndarray, str]:
    """Boolean mask of the output cells used as stable ground, and its source name.

    Without a mask, the ``slowest_fraction`` of points closest to ``centre_px``
    (the current estimate of the geolocation shift, ``(0, 0)`` at first).
    """
    finite = np.isfinite(dx_px) & np.isfinite(dy_px)
    if stable_mask is not None:
        return finite & np.asarray(stable_mask, bool), "mask"
    speed = np.hypot(dx_px - centre_px[0], dy_px - centre_px[1])
    if not finite.any():
        return finite, "slowest-fraction"
    limit = np.quantile(speed[finite], slowest_fraction)
    return finite & (speed <= limit), "slowest-fraction"


#: Re-selections of the slowest fraction around the current shift estimate (see :func:`estimate_stable_shift`).
SLOWEST_FRACTION_ITERATIONS = 3


def estimate_stable_shift(
    dx_px: np.ndarray,
    dy_px: np.ndarray,
    stable_mask: np.ndarray | None = None,
    *,
    slowest_fraction: float = 0.25,
    model: str = "constant",
    min_points: int = 10,
) -> StableGroundCorrection:
    """Fit the shift on stable ground; ``source="none"`` (zero shift) when fewer than ``min_points`` remain."""
    if model not in ("constant", "plane"):
        raise ValueError(f"model must be 'constant' or 'plane', got {model!r}")
    centre = (0.0, 0.0)
    # Why iterate: the points with the smallest |d| are, among stable points
    # scattered around a geolocation shift s, those whose noise pulls towards
    # zero, so a fit on them underestimates s (by ~0.1 px for a 0.3 px shift
    # at 0.15 px noise). Re-selecting the slowest fraction of |d - s_hat|
    # centres the selection on the shift and removes that bias.
    iterations = 1 if stable_mask is not None else SLOWEST_FRACTION_ITERATIONS
    for _ in range(iterations):
        use, source = stable_points(dx_px, dy_px, stable_mask, slowest_fraction=slowest_fraction, centre_px=centre)
        count = int(use.sum())
        if count < min_points:
            return StableGroundCorrection(0.0, 0.0, count, "none", model)
        rows, cols = np.nonzero(use)
        px = _fit(dx_px[use].astype(np.float64), rows.astype(float), cols.astype(float), model)
        py = _fit(dy_px[use].astype(np.float64), rows.astype(float), cols.astype(float), model)
        centre = (px[0], py[0]) if model == "constant" else (
            float(np.median(dx_px[use] - (px[1] * cols + px[2] * rows))),
            float(np.median(dy_px[use] - (py[1] * cols + py[2] * rows))),
        )
    rx = dx_px[use] - (px[0] + px[1] * cols + px[2] * rows)
    ry = dy_px[use] - (py[0] + py[1] * cols + py[2] * rows)
    centre_r, centre_c = (dx_px.shape[0] - 1) / 2.0, (dx_px.shape[1] - 1) / 2.0
    return StableGroundCorrection(
        dx_px=float(px[0] + px[1] * centre_c + px[2] * centre_r),
        dy_px=float(py[0] + py[1] * centre_c + py[2] * centre_r),
        count=count, source=source, model=model, plane_x=px, plane_y=py,
        residual_mean_dx_px=float(np.mean(rx)), residual_mean_dy_px=float(np.mean(ry)),
        residual_std_dx_px=float(np.std(rx)), residual_std_dy_px=float(np.std(ry)),
        residual_nmad_dx_px=nmad(rx), residual_nmad_dy_px=nmad(ry),
    )


def remove_stable_shift(
    dx_px: np.ndarray, dy_px: np.ndarray, correction: StableGroundCorrection
) -> tuple[np.ndarray, np.ndarray]:
    """Offsets with the fitted constant or plane subtracted."""
    rows, cols = np.indices(dx_px.shape, dtype=np.float32)
    px, py = correction.plane_x, correction.plane_y
    if correction.source == "none":
        return dx_px, dy_px
    sx = px[0] + px[1] * cols + px[2] * rows
    sy = py[0] + py[1] * cols + py[2] * rows
    return (dx_px - sx).astype(np.float32), (dy_px - sy).astype(np.float32)
