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
then ``refine_passes`` passes that warp the secondary by the current field
(bicubic) and measure the small remainder with a ``±refine_radius_px`` search,
which removes most of the pixel-locking bias (Scarano 2002, iterative image
deformation).
"""

from __future__ import annotations

import attrs
import cv2
import numpy as np

from gvfuse.tracking.matching import MatchResult
from gvfuse.tracking.outliers import fill_nearest, normalized_median_test
from gvfuse.tracking.subpixel import quadratic_peak_2d
from gvfuse.tracking.warping import SplineImage, field_to_pixels


def n_windows(length_px: int, *, origin_px: int, window_px: int, step_px: int) -> int:
    """Number of windows along an axis of ``length_px`` with ``origin_px`` of margin on both sides."""
    return max(0, (length_px - 2 * origin_px - window_px) // step_px + 1)


def window_sums(region: np.ndarray, *, window_px: int, step_px: int, rows: int, cols: int) -> np.ndarray:
    """Sums of ``region`` over the windows ``[i*step, i*step+window) x [j*step, j*step+window)``.

    ``region`` must hold at least ``(rows-1)*step + window`` rows (same for cols).
    When the window is a multiple of the step, the region is first averaged in
    ``step x step`` blocks (``cv2.resize`` with ``INTER_AREA``) and then box
    filtered with a ``window/step`` kernel, which is the fastest path; otherwise
    a float64 integral image is used.
    """
    w, s = window_px, step_px
    ly, lx = (rows - 1) * s + w, (cols - 1) * s + w
    region = region[:ly, :lx]
    if w % s == 0:
        if s > 1:
            blocks = cv2.resize(region, (lx // s, ly // s), interpolation=cv2.INTER_AREA)
        else:
            blocks = region
        k = w // s
        box = cv2.boxFilter(blocks, -1, (k, k), anchor=(0, 0), normalize=False, borderType=cv2.BORDER_CONSTANT)
        return box[:rows, :cols] * np.float32(s * s)
    integral = cv2.integral(np.ascontiguousarray(region), sdepth=cv2.CV_64F)
    ey, ex = (rows - 1) * s + 1, (cols - 1) * s + 1
    out = (
        integral[w : w + ey : s, w : w + ex : s]
        - integral[0:ey:s, w : w + ex : s]
        - integral[w : w + ey : s, 0:ex:s]
        + integral[0:ey:s, 0:ex:s]
    )
    return out.astype(np.float32)


def _all_pixel_box_sums(image: np.ndarray, window_px: int) -> np.ndarray:
    """``out[y, x] = sum(image[y:y+w, x:x+w])`` for every top-left corner (float32)."""
    full = cv2.boxFilter(image, -1, (window_px, window_px), anchor=(0, 0), normalize=False,
                         borderType=cv2.BORDER_CONSTANT)
    return full


def ncc_score_stack(
    reference: np.ndarray,
    secondary: np.ndarray,
    *,
    window_px: int,
    step_px: int,
    search_radius_px: int,
    origin_px: int | None = None,
    min_valid_fraction: float = 0.6,
    min_variance: float = 1e-6,
) -> np.ndarray:
    """Masked NCC of every window for every integer shift: array ``(2r+1, 2r+1, rows, cols)``.

    Window ``(i, j)`` covers reference pixels ``[o + i*step, o + i*step + window)``
    (``o = origin_px``, default ``search_radius_px``); entry ``[dy + r, dx + r, i, j]``
    is the NCC of that patch with the secondary patch displaced by ``(dx, dy)``.
    NaN where fewer than ``min_valid_fraction`` of the window's pixels are valid
    in both images, or where either patch has (almost) no variance.
    Pixels outside the arrays count as no data.
    """
    w, s, r = int(window_px), int(step_px), int(search_radius_px)
    o = r if origin_px is None else int(origin_px)
    if o < r:
        raise ValueError(f"origin_px ({o}) must be at least the search radius ({r})")
    height, width = reference.shape
    rows = n_windows(height, origin_px=o, window_px=w, step_px=s)
    cols = n_windows(width, origin_px=o, window_px=w, step_px=s)
    side = 2 * r + 1
    stack = np.full((side, side, rows, cols), np.nan, dtype=np.float32)
    if rows == 0 or cols == 0:
        return stack
    ly, lx = (rows - 1) * s + w, (cols - 1) * s + w

    ref = np.asarray(reference, dtype=np.float32)
    sec = np.asarray(secondary, dtype=np.float32)
    valid_r = np.isfinite(ref)
    valid_s = np.isfinite(sec)
    # centre both images on their common level so that box-sum moments do not cancel badly
    level_r = float(ref[valid_r].mean()) if valid_r.any() else 0.0
    level_s = float(sec[valid_s].mean()) if valid_s.any() else 0.0
    r0 = np.where(valid_r, ref - level_r, 0.0).astype(np.float32)
    s0 = np.where(valid_s, sec - level_s, 0.0).astype(np.float32)
    scale_r = float(np.sqrt(np.mean(r0[valid_r] ** 2))) if valid_r.any() else 1.0
    scale_s = float(np.sqrt(np.mean(s0[valid_s] ** 2))) if valid_s.any() else 1.0
    if scale_r > 0:
        r0 /= np.float32(scale_r)
    if scale_s > 0:
        s0 /= np.float32(scale_s)
    n_full = float(w * w)
    min_count = min_valid_fraction * n_full
    var_floor = min_variance

    ref_reg = r0[o : o + ly, o : o + lx]
    mr_reg = valid_r[o : o + ly, o : o + lx].astype(np.float32)
    sums = dict(window_px=w, step_px=s, rows=rows, cols=cols)
    masked = not (valid_r[o : o + ly, o : o + lx].all() and valid_s[o - r : o + ly + r, o - r : o + lx + r].all())

    if not masked:
        sum_r = window_sums(ref_reg, **sums)
        sum_rr = window_sums(ref_reg * ref_reg, **sums)
        var_r = sum_rr - sum_r * sum_r / n_full
        full_s = _all_pixel_box_sums(s0, w)
        full_ss = _all_pixel_box_sums(s0 * s0, w)
        bad_r = var_r <= var_floor * n_full
        for dy in range(-r, r + 1):
            ys = slice(o + dy, o + dy + (rows - 1) * s + 1, s)
            for dx in range(-r, r + 1):
                xs = slice(o + dx, o + dx + (cols - 1) * s + 1, s)
                sec_reg = s0[o + dy : o + dy + ly, o + dx : o + dx + lx]
                sum_rs = window_sums(ref_reg * sec_reg, **sums)
                sum_s = full_s[ys, xs]
                var_s = full_ss[ys, xs] - sum_s * sum_s / n_full
                cov = sum_rs - sum_r * sum_s / n_full
                with np.errstate(invalid="ignore", divide="ignore"):
                    score = cov / np.sqrt(var_r * var_s)
                score[bad_r | (var_s <= var_floor * n_full)] = np.nan
                stack[dy + r, dx + r] = score
        np.clip(stack, -1.0, 1.0, out=stack)
        return stack

    ms0 = valid_s.astype(np.float32)
    rr_reg = ref_reg * ref_reg
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            y0, x0 = o + dy, o + dx
            sec_reg = s0[y0 : y0 + ly, x0 : x0 + lx]
            ms_reg = ms0[y0 : y0 + ly, x0 : x0 + lx]
            both = mr_reg * ms_reg
            count = window_sums(both, **sums)
            sum_r = window_sums(ref_reg * ms_reg, **sums)
            sum_rr = window_sums(rr_reg * ms_reg, **sums)
            sec_m = sec_reg * mr_reg
            sum_s = window_sums(sec_m, **sums)
            sum_ss = window_sums(sec_m * sec_reg, **sums)
            sum_rs = window_sums(ref_reg * sec_reg, **sums)
            with np.errstate(invalid="ignore", divide="ignore"):
                inv_n = 1.0 / count
                var_r = sum_rr - sum_r * sum_r * inv_n
                var_s = sum_ss - sum_s * sum_s * inv_n
                cov = sum_rs - sum_r * sum_s * inv_n
                score = cov / np.sqrt(var_r * var_s)
                bad = (count < min_count - 0.5) | (var_r <= var_floor * count) | (var_s <= var_floor * count)
            score[bad] = np.nan
            stack[dy + r, dx + r] = score
    np.clip(stack, -1.0, 1.0, out=stack)
    return stack


@attrs.frozen(eq=False)
class PeakEstimate:
    """Integer-plus-sub-pixel peak of each window's correlation surface."""

    dx_px: np.ndarray
    dy_px: np.ndarray
    peak_correlation: np.ndarray
    snr: np.ndarray


