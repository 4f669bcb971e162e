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
``scipy.fft.rfft2`` in single precision. Windows without no-data (nearly all)
are cut, demeaned and tapered by a compiled loop (numba) and their phase
planes fitted by another (:func:`_fit_kernel`: the mean log-magnitude from
eight logarithms per window (sixteen when a product nears underflow), the
mask compared on squared magnitudes, a branch-free single-precision
polynomial ``atan2`` good to 1e-5 rad, the coherence from the separable
``exp(i w . d)`` by complex recurrence, each step a loop that vectorises); windows
with no-data (clouds, the glacier outline) are cut by :func:`_cut_joint`,
demeaned over the pixels valid in both images, and fitted by the same kernel.

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

import functools
import math

import attrs
import numba
import numpy as np
from scipy import fft as sfft

from gvfuse.tracking.correlation import (
    n_windows,
    refinement_step,
    window_sums,
)
from gvfuse.tracking.dense_ncc import FAST_BUT_NAN_SAFE, dense_ncc_peaks
from gvfuse.tracking.matching import MatchResult, chance_level
from gvfuse.tracking.warping import SplineImage, smooth_prior_warp


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


@functools.lru_cache(maxsize=8)
def _taper(w: int, taper_fraction: float) -> np.ndarray:
    t = raised_cosine_window(w, taper_fraction)
    t.setflags(write=False)
    return t


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


@numba.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _cut_clean(image: np.ndarray, y0: np.ndarray, x0: np.ndarray, w: int, taper: np.ndarray, out: np.ndarray,
               ok: np.ndarray) -> None:  # pragma: no cover
    """A window without no-data, cut straight from ``image`` at ``(y0[n], x0[n])``.

    Demeaned (float32 mean, as numpy's) and tapered into ``out[n]``; ``ok[n]``
    is False for a window without variance left.
    """
    inv = np.float32(1.0 / (w * w))
    for n in range(y0.size):
        ya, xa = y0[n], x0[n]
        total = np.float32(0.0)
        for y in range(w):
            row = image[ya + y, xa : xa + w]
            part = np.float32(0.0)
            for x in range(w):
                part += row[x]
            total += part
        mean = total * inv
        energy = 0.0
        for y in range(w):
            row = image[ya + y, xa : xa + w]
            o = out[n, y]
            t = taper[y]
            for x in range(w):
                val = (row[x] - mean) * t[x]
                o[x] = val
                energy += val * val
        ok[n] = energy > 1e-20


@numba.njit(cache=True, nogil=True, fastmath=FAST_BUT_NAN_SAFE, error_model="numpy")
def _cut_joint(ref: np.ndarray, sec: np.ndarray, y0: np.ndarray, x0: np.ndarray, w: int, taper: np.ndarray,
               min_count: float, out_r: np.ndarray, out_s: np.ndarray, ok: np.ndarray) -> None:  # pragma: no cover
    """Both windows at ``(y0[n], x0[n])`` for windows with no-data: demeaned over the pixels valid in *both*
    images (no-data in one image is ignored in both), zero elsewhere, tapered, into ``out_r[n]`` and
    ``out_s[n]``. ``ok[n]``: at least ``min_count`` jointly valid pixels and variance left in both.
    """
    for n in range(y0.size):
        ya, xa = y0[n], x0[n]
        count = 0
        sum_r = 0.0
        sum_s = 0.0
        for y in range(w):
            for x in range(w):
                a = ref[ya + y, xa + x]
                b = sec[ya + y, xa + x]
                if np.isfinite(a) and np.isfinite(b):
                    count += 1
                    sum_r += a
                    sum_s += b
        if count < min_count or count == 0:
            ok[n] = False
            continue
        mean_r = np.float32(sum_r / count)
        mean_s = np.float32(sum_s / count)
        energy_r = 0.0
        energy_s = 0.0
        for y in range(w):
            t = taper[y]
            for x in range(w):
                a = ref[ya + y, xa + x]
                b = sec[ya + y, xa + x]
                if np.isfinite(a) and np.isfinite(b):
                    va = (a - mean_r) * t[x]
                    vb = (b - mean_s) * t[x]
                else:
                    va = np.float32(0.0)
                    vb = np.float32(0.0)
                out_r[n, y, x] = va
                out_s[n, y, x] = vb
                energy_r += va * va
                energy_s += vb * vb
        ok[n] = energy_r > 1e-20 and energy_s > 1e-20


