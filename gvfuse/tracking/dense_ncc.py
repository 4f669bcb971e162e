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

Compiled inner loop (:func:`_fast_scores`, :func:`_fold_search_row`): the
integer search of both dense matchers runs in numba-compiled loops, one shift
at a time, every loop running along image rows so that it vectorises: the
products of a block of ``g = gcd(window, step)`` image rows go into a running
column sum over the window's height (the block rows kept in a small ring, to
be taken out as they leave), and once an output row is complete its window
sums along the row come from a doubling tree over those column sums, read
only at the output grid's columns; neither the product image nor a
full-resolution box sum is ever written to memory. At the shifts where a
window sees no-data, it is recomputed. Where that no-data lies only outside
the images' valid rectangles (the padding of a tile beyond the image
border: every image's outer band of windows), the pixels valid in both
windows form a rectangle, so :func:`_rect_scores` takes the sum of products
from the fast path and the sums and sums of squares from shift-independent
summed-area tables: a few operations per shift. Elsewhere (holes: clouds, a
scene's outline) :func:`_masked_scores` computes the masked NCC from
summed-area tables of its six products, per shift over the bounding box of
just the windows that see no-data there, block by block (scattered clouds
cost the blocks around them, not the whole tile). The matchers take each window's
peak with :func:`dense_ncc_peaks`, which folds each row of shifts into a
running peak search as it is computed, so the ``(2r+1)^2`` score planes of
the whole stack (:func:`dense_ncc_stack`, which the template matcher keeps)
are never held: allocating and filling them cost as much as computing them.
The kernels release the GIL and run single-threaded: the driver runs tiles on
dask's threads, one per core, which is where the parallelism is (a numba
``prange`` inside each tile would put two threads per core).
:func:`gvfuse.tracking.correlation.ncc_score_stack` (with
:func:`gvfuse.tracking.correlation.masked_ncc_scores`) is the plain
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

__all__ = ["DenseNccMatcher", "dense_ncc_peaks", "dense_ncc_stack", "peak_search"]


#: LLVM's fast-math flags without "no NaNs" and "no infinities": flat patches are NaN and must stay so.
FAST_BUT_NAN_SAFE = {"reassoc", "contract", "arcp", "nsz", "afn"}


@numba.njit(cache=True, nogil=True, fastmath=FAST_BUT_NAN_SAFE, error_model="numpy")
def _add_shifted(src: np.ndarray, dst: np.ndarray, n: int, width: int) -> None:  # pragma: no cover
    """``dst[x] = src[x] + src[x + width]`` for ``x < n`` (a slice, not ``x + width``, so that numba adds no
    negative-index check and the loop vectorises)."""
    ahead = src[width:]
    for x in range(n):
        dst[x] = src[x] + ahead[x]


@numba.njit(cache=True, nogil=True, fastmath=FAST_BUT_NAN_SAFE, error_model="numpy")
def _add_every(total: np.ndarray, src: np.ndarray, step: int, offset: int) -> None:  # pragma: no cover
    """``total[j] += src[offset + j * step]``."""
    part = src[offset:]
    for j in range(total.shape[0]):
        total[j] += part[j * step]


