"""Frequency-domain matcher with a sub-pixel phase-plane fit, after Leprince et al. (2007).

Leprince, Barbot, Ayoub & Avouac (2007), "Automatic and precise
orthorectification, coregistration, and subpixel correlation of satellite
images, application to ground deformation measurements", IEEE TGRS 45(6):1529
(the method of COSI-Corr; written here from the paper, not from its code):

1. each window pair is demeaned and multiplied by a raised-cosine (Tukey)
   window against edge effects;
2. the normalized cross-power spectrum ``Q = F_s conj(F_r) / |F_s conj(F_r)|``
   is formed; its inverse transform (phase-only correlation) gives the
   integer shift, and the secondary window is re-cut at that integer shift;
3. the sub-pixel shift is the slope of the phase plane ``angle(Q) = -w . d``,
   fitted by weighted least squares over a frequency mask that keeps only
   frequencies where the cross-spectrum is strong (the paper's masking of
   noisy frequencies from the log-magnitude of the spectrum), iterated.
   The iteration here re-samples the secondary (cubic B-spline warp by the
   smoothed current field) and fits the small remaining phase plane, so the
   phase never wraps and the raised-cosine window, which biases the slope
   towards zero for a large in-window shift, only acts on a tiny remainder.

Everything is batched: windows are stacked and transformed together with
``scipy.fft.rfft2`` in single precision.

Quality (``peak_correlation``) is the *phase coherence* of the fit,
``Re(sum_k m_k Q_k exp(i w_k . d)) / sum_k m_k`` over the masked
frequencies: 1 when every kept frequency agrees with the fitted plane, about 0
for unrelated windows. It plays the role of COSI-Corr's per-point SNR in
[0, 1], on which the reference product's "correlation threshold 0.95" acts.

No-data: a window pair is matched only when at least ``min_valid_fraction``
of its pixels are valid in both images; the remaining no-data pixels are set
to the window mean (zero after demeaning), so they add no signal.
"""

from __future__ import annotations

import attrs
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft as sfft

import cv2

from gvfuse.tracking.dense_ncc import n_windows
from gvfuse.tracking.matching import MatchResult
from gvfuse.tracking.outliers import fill_nearest, normalized_median_test
from gvfuse.tracking.warping import SplineImage, field_to_pixels


def raised_cosine_window(size_px: int, taper_fraction: float = 0.5) -> np.ndarray:
    """Separable 2-D raised-cosine (Tukey) window; ``taper_fraction`` of each axis is tapered."""
    n = int(size_px)
    x = np.arange(n) + 0.5
    alpha = float(np.clip(taper_fraction, 0.0, 1.0))
    w = np.ones(n)
    if alpha > 0:
        edge = alpha * n / 2.0
        left = x < edge
        right = x > n - edge
        w[left] = 0.5 * (1 - np.cos(np.pi * x[left] / edge))
        w[right] = 0.5 * (1 - np.cos(np.pi * (n - x[right]) / edge))
    return np.outer(w, w).astype(np.float32)