def peak_from_stack(stack: np.ndarray, *, reject_edge_peaks: bool = True) -> PeakEstimate:
    """Best shift per window with a 2-D quadratic sub-pixel fit, peak value and SNR.

    ``snr`` is the peak divided by the mean absolute correlation over the
    search area (ImGRAFT's definition, Messerli & Grinsted 2015, GI 4:23).
    Peaks on the edge of the search area are rejected (NaN): the true peak may
    lie outside.
    """
    side = stack.shape[0]
    r = side // 2
    rows, cols = stack.shape[2:]
    flat = stack.reshape(side * side, rows, cols)
    filled = np.where(np.isfinite(flat), flat, -np.inf)
    best = np.argmax(filled, axis=0)
    peak = np.take_along_axis(filled, best[None], 0)[0]
    has = np.isfinite(peak)
    iy, ix = np.divmod(best, side)
    with np.errstate(invalid="ignore"):
        mean_abs = np.where(np.isfinite(flat), np.abs(flat), 0).sum(axis=0) / np.maximum(np.isfinite(flat).sum(axis=0), 1)
        snr = peak / mean_abs
    ok = has.copy()
    if reject_edge_peaks and r > 0:
        ok &= (iy > 0) & (iy < side - 1) & (ix > 0) & (ix < side - 1)
    cy, cx = np.clip(iy, 1, side - 2), np.clip(ix, 1, side - 2)
    if side >= 3:
        ii, jj = np.indices((rows, cols))
        nb = np.empty((3, 3, rows, cols), dtype=np.float64)
        for a in (-1, 0, 1):
            for b in (-1, 0, 1):
                nb[a + 1, b + 1] = stack[cy + a, cx + b, ii, jj]
        nb_ok = np.isfinite(nb).all(axis=(0, 1))
        nb = np.where(np.isfinite(nb), nb, 0.0)
        fx, fy = quadratic_peak_2d(nb)
        ok &= nb_ok
        dx = (cx - r) + fx
        dy = (cy - r) + fy
    else:
        dx = np.zeros((rows, cols))
        dy = np.zeros((rows, cols))
    nan = np.float32(np.nan)
    return PeakEstimate(
        dx_px=np.where(ok, dx, nan).astype(np.float32),
        dy_px=np.where(ok, dy, nan).astype(np.float32),
        peak_correlation=np.where(has, peak, nan).astype(np.float32),
        snr=np.where(has, snr, nan).astype(np.float32),
    )