@numba.njit(cache=True, nogil=True, fastmath=FAST_BUT_NAN_SAFE, error_model="numpy")
def _fast_scores(r0: np.ndarray, s0: np.ndarray, sum_r: np.ndarray, inv_sd_r: np.ndarray, mean_s: np.ndarray,
                 inv_sd_s: np.ndarray, out: np.ndarray, o: int, w: int, s: int, r: int, first: int,
                 raw_ptr: np.ndarray, raw_col: np.ndarray, raw: np.ndarray) -> None:  # pragma: no cover
    """NCC of every window of the output grid at the shifts of search rows ``first ...`` into ``out``
    ``(search rows, side, rows, cols)`` (search row ``a`` is shift ``dy = a - r``).

    ``r0``/``s0``: centred, scaled images (no-data as 0); ``sum_r``/``inv_sd_r``:
    the reference windows' sums and inverse standard deviations on the output
    grid; ``mean_s``/``inv_sd_s``: the secondary's window means and inverse
    standard deviations at every top-left corner, given as ``(s, s, H/s, W/s)``
    phases (``a[py, px, i, j] = full[py + i*s, px + j*s]``) so that each shift
    reads them contiguously.

    One shift at a time, every loop along image rows (contiguous, so it
    vectorises): a block row is ``g = gcd(w, s)`` image rows, whose products
    are summed into a running column sum over the window's ``k = w/g`` block
    rows (the block rows kept in a ring, to be taken out as they leave); the
    grid steps ``m = s/g`` block rows. Once an output row's block rows are
    in, its window sums along the row come from the column sums summed over
    blocks of ``g`` columns and a doubling tree over those blocks (after
    level L a buffer holds the sums of ``2**L`` blocks from each block; the
    levels of ``k``'s binary digits add up to the window), read only at the
    output grid's columns (every ``m``-th block). All in float32; the
    running column sum is summed afresh from the ring every ``4k`` block rows,
    so rounding cannot drift down a tall tile.

    ``raw`` ``(search rows, side, n)`` receives the plain sums of products
    ``sum(r0 * s0)`` of the windows listed row by row in ``raw_col[raw_ptr[i]
    : raw_ptr[i + 1]]`` (output row ``i``), for :func:`_rect_scores`.
    """
    side = 2 * r + 1
    rows, cols = out.shape[2], out.shape[3]
    g = math.gcd(w, s)
    k = w // g
    m = s // g
    nb = (rows - 1) * m + k  # block rows under the grid
    lx = (cols - 1) * s + w
    resum = 4 * k
    column = np.empty(lx, np.float32)
    block = np.empty(lx, np.float32)
    ring = np.empty((k, lx), np.float32)
    nu = lx // g
    blocked = np.empty(nu, np.float32)
    level_a = np.empty(nu, np.float32)
    level_b = np.empty(nu, np.float32)
    total = np.empty(cols, np.float32)
    one = np.float32(1.0)
    for a in range(first, first + out.shape[0]):
        dy = a - r
        py = (o + dy) % s
        for b in range(side):
            dx = b - r
            px = (o + dx) % s
            for x in range(lx):
                column[x] = 0.0
            for p in range(nb):
                y = o + p * g
                rr = r0[y, o : o + lx]
                ss = s0[y + dy, o + dx : o + dx + lx]
                for x in range(lx):
                    block[x] = rr[x] * ss[x]
                for t in range(1, g):
                    rr = r0[y + t, o : o + lx]
                    ss = s0[y + t + dy, o + dx : o + dx + lx]
                    for x in range(lx):
                        block[x] += rr[x] * ss[x]
                kept = ring[p % k]
                if p < k:
                    for x in range(lx):
                        column[x] += block[x]
                        kept[x] = block[x]
                elif (p - k) % resum == resum - 1:
                    for x in range(lx):
                        kept[x] = block[x]
                        column[x] = 0.0
                    for q in range(k):
                        old = ring[q]
                        for x in range(lx):
                            column[x] += old[x]
                else:  # the block row leaving the window out, the new one in
                    for x in range(lx):
                        bx = block[x]
                        column[x] += bx - kept[x]
                        kept[x] = bx
                if p < k - 1 or (p - (k - 1)) % m:
                    continue
                # the block rows of output row i are complete
                i = (p - (k - 1)) // m
                for j in range(cols):
                    total[j] = 0.0
                # blocks of g columns first (a window is k of them, the grid steps m): a shorter tree, and
                # where the step divides the window (m = 1) the windows are read contiguously
                if g == 1:
                    src = column
                elif g == 2:
                    for u in range(nu):
                        blocked[u] = column[2 * u] + column[2 * u + 1]
                    src = blocked
                else:
                    for u in range(nu):
                        acc = column[u * g]
                        for t in range(1, g):
                            acc += column[u * g + t]
                        blocked[u] = acc
                    src = blocked
                offset = 0
                width = 1
                n = nu
                use_a = True
                while True:
                    if k & width:
                        if m == 1:  # contiguous: a literal step lets the compiler vectorise the read
                            _add_every(total, src, 1, offset)
                        else:
                            _add_every(total, src, m, offset)
                        offset += width
                    if 2 * width > k:
                        break
                    n -= width
                    dst = level_a if use_a else level_b  # two buffers: in place, the loop would not vectorise
                    _add_shifted(src, dst, n, width)
                    src = dst
                    use_a = not use_a
                    width *= 2
                for q in range(raw_ptr[i], raw_ptr[i + 1]):
                    raw[a - first, b, q] = total[raw_col[q]]
                msr = mean_s[py, px, (o + dy) // s + i, (o + dx) // s : (o + dx) // s + cols]
                isr = inv_sd_s[py, px, (o + dy) // s + i, (o + dx) // s : (o + dx) // s + cols]
                srow = sum_r[i]
                irow = inv_sd_r[i]
                orow = out[a - first, b, i]
                for j in range(cols):
                    # NCC = (sum_rs - sum_r * mean_s) / (sd_r * sd_s); NaN factors mark flat patches
                    score = (total[j] - srow[j] * msr[j]) * irow[j] * isr[j]
                    # clipped to [-1, 1] against rounding (selects, so that it vectorises); NaN stays NaN
                    score = one if score > one else score
                    orow[j] = -one if score < -one else score


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _masked_scores(r0: np.ndarray, s0: np.ndarray, mr0: np.ndarray, ms0: np.ndarray, ref_bad: np.ndarray,
                   sec_bad: np.ndarray, only: np.ndarray, out: np.ndarray, y0: int, x0: int, w: int, s: int, r: int,
                   min_count: float, var_floor: float, first: int) -> None:  # pragma: no cover
    """:func:`gvfuse.tracking.correlation.masked_ncc_scores` compiled, for the shifts at which a window sees
    no-data: the masked NCC (Padfield 2012) of the windows starting at ``(y0 + i*step, x0 + j*step)`` at the
    shifts of search rows ``first ...`` into ``out`` ``(search rows, side, rows, cols)``.

    A window (of those ``only[i, j]`` marks) sees no-data at a shift when its reference window does
    (``ref_bad[i, j]``) or its shifted secondary window does (``sec_bad`` at that window's top-left
    corner); ``out`` keeps what it holds
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
    for a in range(first, first + out.shape[0]):
        dy = a - r
        for b in range(side):
            dx = b - r
            i0, i1, j0, j1 = rows, -1, cols, -1
            for i in range(rows):
                for j in range(cols):
                    d = only[i, j] and (ref_bad[i, j] or sec_bad[y0 + i * s + dy, x0 + j * s + dx])
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
            orow = out[a - first, b]
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


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rect_scores(raw: np.ndarray, out: np.ndarray, first: int, qs: np.ndarray, ci: np.ndarray, cj: np.ndarray,
                 sat: np.ndarray, ya: int, xa: int, box_r: np.ndarray, box_s: np.ndarray, o: int, w: int, s: int,
                 r: int, min_count: float, var_floor: float) -> None:  # pragma: no cover
    """The masked NCC of windows whose no-data, in both images, lies only outside a rectangle (the image's
    valid area: a tile padded beyond the image border), at the shifts where they see it.

    There the pixels valid in both windows form a rectangle: the window, cut by the reference's valid
    rectangle ``box_r`` and by the secondary's ``box_s`` moved back by the shift (``(top, bottom, left,
    right)``, tile pixels). The sum of products over it is the fast path's (no-data is 0 in ``r0`` and
    ``s0``), kept in ``raw[a - first, b, q]`` for window ``q`` (output cell ``(ci[q], cj[q])``); the count
    is its area, and the two images' sums and sums of squares are four look-ups each in ``sat``
    ``(4, H + 1, W + 1)``, float64 summed-area tables of ``r0, r0**2, s0, s0**2`` from tile pixel
    ``(ya, xa)``, which do not depend on the shift. So these windows cost a few operations per shift
    instead of the masked path's six tables per shift. The windows listed in ``qs`` are done;
    at shifts where the rectangle is the whole window, the fast path's score stands.
    """
    side = 2 * r + 1
    nan = np.float32(np.nan)
    full = w * w
    for a in range(first, first + out.shape[0]):
        dy = a - r
        for b in range(side):
            dx = b - r
            orow = out[a - first, b]
            for q in qs:
                i, j = ci[q], cj[q]
                y, x = o + i * s, o + j * s
                top = max(y, box_r[0], box_s[0] - dy)
                bottom = min(y + w, box_r[1], box_s[1] - dy)
                left = max(x, box_r[2], box_s[2] - dx)
                right = min(x + w, box_r[3], box_s[3] - dx)
                count = max(bottom - top, 0) * max(right - left, 0)
                if count == full:
                    continue
                if count == 0 or count < min_count - 0.5:
                    orow[i, j] = nan
                    continue
                t, bo, le, ri = top - ya, bottom - ya, left - xa, right - xa
                sr = sat[0, bo, ri] - sat[0, t, ri] - sat[0, bo, le] + sat[0, t, le]
                srr = sat[1, bo, ri] - sat[1, t, ri] - sat[1, bo, le] + sat[1, t, le]
                t, bo, le, ri = t + dy, bo + dy, le + dx, ri + dx
                ss = sat[2, bo, ri] - sat[2, t, ri] - sat[2, bo, le] + sat[2, t, le]
                sss = sat[3, bo, ri] - sat[3, t, ri] - sat[3, bo, le] + sat[3, t, le]
                var_r = srr - sr * sr / count
                var_s = sss - ss * ss / count
                if var_r <= var_floor * count or var_s <= var_floor * count:
                    orow[i, j] = nan
                    continue
                srs = np.float64(raw[a - first, b, q])
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


@attrs.frozen(eq=False)
class _MaskedPath:
    """The windows that see no-data at some shift (covered by rectangles) and what the masked path needs."""

    cover: list[tuple[int, int, int, int]]
    only: np.ndarray  # the windows of the masked path (the others in the cover are on the rectangle path)
    valid_r: np.ndarray  # 1 where valid, float32
    valid_s: np.ndarray
    ref_bad: np.ndarray  # windows whose reference window holds no-data
    sec_bad: np.ndarray  # top-left corners whose secondary window holds no-data
    min_count: float
    var_floor: float


@attrs.frozen(eq=False)
class _RectPath:
    """Windows that see no-data only outside the images' valid rectangles, for :func:`_rect_scores`."""

    ci: np.ndarray  # their output cells, row by row (the order of the fast path's raw sums)
    cj: np.ndarray
    row_ptr: np.ndarray  # windows ci == i are row_ptr[i] ... row_ptr[i + 1] - 1
    parts: list[tuple[np.ndarray, np.ndarray, int, int]]  # (windows, summed-area tables, ya, xa) per band
    box_r: np.ndarray  # (top, bottom, left, right) of the valid pixels, tile pixels
    box_s: np.ndarray
    min_count: float
    var_floor: float