@numba.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _atan2(y: np.float32, x: np.float32) -> np.float32:  # pragma: no cover
    """``atan2(y, x)`` to about 1e-5 rad in single precision (odd polynomial on [0, 1] and octant folding),
    without a libm call and without branches (selects), so that loops over it vectorise eight lanes wide."""
    ax, ay = abs(x), abs(y)
    hi, lo = max(ax, ay), min(ax, ay)
    t = lo / max(hi, np.float32(1e-30))
    s = t * t
    angle = ((np.float32(-0.0464964749) * s + np.float32(0.15931422)) * s - np.float32(0.327622764)) * s * t + t
    angle = np.float32(1.5707963267948966) - angle if ay > ax else angle
    angle = np.float32(3.141592653589793) - angle if x < 0 else angle
    return -angle if y < 0 else angle


@numba.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _fit_kernel(fr: np.ndarray, fs: np.ndarray, usable: np.ndarray, kx: np.ndarray, ky: np.ndarray,
                mask_factor: float, dx: np.ndarray, dy: np.ndarray, coh: np.ndarray) -> None:  # pragma: no cover
    """:func:`fit_phase_plane` (amplitude weighting, no frequency limit) on the cross-spectra
    ``fs * conj(fr)`` (``(n, F)`` complex64), one window at a time.

    ``kx`` (``w // 2 + 1``) and ``ky`` (``w``) are the angular frequencies of
    the rfft2 axes (frequency ``f = iy * len(kx) + ix``), integer multiples of
    ``2 pi / w``. Per window: the mean log-magnitude over the usable
    frequencies (from products of the squared magnitudes relative to the
    largest, in eight independent chains, a logarithm per chain only when one
    nears underflow), the Leprince et al. mask ``LS >= max + f * (mean - max)``
    (compared on squared magnitudes relative to the largest), weights
    ``|Q| / max |Q|`` on it, the weighted phase-plane normal equations, and the
    coherence ``sum m cos(psi - plane) / sum m`` from the separable
    ``exp(i w . d)``, whose factors come from one ``sincos`` per axis by
    complex recurrence. Each step is its own loop over the frequencies without
    branches (selects, the polynomial :func:`_atan2`); the magnitudes and their
    logarithms are double precision (products of spectra span more than
    single precision's range), the weights, phases and sums single precision
    (eight lanes a vector; the fitted shift agrees with double precision to
    about 1e-7 px).
    """
    n, nf = fr.shape
    nkx, nky = kx.size, ky.size
    cr = np.empty(nf, np.float32)
    ci = np.empty(nf, np.float32)
    power = np.empty(nf)
    ratio = np.empty(nf)
    weight = np.empty(nf, np.float32)
    psi = np.empty(nf, np.float32)
    use = np.empty(nf)
    for f in range(nf):
        use[f] = 1.0 if usable[f] else 0.0
    n_usable = use.sum()
    lanes = 8  # the products' chains below are written out for eight
    kxf = np.empty(nf, np.float32)
    kyf = np.empty(nf, np.float32)
    for iy in range(nky):
        for ix in range(nkx):
            kxf[iy * nkx + ix] = kx[ix]
            kyf[iy * nkx + ix] = ky[iy]
    base = 2 * np.pi / nky
    jx = np.empty(nkx, np.int64)
    jy = np.empty(nky, np.int64)
    for ix in range(nkx):
        jx[ix] = round(kx[ix] / base)
    for iy in range(nky):
        jy[iy] = round(ky[iy] / base)
    half = nky // 2 + 1
    pxr, pxi, pyr, pyi = np.empty(half), np.empty(half), np.empty(half), np.empty(half)
    cx, sx = np.empty(nkx, np.float32), np.empty(nkx, np.float32)
    cy, sy = np.empty(nky, np.float32), np.empty(nky, np.float32)
    for i in range(n):
        a = fr[i]
        b = fs[i]
        for f in range(nf):
            ar, ai, br, bi = a[f].real, a[f].imag, b[f].real, b[f].imag
            re = br * ar + bi * ai  # b * conj(a)
            im = bi * ar - br * ai
            cr[f] = re
            ci[f] = im
            power[f] = np.float64(re) * re + np.float64(im) * im + 1e-60
        top = 0.0
        for f in range(nf):
            top = max(top, power[f] * use[f])
        # mean log of the usable squared magnitudes from few logarithms: products of p / top (<= 1; 1 where
        # unusable) in eight chains held in registers, each chain's logarithm taken when one nears underflow
        inv_top = 1.0 / top
        for f in range(nf):
            ratio[f] = power[f] * inv_top if use[f] > 0.0 else 1.0
        log_sum = 0.0
        p0 = p1 = p2 = p3 = p4 = p5 = p6 = p7 = 1.0
        for f0 in range(0, nf - lanes + 1, lanes):
            p0 *= ratio[f0]
            p1 *= ratio[f0 + 1]
            p2 *= ratio[f0 + 2]
            p3 *= ratio[f0 + 3]
            p4 *= ratio[f0 + 4]
            p5 *= ratio[f0 + 5]
            p6 *= ratio[f0 + 6]
            p7 *= ratio[f0 + 7]
            if min(min(min(p0, p1), min(p2, p3)), min(min(p4, p5), min(p6, p7))) < 1e-200:
                log_sum += (math.log(p0) + math.log(p1) + math.log(p2) + math.log(p3)
                            + math.log(p4) + math.log(p5) + math.log(p6) + math.log(p7))
                p0 = p1 = p2 = p3 = p4 = p5 = p6 = p7 = 1.0
        log_sum += (math.log(p0) + math.log(p1) + math.log(p2) + math.log(p3)
                    + math.log(p4) + math.log(p5) + math.log(p6) + math.log(p7))
        for f in range(nf - nf % lanes, nf):
            log_sum += math.log(ratio[f])
        # LS >= max + f (mean - max) on squared magnitudes relative to the largest
        threshold = math.exp(mask_factor * log_sum / n_usable)
        msum = np.float32(0.0)
        for f in range(nf):
            m = math.sqrt(np.float32(ratio[f])) if (use[f] > 0.0 and ratio[f] >= threshold) else np.float32(0.0)
            weight[f] = m
            msum += m
        for f in range(nf):
            psi[f] = _atan2(ci[f], cr[f])
        sxx = sxy = syy = bx = by = np.float32(0.0)
        for f in range(nf):
            m = weight[f]
            u = kxf[f]
            v = kyf[f]
            mu = m * u
            mv = m * v
            sxx += mu * u
            sxy += mu * v
            syy += mv * v
            bx += mu * psi[f]
            by += mv * psi[f]
        det = np.float64(sxx) * syy - np.float64(sxy) * sxy
        if not det > 0:
            dx[i] = np.nan
            dy[i] = np.nan
            coh[i] = 0.0
            continue
        ex = -(np.float64(syy) * bx - np.float64(sxy) * by) / det
        ey = -(np.float64(sxx) * by - np.float64(sxy) * bx) / det
        # exp(i j base e) for j = 0 .. w / 2 by complex recurrence: one sincos per axis instead of one per frequency
        c1, s1, c2, s2 = math.cos(base * ex), math.sin(base * ex), math.cos(base * ey), math.sin(base * ey)
        pxr[0], pxi[0], pyr[0], pyi[0] = 1.0, 0.0, 1.0, 0.0
        for j in range(1, half):
            pxr[j] = pxr[j - 1] * c1 - pxi[j - 1] * s1
            pxi[j] = pxi[j - 1] * c1 + pxr[j - 1] * s1
            pyr[j] = pyr[j - 1] * c2 - pyi[j - 1] * s2
            pyi[j] = pyi[j - 1] * c2 + pyr[j - 1] * s2
        for ix in range(nkx):
            j = jx[ix]
            cx[ix] = pxr[abs(j)]
            sx[ix] = pxi[j] if j >= 0 else -pxi[-j]
        for iy in range(nky):
            j = jy[iy]
            cy[iy] = pyr[abs(j)]
            sy[iy] = pyi[j] if j >= 0 else -pyi[-j]
        acc = np.float32(0.0)
        for iy in range(nky):
            c_y = cy[iy]
            s_y = sy[iy]
            for ix in range(nkx):
                f = iy * nkx + ix
                # m cos(psi + w.d) = m Re(Q exp(i w.d)) / |Q|, and m / |Q| = 1 / sqrt(top) where kept
                c = cx[ix] * c_y - sx[ix] * s_y
                s = sx[ix] * c_y + cx[ix] * s_y
                acc += (weight[f] > 0.0) * (cr[f] * c - ci[f] * s)
        dx[i] = ex
        dy[i] = ey
        coh[i] = min(max(np.float64(acc) * math.sqrt(inv_top) / msum, 0.0), 1.0) if msum > 0 else 0.0