def gradient_refinement(
    reference: np.ndarray,
    warped_secondary: np.ndarray,
    *,
    window_px: int,
    step_px: int,
    origin_px: int,
    rows: int,
    cols: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Remaining sub-pixel offset of each window after warping, by a least-squares gradient step.

    Solves, per window and over its pixels valid in both images,
    ``R(p) = a * S(p) + b + dx * gx(p) + dy * gy(p)`` in the least-squares
    sense (Lucas & Kanade 1981, IJCAI, with a gain ``a`` and offset ``b`` as in
    NCC), where ``S`` is the secondary already warped by the current estimate
    and ``g`` the central-difference gradient of ``(R + S) / 2``. The normal
    equations are assembled from box sums, so the cost is shared by overlapping
    windows like the integer search. Symmetric in the two images: an exact
    match gives exactly zero. NaN where the system is singular.
    """
    w, s, o = window_px, step_px, origin_px
    ly, lx = (rows - 1) * s + w, (cols - 1) * s + w
    ref = np.asarray(reference, dtype=np.float32)
    sec = np.asarray(warped_secondary, dtype=np.float32)
    mean_img = 0.5 * (ref + sec)
    gx = np.full_like(mean_img, np.nan)
    gy = np.full_like(mean_img, np.nan)
    gx[:, 1:-1] = 0.5 * (mean_img[:, 2:] - mean_img[:, :-2])
    gy[1:-1, :] = 0.5 * (mean_img[2:, :] - mean_img[:-2, :])
    sl = (slice(o, o + ly), slice(o, o + lx))
    cols_ = [gx[sl], gy[sl], sec[sl]]
    target = ref[sl]
    valid = np.isfinite(target) & np.isfinite(cols_[0]) & np.isfinite(cols_[1]) & np.isfinite(cols_[2])
    m = valid.astype(np.float32)
    cols_ = [np.where(valid, c, 0.0).astype(np.float32) for c in cols_]
    target = np.where(valid, target, 0.0).astype(np.float32)
    cols_.append(m)  # the offset term's column is the mask itself
    kw = dict(window_px=w, step_px=s, rows=rows, cols=cols)
    a = np.empty((rows, cols, 4, 4), dtype=np.float64)
    b = np.empty((rows, cols, 4), dtype=np.float64)
    for i in range(4):
        for j in range(i, 4):
            v = window_sums(cols_[i] * cols_[j], **kw)
            a[..., i, j] = v
            a[..., j, i] = v
        b[..., i] = window_sums(cols_[i] * target, **kw)
    count = a[..., 3, 3]
    ok = count >= 0.5 * w * w
    a[~ok] = np.eye(4)
    b[~ok] = 0.0
    det = np.linalg.det(a)
    singular = ~(np.abs(det) > 1e-12 * np.abs(a).max(axis=(-1, -2)) ** 4)
    a[singular] = np.eye(4)
    b[singular] = 0.0
    theta = np.linalg.solve(a, b[..., None])[..., 0]
    bad = ~ok | singular
    # R(p) = S(p + d) ~ S(p) + d . g: the coefficients of g are the remaining offset
    dx = np.where(bad, np.nan, theta[..., 0]).astype(np.float32)
    dy = np.where(bad, np.nan, theta[..., 1]).astype(np.float32)
    return dx, dy


@attrs.frozen
class DenseNccMatcher:
    """The dense masked NCC matcher (follows :class:`gvfuse.tracking.matching.Matcher`).

    ``min_valid_fraction``: share of a window that must be valid in both images.
    ``refine_iterations``: warp-and-remeasure iterations after the integer search
    and quadratic peak fit (0 = quadratic fit only); each warps the secondary
    by the current field (bicubic) and measures the remainder with
    :func:`gradient_refinement`. A remainder above ``max_refine_step_px`` marks
    the window as failed (NaN). The returned ``peak_correlation`` is the NCC of
    each window with the secondary warped by the final field (the correlation
    at the sub-pixel peak); ``snr`` comes from the integer search surface.
    """

    min_valid_fraction: float = attrs.field(default=0.6, validator=attrs.validators.and_(
        attrs.validators.ge(0.05), attrs.validators.le(1.0)))
    refine_iterations: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    max_refine_step_px: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))

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
        kw = dict(origin_px=r, step_px=step_px, window_px=window_px)
        failed = ~np.isfinite(dx)
        warped = None
        spline = SplineImage(secondary) if self.refine_iterations > 0 else None
        for it in range(self.refine_iterations):
            if not np.isfinite(dx).any():
                break
            prior_x, prior_y = dx.copy(), dy.copy()
            if it == 0:
                bad = normalized_median_test(prior_x, prior_y)
                prior_x[bad] = np.nan
                prior_y[bad] = np.nan
            prior_x, prior_y = fill_nearest(prior_x), fill_nearest(prior_y)
            # a smooth warp: the remainder then measures the window average of (truth - warp),
            # instead of chasing the per-window noise of the previous estimate
            sigma = max(window_px / (4.0 * step_px), 0.5)
            prior_x = cv2.GaussianBlur(prior_x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
            prior_y = cv2.GaussianBlur(prior_y, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
            px = field_to_pixels(prior_x, secondary.shape, **kw)
            py = field_to_pixels(prior_y, secondary.shape, **kw)
            warped = spline.warp(px, py)
            del px, py
            rest_x, rest_y = gradient_refinement(reference, warped, window_px=window_px, step_px=step_px,
                                                 origin_px=r, rows=rows, cols=cols)
            with np.errstate(invalid="ignore"):
                failed |= ~(np.hypot(rest_x, rest_y) <= self.max_refine_step_px)
            dx = prior_x + np.nan_to_num(rest_x)
            dy = prior_y + np.nan_to_num(rest_y)
        if warped is not None:
            px = field_to_pixels(dx, secondary.shape, **kw)
            py = field_to_pixels(dy, secondary.shape, **kw)
            warped = spline.warp(px, py)
            del px, py
            peak = ncc_score_stack(reference, warped, window_px=window_px, step_px=step_px, search_radius_px=0,
                                   origin_px=r, min_valid_fraction=self.min_valid_fraction)[0, 0]
            failed |= ~np.isfinite(peak)
        dx = np.where(failed, np.nan, dx)
        dy = np.where(failed, np.nan, dy)
        return MatchResult(dx_px=dx.astype(np.float32), dy_px=dy.astype(np.float32),
                           peak_correlation=peak.astype(np.float32), snr=snr.astype(np.float32))