def _prepare(patches: np.ndarray, taper: np.ndarray, min_valid: float, has_nan: bool) -> tuple[np.ndarray, np.ndarray]:
    """Demean the valid pixels, set no-data to the mean (zero), taper. Returns (patches, ok)."""
    n, h, w = patches.shape
    if has_nan:
        valid = np.isfinite(patches)
        count = valid.sum(axis=(1, 2))
        filled = np.where(valid, patches, np.float32(0.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = filled.sum(axis=(1, 2)) / count
        centred = np.where(valid, filled - mean[:, None, None].astype(np.float32), np.float32(0.0))
        ok = count >= min_valid * h * w
    else:
        centred = patches - patches.mean(axis=(1, 2), dtype=np.float32)[:, None, None]
        ok = np.ones(n, bool)
    centred *= taper
    ok &= (centred * centred).sum(axis=(1, 2)) > 1e-20
    return centred, ok


def _joint(a: np.ndarray, b: np.ndarray, has_nan: bool) -> tuple[np.ndarray, np.ndarray]:
    """Both patch stacks with NaN wherever either is NaN (no-data in one image is ignored in both)."""
    if not has_nan:
        return a, b
    both = np.isfinite(a) & np.isfinite(b)
    nan = np.float32(np.nan)
    return np.where(both, a, nan), np.where(both, b, nan)


def _frequency_grid(w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ky = (2 * np.pi * sfft.fftfreq(w)).astype(np.float32)
    kx = (2 * np.pi * sfft.rfftfreq(w)).astype(np.float32)
    wy, wx = np.meshgrid(ky, kx, indexing="ij")
    usable = np.ones(wy.shape, bool)
    usable[0, 0] = False  # DC: removed by demeaning
    if w % 2 == 0:  # Nyquist row/column: ambiguous phase
        usable[w // 2, :] = False
        usable[:, -1] = False
    return wx.ravel(), wy.ravel(), usable.ravel()


def fit_phase_plane(
    cross: np.ndarray, wx: np.ndarray, wy: np.ndarray, usable: np.ndarray, *, mask_factor: float,
    max_frequency: float | None = None, amplitude_weighting: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least-squares slope ``d`` of ``angle(cross) = -w . d`` over the masked frequencies.

    ``cross`` is ``(n, F)``; the mask keeps usable frequencies where
    ``NLS >= mask_factor * mean(NLS)`` (Leprince et al. 2007), and, when given,
    ``|w| <= max_frequency`` (to avoid phase wrapping for a first, coarse fit).
    With ``amplitude_weighting`` the kept frequencies are weighted by the
    cross-spectrum magnitude (a departure from the paper's binary mask: weak
    frequencies carry mostly noise, and weighting them down lowers the scatter
    several-fold on noisy textures). Returns ``(dx, dy, coherence)``,
    coherence as in the module docstring, with the same weights.
    """
    n = cross.shape[0]
    mag = np.abs(cross)
    ls = np.log10(mag + np.float32(1e-30))
    use = usable.copy()
    if max_frequency is not None:
        use &= np.hypot(wx, wy) <= max_frequency
    ls_use = np.where(use[None], ls, -np.inf)
    nls = ls - ls_use.max(axis=1, keepdims=True)
    mean_nls = np.where(use[None], nls, 0.0).sum(axis=1, keepdims=True) / max(int(use.sum()), 1)
    m = ((nls >= mask_factor * mean_nls) & use[None]).astype(np.float32)
    if amplitude_weighting:
        m *= mag / np.maximum((m * mag).max(axis=1, keepdims=True), np.float32(1e-30))
    psi = np.angle(cross).astype(np.float32)
    sxx, sxy, syy = m @ (wx * wx), m @ (wx * wy), m @ (wy * wy)
    mp = m * psi
    bx, by = mp @ wx, mp @ wy
    det = sxx * syy - sxy * sxy
    with np.errstate(invalid="ignore", divide="ignore"):
        dx = -(syy * bx - sxy * by) / det
        dy = -(sxx * by - sxy * bx) / det
        resid = psi + wx[None] * dx[:, None] + wy[None] * dy[:, None]
        coh = (m * np.cos(resid)).sum(axis=1) / m.sum(axis=1)
    bad = ~(det > 0)
    dx[bad] = np.nan
    dy[bad] = np.nan
    return dx.astype(np.float32), dy.astype(np.float32), np.clip(np.nan_to_num(coh), 0.0, 1.0).astype(np.float32)


@attrs.frozen
class PhaseCorrelationMatcher:
    """Batched phase correlation with a masked phase-plane fit (Leprince et al. 2007).

    ``taper_fraction``: share of each window axis under the raised-cosine roll-off.
    ``mask_factor``: frequencies whose normalized log-magnitude ``NLS = LS - max(LS)``
    (``LS = log10 |F_s conj(F_r)|``) is below ``mask_factor * mean(NLS)`` are dropped.
    ``refine_iterations``: warp-and-refit iterations after the first fit.
    ``batch_windows``: windows transformed together (memory ~ 60 bytes * window^2 each).
    """

    min_valid_fraction: float = attrs.field(default=0.6, validator=attrs.validators.and_(
        attrs.validators.ge(0.05), attrs.validators.le(1.0)))
    taper_fraction: float = 0.5
    mask_factor: float = 0.9
    refine_iterations: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    batch_windows: int = attrs.field(default=4096, validator=attrs.validators.ge(1))

    def __call__(
        self,
        reference: np.ndarray,
        secondary: np.ndarray,
        *,
        window_px: int,
        step_px: int,
        search_radius_px: int,
    ) -> MatchResult:
        w, s, r = int(window_px), int(step_px), int(search_radius_px)
        height, width = reference.shape
        rows = n_windows(height, origin_px=r, window_px=w, step_px=s)
        cols = n_windows(width, origin_px=r, window_px=w, step_px=s)
        if rows == 0 or cols == 0:
            empty = np.full((rows, cols), np.nan, np.float32)
            return MatchResult(empty, empty.copy(), empty.copy(), empty.copy())
        ref = np.asarray(reference, dtype=np.float32)
        sec = np.asarray(secondary, dtype=np.float32)
        dx, dy, coh, snr = self._integer_and_first_fit(ref, sec, w, s, r, rows, cols)
        failed = ~np.isfinite(dx)
        if self.refine_iterations > 0 and np.isfinite(dx).any():
            spline = SplineImage(sec)
            kw = dict(origin_px=r, step_px=s, window_px=w)
            for it in range(self.refine_iterations):
                prior_x, prior_y = dx.copy(), dy.copy()
                if it == 0:
                    bad = normalized_median_test(prior_x, prior_y)
                    prior_x[bad] = np.nan
                    prior_y[bad] = np.nan
                prior_x, prior_y = fill_nearest(prior_x), fill_nearest(prior_y)
                sigma = max(w / (4.0 * s), 0.5)
                prior_x = cv2.GaussianBlur(prior_x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
                prior_y = cv2.GaussianBlur(prior_y, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
                warped = spline.warp(field_to_pixels(prior_x, sec.shape, **kw), field_to_pixels(prior_y, sec.shape, **kw))
                rest_x, rest_y, coh, _ = self._fit_in_place(ref, warped, w, s, r, rows, cols)
                with np.errstate(invalid="ignore"):
                    failed |= ~(np.hypot(rest_x, rest_y) <= 1.0)
                dx, dy = prior_x + np.nan_to_num(rest_x), prior_y + np.nan_to_num(rest_y)
        nan = np.float32(np.nan)
        return MatchResult(np.where(failed, nan, dx).astype(np.float32), np.where(failed, nan, dy).astype(np.float32),
                           coh.astype(np.float32), snr.astype(np.float32))

    def _batches(self, rows: int, cols: int):
        for start in range(0, rows * cols, self.batch_windows):
            idx = np.arange(start, min(start + self.batch_windows, rows * cols))
            yield idx, np.divmod(idx, cols)

    def _fit_in_place(self, ref, sec, w, s, r, rows, cols):
        """Phase-plane fit of windows cut at the same place in both images (small remaining shifts)."""
        taper = raised_cosine_window(w, self.taper_fraction)
        wx, wy, usable = _frequency_grid(w)
        ref_view, sec_view = sliding_window_view(ref, (w, w)), sliding_window_view(sec, (w, w))
        has_nan = bool(np.isnan(ref).any() or np.isnan(sec).any())
        out = [np.full(rows * cols, np.nan, np.float32) for _ in range(4)]
        for idx, (ii, jj) in self._batches(rows, cols):
            y0, x0 = r + ii * s, r + jj * s
            a, b = _joint(ref_view[y0, x0], sec_view[y0, x0], has_nan)
            rp, ok_r = _prepare(a, taper, self.min_valid_fraction, has_nan)
            sp, ok_s = _prepare(b, taper, self.min_valid_fraction, has_nan)
            cross = (sfft.rfft2(sp, workers=1) * np.conj(sfft.rfft2(rp, workers=1))).reshape(len(idx), -1)
            fx, fy, coh = fit_phase_plane(cross, wx, wy, usable, mask_factor=self.mask_factor)
            ok = ok_r & ok_s
            out[0][idx] = np.where(ok, fx, np.nan)
            out[1][idx] = np.where(ok, fy, np.nan)
            out[2][idx] = np.where(ok, coh, np.nan)
        return tuple(o.reshape(rows, cols) for o in out)

    def _integer_and_first_fit(self, ref, sec, w, s, r, rows, cols):
        """Integer peak of the phase-only correlation within ±r, re-cut, then a low-frequency plane fit."""
        taper = raised_cosine_window(w, self.taper_fraction)
        wx, wy, usable = _frequency_grid(w)
        ref_view, sec_view = sliding_window_view(ref, (w, w)), sliding_window_view(sec, (w, w))
        has_nan = bool(np.isnan(ref).any() or np.isnan(sec).any())
        lim = max(0, min(r, w // 2 - 1))
        c = w // 2
        out = [np.full(rows * cols, np.nan, np.float32) for _ in range(4)]
        for idx, (ii, jj) in self._batches(rows, cols):
            n = len(idx)
            y0, x0 = r + ii * s, r + jj * s
            rp, ok_r = _prepare(ref_view[y0, x0], taper, self.min_valid_fraction, has_nan)
            fr_conj = np.conj(sfft.rfft2(rp, workers=1))
            sp, ok_s = _prepare(sec_view[y0, x0], taper, self.min_valid_fraction, has_nan)
            cross = sfft.rfft2(sp, workers=1) * fr_conj
            poc = sfft.irfft2(cross / np.maximum(np.abs(cross), np.float32(1e-30)), s=(w, w), workers=1)
            poc = np.roll(poc, (c, c), axis=(1, 2))
            sub = poc[:, c - lim : c + lim + 1, c - lim : c + lim + 1].reshape(n, -1)
            best = np.argmax(sub, axis=1)
            peak = sub[np.arange(n), best]
            snr = peak / np.maximum(np.abs(poc).mean(axis=(1, 2)), 1e-12)
            d0y, d0x = np.divmod(best, 2 * lim + 1)
            d0y, d0x = d0y - lim, d0x - lim
            if has_nan:  # re-cut: the joint no-data mask changes with the shift
                a, b = _joint(ref_view[y0, x0], sec_view[y0 + d0y, x0 + d0x], has_nan)
                rp, ok_r = _prepare(a, taper, self.min_valid_fraction, has_nan)
                fr_conj = np.conj(sfft.rfft2(rp, workers=1))
            else:
                b = sec_view[y0 + d0y, x0 + d0x]
            sp, ok_s2 = _prepare(b, taper, self.min_valid_fraction, has_nan)
            cross = (sfft.rfft2(sp, workers=1) * fr_conj).reshape(n, -1)
            # after the integer re-cut |d| < ~1: frequencies up to pi/2 cannot wrap
            fx, fy, coh = fit_phase_plane(cross, wx, wy, usable, mask_factor=self.mask_factor,
                                          max_frequency=np.pi / 2)
            ok = ok_r & ok_s & ok_s2 & (np.abs(fx) <= 1.0) & (np.abs(fy) <= 1.0)
            if lim > 0:
                ok &= (np.abs(d0x) < lim) & (np.abs(d0y) < lim)  # peaks on the search edge are not trusted
            out[0][idx] = np.where(ok, d0x + fx, np.nan)
            out[1][idx] = np.where(ok, d0y + fy, np.nan)
            out[2][idx] = np.where(ok_r & ok_s, coh, np.nan)
            out[3][idx] = np.where(ok_r & ok_s, snr, np.nan)
        return tuple(o.reshape(rows, cols) for o in out)
