"""Geolocation offset between the two images, measured on stable ground, and its removal.

Stable ground is given as a boolean mask (on the output grid, or on the image
grid, where a window counts as stable when at least ``min_stable_share`` of it
is stable), or, without a mask, taken as the slowest ``slowest_fraction`` of
the measured points, as ITS_LIVE does (``stable_shift_flag`` 2, slowest 25 %;
Gardner et al. 2018, The Cryosphere 12:521, and the ITS_LIVE granule
documentation). A robust constant (median) or plane (least squares on the
points within 3 NMAD of a first median fit) is fitted and subtracted.

Without a mask the slowest fraction is only *candidate* stable ground: on an
image that is all ice (a glacier-only crop, a scene whose rock is masked) it
is the slowest ice, and subtracting its motion corrupts the field (on real
Sentinel-2 triplets this was the largest error source, up to 1.9 px). A
uniform motion of the whole image and a geolocation shift look the same, so
the candidates are accepted only when the image shows them to be ground that
does not move while something else does (:func:`judge_candidates`); otherwise
the correction is skipped (zero shift) and the decision, its figures and a
warning are recorded.
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
    #: "applied" (mask, or accepted candidates), "skipped" (too few or not stable-looking candidates).
    decision: str = "applied"
    #: Why, in words; with "skipped", the warning to show.
    reason: str = ""
    #: Candidate points (the mask's or the slowest fraction's) before the decision; ``count`` is the points used.
    candidate_count: int = 0
    #: Spread of the candidates' positions: sqrt(det cov(candidates) / det cov(all valid points)), 1 = as spread.
    candidate_spread: float = float("nan")
    #: Median |d| of the candidates (px, uncorrected): the shift they would remove.
    candidate_speed_px: float = float("nan")
    #: Candidates' scatter around their fit (px, RMS of the two components' NMAD).
    candidate_scatter_px: float = float("nan")
    #: Measurement noise per component (px) from differences of independent (non-overlapping) neighbours.
    noise_px: float = float("nan")
    #: Share of valid points moving beyond the noise (|d - shift| > MOVING_NOISE_FACTOR x noise) and their median |d|.
    moving_share: float = float("nan")
    moving_speed_px: float = float("nan")

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

#: Acceptance of slowest-fraction candidates as stable ground (see :func:`judge_candidates`).
MIN_CANDIDATES = 50
MIN_CANDIDATE_SPREAD = 0.1
MAX_SCATTER_NOISE_RATIO = 1.5
MOVING_NOISE_FACTOR = 4.0
MIN_MOVING_SHARE = 0.02
MAX_CANDIDATE_MOVING_SPEED_RATIO = 1.0
#: Floor of the noise estimate (px): below it, sub-pixel matching is not this precise anyway.
NOISE_FLOOR_PX = 0.05


def position_spread(use: np.ndarray, valid: np.ndarray) -> float:
    """sqrt(det cov(positions of ``use``) / det cov(positions of ``valid``)): 1 = spread like every valid point."""
    def det_cov(mask: np.ndarray) -> float:
        rows, cols = np.nonzero(mask)
        if rows.size < 3:
            return 0.0
        return float(np.linalg.det(np.cov(np.stack([rows, cols]).astype(np.float64))))

    whole = det_cov(valid)
    return float(np.sqrt(max(det_cov(use), 0.0) / whole)) if whole > 0 else 0.0


def independent_noise_px(dx_px: np.ndarray, dy_px: np.ndarray, lag_cells: int) -> float:
    """Per-component measurement noise (px) from differences of neighbours ``lag_cells`` apart.

    Windows ``lag_cells = ceil(window / step)`` cells apart do not overlap, so
    their errors are independent and ``NMAD(d(p) - d(p + lag)) / sqrt(2)`` is
    the noise where the motion is smooth over a window (stable ground, most
    ice); shear only raises it, which makes the tightness test of
    :func:`judge_candidates` more lenient, never stricter. NaN when no pair exists.
    """
    lag = max(int(lag_cells), 1)
    diffs = []
    for band in (dx_px, dy_px):
        diffs.append((band[lag:, :] - band[:-lag, :]).ravel())
        diffs.append((band[:, lag:] - band[:, :-lag]).ravel())
    sigmas = [nmad(d[np.isfinite(d)]) / np.sqrt(2.0) if np.isfinite(d).any() else float("nan") for d in diffs]
    sx = float(np.nanmean(sigmas[:2])) if np.isfinite(sigmas[:2]).any() else float("nan")
    sy = float(np.nanmean(sigmas[2:])) if np.isfinite(sigmas[2:]).any() else float("nan")
    return float(np.sqrt((sx**2 + sy**2) / 2.0))


def judge_candidates(
    dx_px: np.ndarray, dy_px: np.ndarray, use: np.ndarray, shift_px: tuple[float, float], scatter_px: float,
    *, lag_cells: int = 1,
) -> dict[str, Any]:
    """Whether the slowest-fraction candidates ``use`` are stable ground, with the figures of the decision.

    Stable ground with a geolocation shift ``s`` shows as a tight cluster of
    points at ``s`` (their scatter is the measurement noise) while the ice
    moves away from it; an all-ice image has no such cluster (its slowest
    quarter is a tail of a continuum of speeds, scattered well beyond the
    noise) or no motion beside it (uniform flow is indistinguishable from a
    shift). So the candidates are accepted only when all of these hold:

    1. many: at least :data:`MIN_CANDIDATES` points;
    2. spread: their positions spread over at least :data:`MIN_CANDIDATE_SPREAD`
       of the valid points' extent (sqrt of the ratio of the positions'
       covariance determinants), not one patch;
    3. still within the noise: their scatter about the fitted shift is at most
       :data:`MAX_SCATTER_NOISE_RATIO` x the noise of independent neighbours
       (:func:`independent_noise_px`, floored at :data:`NOISE_FLOOR_PX`);
       the selection truncates stable ground's scatter below the noise, while a
       slow-ice tail spreads over the range of its speeds;
    4. something else moves: at least :data:`MIN_MOVING_SHARE` of the valid
       points lie more than :data:`MOVING_NOISE_FACTOR` x noise from the shift
       (for Gaussian noise only exp(-8) = 0.03 % of still points would);
    5. the candidates are slower than the moving part: their median |d| (the
       shift they would remove) is below the moving points' median |d|
       (:data:`MAX_CANDIDATE_MOVING_SPEED_RATIO`). A stricter ratio is not
       sound: geolocation shifts are a sizeable part of short pairs' motion
       (measured on the synthetic optical pair with stable ground: 0.37 px
       against 0.53 px, ratio 0.7; on the Rhone crops 0.13-0.40).

    Measured (``tests/tracking/test_stable_ground.py``; 192-256 px synthetic
    optical pairs, geolocation shift (0.3, -0.2) px): an all-ice uniform flow
    fails test 4 (0 % moving) and all-ice simple shear fails test 3 (scatter
    0.11-0.14 px against 0.05-0.07 px noise), where the unconditional
    slowest-25 % fit removed 0.7-1.5 px of real motion; the pairs with stable
    ground pass (scatter < 0.01 px, 16-22 % moving) and keep their correction.

    Residual ambiguity: a uniformly moving area covering the slowest fraction
    and much slower than the rest (a slow plateau above a fast tongue) passes
    these tests; give a stable mask there, or switch the correction off.
    """
    valid = np.isfinite(dx_px) & np.isfinite(dy_px)
    count = int(use.sum())
    noise = max(independent_noise_px(dx_px, dy_px, lag_cells), NOISE_FLOOR_PX)
    spread = position_spread(use, valid)
    speed = np.hypot(dx_px, dy_px)
    candidate_speed = float(np.median(speed[use])) if count else float("nan")
    far = valid & (np.hypot(dx_px - shift_px[0], dy_px - shift_px[1]) > MOVING_NOISE_FACTOR * noise)
    moving_share = float(far.sum() / max(int(valid.sum()), 1))
    moving_speed = float(np.median(speed[far])) if far.any() else float("nan")
    figures: dict[str, Any] = {"candidate_count": count, "candidate_spread": spread,
                               "candidate_speed_px": candidate_speed, "candidate_scatter_px": scatter_px,
                               "noise_px": noise, "moving_share": moving_share, "moving_speed_px": moving_speed}
    problems = []
    if count < MIN_CANDIDATES:
        problems.append(f"only {count} candidate points (< {MIN_CANDIDATES})")
    if spread < MIN_CANDIDATE_SPREAD:
        problems.append(f"candidates bunched in one area (spread {spread:.2f} < {MIN_CANDIDATE_SPREAD})")
    if not scatter_px <= MAX_SCATTER_NOISE_RATIO * noise:
        problems.append(f"candidates scatter {scatter_px:.2f} px, more than {MAX_SCATTER_NOISE_RATIO} x the "
                        f"{noise:.2f} px noise (slow moving ice, not still ground)")
    if moving_share < MIN_MOVING_SHARE:
        problems.append(f"only {100 * moving_share:.1f} % of the points move beyond the noise "
                        "(uniform motion cannot be told from a geolocation shift)")
    elif not candidate_speed <= MAX_CANDIDATE_MOVING_SPEED_RATIO * moving_speed:
        problems.append(f"candidates move {candidate_speed:.2f} px, not slow against the moving part's "
                        f"{moving_speed:.2f} px")
    figures["accepted"] = not problems
    figures["reason"] = "; ".join(problems) if problems else (
        f"{count} slowest points, spread {spread:.2f}, scatter {scatter_px:.2f} px within noise {noise:.2f} px, "
        f"{candidate_speed:.2f} px against {moving_speed:.2f} px on the moving {100 * moving_share:.0f} %")
    return figures


def estimate_stable_shift(
    dx_px: np.ndarray,
    dy_px: np.ndarray,
    stable_mask: np.ndarray | None = None,
    *,
    slowest_fraction: float = 0.25,
    model: str = "constant",
    min_points: int = 10,
    lag_cells: int = 1,
) -> StableGroundCorrection:
    """Fit the shift on stable ground; ``decision="skipped"`` (zero shift, ``source="none"``) when it cannot be trusted.

    With ``stable_mask``: skipped only when fewer than ``min_points`` remain.
    Without: the slowest ``slowest_fraction`` are candidates, accepted by
    :func:`judge_candidates` (``lag_cells``: output cells between
    non-overlapping windows, ``ceil(window / step)``).
    """
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
            return StableGroundCorrection(
                0.0, 0.0, 0, "none", model, decision="skipped", candidate_count=count,
                reason=f"only {count} {'stable-mask' if stable_mask is not None else 'candidate'} points "
                       f"(< {min_points})")
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
    shift = (float(px[0] + px[1] * centre_c + px[2] * centre_r), float(py[0] + py[1] * centre_c + py[2] * centre_r))
    scatter = float(np.sqrt((nmad(rx) ** 2 + nmad(ry) ** 2) / 2.0))
    figures: dict[str, Any] = {"candidate_count": count,
                               "candidate_spread": position_spread(use, np.isfinite(dx_px) & np.isfinite(dy_px)),
                               "candidate_scatter_px": scatter}
    reason = f"stable mask, {count} points"
    if stable_mask is None:
        figures = judge_candidates(dx_px, dy_px, use, centre, scatter, lag_cells=lag_cells)
        reason = figures.pop("reason")
        if not figures.pop("accepted"):
            return StableGroundCorrection(0.0, 0.0, 0, "none", model, decision="skipped",
                                          reason=f"no stable ground shown: {reason}", **figures)
    return StableGroundCorrection(
        dx_px=shift[0], dy_px=shift[1],
        count=count, source=source, model=model, plane_x=px, plane_y=py,
        residual_mean_dx_px=float(np.mean(rx)), residual_mean_dy_px=float(np.mean(ry)),
        residual_std_dx_px=float(np.std(rx)), residual_std_dy_px=float(np.std(ry)),
        residual_nmad_dx_px=nmad(rx), residual_nmad_dy_px=nmad(ry), decision="applied", reason=reason, **figures,
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
