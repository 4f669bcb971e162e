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

Compiled inner loop (:func:`dense_ncc_stack`, :func:`peak_search`): the
integer search of both dense matchers runs in numba-compiled loops. The
shifts of one row of the search area are computed together, image row by
image row, with the shifts innermost (one reference pixel times a run of
contiguous secondary pixels, which vectorises); the products of
``g = gcd(window, step)`` image rows are summed, window sums along the row
are differences of a float64 running sum (one addition per pixel whatever the
window), taken only at the output grid's columns, and along columns come
from a running sum in float64 over the last ``window / g`` block rows, kept
in a small ring, so only the output grid's windows are ever formed and the
product image is never written to memory. At the shifts where a window
sees no-data, :func:`_masked_scores` recomputes it: the masked NCC from
summed-area tables of its six products, per shift over the bounding box of
just the windows that see no-data there (a window on a tile's padded border
sees it at only part of its shifts). The kernels release the GIL and
run single-threaded: the driver runs tiles on dask's threads, one per core,
which is where the parallelism is (a numba ``prange`` inside each tile would
put two threads per core). :func:`gvfuse.tracking.correlation.ncc_score_stack`
(with :func:`gvfuse.tracking.correlation.masked_ncc_scores`) is the plain
numpy/OpenCV version of the same stack, kept as its reference.

