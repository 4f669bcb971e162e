"""Correlation primitives shared by the dense matchers: window sums, NCC score stack, peak search, refinement.

:mod:`gvfuse.tracking.dense_ncc` and :mod:`gvfuse.tracking.phase_correlation`
both start from the same integer search and, in part, the same sub-pixel
refinement; this module holds those pieces so that neither matcher reaches
into the other:

* **Window sums** (:func:`n_windows`, :func:`window_sums`,
  :func:`all_pixel_box_sums`): sums of an image over a regular grid of
  windows from block means and a box filter, or an integral image, so that
  overlapping windows share their work. Window means, variances and
  cross-products all come from such box sums (Lewis 1995, "Fast normalized
  cross-correlation", Vision Interface).
* **NCC score stack** (:func:`ncc_score_stack`, :func:`masked_ncc_scores`):
  the normalized cross-correlation of every window at every integer shift of
  the search area. Windows that touch no-data use the masked NCC of Padfield
  (2012, "Masked object registration in the Fourier domain", IEEE TIP
  21(5):2706), whose sums run over the pixels valid in both images only.
* **Peak search** (:class:`PeakEstimate`, :func:`peak_from_stack`): the best
  integer shift of each window, a 2-D quadratic sub-pixel fit
  (:func:`gvfuse.tracking.subpixel.quadratic_peak_2d`), peak value and SNR.
* **Refinement** (:func:`central_gradient`, :func:`refinement_step`,
  :func:`gradient_refinement`): the small remaining offset after the
  secondary has been warped by the current estimate, by one least-squares
  gradient step per window (Lucas & Kanade 1981, IJCAI) assembled from the
  same box sums.

Windows follow :class:`gvfuse.tracking.matching.Matcher`: window ``(i, j)``
covers reference pixels ``[o + i*step, o + i*step + window)`` on both axes,
``o`` being the margin (origin) left for the search.
"""

from __future__ import annotations

import math

import attrs
import cv2
import numba
import numpy as np

from gvfuse.tracking.subpixel import quadratic_peak_2d

__all__ = [
    "EXACT_PEAK_CORRELATION",
    "PeakEstimate",
    "all_pixel_box_sums",
    "central_gradient",
    "gradient_refinement",
    "masked_ncc_scores",
    "n_windows",
    "ncc_score_stack",
    "peak_from_stack",
    "refinement_step",
    "window_sums",
]


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


