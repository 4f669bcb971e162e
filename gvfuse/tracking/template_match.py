"""Template matching after ImGRAFT: NCC or orientation correlation, window by window.

The method follows ImGRAFT's ``templatematch`` as described by Messerli &
Grinsted (2015), "Image georectification and feature tracking toolbox:
ImGRAFT", Geosci. Instrum. Method. Data Syst. 4: 23-34 (written from the paper
and its documentation, not from its code): every reference window (the
template) is compared with a search region of ``±search_radius_px`` pixels in
the secondary, the best integer lag is refined to sub-pixel precision, peaks
on the edge of the search region are rejected, and each point carries its peak
correlation and a signal-to-noise ratio.

Two similarity measures:

``"ncc"``
    Normalized cross-correlation (zero-mean, unit-variance per window),
    masked to the pixels valid in both images (Padfield 2012, IEEE TIP 21(5)).
    The integer-lag surfaces of all windows come at once from the dense NCC
    (:func:`gvfuse.tracking.dense_ncc.dense_ncc_stack`, box sums shared by
    overlapping windows). Invariant to a gain and an offset between the
    images, not to a non-linear change.
``"oc"``
    Orientation correlation (Fitch, Kadyrov, Christmas & Kittler 2002,
    "Orientation correlation", BMVC; Heid & Kääb 2012, Remote Sens. Environ.
    118: 339-355). Each image is replaced by ``f = (gx + i gy) / |gx + i gy|``,
    the unit vector of its intensity gradient (0 where the gradient is tiny or
    undefined), and the score is the real part of the normalized complex
    cross-correlation ``Re(sum f_ref conj(f_sec)) / sqrt(n_ref n_sec)`` where
    ``n`` counts the non-zero orientation pixels. It only sees the direction of
    edges, so illumination changes (gain, offset, gamma, soft shadows) barely
    move it. Computed with batched FFTs of the zero-padded template and the
    search region.

Choices made here (all documented in :func:`template_match`):

* **No data.** A window whose template has more than ``max_nan_fraction`` NaN
  pixels gets NaN. NCC is computed over the pixels valid in both images, at
  the integer lags and in the refinement alike, so no-data neither counts nor
  pulls the peak (an earlier version filled NaN with the window mean for
  OpenCV, which drew windows on a fixed outline, such as a glacier-only
  crop's, towards zero lag). Every lag whose secondary patch has more than
  ``max_nan_fraction`` NaN pixels or no variance is *excluded* from the
  correlation surface (set to NaN before the peak search). In OC, NaN pixels
  and their gradient neighbours get orientation 0 and drop out of both the sum
  and the normalisation.
* **Texture.** A template whose valid-pixel standard deviation is below
  ``min_std_fraction`` of the image's standard deviation (OC: fewer than 10 % of
  its pixels with a usable gradient) is textureless and gets NaN.
* **Sub-pixel.** Three steps. (1) A 2-D quadratic least-squares fit to the
  3×3 neighbourhood of the integer peak. (2) ``refine_iterations`` times: the
  secondary is resampled (cubic B-spline, compiled) at the current sub-pixel
  estimate, the 3×3 correlation at whole-pixel lags around it is computed in
  float64, and the quadratic fit's remainder is added. All nine lags of one
  resampled patch share the same fractional shift, hence the same
  interpolation smoothing, so the fit is not pulled towards whole pixels: this
  is the "shift the search image by the first estimate and measure the
  remainder" cure for pixel locking. (3) A perfect match (3×3 centre
  correlation ≥ 1 − 1e-9 in float64, i.e. the secondary patch is an affine copy
  of the template at that integer lag) keeps the integer offset exactly.
* **Edge peaks.** An integer peak on the outer ring of the search region (the
  true maximum may lie outside), or next to an excluded lag, gives NaN.
* **SNR.** Peak correlation over the mean absolute correlation of the valid
  lags of the integer-lag surface (the definition ImGRAFT's documentation uses
  for its signal-to-noise ratio). It is ≥ 1 for any positive peak; it grows with
  the search area, so compare it only between runs of the same radius.

Images are standardised (valid mean 0, std 1) once per call, which makes the
thresholds scale-free and keeps the float32 integer search well conditioned.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Literal

import numba
import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from gvfuse.errors import TrackingError
from gvfuse.tracking.correlation import central_gradient, n_windows
from gvfuse.tracking.dense_ncc import FAST_BUT_NAN_SAFE, dense_ncc_stack
from gvfuse.tracking.matching import MatchResult
from gvfuse.tracking.warping import _bspline_weights

__all__ = ["METHODS", "orientation_field", "template_match"]

METHODS: tuple[str, ...] = ("ncc", "oc")

#: Gradient magnitude (in units of the image's std per pixel) below which OC
#: treats a pixel as having no orientation: flat or saturated areas carry no
#: edge direction, and their noise would otherwise add random unit vectors.
OC_MIN_GRADIENT: float = 1e-3
#: Fraction of template pixels that must carry an orientation for OC to match.
OC_MIN_ORIENTED_FRACTION: float = 0.1
#: A float64 correlation this close to 1 is a perfect (affine) copy.
_PERFECT_MATCH: float = 1.0 - 1e-9
#: Windows handled together in the vectorised stages (bounds memory).
_BATCH: int = 1024
#: NaN padding around the secondary so that resampling near the margin stays in bounds.
_PAD: int = 6
#: Lag spacing of the successive refinement passes. Pass 0: whole-pixel lags
#: around the integer peak; pass 1: whole-pixel lags around the first sub-pixel
#: estimate (one shared resampling, no pixel locking, ~0.01 px); later passes:
#: quarter-pixel lags, each resampled on its own, which removes the bias of a
#: quadratic fitted over a wide, slightly asymmetric peak (~0.001 px on
#: textured synthetic pairs).
_LAG_SPACING: tuple[float, ...] = (1.0, 1.0, 0.25)


def template_match(
    reference: np.ndarray,
    secondary: np.ndarray,
    *,
    window_px: int,
    step_px: int,
    search_radius_px: int,
    method: Literal["ncc", "oc"] = "ncc",
    max_nan_fraction: float = 0.4,
    min_std_fraction: float = 1e-3,
    refine_iterations: int = 2,
) -> MatchResult:
    """Match every reference window in the secondary; a :class:`~gvfuse.tracking.matching.Matcher`.

    Follows the matcher protocol: window ``(i, j)`` covers reference pixels
    ``[r + i*step, r + i*step + window)`` on both axes (``r`` =
    ``search_radius_px``) and is searched over the secondary lags ``-r..r``.
    Offsets are where the reference patch is found in the secondary (positive
    ``dx_px`` = to larger column indices).

    Parameters beyond the protocol (bind them with :func:`functools.partial`):

    method
        ``"ncc"`` (masked normalized cross-correlation) or ``"oc"`` (orientation
        correlation, Fitch et al. 2002; Heid & Kääb 2012).
    max_nan_fraction
        Largest share of NaN pixels allowed in a template, and in the secondary
        patch at any lag that may hold the peak.
    min_std_fraction
        Templates whose valid-pixel std is below this fraction of the image's
        std are textureless (NaN).
    refine_iterations
        Resample-and-refit passes after the first quadratic fit (0 = plain 2-D
        quadratic fit, which pixel-locks at the few-hundredths level).

    Returns a :class:`MatchResult` (float32) with ``peak_correlation`` the
    integer-lag peak of the similarity (in [-1, 1]) and ``snr`` the peak over the
    mean absolute similarity of the valid lags. NaN offsets where: the template
    has too much no data or no texture, no lag is valid, the integer peak is on
    the search edge or next to an excluded lag, or the sub-pixel fit is not a
    maximum. Peak correlation and SNR are kept wherever a surface existed, so
    rejected points can still be inspected.

    Raises ``ValueError`` for bad arguments and :class:`TrackingError` when no
    window fits in the arrays.
    """
    ref = np.asarray(reference, dtype=np.float64)
    sec = np.asarray(secondary, dtype=np.float64)
    w, s, r = int(window_px), int(step_px), int(search_radius_px)
    _check_arguments(ref, sec, w, s, r, method, max_nan_fraction, refine_iterations)
    n_i = n_windows(ref.shape[0], origin_px=r, window_px=w, step_px=s)
    n_j = n_windows(ref.shape[1], origin_px=r, window_px=w, step_px=s)
    if n_i < 1 or n_j < 1:
        raise TrackingError(
            f"a {w} px window with a ±{r} px search does not fit in arrays of shape {ref.shape}"
        )
    shape = (n_i, n_j)
    out = {k: np.full(shape, np.nan, dtype=np.float32) for k in ("dx", "dy", "peak", "snr")}

    ref_std, sec_std = _standardise(ref), _standardise(sec)
    if ref_std is None or sec_std is None:  # all-NaN or constant input: nothing can be matched
        return MatchResult(out["dx"], out["dy"], out["peak"], out["snr"])
    ref, sec = ref_std, sec_std

    # Window statistics of valid pixels, for every top-left position, from integral images.
    ref_count, _, ref_var = _box_stats(ref, w)
    sec_count, _, sec_var = _box_stats(sec, w)
    min_var = min_std_fraction**2  # the images are standardised to std 1
    max_nan = max_nan_fraction * w * w

    # Template validity and statistics at the template top-lefts (r + i*s, r + j*s).
    t_sl = (slice(r, r + (n_i - 1) * s + 1, s), slice(r, r + (n_j - 1) * s + 1, s))
    t_nan = w * w - ref_count[t_sl]
    t_ok = (t_nan <= max_nan) & (ref_var[t_sl] > min_var)
    # A lag is usable when the secondary patch there has enough data and some variance.
    lag_ok = (w * w - sec_count <= max_nan) & (sec_var > min_var)

    f_ref: np.ndarray | None = None
    f_sec: np.ndarray | None = None
    ref_defined: np.ndarray | None = None
    if method == "oc":
        f_ref, f_sec = orientation_field(ref), orientation_field(sec)
        ref_defined = _gradient_defined(ref)
        oriented = _box_sum(np.abs(f_ref) ** 2, w)[t_sl]
        t_ok &= oriented >= OC_MIN_ORIENTED_FRACTION * w * w

    stack: np.ndarray | None = None
    if method == "ncc":  # every window's integer-lag surface at once, masked to the pixels valid in both
        stack = dense_ncc_stack(ref, sec, window_px=w, step_px=s, search_radius_px=r,
                                min_valid_fraction=1.0 - max_nan_fraction, min_variance=min_var)
    windows = np.argwhere(t_ok)  # (K, 2) window indices to match
    lag_view = sliding_window_view(lag_ok, (2 * r + 1, 2 * r + 1))
    sec_pad = _spline_coefficients(sec)
    for start in range(0, len(windows), _BATCH):
        idx = windows[start : start + _BATCH]
        ii, jj = idx[:, 0], idx[:, 1]
        if method == "ncc":
            assert stack is not None  # set above for "ncc"
            surf = np.moveaxis(stack[:, :, ii, jj], 2, 0).astype(np.float64)
        else:
            assert f_ref is not None and f_sec is not None  # set above for "oc"
            surf = _oc_surfaces(f_ref, f_sec, ii, jj, w, s, r)
        surf[~lag_view[ii * s, jj * s]] = np.nan
        dx, dy, peak, snr, ok, perfect = _locate(surf, r)
        if method == "ncc":
            tmpl = _templates(ref, ii, jj, w, s, r, None)
            t_valid = np.isfinite(tmpl)
            tmpl, t_weight = np.where(t_valid, tmpl, 0.0), t_valid.astype(np.float64)
        for it in range(refine_iterations + 1):
            # Pass 0 looks at whole-pixel lags around the integer peak (exact samples:
            # the perfect-match test happens here); later passes around the
            # sub-pixel estimate, where all nine lags share one interpolation.
            sel = np.flatnonzero(ok & ~perfect)
            if sel.size == 0:
                break
            top = (r + ii[sel] * s) + dy[sel]
            left = (r + jj[sel] * s) + dx[sel]
            h = _LAG_SPACING[min(it, len(_LAG_SPACING) - 1)]
            inside = _refinable(top, left, sec_pad[0].shape, w, h)
            if not inside.all():  # drifted past the search edge: no match
                ok[sel[~inside]] = False
                sel, top, left = sel[inside], top[inside], left[inside]
            if method == "ncc":
                nb = _ncc_neighbourhood(tmpl, t_weight, sec_pad, top, left, h, which=sel)
            else:
                assert f_ref is not None and ref_defined is not None  # set above for "oc"
                f_t = _templates(f_ref, ii[sel], jj[sel], w, s, r, None)
                d_t = _templates(ref_defined, ii[sel], jj[sel], w, s, r, None)
                nb = _oc_neighbourhood(f_t, d_t, sec_pad, top, left, h)
            sx, sy, good = _quadratic_peak(nb)
            sx, sy = sx * h, sy * h
            if it == 0:
                exact = nb[:, 1, 1] >= _PERFECT_MATCH
                perfect[sel[exact]] = True
                sx, sy, good = np.where(exact, 0.0, sx), np.where(exact, 0.0, sy), good | exact
            if it == 0:
                ok[sel[~good]] = False  # no maximum around the integer peak: no match
            # A finer pass that does not bracket a maximum keeps the previous estimate.
            dx[sel] += np.where(good, sx, 0.0)
            dy[sel] += np.where(good, sy, 0.0)
        ok &= (np.abs(dx) < r) & (np.abs(dy) < r)
        dx[~ok] = np.nan
        dy[~ok] = np.nan
        out["dx"][ii, jj] = dx
        out["dy"][ii, jj] = dy
        out["peak"][ii, jj] = peak
        out["snr"][ii, jj] = snr
    return MatchResult(out["dx"], out["dy"], out["peak"], out["snr"])


def orientation_field(image: np.ndarray, *, min_gradient: float = OC_MIN_GRADIENT) -> np.ndarray:
    """Unit gradient vectors ``(gx + i gy) / |gx + i gy|`` as complex128, 0 where undefined.

    Central differences (as Heid & Kääb 2012); a pixel whose gradient involves
    a NaN, or whose gradient magnitude is at most ``min_gradient`` (in the
    image's units per pixel), gets 0 so it drops out of orientation correlation
    (Fitch et al. 2002).
    """
    gx, gy = central_gradient(np.asarray(image, dtype=np.float64))
    return _unit(gx, gy, min_gradient)


# ----------------------------------------------------------------------------- helpers


def _gradient_defined(img: np.ndarray) -> np.ndarray:
    """Where :func:`orientation_field` has a centred, NaN-free gradient."""
    ok = np.zeros(img.shape, dtype=bool)
    fin = np.isfinite(img)
    ok[1:-1, 1:-1] = fin[1:-1, :-2] & fin[1:-1, 2:] & fin[:-2, 1:-1] & fin[2:, 1:-1]
    return ok


def _check_arguments(
    ref: np.ndarray, sec: np.ndarray, w: int, s: int, r: int, method: str,
    max_nan_fraction: float, refine_iterations: int,
) -> None:
    if ref.ndim != 2 or ref.shape != sec.shape:
        raise ValueError(f"reference {ref.shape} and secondary {sec.shape} must be 2-D arrays of one shape")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if w < 3 or s < 1:
        raise ValueError(f"window_px must be >= 3 and step_px >= 1, got {w}, {s}")
    if r < 2:
        # A ±1 search has no interior peak position besides 0: every real offset would be an edge peak.
        raise ValueError(f"search_radius_px must be >= 2, got {r}")
    if not 0.0 <= max_nan_fraction < 1.0:
        raise ValueError(f"max_nan_fraction must be in [0, 1), got {max_nan_fraction}")
    if refine_iterations < 0:
        raise ValueError(f"refine_iterations must be >= 0, got {refine_iterations}")


def _standardise(img: np.ndarray) -> np.ndarray | None:
    """(img - mean) / std over valid pixels; None when nothing or nothing varying is left."""
    valid = np.isfinite(img)
    if not valid.any():
        return None
    mean = img[valid].mean()
    std = img[valid].std()
    if not std > 0:
        return None
    out = (img - mean) / std
    out[~valid] = np.nan  # also turns +-inf into no data
    return out


def _box_sum(values: np.ndarray, size: int) -> np.ndarray:
    """Sums over every ``size``×``size`` box, indexed by the box's top-left pixel."""
    c = np.zeros((values.shape[0] + 1, values.shape[1] + 1))
    c[1:, 1:] = np.cumsum(np.cumsum(values, axis=0), axis=1)
    return c[size:, size:] - c[:-size, size:] - c[size:, :-size] + c[:-size, :-size]


def _box_stats(img: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Valid count, valid mean and valid variance of every box (NaN where the box is empty)."""
    valid = np.isfinite(img)
    v = np.where(valid, img, 0.0)
    count = np.rint(_box_sum(valid.astype(np.float64), size))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = _box_sum(v, size) / count
        var = _box_sum(v * v, size) / count - mean * mean
    return count, mean, var


def _unit(gx: np.ndarray, gy: np.ndarray, min_gradient: float) -> np.ndarray:
    g = gx + 1j * gy
    mag = np.abs(g)
    keep = np.isfinite(mag) & (mag > min_gradient)
    out = np.zeros(g.shape, dtype=np.complex128)
    np.divide(g, mag, out=out, where=keep)
    return out


def _templates(img: np.ndarray, ii: np.ndarray, jj: np.ndarray, w: int, s: int, r: int,
               fill: np.ndarray | None) -> np.ndarray:
    """Stack of templates (K, w, w); NaN filled with the per-window ``fill`` when given."""
    view = sliding_window_view(img, (w, w))
    t = view[r + ii * s, r + jj * s].copy()
    if fill is not None:
        t = np.where(np.isnan(t), fill[:, None, None], t)
    return t


def _fft_batches(k: int, per_window: int) -> Iterator[slice]:
    size = max(1, 4_000_000 // per_window)
    for start in range(0, k, size):
        yield slice(start, min(k, start + size))


def _oc_surfaces(f_ref: np.ndarray, f_sec: np.ndarray, ii: np.ndarray, jj: np.ndarray, w: int, s: int,
                 r: int) -> np.ndarray:
    """Integer-lag OC surfaces (K, 2r+1, 2r+1) by batched FFT cross-correlation.

    With the template zero-padded to the search size L >= w + 2r, the circular
    correlation at lags 0..2r never wraps, so its first (2r+1)² values are the
    plain correlation at displacements -r..r.
    """
    n = 2 * r + 1
    size = scipy.fft.next_fast_len(w + 2 * r)
    t_all = sliding_window_view(f_ref, (w, w))
    a_all = sliding_window_view(f_sec, (w + 2 * r, w + 2 * r))
    n_sec = sliding_window_view(_box_sum(np.abs(f_sec) ** 2, w), (n, n))
    out = np.empty((len(ii), n, n), dtype=np.float64)
    for b in _fft_batches(len(ii), size * size):
        y, x = ii[b] * s, jj[b] * s
        t = t_all[r + y, r + x]
        a = a_all[y, x]
        ft = scipy.fft.fft2(t.astype(np.complex64), s=(size, size), axes=(1, 2))
        fa = scipy.fft.fft2(a.astype(np.complex64), s=(size, size), axes=(1, 2))
        corr = scipy.fft.ifft2(fa * np.conj(ft), axes=(1, 2))[:, :n, :n].real
        n_t = (np.abs(t) ** 2).sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[b] = corr / np.sqrt(n_t[:, None, None] * n_sec[y, x])
    out[~np.isfinite(out)] = np.nan
    return out


def _locate(surf: np.ndarray, r: int) -> tuple[np.ndarray, ...]:
    """Integer peak, edge rejection and SNR for surfaces (K, n, n) with NaN = excluded lag.

    Returns dx, dy (integer offsets as float), peak, snr, ok and a ``perfect`` flag array.
    """
    k, n, _ = surf.shape
    flat = np.where(np.isnan(surf), -np.inf, surf).reshape(k, -1)
    arg = flat.argmax(axis=1)
    peak = flat[np.arange(k), arg]
    any_valid = np.isfinite(peak)
    py, px = np.divmod(arg, n)
    interior = (py > 0) & (py < n - 1) & (px > 0) & (px < n - 1)
    # The sub-pixel fit needs the whole 3x3 neighbourhood.
    rows = np.clip(py[:, None, None] + np.arange(-1, 2)[None, :, None], 0, n - 1)
    cols = np.clip(px[:, None, None] + np.arange(-1, 2)[None, None, :], 0, n - 1)
    nb = surf[np.arange(k)[:, None, None], rows, cols]
    ok = any_valid & interior & np.isfinite(nb).all(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # windows with no valid lag: NaN, handled below
        mean_abs = np.nanmean(np.abs(surf).reshape(k, -1), axis=1) if n * n else np.zeros(k)
        snr = peak / mean_abs
    peak = np.where(any_valid, peak, np.nan)
    snr = np.where(any_valid, snr, np.nan)
    return (px - r).astype(np.float64), (py - r).astype(np.float64), peak, snr, ok, np.zeros(k, bool)


def _quadratic_peak(nb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stationary point of the least-squares 2-D quadratic through a 3x3 neighbourhood.

    f(x, y) = c0 + c1 x + c2 y + c3 x² + c4 xy + c5 y² on x, y in {-1, 0, 1}; the
    closed-form normal equations of that grid give c1..c5 as differences of
    row/column sums. ``good`` is False where the fit is not a maximum, or its
    vertex is more than one pixel away (the neighbourhood then does not bracket
    the peak).
    """
    c1 = (nb[:, :, 2].sum(1) - nb[:, :, 0].sum(1)) / 6.0
    c2 = (nb[:, 2, :].sum(1) - nb[:, 0, :].sum(1)) / 6.0
    c3 = (nb[:, :, 0].sum(1) + nb[:, :, 2].sum(1) - 2.0 * nb[:, :, 1].sum(1)) / 6.0
    c5 = (nb[:, 0, :].sum(1) + nb[:, 2, :].sum(1) - 2.0 * nb[:, 1, :].sum(1)) / 6.0
    c4 = (nb[:, 0, 0] + nb[:, 2, 2] - nb[:, 0, 2] - nb[:, 2, 0]) / 4.0
    hxx, hxy, hyy = 2.0 * c3, c4, 2.0 * c5
    det = hxx * hyy - hxy * hxy
    with np.errstate(invalid="ignore", divide="ignore"):
        sx = (-c1 * hyy + c2 * hxy) / det
        sy = (-c2 * hxx + c1 * hxy) / det
    good = (hxx < 0) & (det > 0) & (np.abs(sx) <= 1.0) & (np.abs(sy) <= 1.0)
    return np.where(good, sx, 0.0), np.where(good, sy, 0.0), good


def _spline_coefficients(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Padded cubic-spline coefficients of ``img`` (NaN taken as 0 = the standardised mean) and its padded NaN mask.

    Cubic B-spline interpolation (Unser 1999, IEEE Signal Process. Mag. 16(6))
    is far closer to the ideal shift than cubic convolution on textured
    images; that matters here because the refinement measures remainders of a
    few hundredths of a pixel.
    """
    nan = np.isnan(img)
    coef = ndimage.spline_filter(np.where(nan, 0.0, img), order=3, mode="mirror")
    # "reflect" padding continues the "mirror" boundary the coefficients were computed with,
    # so samples next to the array edge are exact; outside the array the NaN mask applies.
    return (np.pad(coef, _PAD, mode="reflect"), np.pad(nan, _PAD, constant_values=True))


def _refinable(top: np.ndarray, left: np.ndarray, shape: tuple[int, ...], w: int, h: float) -> np.ndarray:
    """Windows whose refinement samples (lags ±h, OC's extra pixel, four spline taps) stay in the padding.

    Only a window that drifted past the search edge can fail; it is rejected by the edge test anyway.
    """
    e = math.ceil(h) + 4
    fy, fx = np.floor(top), np.floor(left)
    # shape is the padded one: the last usable index is shape - 1 = rows + 2 * _PAD - 1
    return ((fy >= e - _PAD) & (fy <= shape[0] - _PAD - 1 - e - w)
            & (fx >= e - _PAD) & (fx <= shape[1] - _PAD - 1 - e - w))


def _ncc_neighbourhood(tmpl: np.ndarray, t_valid: np.ndarray, sec_pad: tuple[np.ndarray, np.ndarray],
                       top: np.ndarray, left: np.ndarray, h: float = 1.0,
                       which: np.ndarray | None = None) -> np.ndarray:
    """Float64 masked NCC at lags -h, 0, h around a sub-pixel position, (K, 3, 3).

    ``tmpl`` holds 0 and ``t_valid`` 0.0 where the reference has no data;
    ``which`` picks the templates (default all, in order). Means and variances
    come from the pixels valid in both (the masked NCC of Padfield 2012, IEEE
    TIP 21(5)), so no-data pixels neither count nor move the peak. Whole-pixel
    lags (``h = 1``) share one fractional shift, hence one interpolation
    smoothing.
    """
    which = np.arange(len(tmpl)) if which is None else np.asarray(which, np.int64)
    nb = np.full((len(which), 3, 3), np.nan)
    if len(which):
        _ncc_lags(tmpl, t_valid, which, sec_pad[0], sec_pad[1], np.asarray(top, np.float64),
                  np.asarray(left, np.float64), float(h), nb)
    return nb


def _oc_neighbourhood(f_tmpl: np.ndarray, t_defined: np.ndarray, sec_pad: tuple[np.ndarray, np.ndarray],
                      top: np.ndarray, left: np.ndarray, h: float = 1.0) -> np.ndarray:
    """Float64 OC at lags -h, 0, h around a sub-pixel position, (K, 3, 3).

    The secondary intensity is resampled (one extra pixel each side for the
    central differences) and its orientation recomputed, rather than
    interpolating the unit vectors, whose direction does not interpolate
    linearly. Normalised by the orientation counts on the pixels where *both*
    images have data (a NaN-free gradient), so a hole in one image lowers
    neither score's ceiling nor moves its peak; pixels with a tiny gradient
    still count as zero vectors, as in Fitch et al. (2002).
    """
    nb = np.full((len(f_tmpl), 3, 3), np.nan)
    if len(f_tmpl):
        _oc_lags(np.ascontiguousarray(f_tmpl.real), np.ascontiguousarray(f_tmpl.imag), t_defined.astype(np.float64),
                 sec_pad[0], sec_pad[1], np.asarray(top, np.float64), np.asarray(left, np.float64), float(h),
                 OC_MIN_GRADIENT, nb)
    return nb


# ----------------------------------------------------------------------------- compiled refinement



@numba.njit(cache=True, nogil=True, error_model="numpy")
def _row_pass(coef: np.ndarray, nan_pad: np.ndarray, row0: int, n_rows: int, q_x: float, n_cols: int,
              values: np.ndarray, good: np.ndarray) -> None:  # pragma: no cover
    """Rows ``row0 .. row0 + n_rows - 1`` of the padded spline coefficients interpolated along x at
    ``q_x + b`` (b < ``n_cols``), and ``good`` = 1.0 where no no-data pixel lies within one pixel along x."""
    fx = math.floor(q_x)
    tx = q_x - fx
    wx = np.empty(4)
    _bspline_weights(tx, wx)
    c0 = fx - 1 + _PAD
    n0 = fx + _PAD
    right = tx > 0.0  # the sample also lies within one pixel of the next column
    for i in range(n_rows):
        row = coef[row0 + _PAD + i]
        nan_row = nan_pad[row0 + _PAD + i]
        for b in range(n_cols):
            c = c0 + b
            values[i, b] = wx[0] * row[c] + wx[1] * row[c + 1] + wx[2] * row[c + 2] + wx[3] * row[c + 3]
            good[i, b] = 0.0 if nan_row[n0 + b] or (right and nan_row[n0 + b + 1]) else 1.0


@numba.njit(cache=True, nogil=True, fastmath=FAST_BUT_NAN_SAFE, error_model="numpy")
def _column_pass(values: np.ndarray, good: np.ndarray, row0: int, q_y: float, size: int, patch: np.ndarray,
                 patch_good: np.ndarray) -> None:  # pragma: no cover
    """The row pass interpolated along y at ``q_y + a`` (a < ``size``) into ``patch``, and ``patch_good``
    = 1.0 where no no-data pixel lies within one pixel of the sample (``patch`` is finite everywhere)."""
    fy = math.floor(q_y)
    wy = np.empty(4)
    _bspline_weights(q_y - fy, wy)
    below = 1.0 if q_y > fy else 0.0  # the sample also lies within one pixel of the next row
    i0 = fy - 1 - row0
    for a in range(size):
        r0, r1, r2, r3 = values[i0 + a], values[i0 + a + 1], values[i0 + a + 2], values[i0 + a + 3]
        g1, g2 = good[i0 + a + 1], good[i0 + a + 2]
        for b in range(patch.shape[1]):
            patch[a, b] = wy[0] * r0[b] + wy[1] * r1[b] + wy[2] * r2[b] + wy[3] * r3[b]
            patch_good[a, b] = g1[b] * (below * g2[b] + (1.0 - below))


@numba.njit(cache=True, nogil=True, fastmath=FAST_BUT_NAN_SAFE, error_model="numpy")
def _ncc_lags(tmpl: np.ndarray, t_valid: np.ndarray, which: np.ndarray, coef: np.ndarray, nan_pad: np.ndarray,
              top: np.ndarray, left: np.ndarray, h: float, out: np.ndarray) -> None:  # pragma: no cover
    """Masked NCC (Padfield 2012) of templates ``which`` with the secondary at the nine lags ``(-h, 0, h)²``
    around ``(top, left)``, the secondary sampled by its cubic B-spline: ``out`` (K, 3, 3), y lag first.

    ``tmpl`` is 0 and ``t_valid`` 0.0 where the reference has no data. A
    secondary sample counts where no no-data pixel lies within one pixel of
    it; the sums run over pixels valid in both, branch-free so that they
    vectorise. Where neither side has no-data (most
    windows) the template's sums are taken once and only the three sums that
    depend on the lag are accumulated (1.5x).
    """
    w = tmpl.shape[1]
    margin = math.ceil(h) + 2
    n_rows = w + 2 * margin
    values = np.empty((n_rows, w))
    good = np.empty((n_rows, w))
    wy = np.empty(4)
    for k in range(which.shape[0]):
        t_k, ok_k = tmpl[which[k]], t_valid[which[k]]
        row0 = math.floor(top[k]) - margin
        col0 = math.floor(left[k] - h) - 1 + _PAD
        clean = ok_k.min() > 0.0
        if clean:  # any no-data pixel of the secondary within reach of the nine lags' samples?
            for i in range(n_rows):
                nan_row = nan_pad[row0 + _PAD + i]
                for j in range(col0, col0 + w + 2 * margin):
                    if nan_row[j]:
                        clean = False
            n0 = float(w * w)
            st0 = stt0 = 0.0
            for a in range(w):
                for b in range(w):
                    st0 += t_k[a, b]
                    stt0 += t_k[a, b] * t_k[a, b]
        for v in range(3):
            _row_pass(coef, nan_pad, row0, n_rows, left[k] + (v - 1) * h, w, values, good)
            for u in range(3):
                # the column pass of _column_pass fused with the sums (1.4x: no patch written and read back)
                q_y = top[k] + (u - 1) * h
                fy = math.floor(q_y)
                _bspline_weights(q_y - fy, wy)
                w0, w1, w2, w3 = wy[0], wy[1], wy[2], wy[3]
                i0 = fy - 1 - row0
                if clean:
                    n, st, stt = n0, st0, stt0
                    sp = spp = stp = 0.0
                    for a in range(w):
                        r0, r1, r2, r3 = values[i0 + a], values[i0 + a + 1], values[i0 + a + 2], values[i0 + a + 3]
                        t_row = t_k[a]
                        for b in range(w):
                            p = w0 * r0[b] + w1 * r1[b] + w2 * r2[b] + w3 * r3[b]
                            sp += p
                            spp += p * p
                            stp += t_row[b] * p
                else:
                    below = 1.0 if q_y > fy else 0.0  # the sample also lies within one pixel of the next row
                    n = st = sp = stt = spp = stp = 0.0
                    for a in range(w):
                        r0, r1, r2, r3 = values[i0 + a], values[i0 + a + 1], values[i0 + a + 2], values[i0 + a + 3]
                        g1, g2 = good[i0 + a + 1], good[i0 + a + 2]
                        t_row, t_ok = t_k[a], ok_k[a]
                        for b in range(w):
                            m = t_ok[b] * g1[b] * (below * g2[b] + (1.0 - below))
                            p = m * (w0 * r0[b] + w1 * r1[b] + w2 * r2[b] + w3 * r3[b])
                            t = m * t_row[b]
                            n += m
                            st += t
                            sp += p
                            stt += t * t
                            spp += p * p
                            stp += t * p
                cov = stp - st * sp / n
                out[k, u, v] = cov / math.sqrt((stt - st * st / n) * (spp - sp * sp / n))


@numba.njit(cache=True, nogil=True, fastmath=FAST_BUT_NAN_SAFE, error_model="numpy")
def _oc_lags(t_real: np.ndarray, t_imag: np.ndarray, t_defined: np.ndarray, coef: np.ndarray, nan_pad: np.ndarray,
             top: np.ndarray, left: np.ndarray, h: float, min_gradient: float,
             out: np.ndarray) -> None:  # pragma: no cover
    """Orientation correlation (Fitch et al. 2002) of each template's orientations with those of the
    secondary resampled at the nine lags ``(-h, 0, h)²`` around ``(top, left)``: ``out`` (K, 3, 3).

    The secondary's intensity is resampled (one extra pixel each side) and its
    orientation taken by central differences, defined where none of the four
    samples is near no-data; counts are normalised on pixels where both images
    have a defined gradient, as :func:`_oc_neighbourhood` describes.
    ``t_defined`` is 1.0 where the template's gradient is defined.
    """
    k_n, w = t_real.shape[0], t_real.shape[1]
    m = w + 2
    margin = math.ceil(h) + 3
    n_rows = m + 2 * margin
    values = np.empty((n_rows, m))
    good = np.empty((n_rows, m))
    patch = np.empty((m, m))
    patch_good = np.empty((m, m))
    for k in range(k_n):
        row0 = math.floor(top[k]) - margin
        for v in range(3):
            _row_pass(coef, nan_pad, row0, n_rows, left[k] + (v - 1) * h - 1.0, m, values, good)
            for u in range(3):
                _column_pass(values, good, row0, top[k] + (u - 1) * h - 1.0, m, patch, patch_good)
                n_t = n_f = num = 0.0
                for a in range(w):
                    for b in range(w):
                        defined = (patch_good[a + 1, b + 2] * patch_good[a + 1, b] * patch_good[a + 2, b + 1]
                                   * patch_good[a, b + 1])
                        gx = 0.5 * (patch[a + 1, b + 2] - patch[a + 1, b])
                        gy = 0.5 * (patch[a + 2, b + 1] - patch[a, b + 1])
                        tr, ti = t_real[k, a, b], t_imag[k, a, b]
                        n_t += defined * (tr * tr + ti * ti)
                        mag = math.sqrt(gx * gx + gy * gy)
                        oriented = defined * t_defined[k, a, b] if mag > min_gradient else 0.0
                        n_f += oriented
                        num += oriented * (tr * gx + ti * gy) / max(mag, min_gradient)
                out[k, u, v] = num / math.sqrt(n_t * n_f)