@attrs.frozen
class PhaseCorrelationMatcher:
    """Phase-plane fit on the remainder after a dense-NCC start (Leprince et al. 2007).

    1. integer search and a 2-D quadratic peak fit on the dense NCC surface
       (:func:`gvfuse.tracking.dense_ncc.dense_ncc_peaks`, the compiled shared box sums);
       this replaces the per-window inverse FFT of the phase-only correlation,
       which costs as much as the forward transforms and gives the same
       integer peak on textured windows;
    2. ``refine_iterations`` times (at least once): warp the secondary by the
       smoothed current field (cubic B-spline) and measure the remaining
       shift. The last pass fits the phase plane of the remainder, batched
       over windows with ``scipy.fft.rfft2``, and so sets the result; earlier
       passes only shrink the remainder (so that the raised-cosine taper,
       which biases the slope towards zero in proportion to the in-window
       shift, acts on almost nothing) and use the box-sum gradient step of
       :func:`gvfuse.tracking.correlation.gradient_refinement`, which costs a
       small fraction of two FFT stacks.

    ``taper_fraction``: share of each window axis under the raised-cosine roll-off.
    ``mask_factor``: frequencies whose normalized log-magnitude ``NLS = LS - max(LS)``
    (``LS = log10 |F_s conj(F_r)|``) is below ``mask_factor * mean(NLS)`` are dropped.
    ``batch_windows``: windows transformed together, at most; fewer when they would take more than
    ``batch_bytes`` (about 16 bytes per window pixel: 256 windows of 128 px in 64 MiB).
    ``fft_workers``: threads for the FFTs (``-1``: all cores). The default, 1, because the driver
    already runs one tile per core on dask's threads; more would put several threads on a core.
    ``ncc_gate_px``: when > 0, a window whose integer NCC peak is below
    :func:`~gvfuse.tracking.matching.chance_level` ``(window_px, ncc_gate_px)`` has no value: the
    chance level of NCC between unrelated textures, which at large windows separates them better than
    the phase coherence does.
    ``snr`` is that of the NCC surface; ``peak_correlation`` is the phase coherence.
    """

    min_valid_fraction: float = attrs.field(default=0.6, validator=attrs.validators.and_(
        attrs.validators.ge(0.05), attrs.validators.le(1.0)))
    taper_fraction: float = 0.5
    mask_factor: float = 0.9
    refine_iterations: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    batch_windows: int = attrs.field(default=4096, validator=attrs.validators.ge(1))
    batch_bytes: int = attrs.field(default=64 * 2**20, validator=attrs.validators.ge(1))
    fft_workers: int = 1
    ncc_gate_px: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))

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
        est = dense_ncc_peaks(ref, sec, window_px=w, step_px=s, search_radius_px=r,
                              min_valid_fraction=self.min_valid_fraction)
        dx, dy, snr = est.dx_px, est.dy_px, est.snr
        coh = np.full((rows, cols), np.nan, np.float32)
        failed = ~np.isfinite(dx)
        # why a window ends without an offset: its coherence (the band's peak) is computed only for the windows
        # that reach the phase fit, so it cannot tell no data from no match
        reason = np.where(np.isfinite(est.peak_correlation), 2, 1).astype(np.int8)
        if self.ncc_gate_px > 0:
            gated = ~failed & ~(est.peak_correlation >= chance_level(w, self.ncc_gate_px))
            reason[gated] = 3
            failed |= gated
        if np.isfinite(dx).any():
            spline = SplineImage(sec)
            n_iter = max(1, self.refine_iterations)
            for it in range(n_iter):
                prior_x, prior_y, warped = smooth_prior_warp(spline, dx, dy, window_px=w, step_px=s,
                                                             origin_px=r, reject_outliers=it == 0)
                if it < n_iter - 1:
                    # intermediate passes only bring the remainder down; the box-sum gradient step does that
                    # for a small fraction of the cost of two FFT stacks
                    rest_x, rest_y, _ = refinement_step(ref, warped, window_px=w, step_px=s, origin_px=r,
                                                        rows=rows, cols=cols,
                                                        min_valid_fraction=self.min_valid_fraction,
                                                        with_ncc=False)
                else:
                    rest_x, rest_y, coh = self._fit_in_place(ref, warped, w, s, r, rows, cols, wanted=~failed)
                del warped
                with np.errstate(invalid="ignore"):
                    failed |= ~(np.hypot(rest_x, rest_y) <= 1.0)
                dx, dy = prior_x + np.nan_to_num(rest_x), prior_y + np.nan_to_num(rest_y)
        nan = np.float32(np.nan)
        return MatchResult(np.where(failed, nan, dx).astype(np.float32), np.where(failed, nan, dy).astype(np.float32),
                           coh.astype(np.float32), snr.astype(np.float32), reason=reason)

    def _fit_in_place(
        self, ref: np.ndarray, sec: np.ndarray, w: int, s: int, r: int, rows: int, cols: int, *, wanted: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Phase-plane fit of the ``wanted`` windows cut at the same place in both images (small remaining
        shifts); NaN elsewhere (windows the integer search already failed cost nothing).

        Windows without no-data in either image take a lean path; the others
        are demeaned over their jointly valid pixels.
        """
        taper = _taper(w, float(self.taper_fraction))
        ly, lx = (rows - 1) * s + w, (cols - 1) * s + w
        invalid = ~(np.isfinite(ref[r : r + ly, r : r + lx]) & np.isfinite(sec[r : r + ly, r : r + lx]))
        dirty = (window_sums(invalid.astype(np.float32), window_px=w, step_px=s, rows=rows, cols=cols) > 0.5).ravel()
        out = [np.full(rows * cols, np.nan, np.float32) for _ in range(3)]
        workers = self.fft_workers
        usable = _frequency_grid(w)[2]
        ky = (2 * np.pi * sfft.fftfreq(w)).astype(np.float64)
        kx = (2 * np.pi * sfft.rfftfreq(w)).astype(np.float64)
        # two float32 windows and two complex64 half-spectra per window: about 16 bytes per pixel
        batch = max(1, min(self.batch_windows, self.batch_bytes // (16 * w * w)))
        min_count = self.min_valid_fraction * w * w
        wanted = np.asarray(wanted, bool).ravel()
        for has_nan, cells in ((False, np.flatnonzero(wanted & ~dirty)), (True, np.flatnonzero(wanted & dirty))):
            for start in range(0, cells.size, batch):
                idx = cells[start : start + batch]
                ii, jj = np.divmod(idx, cols)
                y0, x0 = r + ii * s, r + jj * s
                m = len(idx)
                rp, sp = np.empty((m, w, w), np.float32), np.empty((m, w, w), np.float32)
                if has_nan:
                    ok = np.empty(m, bool)
                    _cut_joint(ref, sec, y0, x0, w, taper, min_count, rp, sp, ok)
                else:
                    ok_r, ok_s = np.empty(m, bool), np.empty(m, bool)
                    _cut_clean(ref, y0, x0, w, taper, rp, ok_r)
                    _cut_clean(sec, y0, x0, w, taper, sp, ok_s)
                    ok = ok_r & ok_s
                fr = sfft.rfft2(rp, workers=workers).reshape(m, -1)
                fs = sfft.rfft2(sp, workers=workers).reshape(m, -1)
                fx, fy, coh = (np.empty(m, np.float32) for _ in range(3))
                _fit_kernel(fr, fs, usable, kx, ky, float(self.mask_factor), fx, fy, coh)
                out[0][idx] = np.where(ok, fx, np.nan)
                out[1][idx] = np.where(ok, fy, np.nan)
                out[2][idx] = np.where(ok, coh, np.nan)
        return out[0].reshape(rows, cols), out[1].reshape(rows, cols), out[2].reshape(rows, cols)