def all_pixel_box_sums(image: np.ndarray, window_px: int) -> np.ndarray:
    """``out[y, x] = sum(image[y:y+w, x:x+w])`` for every top-left corner (float32), zero beyond the array.

    One box filter over the whole image (Lewis 1995): the window statistics at
    every pixel, which a strided view then samples for any shift of the grid.
    """
    return cv2.boxFilter(image, -1, (window_px, window_px), anchor=(0, 0), normalize=False,
                         borderType=cv2.BORDER_CONSTANT)


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of every run of True in a 1-D boolean array."""
    padded = np.concatenate([[0], flags.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def _cover(affected: np.ndarray, block_cells: int | None = None) -> list[tuple[int, int, int, int]]:
    """Rectangles ``(i0, i1, j0, j1)`` of windows that together cover every True cell of ``affected``.

    The common case is a tile on the image border, which the driver pads with
    no-data: the affected windows are then whole bands of rows or columns, and
    are returned as such (a bounding box would be the whole tile). Whatever is
    left (clouds, a diagonal scene edge) is covered by its bounding box, or,
    with ``block_cells``, by the bounding box of its cells in each block of
    ``block_cells`` x ``block_cells`` cells: scattered clouds then cost the
    blocks around them, not the whole tile (a cloudy Landsat tile: 16 % of
    its windows affected, their bounding box 98 % of the tile). A column is a
    band when more than a quarter of it is affected (after the row bands), or
    more than half with blocks, which cover a column of stacked clouds with
    less waste.
    """
    rows, cols = affected.shape
    left = affected.copy()
    rects = []
    for i0, i1 in _runs(affected.mean(axis=1) > 0.5):
        rects.append((i0, i1, 0, cols))
        left[i0:i1] = False
    for j0, j1 in _runs(left.mean(axis=0) > 0.5 if block_cells else left.mean(axis=0) > 0.25):
        rects.append((0, rows, j0, j1))
        left[:, j0:j1] = False
    if not left.any():
        return rects
    step = max(rows, cols) if block_cells is None else max(1, int(block_cells))
    for b0 in range(0, rows, step):
        for c0 in range(0, cols, step):
            part = left[b0 : b0 + step, c0 : c0 + step]
            if part.any():
                ii, jj = np.nonzero(part)
                rects.append((b0 + int(ii.min()), b0 + int(ii.max()) + 1, c0 + int(jj.min()), c0 + int(jj.max()) + 1))
    return rects


def masked_ncc_scores(
    r0: np.ndarray, s0: np.ndarray, mr0: np.ndarray, ms0: np.ndarray, out: np.ndarray, *,
    y0: int, x0: int, window_px: int, step_px: int, search_radius_px: int,
    min_count: float, var_floor: float,
) -> None:
    """Masked NCC (Padfield 2012) of the windows starting at ``(y0 + i*step, x0 + j*step)`` into ``out``.

    ``r0``/``s0`` are the centred images with no-data set to 0, ``mr0``/``ms0``
    their valid masks (float32); ``out`` is ``(side, side, rows, cols)``. For
    every shift the means, variances and covariance run over the pixels valid
    in both windows, from six box sums.
    """
    w, s, r = window_px, step_px, search_radius_px
    rows, cols = out.shape[2:]
    ly, lx = (rows - 1) * s + w, (cols - 1) * s + w
    sums = {"window_px": w, "step_px": s, "rows": rows, "cols": cols}
    ref_reg = r0[y0 : y0 + ly, x0 : x0 + lx]
    mr_reg = mr0[y0 : y0 + ly, x0 : x0 + lx]
    rr_reg = ref_reg * ref_reg
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            ys, xs = y0 + dy, x0 + dx
            sec_reg = s0[ys : ys + ly, xs : xs + lx]
            ms_reg = ms0[ys : ys + ly, xs : xs + lx]
            count = window_sums(mr_reg * ms_reg, **sums)
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
            out[dy + r, dx + r] = score


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

    Cost: windows whose reference patch and secondary search area hold no
    no-data take the fast path, one product image and one box sum per shift
    (Lewis 1995), with the secondary's window means and inverse standard
    deviations precomputed once at every pixel; only the windows that touch
    no-data (typically bands along a padded tile border) take the masked path
    with six box sums per shift.
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
    # every entry is written below (fast path everywhere, masked rectangles over the affected windows)
    stack = np.empty((side, side, rows, cols), dtype=np.float32)
    ly, lx = (rows - 1) * s + w, (cols - 1) * s + w

    ref = np.asarray(reference, dtype=np.float32)
    sec = np.asarray(secondary, dtype=np.float32)
    valid_r = np.isfinite(ref)
    valid_s = np.isfinite(sec)
    # centre both images on their common level so that box-sum moments do not cancel badly
    level_r = float(ref[valid_r].mean()) if valid_r.any() else 0.0
    level_s = float(sec[valid_s].mean()) if valid_s.any() else 0.0
    r0 = np.where(valid_r, ref - np.float32(level_r), np.float32(0.0))
    s0 = np.where(valid_s, sec - np.float32(level_s), np.float32(0.0))
    scale_r = float(np.sqrt(np.mean(r0[valid_r] ** 2))) if valid_r.any() else 1.0
    scale_s = float(np.sqrt(np.mean(s0[valid_s] ** 2))) if valid_s.any() else 1.0
    if scale_r > 0:
        r0 /= np.float32(scale_r)
    if scale_s > 0:
        s0 /= np.float32(scale_s)
    n_full = float(w * w)
    var_floor = float(min_variance)
    sums = {"window_px": w, "step_px": s, "rows": rows, "cols": cols}

    # windows that see no-data: any invalid reference pixel, or any invalid secondary pixel in the search area
    affected = window_sums((~valid_r[o : o + ly, o : o + lx]).astype(np.float32), **sums) > 0.5
    if r > 0 or not valid_s.all():
        inval_s = (~valid_s[o - r : o + ly + r, o - r : o + lx + r]).astype(np.float32)
        affected |= window_sums(inval_s, window_px=w + 2 * r, step_px=s, rows=rows, cols=cols) > 0.5
    if not affected.all():
        ref_reg = r0[o : o + ly, o : o + lx]
        sum_r = window_sums(ref_reg, **sums)
        var_r = window_sums(ref_reg * ref_reg, **sums) - sum_r * sum_r / np.float32(n_full)
        with np.errstate(invalid="ignore", divide="ignore"):
            inv_sd_r = np.where(var_r > var_floor * n_full, 1.0 / np.sqrt(var_r), np.nan).astype(np.float32)
        # secondary window statistics at every top-left corner, sampled per shift with a strided view
        full_s = all_pixel_box_sums(s0, w)
        var_s = all_pixel_box_sums(s0 * s0, w) - full_s * full_s / np.float32(n_full)
        mean_s = full_s / np.float32(n_full)
        del full_s
        with np.errstate(invalid="ignore", divide="ignore"):
            inv_sd_s = np.where(var_s > var_floor * n_full, 1.0 / np.sqrt(var_s), np.nan).astype(np.float32)
        del var_s
        prod = np.empty((ly, lx), np.float32)
        tmp = np.empty((rows, cols), np.float32)
        for dy in range(-r, r + 1):
            ys = slice(o + dy, o + dy + (rows - 1) * s + 1, s)
            for dx in range(-r, r + 1):
                xs = slice(o + dx, o + dx + (cols - 1) * s + 1, s)
                np.multiply(ref_reg, s0[o + dy : o + dy + ly, o + dx : o + dx + lx], out=prod)
                sum_rs = window_sums(prod, **sums)
                # NCC = (sum_rs - sum_r * mean_s) / (sd_r * sd_s); NaN factors mark flat patches
                np.multiply(sum_r, mean_s[ys, xs], out=tmp)
                np.subtract(sum_rs, tmp, out=tmp)
                tmp *= inv_sd_r
                np.multiply(tmp, inv_sd_s[ys, xs], out=stack[dy + r, dx + r])
        del prod, tmp, mean_s, inv_sd_s
    if affected.any():
        mr0, ms0 = valid_r.astype(np.float32), valid_s.astype(np.float32)
        for i0, i1, j0, j1 in _cover(affected):
            part = np.empty((side, side, i1 - i0, j1 - j0), np.float32)
            masked_ncc_scores(r0, s0, mr0, ms0, part, y0=o + i0 * s, x0=o + j0 * s, window_px=w, step_px=s,
                           search_radius_px=r, min_count=min_valid_fraction * n_full, var_floor=var_floor)
            stack[:, :, i0:i1, j0:j1] = part
    np.clip(stack, -1.0, 1.0, out=stack)
    return stack


@attrs.frozen(eq=False)
class PeakEstimate:
    """Integer-plus-sub-pixel peak of each window's correlation surface."""

    dx_px: np.ndarray
    dy_px: np.ndarray
    peak_correlation: np.ndarray
    snr: np.ndarray