The peak fit and the gradient step are shared with the phase-correlation
matcher and live in :mod:`gvfuse.tracking.correlation`; this module strings
them into a matcher.
"""

from __future__ import annotations

import math

import attrs
import numba
import numpy as np

from gvfuse.tracking.correlation import (
    EXACT_PEAK_CORRELATION,
    PeakEstimate,
    _cover,
    all_pixel_box_sums,
    n_windows,
    refinement_step,
    window_sums,
)
from gvfuse.tracking.matching import MatchResult
from gvfuse.tracking.subpixel import quadratic_peak_2d
from gvfuse.tracking.warping import SplineImage, smooth_prior_warp

__all__ = ["DenseNccMatcher", "dense_ncc_stack", "peak_search"]


#: LLVM's fast-math flags without "no NaNs" and "no infinities": flat patches are NaN and must stay so.
FAST_BUT_NAN_SAFE = {"reassoc", "contract", "arcp", "nsz", "afn"}


@numba.njit(cache=True, nogil=True, fastmath=FAST_BUT_NAN_SAFE, error_model="numpy")
def _fast_scores(r0: np.ndarray, s0: np.ndarray, sum_r: np.ndarray, inv_sd_r: np.ndarray, mean_s: np.ndarray,
                 inv_sd_s: np.ndarray, out: np.ndarray, o: int, w: int, s: int, r: int) -> None:  # pragma: no cover
    """NCC of every window of the output grid at every shift into ``out`` ``(side, side, rows, cols)``.

    ``r0``/``s0``: centred, scaled images (no-data as 0); ``sum_r``/``inv_sd_r``:
    the reference windows' sums and inverse standard deviations on the output
    grid; ``mean_s``/``inv_sd_s``: the secondary's window means and inverse
    standard deviations at every top-left corner, given as ``(s, s, H/s, W/s)``
    phases (``a[py, px, i, j] = full[py + i*s, px + j*s]``) so that each shift
    reads them contiguously. Block rows of ``g = gcd(w, s)`` image rows; a
    window is ``k = w/g`` block rows and the grid steps ``m = s/g`` of them.
    """
    side = 2 * r + 1
    rows, cols = out.shape[2], out.shape[3]
    g = math.gcd(w, s)
    k = w // g
    m = s // g
    nb = (rows - 1) * m + k  # block rows under the grid
    lx = (cols - 1) * s + w
    acc = np.empty((lx, side), np.float32)
    prefix = np.empty((lx + 1, side))
    # the window sums of the last k block rows of every shift of the search row (a ring), and their running
    # column sums in float64 (a float32 running sum would drift over a thousand rows): small enough to stay
    # in cache
    ring = np.empty((side, k, cols), np.float32)
    v = np.empty((side, cols))
    for a in range(side):
        dy = a - r
        v[:] = 0.0
        for p in range(nb):
            y = o + p * g
            slot = p % k
            # products of the block row's g image rows at every shift of the search row, shifts innermost
            for t in range(g):
                rr = r0[y + t, o : o + lx]
                ss = s0[y + t + dy, o - r : o - r + lx + side - 1]
                if t == 0:
                    for x in range(lx):
                        rx = rr[x]
                        for b in range(side):
                            acc[x, b] = rx * ss[x + b]
                else:
                    for x in range(lx):
                        rx = rr[x]
                        for b in range(side):
                            acc[x, b] += rx * ss[x + b]
            # running sums along the row in float64, every shift at once; a window is a difference of two
            for b in range(side):
                prefix[0, b] = 0.0
            for x in range(lx):
                for b in range(side):
                    prefix[x + 1, b] = prefix[x, b] + acc[x, b]
            for b in range(side):
                vb = v[b]
                h = ring[b, slot]
                if p >= k:  # the block row leaving the window
                    for j in range(cols):
                        vb[j] -= h[j]
                for j in range(cols):
                    h[j] = prefix[j * s + w, b] - prefix[j * s, b]
                for j in range(cols):
                    vb[j] += h[j]
            if p < k - 1 or (p - (k - 1)) % m:
                continue
            # the block rows of output row i are complete
            i = (p - (k - 1)) // m
            for b in range(side):
                dx = b - r
                vb = v[b]
                py = (o + dy) % s
                px = (o + dx) % s
                msr = mean_s[py, px, (o + dy) // s + i, (o + dx) // s : (o + dx) // s + cols]
                isr = inv_sd_s[py, px, (o + dy) // s + i, (o + dx) // s : (o + dx) // s + cols]
                srow = sum_r[i]
                irow = inv_sd_r[i]
                orow = out[a, b, i]
                for j in range(cols):
                    # NCC = (sum_rs - sum_r * mean_s) / (sd_r * sd_s); NaN factors mark flat patches
                    score = (np.float32(vb[j]) - srow[j] * msr[j]) * irow[j] * isr[j]
                    # clipped to [-1, 1] against rounding; NaN fails both tests and stays NaN
                    if score > 1.0:
                        score = np.float32(1.0)
                    elif score < -1.0:
                        score = np.float32(-1.0)
                    orow[j] = score


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _masked_scores(r0: np.ndarray, s0: np.ndarray, mr0: np.ndarray, ms0: np.ndarray, ref_bad: np.ndarray,
                   sec_bad: np.ndarray, out: np.ndarray, y0: int, x0: int, w: int, s: int, r: int,
                   min_count: float, var_floor: float) -> None:  # pragma: no cover
    """:func:`gvfuse.tracking.correlation.masked_ncc_scores` compiled, for the shifts at which a window sees
    no-data: the masked NCC (Padfield 2012) of the windows starting at ``(y0 + i*step, x0 + j*step)`` into
    ``out`` ``(side, side, rows, cols)``.

    A window sees no-data at a shift when its reference window does (``ref_bad[i, j]``) or its shifted
    secondary window does (``sec_bad`` at that window's top-left corner); ``out`` keeps what it holds
    (the fast path's NCC, exact there) everywhere else. For every shift, summed-area tables (float64) of
    the six products over the bounding box of the windows that see no-data, the pixels valid in both
    images counted: their count, the reference's and the secondary's sums and sums of squares, and the
    cross-products; each window is then four look-ups per table.
    """
    side = 2 * r + 1
    rows, cols = out.shape[2], out.shape[3]
    ly, lx = (rows - 1) * s + w, (cols - 1) * s + w
    sat = np.zeros((ly + 1, lx + 1, 6))
    dirty = np.empty((rows, cols), np.bool_)
    nan = np.float32(np.nan)
    for a in range(side):
        dy = a - r
        for b in range(side):
            dx = b - r
            i0, i1, j0, j1 = rows, -1, cols, -1
            for i in range(rows):
                for j in range(cols):
                    d = ref_bad[i, j] or sec_bad[y0 + i * s + dy, x0 + j * s + dx]
                    dirty[i, j] = d
                    if d:
                        i0, i1, j0, j1 = min(i0, i), max(i1, i), min(j0, j), max(j1, j)
            if i1 < 0:
                continue  # no window sees no-data at this shift: the fast path's scores stand
            # tables over the bounding box of those windows only, from its corner (ya, xa)
            ya, xa = i0 * s, j0 * s
            by, bx = (i1 - i0) * s + w, (j1 - j0) * s + w
            for y in range(by):
                yr, ys = y0 + ya + y, y0 + ya + y + dy
                xr = x0 + xa
                # six running sums along the row in registers (no array traffic in the chain), added to the
                # row above
                a0 = a1 = a2 = a3 = a4 = a5 = 0.0
                for x in range(bx):
                    rv = np.float64(r0[yr, xr + x])
                    mr = np.float64(mr0[yr, xr + x])
                    sv = np.float64(s0[ys, xr + x + dx])
                    ms = np.float64(ms0[ys, xr + x + dx])
                    a0 += mr * ms
                    a1 += rv * ms
                    a2 += rv * rv * ms
                    a3 += sv * mr
                    a4 += sv * sv * mr
                    a5 += rv * sv
                    sat[y + 1, x + 1, 0] = sat[y, x + 1, 0] + a0
                    sat[y + 1, x + 1, 1] = sat[y, x + 1, 1] + a1
                    sat[y + 1, x + 1, 2] = sat[y, x + 1, 2] + a2
                    sat[y + 1, x + 1, 3] = sat[y, x + 1, 3] + a3
                    sat[y + 1, x + 1, 4] = sat[y, x + 1, 4] + a4
                    sat[y + 1, x + 1, 5] = sat[y, x + 1, 5] + a5
            orow = out[a, b]
            for i in range(i0, i1 + 1):
                top, bottom = (i - i0) * s, (i - i0) * s + w  # in the tables, from the box's corner
                for j in range(j0, j1 + 1):
                    if not dirty[i, j]:
                        continue
                    left, right = (j - j0) * s, (j - j0) * s + w
                    count = sat[bottom, right, 0] - sat[top, right, 0] - sat[bottom, left, 0] + sat[top, left, 0]
                    if count < min_count - 0.5:
                        orow[i, j] = nan
                        continue
                    sr = sat[bottom, right, 1] - sat[top, right, 1] - sat[bottom, left, 1] + sat[top, left, 1]
                    srr = sat[bottom, right, 2] - sat[top, right, 2] - sat[bottom, left, 2] + sat[top, left, 2]
                    ss = sat[bottom, right, 3] - sat[top, right, 3] - sat[bottom, left, 3] + sat[top, left, 3]
                    sss = sat[bottom, right, 4] - sat[top, right, 4] - sat[bottom, left, 4] + sat[top, left, 4]
                    srs = sat[bottom, right, 5] - sat[top, right, 5] - sat[bottom, left, 5] + sat[top, left, 5]
                    var_r = srr - sr * sr / count
                    var_s = sss - ss * ss / count
                    if var_r <= var_floor * count or var_s <= var_floor * count:
                        orow[i, j] = nan
                        continue
                    orow[i, j] = min(max((srs - sr * ss / count) / math.sqrt(var_r * var_s), -1.0), 1.0)


def _phases(full: np.ndarray, s: int) -> np.ndarray:
    """``full`` as ``(s, s, ceil(H/s), ceil(W/s))`` phases: ``out[py, px, i, j] = full[py + i*s, px + j*s]``.

    Padded with NaN where a phase is one row or column shorter.
    """
    h, w = -(-full.shape[0] // s), -(-full.shape[1] // s)
    out = np.full((s, s, h, w), np.nan, np.float32)
    for py in range(s):
        for px in range(s):
            part = full[py::s, px::s]
            out[py, px, : part.shape[0], : part.shape[1]] = part
    return out


def dense_ncc_stack(
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
    """Masked NCC of every window for every integer shift: array ``(2r+1, 2r+1, rows, cols)``, compiled.

    The same stack as :func:`gvfuse.tracking.correlation.ncc_score_stack`
    (same arguments, windows, NaN rules and clipping to [-1, 1]; the two agree
    to float32 rounding), with the fast path (windows without no-data) in the
    compiled loop :func:`_fast_scores`. A window at a shift where it sees
    no-data (an invalid reference pixel in the window, or an invalid
    secondary pixel in the shifted window) is recomputed over the pixels
    valid in both images (Padfield 2012) by the compiled :func:`_masked_scores`.
    """
    w, s, r = int(window_px), int(step_px), int(search_radius_px)
    o = r if origin_px is None else int(origin_px)
    if o < r:
        raise ValueError(f"origin_px ({o}) must be at least the search radius ({r})")
    height, width = reference.shape
    rows = n_windows(height, origin_px=o, window_px=w, step_px=s)
    cols = n_windows(width, origin_px=o, window_px=w, step_px=s)
    side = 2 * r + 1
    if rows == 0 or cols == 0:
        return np.full((side, side, rows, cols), np.nan, dtype=np.float32)
    stack = np.empty((side, side, rows, cols), dtype=np.float32)
    ly, lx = (rows - 1) * s + w, (cols - 1) * s + w
    ref = np.asarray(reference, dtype=np.float32)
    sec = np.asarray(secondary, dtype=np.float32)
    valid_r, valid_s = np.isfinite(ref), np.isfinite(sec)
    # centre and scale both images on their own level so that the box-sum moments do not cancel badly
    r0 = np.where(valid_r, ref - np.float32(ref[valid_r].mean() if valid_r.any() else 0.0), np.float32(0.0))
    s0 = np.where(valid_s, sec - np.float32(sec[valid_s].mean() if valid_s.any() else 0.0), np.float32(0.0))
    for img, valid in ((r0, valid_r), (s0, valid_s)):
        scale = float(np.sqrt(np.mean(img[valid] ** 2))) if valid.any() else 0.0
        if scale > 0:
            img /= np.float32(scale)
    n_full = float(w * w)
    var_floor = float(min_variance)
    sums = {"window_px": w, "step_px": s, "rows": rows, "cols": cols}
    ref_bad = window_sums((~valid_r[o : o + ly, o : o + lx]).astype(np.float32), **sums) > 0.5
    affected = ref_bad.copy()
    if r > 0 or not valid_s.all():
        inval_s = (~valid_s[o - r : o + ly + r, o - r : o + lx + r]).astype(np.float32)
        affected |= window_sums(inval_s, window_px=w + 2 * r, step_px=s, rows=rows, cols=cols) > 0.5
    # every window at every shift by the fast path; the shifts at which a window sees no-data are then
    # recomputed by the masked path (the fast path's scores are exact at the others)
    ref_reg = r0[o : o + ly, o : o + lx]
    sum_r = window_sums(ref_reg, **sums)
    var_r = window_sums(ref_reg * ref_reg, **sums) - sum_r * sum_r / np.float32(n_full)
    with np.errstate(invalid="ignore", divide="ignore"):
        inv_sd_r = np.where(var_r > var_floor * n_full, 1.0 / np.sqrt(var_r), np.nan).astype(np.float32)
    full_s = all_pixel_box_sums(s0, w)
    var_s = all_pixel_box_sums(s0 * s0, w) - full_s * full_s / np.float32(n_full)
    with np.errstate(invalid="ignore", divide="ignore"):
        inv_sd_s = np.where(var_s > var_floor * n_full, 1.0 / np.sqrt(var_s), np.nan).astype(np.float32)
    mean_s = _phases(full_s / np.float32(n_full), s)
    del full_s, var_s
    _fast_scores(r0, s0, sum_r, inv_sd_r, mean_s, _phases(inv_sd_s, s), stack, o, w, s, r)
    if affected.any():
        mr0, ms0 = valid_r.astype(np.float32), valid_s.astype(np.float32)
        sec_bad = all_pixel_box_sums((~valid_s).astype(np.float32), w) > 0.5
        for i0, i1, j0, j1 in _cover(affected):
            _masked_scores(r0, s0, mr0, ms0, ref_bad[i0:i1, j0:j1], sec_bad, stack[:, :, i0:i1, j0:j1],
                           o + i0 * s, o + j0 * s, w, s, r, min_valid_fraction * n_full, var_floor)
    return stack


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _peak_kernel(flat: np.ndarray, side: int, peak: np.ndarray, best: np.ndarray, snr: np.ndarray,
                 nb: np.ndarray) -> None:  # pragma: no cover
    """Per window (column of ``flat`` ``(side*side, n)``): best shift (first of ties, NaN never wins), peak,
    SNR (peak over the mean absolute finite correlation) and the 3x3 neighbourhood of the peak, clipped
    to the search area, into ``nb`` ``(3, 3, n)``."""
    nshift, n = flat.shape
    abs_sum = np.zeros(n, np.float32)
    count = np.zeros(n, np.float32)  # exact: a few thousand shifts at most
    shift = np.zeros(n, np.int32)  # int32 beside the float32 peaks, so that the loop vectorises
    for c in range(n):
        peak[c] = -np.inf
    zero, one = np.float32(0.0), np.float32(1.0)
    # shifts outer, windows inner: contiguous rows of the stack; selects, not branches, so that it vectorises
    for k in range(nshift):
        row = flat[k]
        kk = np.int32(k)
        for c in range(n):
            val = row[c]
            p = peak[c]
            better = val > p
            peak[c] = val if better else p
            shift[c] = kk if better else shift[c]
            finite = val == val
            abs_sum[c] += abs(val) if finite else zero
            count[c] += one if finite else zero
    for c in range(n):
        best[c] = shift[c]
        snr[c] = peak[c] / (np.float64(abs_sum[c]) / max(np.float64(count[c]), 1.0))
        iy, ix = shift[c] // side, shift[c] % side
        cy, cx = min(max(iy, 1), side - 2), min(max(ix, 1), side - 2)
        for a in range(3):
            for b in range(3):
                nb[a, b, c] = flat[(cy + a - 1) * side + (cx + b - 1), c]


def peak_search(
    stack: np.ndarray, *, reject_edge_peaks: bool = True, exact_peak: float = EXACT_PEAK_CORRELATION
) -> PeakEstimate:
    """:func:`gvfuse.tracking.correlation.peak_from_stack` with its search over the shifts compiled.

    Same result (best integer shift, 2-D quadratic sub-pixel fit by
    :func:`gvfuse.tracking.subpixel.quadratic_peak_2d`, edge peaks rejected,
    exact integer matches kept as they are, SNR as ImGRAFT's peak over mean
    absolute correlation); one pass over the stack instead of one per shift.
    """
    side = stack.shape[0]
    r = side // 2
    rows, cols = stack.shape[2:]
    n = rows * cols
    shape = (rows, cols)
    if side < 3 or n == 0:
        from gvfuse.tracking.correlation import peak_from_stack

        return peak_from_stack(stack, reject_edge_peaks=reject_edge_peaks, exact_peak=exact_peak)
    flat = np.ascontiguousarray(stack, dtype=np.float32).reshape(side * side, n)
    peak = np.empty(n, np.float32)
    best = np.empty(n, np.int64)
    snr = np.empty(n, np.float32)
    nb = np.empty((3, 3, n), np.float32)
    _peak_kernel(flat, side, peak, best, snr, nb)
    has = np.isfinite(peak)
    iy, ix = np.divmod(best, side)
    ok = has & np.isfinite(nb).all(axis=(0, 1))
    if reject_edge_peaks and r > 0:
        ok &= (iy > 0) & (iy < side - 1) & (ix > 0) & (ix < side - 1)
    cy, cx = np.clip(iy, 1, side - 2), np.clip(ix, 1, side - 2)
    fx, fy = quadratic_peak_2d(np.nan_to_num(nb, copy=False))
    exact = peak >= np.float32(exact_peak)
    dx = np.where(exact, ix - r, (cx - r) + fx)
    dy = np.where(exact, iy - r, (cy - r) + fy)
    nan = np.float32(np.nan)
    return PeakEstimate(
        dx_px=np.where(ok, dx, nan).astype(np.float32).reshape(shape),
        dy_px=np.where(ok, dy, nan).astype(np.float32).reshape(shape),
        peak_correlation=np.where(has, peak, nan).astype(np.float32).reshape(shape),
        snr=np.where(has, snr, nan).astype(np.float32).reshape(shape),
    )


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
        stack = dense_ncc_stack(
            reference, secondary, window_px=window_px, step_px=step_px, search_radius_px=r,
            min_valid_fraction=self.min_valid_fraction,
        )
        est = peak_search(stack)
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