@attrs.frozen(eq=False)
class _Prepared:
    """What the compiled kernels need of a pair, computed once for all its search rows."""

    r0: np.ndarray  # centred, scaled images, no-data as 0
    s0: np.ndarray
    sum_r: np.ndarray  # reference windows' sums and inverse standard deviations on the output grid
    inv_sd_r: np.ndarray
    mean_s: np.ndarray  # the secondary's window means and inverse standard deviations, as phases
    inv_sd_s: np.ndarray
    origin_px: int
    window_px: int
    step_px: int
    radius_px: int
    masked: _MaskedPath | None  # None: no window sees no-data but at the valid rectangles' edges
    rect: _RectPath | None  # None: no window sees no-data only there


def _prepare(reference: np.ndarray, secondary: np.ndarray, *, w: int, s: int, r: int, o: int, rows: int,
             cols: int, min_valid_fraction: float, min_variance: float) -> _Prepared:
    """Centre and scale both images, the window statistics of both, and where the masked path is needed."""
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
    masked = rect = None
    if affected.any():
        box_r, box_s = _valid_box(valid_r), _valid_box(valid_s)
        holes_r, holes_s = _holes(valid_r, box_r), _holes(valid_s, box_s)
        in_rect = affected & ~(window_sums(holes_r[o : o + ly, o : o + lx], **sums) > 0.5)
        in_rect &= ~(window_sums(holes_s[o - r : o + ly + r, o - r : o + lx + r], window_px=w + 2 * r, step_px=s,
                                 rows=rows, cols=cols) > 0.5)
        if in_rect.any():
            rect = _rect_path(in_rect, r0, s0, box_r, box_s, o=o, w=w, s=s, r=r,
                              min_count=min_valid_fraction * n_full, var_floor=var_floor)
        general = affected & ~in_rect
        if general.any():
            masked = _MaskedPath(cover=_cover(general, block_cells=_masked_block_cells(w, s)), only=general,
                                 valid_r=valid_r.astype(np.float32), valid_s=valid_s.astype(np.float32),
                                 ref_bad=ref_bad, sec_bad=all_pixel_box_sums((~valid_s).astype(np.float32), w) > 0.5,
                                 min_count=min_valid_fraction * n_full, var_floor=var_floor)
    return _Prepared(r0=r0, s0=s0, sum_r=sum_r, inv_sd_r=inv_sd_r, mean_s=mean_s, inv_sd_s=_phases(inv_sd_s, s),
                     origin_px=o, window_px=w, step_px=s, radius_px=r, masked=masked, rect=rect)