#: Integer peaks at least this correlated are taken as exact whole-pixel matches (see :func:`peak_from_stack`).
EXACT_PEAK_CORRELATION = 1.0 - 1e-6


def peak_from_stack(
    stack: np.ndarray, *, reject_edge_peaks: bool = True, exact_peak: float = EXACT_PEAK_CORRELATION
) -> PeakEstimate:
    """Best shift per window with a 2-D quadratic sub-pixel fit, peak value and SNR.

    ``snr`` is the peak divided by the mean absolute correlation over the
    search area (ImGRAFT's definition, Messerli & Grinsted 2015, GI 4:23).
    Peaks on the edge of the search area are rejected (NaN): the true peak may
    lie outside. Where the integer peak reaches ``exact_peak`` the secondary
    patch is a copy of the reference patch (up to gain and offset) at that
    whole-pixel shift, and the integer shift is returned as it is: the
    correlation surface around an exact match is not symmetric (the
    neighbouring lags see different content), so the quadratic fit would move
    an exact answer by up to a few hundredths of a pixel.
    """
    side = stack.shape[0]
    r = side // 2
    rows, cols = stack.shape[2:]
    n = rows * cols
    flat = stack.reshape(side * side, n)
    # one pass over the shifts with contiguous slices: numpy's argmax along the
    # first axis of a (shifts, windows) array is several times slower
    peak = np.full(n, -np.inf, np.float32)
    best = np.zeros(n, np.intp)
    abs_sum = np.zeros(n, np.float32)
    count = np.zeros(n, np.float32)
    better = np.empty(n, bool)
    mag = np.empty(n, np.float32)
    for k in range(side * side):
        v = flat[k]
        np.greater(v, peak, out=better)  # NaN never wins; ties keep the first shift, like argmax
        np.copyto(peak, v, where=better)
        np.copyto(best, k, where=better)
        np.abs(v, out=mag)
        count += ~np.isnan(mag)
        abs_sum += np.fmax(mag, 0.0, out=mag)  # fmax drops NaN
    has = np.isfinite(peak)
    iy, ix = np.divmod(best, side)
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = peak / (abs_sum / np.maximum(count, 1.0))
    ok = has.copy()
    if reject_edge_peaks and r > 0:
        ok &= (iy > 0) & (iy < side - 1) & (ix > 0) & (ix < side - 1)
    if side >= 3:
        cy, cx = np.clip(iy, 1, side - 2), np.clip(ix, 1, side - 2)
        cell = np.arange(n)
        nb = np.empty((3, 3, n), dtype=np.float32)
        for a in (-1, 0, 1):
            for b in (-1, 0, 1):
                nb[a + 1, b + 1] = flat.ravel()[((cy + a) * side + (cx + b)) * n + cell]
        ok &= np.isfinite(nb).all(axis=(0, 1))
        fx, fy = quadratic_peak_2d(np.nan_to_num(nb, copy=False))
        exact = peak >= np.float32(exact_peak)
        dx = np.where(exact, ix - r, (cx - r) + fx)
        dy = np.where(exact, iy - r, (cy - r) + fy)
    else:
        dx = np.zeros(n)
        dy = np.zeros(n)
    nan = np.float32(np.nan)
    shape = (rows, cols)
    return PeakEstimate(
        dx_px=np.where(ok, dx, nan).astype(np.float32).reshape(shape),
        dy_px=np.where(ok, dy, nan).astype(np.float32).reshape(shape),
        peak_correlation=np.where(has, peak, nan).astype(np.float32).reshape(shape),
        snr=np.where(has, snr, nan).astype(np.float32).reshape(shape),
    )


