"""Dense, masked normalized cross-correlation that shares the work of overlapping windows.

For a grid of ``window_px`` windows every ``step_px`` pixels and a search of
``±r`` pixels, matching each window alone costs ``(2r+1)^2 * window^2`` per
window. Here, for each integer shift ``d`` the product image
``R(p) * S(p + d)`` is formed once and summed over all windows with box sums
(block means then a box filter, or an integral image), so the cost per window
and shift is a few operations (about ``window^2 / step^2`` times less). Window
means and variances come from box sums of the same kind (Lewis 1995, "Fast
normalized cross-correlation", Vision Interface).

No-data pixels (NaN) are handled as in Padfield (2012, "Masked object
registration in the Fourier domain", IEEE TIP 21(5):2706): for each shift the
sums run only over pixels valid in *both* images, so no-data neither counts
nor biases means and variances; the valid-pixel masks enter as a few extra box
sums. A window is used when at least ``min_valid_fraction`` of it remains.

Sub-pixel: a 2-D quadratic fit on the 3x3 neighbourhood of the integer peak,
then ``refine_iterations`` passes that warp the secondary by the smoothed
current field (cubic B-spline) and measure the small remainder with a
least-squares gradient step (Lucas & Kanade 1981), which removes most of the
pixel-locking bias (Scarano 2002, iterative image deformation).

The box sums, the score stack, the peak fit and the gradient step are shared
with the phase-correlation matcher and live in
:mod:`gvfuse.tracking.correlation`; this module strings them into a matcher.
"""

from __future__ import annotations

import attrs
import numpy as np

from gvfuse.tracking.correlation import (
    ncc_score_stack,
    peak_from_stack,
    refinement_step,
)
from gvfuse.tracking.matching import MatchResult
from gvfuse.tracking.warping import SplineImage, smooth_prior_warp


@attrs.frozen
class DenseNccMatcher:
    """The dense masked NCC matcher (follows :class:`gvfuse.tracking.matching.Matcher`).

    ``min_valid_fraction``: share of a window that must be valid in both images.
    ``refine_iterations``: warp-and-remeasure iterations after the integer search
    and quadratic peak fit (0 = quadratic fit only); each warps the secondary
    by the smoothed current field (cubic B-spline) and measures the remainder
    with :func:`gvfuse.tracking.correlation.gradient_refinement`. A remainder
    above ``max_refine_step_px`` marks the window as failed (NaN). Iterations
    stop early once no window moves by
    ``converged_step_px`` or more. The returned ``peak_correlation`` is the NCC of
    each window with the secondary warped by the field of the last iteration
    (the correlation at the sub-pixel peak, up to the last small update);
    ``snr`` comes from the integer search surface.
    """

    min_valid_fraction: float = attrs.field(default=0.6, validator=attrs.validators.and_(
        attrs.validators.ge(0.05), attrs.validators.le(1.0)))
    refine_iterations: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    max_refine_step_px: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    converged_step_px: float = attrs.field(default=1e-4, validator=attrs.validators.ge(0))

    def __call__(
        self,
        reference: np.ndarray,
        secondary: np.ndarray,
        *,
        window_px: int,
        step_px: int,
        search_radius_px: int,
    ) -> MatchResult:
        r = int(search_radius_px)
        stack = ncc_score_stack(
            reference, secondary, window_px=window_px, step_px=step_px, search_radius_px=r,
            min_valid_fraction=self.min_valid_fraction,
        )
        est = peak_from_stack(stack)
        del stack
        dx, dy, peak, snr = est.dx_px, est.dy_px, est.peak_correlation, est.snr
        rows, cols = dx.shape
        secondary = np.asarray(secondary, dtype=np.float32)
        failed = ~np.isfinite(dx)
        spline = SplineImage(secondary) if self.refine_iterations > 0 else None
        refined_peak = None
        for it in range(self.refine_iterations):
            if spline is None or not np.isfinite(dx).any():
                break
            prior_x, prior_y, warped = smooth_prior_warp(spline, dx, dy, window_px=window_px, step_px=step_px,
                                                         origin_px=r, reject_outliers=it == 0)
            rest_x, rest_y, refined_peak = refinement_step(
                reference, warped, window_px=window_px, step_px=step_px, origin_px=r, rows=rows, cols=cols,
                min_valid_fraction=self.min_valid_fraction)
            del warped
            with np.errstate(invalid="ignore"):
                update = np.hypot(rest_x, rest_y)
                failed |= ~(update <= self.max_refine_step_px)
            dx = prior_x + np.nan_to_num(rest_x)
            dy = prior_y + np.nan_to_num(rest_y)
            with np.errstate(invalid="ignore"):
                if not (np.nanmax(update, initial=0.0) >= self.converged_step_px):
                    # converged: one more warp would move no window by more than the tolerance
                    break
        if refined_peak is not None:
            # the NCC at the last warp: the final update is a small fraction of a pixel, so this is the
            # correlation at the sub-pixel peak without paying for one more warp and correlation
            peak = refined_peak
            failed |= ~np.isfinite(peak)
        dx = np.where(failed, np.nan, dx)
        dy = np.where(failed, np.nan, dy)
        return MatchResult(dx_px=dx.astype(np.float32), dy_px=dy.astype(np.float32),
                           peak_correlation=peak.astype(np.float32), snr=snr.astype(np.float32))