def _masked_block_cells(w: int, s: int) -> int:
    """Side (output cells) of the blocks that cover scattered no-data for the masked path: about three
    windows wide, so that a block's tables (its cells plus a window's margin) are not mostly margin."""
    return max(8, -(-3 * w // s))


def _valid_box(valid: np.ndarray) -> np.ndarray:
    """``(top, bottom, left, right)`` of the valid pixels (an empty box when there are none)."""
    rows, cols = np.flatnonzero(valid.any(axis=1)), np.flatnonzero(valid.any(axis=0))
    if rows.size == 0:
        return np.zeros(4, np.int64)
    return np.array([rows[0], rows[-1] + 1, cols[0], cols[-1] + 1], np.int64)


def _holes(valid: np.ndarray, box: np.ndarray) -> np.ndarray:
    """No-data inside ``box`` (1.0), as float32 for box sums."""
    holes = np.zeros(valid.shape, np.float32)
    top, bottom, left, right = box
    holes[top:bottom, left:right] = ~valid[top:bottom, left:right]
    return holes


def _rect_path(in_rect: np.ndarray, r0: np.ndarray, s0: np.ndarray, box_r: np.ndarray, box_s: np.ndarray, *,
               o: int, w: int, s: int, r: int, min_count: float, var_floor: float) -> _RectPath:
    """The rectangle path's windows and, per band of them (:func:`_cover`), the summed-area tables of
    ``r0, r0**2, s0, s0**2`` over the band's search area."""
    ci, cj = np.nonzero(in_rect)
    owner = np.full(in_rect.shape, -1, np.int64)
    owner[ci, cj] = np.arange(ci.size)
    parts = []
    for i0, i1, j0, j1 in _cover(in_rect):
        qs = owner[i0:i1, j0:j1]
        qs = qs[qs >= 0]
        if qs.size == 0:
            continue
        owner[i0:i1, j0:j1] = -1  # a window in two bands is done once
        ya, xa = o + i0 * s - r, o + j0 * s - r
        yb, xb = o + (i1 - 1) * s + w + r, o + (j1 - 1) * s + w + r
        ref, sec = r0[ya:yb, xa:xb].astype(np.float64), s0[ya:yb, xa:xb].astype(np.float64)
        sat = np.zeros((4, yb - ya + 1, xb - xa + 1))
        for c, plane in enumerate((ref, ref * ref, sec, sec * sec)):
            np.cumsum(np.cumsum(plane, axis=0), axis=1, out=sat[c, 1:, 1:])
        parts.append((np.sort(qs), sat, ya, xa))
    row_ptr = np.searchsorted(ci, np.arange(in_rect.shape[0] + 1)).astype(np.int64)
    return _RectPath(ci=ci.astype(np.int64), cj=cj.astype(np.int64), row_ptr=row_ptr, parts=parts, box_r=box_r,
                     box_s=box_s, min_count=min_count, var_floor=var_floor)


def _search_rows(prep: _Prepared, out: np.ndarray, first: int) -> None:
    """Scores of every window at the shifts of search rows ``first ... first + len(out) - 1`` into ``out``.

    Every window by the fast path; the shifts at which a window sees no-data are then recomputed (the fast
    path's scores are exact at the others): by :func:`_rect_scores` where the no-data it sees is only
    outside the images' valid rectangles (a tile's padding beyond the image border), by the masked path
    :func:`_masked_scores` where it sees holes (clouds, a scene's outline).
    """
    o, w, s, r = prep.origin_px, prep.window_px, prep.step_px, prep.radius_px
    rect = prep.rect
    if rect is None:  # no raw sums to keep
        row_ptr, raw_col = np.zeros(out.shape[2] + 1, np.int64), np.zeros(0, np.int64)
    else:
        row_ptr, raw_col = rect.row_ptr, rect.cj
    raw = np.empty((out.shape[0], 2 * r + 1, raw_col.size), np.float32)
    _fast_scores(prep.r0, prep.s0, prep.sum_r, prep.inv_sd_r, prep.mean_s, prep.inv_sd_s, out, o, w, s, r, first,
                 row_ptr, raw_col, raw)
    if rect is not None:
        for qs, sat, ya, xa in rect.parts:
            _rect_scores(raw, out, first, qs, rect.ci, rect.cj, sat, ya, xa, rect.box_r, rect.box_s, o, w, s, r,
                         rect.min_count, rect.var_floor)
    masked = prep.masked
    if masked is None:
        return
    for i0, i1, j0, j1 in masked.cover:
        _masked_scores(prep.r0, prep.s0, masked.valid_r, masked.valid_s, masked.ref_bad[i0:i1, j0:j1],
                       masked.sec_bad, masked.only[i0:i1, j0:j1], out[:, :, i0:i1, j0:j1], o + i0 * s, o + j0 * s,
                       w, s, r, masked.min_count, masked.var_floor, first)


def _grid(reference: np.ndarray, window_px: int, step_px: int, search_radius_px: int,
          origin_px: int | None) -> tuple[int, int, int, int, int, int]:
    """``(w, s, r, o, rows, cols)``: the windows of a dense search, checked."""
    w, s, r = int(window_px), int(step_px), int(search_radius_px)
    o = r if origin_px is None else int(origin_px)
    if o < r:
        raise ValueError(f"origin_px ({o}) must be at least the search radius ({r})")
    height, width = reference.shape
    rows = n_windows(height, origin_px=o, window_px=w, step_px=s)
    cols = n_windows(width, origin_px=o, window_px=w, step_px=s)
    return w, s, r, o, rows, cols


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
    Matchers that only need each window's peak use :func:`dense_ncc_peaks`,
    which never holds the whole stack.
    """
    w, s, r, o, rows, cols = _grid(reference, window_px, step_px, search_radius_px, origin_px)
    side = 2 * r + 1
    if rows == 0 or cols == 0:
        return np.full((side, side, rows, cols), np.nan, dtype=np.float32)
    prep = _prepare(reference, secondary, w=w, s=s, r=r, o=o, rows=rows, cols=cols,
                    min_valid_fraction=min_valid_fraction, min_variance=min_variance)
    stack = np.empty((side, side, rows, cols), dtype=np.float32)
    _search_rows(prep, stack, 0)
    return stack


def dense_ncc_peaks(
    reference: np.ndarray,
    secondary: np.ndarray,
    *,
    window_px: int,
    step_px: int,
    search_radius_px: int,
    origin_px: int | None = None,
    min_valid_fraction: float = 0.6,
    min_variance: float = 1e-6,
    exact_peak: float = EXACT_PEAK_CORRELATION,
) -> PeakEstimate:
    """``peak_search(dense_ncc_stack(...))``, one search row of shifts at a time.

    The same result, bit for bit, with a ``(2r+1)``-th of the memory: each
    row of shifts is folded into the running peak search as soon as it is
    computed (:func:`_fold_search_row`), so the ``(2r+1)^2`` score planes of
    the stack, which cost as much to allocate and fill in memory as to
    compute, are never held. Needs ``r >= 1``.
    """
    w, s, r, o, rows, cols = _grid(reference, window_px, step_px, search_radius_px, origin_px)
    side = 2 * r + 1
    if rows == 0 or cols == 0 or side < 3:
        return peak_search(dense_ncc_stack(reference, secondary, window_px=w, step_px=s, search_radius_px=r,
                                           origin_px=o, min_valid_fraction=min_valid_fraction,
                                           min_variance=min_variance), exact_peak=exact_peak)
    prep = _prepare(reference, secondary, w=w, s=s, r=r, o=o, rows=rows, cols=cols,
                    min_valid_fraction=min_valid_fraction, min_variance=min_variance)
    n = rows * cols
    state = _PeakState.start(n)
    current = np.empty((1, side, rows, cols), np.float32)
    previous = np.empty((1, side, rows, cols), np.float32)
    for a in range(side):
        _search_rows(prep, current, a)
        state.fold(current.reshape(side, n), previous.reshape(side, n), a)
        current, previous = previous, current
    return state.estimate(side, (rows, cols), exact_peak)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _fold_search_row(scores: np.ndarray, previous: np.ndarray, a: int, peak: np.ndarray, shift: np.ndarray,
                     abs_sum: np.ndarray, count: np.ndarray, nb: np.ndarray) -> None:  # pragma: no cover
    """Fold search row ``a`` of every window's correlation surface (``scores`` ``(side, n)``, windows in
    columns; ``previous``: row ``a - 1``) into the running peak search: the best shift (``a * side + b``,
    first of ties, NaN never wins), its peak, the absolute sum and count of the finite correlations (for
    the SNR) and ``nb`` ``(3, 3, n)``, the 3x3 neighbourhood of the peak, whose rows are copied as they
    pass (the row below a peak arrives with the next row; a peak on the search edge keeps NaN there)."""
    side, n = scores.shape
    zero, one = np.float32(0.0), np.float32(1.0)
    # shifts outer, windows inner: contiguous rows; selects, not branches, so that it vectorises
    for b in range(side):
        row = scores[b]
        kk = np.int32(a * side + b)
        for c in range(n):
            val = row[c]
            p = peak[c]
            better = val > p
            peak[c] = val if better else p
            shift[c] = kk if better else shift[c]
            finite = val == val
            abs_sum[c] += abs(val) if finite else zero
            count[c] += one if finite else zero
    row_start = np.int32(a * side)
    for c in range(n):
        # shifts only move forward, so the peak is in this row or the one before from its index alone
        # (no integer division per window)
        ix = shift[c] - row_start
        if ix < -side:
            continue
        if ix < 0:
            ix += side
        cx = min(max(ix, 1), side - 2)
        if shift[c] >= row_start:  # the peak is in this row: the rows above it and at it
            for t in range(3):
                nb[0, t, c] = previous[cx + t - 1, c] if a > 0 else np.float32(np.nan)
                nb[1, t, c] = scores[cx + t - 1, c]
                nb[2, t, c] = np.float32(np.nan)
        else:  # the peak was in the row before: the row below it
            for t in range(3):
                nb[2, t, c] = scores[cx + t - 1, c]


@attrs.frozen(eq=False)
class _PeakState:
    """The running peak search of :func:`_fold_search_row` over ``n`` windows."""

    peak: np.ndarray
    shift: np.ndarray  # int32 beside the float32 peaks, so that the loop vectorises
    abs_sum: np.ndarray
    count: np.ndarray  # exact in float32: a few thousand shifts at most
    nb: np.ndarray

    @classmethod
    def start(cls, n: int) -> _PeakState:
        return cls(peak=np.full(n, -np.inf, np.float32), shift=np.zeros(n, np.int32),
                   abs_sum=np.zeros(n, np.float32), count=np.zeros(n, np.float32),
                   nb=np.full((3, 3, n), np.nan, np.float32))

    def fold(self, scores: np.ndarray, previous: np.ndarray, a: int) -> None:
        _fold_search_row(scores, previous, a, self.peak, self.shift, self.abs_sum, self.count, self.nb)

    def estimate(self, side: int, shape: tuple[int, int], exact_peak: float) -> PeakEstimate:
        """Integer peak, 2-D quadratic sub-pixel fit (:func:`gvfuse.tracking.subpixel.quadratic_peak_2d`),
        edge peaks rejected, exact integer matches kept as they are, SNR as ImGRAFT's peak over mean
        absolute correlation."""
        r = side // 2
        peak = self.peak
        has = np.isfinite(peak)
        iy, ix = np.divmod(self.shift, side)
        with np.errstate(invalid="ignore", divide="ignore"):
            snr = peak / (self.abs_sum.astype(np.float64) / np.maximum(self.count.astype(np.float64), 1.0))
        ok = has & np.isfinite(self.nb).all(axis=(0, 1))
        ok &= (iy > 0) & (iy < side - 1) & (ix > 0) & (ix < side - 1)
        fx, fy = quadratic_peak_2d(np.nan_to_num(self.nb))
        exact = peak >= np.float32(exact_peak)
        dx = np.where(exact, ix - r, (ix - r) + fx)
        dy = np.where(exact, iy - r, (iy - r) + fy)
        nan = np.float32(np.nan)
        return PeakEstimate(
            dx_px=np.where(ok, dx, nan).astype(np.float32).reshape(shape),
            dy_px=np.where(ok, dy, nan).astype(np.float32).reshape(shape),
            peak_correlation=np.where(has, peak, nan).astype(np.float32).reshape(shape),
            snr=np.where(has, snr, nan).astype(np.float32).reshape(shape),
        )


def peak_search(stack: np.ndarray, *, exact_peak: float = EXACT_PEAK_CORRELATION) -> PeakEstimate:
    """:func:`gvfuse.tracking.correlation.peak_from_stack` with its search over the shifts compiled.

    Same result (best integer shift, 2-D quadratic sub-pixel fit by
    :func:`gvfuse.tracking.subpixel.quadratic_peak_2d`, edge peaks rejected,
    exact integer matches kept as they are, SNR as ImGRAFT's peak over mean
    absolute correlation); one pass over the stack instead of one per shift.
    """
    side = stack.shape[0]
    rows, cols = stack.shape[2:]
    n = rows * cols
    if side < 3 or n == 0:
        from gvfuse.tracking.correlation import peak_from_stack

        return peak_from_stack(stack, exact_peak=exact_peak)
    flat = np.ascontiguousarray(stack, dtype=np.float32).reshape(side, side, n)
    state = _PeakState.start(n)
    for a in range(side):
        state.fold(flat[a], flat[a - 1] if a else flat[a], a)
    return state.estimate(side, (rows, cols), exact_peak)


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
        est = dense_ncc_peaks(reference, secondary, window_px=window_px, step_px=step_px, search_radius_px=r,
                              min_valid_fraction=self.min_valid_fraction)
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