def central_gradient(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference gradient ``(gx, gy)`` of a 2-D image, in its dtype; NaN on the outer ring.

    The outer ring has no centred difference, and a one-sided one there would
    be a different estimator, so it is left undefined (NaN) for the callers to
    drop like no-data.
    """
    gx = np.full_like(image, np.nan)
    gy = np.full_like(image, np.nan)
    gx[:, 1:-1] = 0.5 * (image[:, 2:] - image[:, :-2])
    gy[1:-1, :] = 0.5 * (image[2:, :] - image[:-2, :])
    return gx, gy


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _refinement_kernel(ref: np.ndarray, sec: np.ndarray, level: float, inv_scale: float, w: int, s: int, o: int,
                       min_count: float, with_ncc: bool, dx: np.ndarray, dy: np.ndarray,
                       ncc: np.ndarray) -> None:  # pragma: no cover
    """The box sums and 3x3 solves of :func:`refinement_step` for every window of the ``(rows, cols)`` grid.

    Per pixel of the windows' region: both images centred and scaled in
    float32 (so ``R == S`` gives a residual of exact zeros), the central
    gradient of their mean, and the 15 products of the normal equations in
    float64. An image row's five values are computed first in a branch-free
    loop (a pixel that does not count gives zeros); the products of each
    block of ``g x g`` pixels (``g = gcd(w, s)``) are summed in registers;
    window sums are running column sums over the window's ``k = w/g`` block
    rows (the block rows kept in a ring, to be taken out as they leave) and,
    once an output row is complete, prefix-sum differences along it: only
    the output grid's windows are formed, and the memory held is a few block
    rows, whatever the tile.
    """
    rows, cols = dx.shape
    height, width = ref.shape
    g = math.gcd(w, s)
    k, m = w // g, s // g
    nb, nq = (rows - 1) * m + k, (cols - 1) * m + k
    lx = nq * g
    nch = 15
    lv = np.float32(level)
    isc = np.float32(inv_scale)
    half = np.float32(0.5)
    # the five values of a row's pixels, 0 where a pixel does not count
    u1, u2, u3 = np.zeros(lx), np.zeros(lx), np.zeros(lx)
    uz, counted = np.zeros(lx), np.zeros(lx)
    block = np.empty((nch, nq))
    ring = np.empty((k, nch, nq), np.float32)
    column = np.zeros((nch, nq))
    prefix = np.zeros((nq + 1, nch))  # channels innermost: a window's fifteen sums are together
    sm = np.empty(nch)
    nan = np.float32(np.nan)
    # the row's pixels with a central gradient: x in [1, width - 2]
    e0, e1 = max(0, 1 - o), min(lx, width - 1 - o)
    for p in range(nb):
        block[:] = 0.0
        for t in range(g):
            y = o + p * g + t
            if y < 1 or y >= height - 1 or e1 <= e0:
                continue
            # slices from the first counted pixel's left neighbour: no negative index, so the loop vectorises
            r_mid, s_mid = ref[y, o + e0 - 1 :], sec[y, o + e0 - 1 :]
            r_up, s_up = ref[y - 1, o + e0 - 1 :], sec[y - 1, o + e0 - 1 :]
            r_dn, s_dn = ref[y + 1, o + e0 - 1 :], sec[y + 1, o + e0 - 1 :]
            for e in range(e1 - e0):
                rc = (r_mid[e + 1] - lv) * isc
                sc = (s_mid[e + 1] - lv) * isc
                gx = half * (half * ((r_mid[e + 2] - lv) * isc + (s_mid[e + 2] - lv) * isc)
                             - half * ((r_mid[e] - lv) * isc + (s_mid[e] - lv) * isc))
                gy = half * (half * ((r_dn[e + 1] - lv) * isc + (s_dn[e + 1] - lv) * isc)
                             - half * ((r_up[e + 1] - lv) * isc + (s_up[e + 1] - lv) * isc))
                z = rc - sc
                ok = np.isfinite(gx) & np.isfinite(gy) & np.isfinite(z)  # no short circuit: it vectorises
                u1[e0 + e] = np.float64(gx) if ok else 0.0
                u2[e0 + e] = np.float64(gy) if ok else 0.0
                u3[e0 + e] = np.float64(sc) if ok else 0.0
                uz[e0 + e] = np.float64(z) if ok else 0.0
                counted[e0 + e] = 1.0 if ok else 0.0
            for q in range(nq):
                a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = a10 = a11 = a12 = a13 = a14 = 0.0
                for t2 in range(g):
                    e = q * g + t2
                    v1, v2, v3, vz = u1[e], u2[e], u3[e], uz[e]
                    a0 += counted[e]
                    a1 += v1
                    a2 += v2
                    a3 += v3
                    a4 += vz
                    a5 += v1 * v1
                    a6 += v1 * v2
                    a7 += v1 * v3
                    a8 += v2 * v2
                    a9 += v2 * v3
                    a10 += v3 * v3
                    a11 += v1 * vz
                    a12 += v2 * vz
                    a13 += v3 * vz
                    a14 += vz * vz
                block[0, q] += a0
                block[1, q] += a1
                block[2, q] += a2
                block[3, q] += a3
                block[4, q] += a4
                block[5, q] += a5
                block[6, q] += a6
                block[7, q] += a7
                block[8, q] += a8
                block[9, q] += a9
                block[10, q] += a10
                block[11, q] += a11
                block[12, q] += a12
                block[13, q] += a13
                block[14, q] += a14
        kept = ring[p % k]
        for c in range(nch):
            col, new, old = column[c], block[c], kept[c]
            # the block row's sums enter rounded to single precision, as the ring keeps them: what leaves is
            # exactly what came in, and the ring (the window's height of block rows) is half the memory
            if p >= k:  # the block row leaving the window out
                for q in range(nq):
                    v = np.float32(new[q])
                    col[q] += np.float64(v) - np.float64(old[q])
                    old[q] = v
            else:
                for q in range(nq):
                    v = np.float32(new[q])
                    col[q] += np.float64(v)
                    old[q] = v
        if p < k - 1 or (p - (k - 1)) % m:
            continue
        # the block rows of output row i are complete: window sums along it as prefix differences
        i = (p - (k - 1)) // m
        for q in range(nq):  # channels innermost: fifteen independent running sums, not one chain at a time
            for c in range(nch):
                prefix[q + 1, c] = prefix[q, c] + column[c, q]
        for j in range(cols):
            q0, q1 = j * m, j * m + k
            for c in range(nch):
                sm[c] = prefix[q1, c] - prefix[q0, c]
            count = sm[0]
            if not count >= min_count:
                dx[i, j] = nan
                dy[i, j] = nan
                ncc[i, j] = nan
                continue
            inv_n = 1.0 / count
            f1, f2, f3, fz = sm[1], sm[2], sm[3], sm[4]
            a11 = sm[5] - f1 * f1 * inv_n
            a12 = sm[6] - f1 * f2 * inv_n
            a13 = sm[7] - f1 * f3 * inv_n
            a22 = sm[8] - f2 * f2 * inv_n
            a23 = sm[9] - f2 * f3 * inv_n
            a33 = sm[10] - f3 * f3 * inv_n
            b1 = sm[11] - f1 * fz * inv_n
            b2 = sm[12] - f2 * fz * inv_n
            b3 = sm[13] - f3 * fz * inv_n
            c11 = a22 * a33 - a23 * a23
            c12 = a13 * a23 - a12 * a33
            c13 = a12 * a23 - a13 * a22
            det = a11 * c11 + a12 * c12 + a13 * c13
            scale_a = max(abs(a11), abs(a22), abs(a33))
            if not abs(det) > 1e-9 * scale_a * scale_a * scale_a:
                dx[i, j] = nan
                dy[i, j] = nan
                ncc[i, j] = nan
                continue
            dx[i, j] = (b1 * c11 + b2 * c12 + b3 * c13) / det
            dy[i, j] = (a11 * (b2 * a33 - a23 * b3) - b1 * (a12 * a33 - a23 * a13)
                        + a13 * (a12 * b3 - b2 * a13)) / det
            if not with_ncc:
                ncc[i, j] = nan
                continue
            var_r = a33 + 2.0 * b3 + (sm[14] - fz * fz * inv_n)
            if a33 > 1e-6 * count and var_r > 1e-6 * count:
                ncc[i, j] = min(max((a33 + b3) / math.sqrt(a33 * var_r), -1.0), 1.0)
            else:
                ncc[i, j] = nan


def refinement_step(
    reference: np.ndarray,
    warped_secondary: np.ndarray,
    *,
    window_px: int,
    step_px: int,
    origin_px: int,
    rows: int,
    cols: int,
    min_valid_fraction: float = 0.5,
    with_ncc: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient step ``(dx, dy)`` and NCC of each window with the warped secondary (see :func:`gradient_refinement`).

    The offset ``b`` of the model is eliminated by centring the normal
    equations on the window means (Schur complement), which leaves a 3x3
    symmetric system per window solved in closed form (Cramer's rule) instead
    of a batched LAPACK call. The system is written for the *change*
    ``(dx, dy, a - 1)`` with the residual ``R - S`` as right-hand side, so that
    an exact match (``R == S``) gives sums of exact zeros and a step of
    exactly zero, and a small residual is not lost to cancellation against
    ``a ~ 1``. The NCC comes from the same sums:
    ``cov(S, R) = var S + cov(S, R - S)`` and
    ``var R = var S + 2 cov(S, R - S) + var(R - S)``.

    Both images are centred on their common level and scaled by the
    reference's spread (global moments over the pixels valid in both) before
    the sums, which are accumulated in float64 by a compiled loop
    (:func:`_refinement_kernel`). A pixel counts where both images and the
    gradient (central differences, so not on the array's outer ring) are
    defined. ``with_ncc=False`` returns NaN for the NCC. Windows with fewer
    than ``min_valid_fraction`` valid pixels, or a singular system, are NaN.
    """
    w, s, o = window_px, step_px, origin_px
    ref = np.ascontiguousarray(reference, dtype=np.float32)
    sec = np.ascontiguousarray(warped_secondary, dtype=np.float32)
    dx, dy, ncc = (np.full((rows, cols), np.nan, np.float32) for _ in range(3))
    both_ok = np.isfinite(ref) & np.isfinite(sec)
    if rows == 0 or cols == 0 or not both_ok.any():
        return dx, dy, ncc
    level = 0.5 * (float(ref[both_ok].mean(dtype=np.float32)) + float(sec[both_ok].mean(dtype=np.float32)))
    scale = max(float(np.std(ref[both_ok])), 1e-30)
    _refinement_kernel(ref, sec, level, 1.0 / scale, w, s, o, min_valid_fraction * w * w - 0.5, with_ncc,
                       dx, dy, ncc)
    return dx, dy, ncc


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
    match gives exactly zero. NaN where the system is singular or fewer than
    half the window's pixels are valid.
    """
    dx, dy, _ = refinement_step(reference, warped_secondary, window_px=window_px, step_px=step_px,
                                 origin_px=origin_px, rows=rows, cols=cols)
    return dx, dy
