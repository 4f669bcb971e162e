"""Resampling helpers: window-centre fields to pixels, and warping an image by a field."""

from __future__ import annotations

import math

import cv2
import numba
import numpy as np


def field_to_pixels(
    field: np.ndarray, shape: tuple[int, int], *, origin_px: float, step_px: int, window_px: int
) -> np.ndarray:
    """Bilinear interpolation of a window-centre field onto every pixel of an array of ``shape``.

    Window ``k`` of the field starts at pixel ``origin_px + k * step_px``; its
    centre, in pixel-index coordinates, is ``origin_px + k * step_px + (window_px - 1) / 2``.
    Beyond the outermost centres the field is extended by its edge values.
    """
    rows, cols = shape
    centre = origin_px + (window_px - 1) / 2.0
    fy = ((np.arange(rows, dtype=np.float32) - centre) / step_px).astype(np.float32)
    fx = ((np.arange(cols, dtype=np.float32) - centre) / step_px).astype(np.float32)
    map_x = np.broadcast_to(fx[None, :], (rows, cols)).astype(np.float32)
    map_y = np.broadcast_to(fy[:, None], (rows, cols)).astype(np.float32)
    return cv2.remap(
        np.ascontiguousarray(field, dtype=np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _mirror(i: int, n: int) -> int:  # pragma: no cover
    """Index ``i`` reflected about the first and last samples (scipy.ndimage's ``mirror`` boundary)."""
    if n == 1:
        return 0
    period = 2 * n - 2
    i = abs(i) % period
    return period - i if i >= n else i


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _bspline_weights(t: float, out: np.ndarray) -> None:  # pragma: no cover
    """Cubic B-spline weights of the four samples ``floor(x) - 1 .. floor(x) + 2`` at ``t = x - floor(x)``."""
    u = 1.0 - t
    t2 = t * t
    out[0] = u * u * u / 6.0
    out[1] = (4.0 - 6.0 * t2 + 3.0 * t2 * t) / 6.0
    out[2] = (1.0 + 3.0 * t + 3.0 * t2 - 3.0 * t2 * t) / 6.0
    out[3] = t2 * t / 6.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _bspline_sample(coefficients: np.ndarray, dx_px: np.ndarray, dy_px: np.ndarray,
                    out: np.ndarray) -> None:  # pragma: no cover
    """``out[y, x]`` = the cubic B-spline of ``coefficients`` at ``(y + dy[y, x], x + dx[y, x])``; NaN outside.

    The sum of :func:`scipy.ndimage.map_coordinates` (``order=3``,
    ``prefilter=False``, ``mode="mirror"``) at those points, in float64; the
    interior takes the four-by-four neighbourhood without index folding.
    """
    rows, cols = coefficients.shape
    wy = np.empty(4)
    wx = np.empty(4)
    ix = np.empty(4, np.int64)
    for y in range(rows):
        for x in range(cols):
            py = y + np.float64(dy_px[y, x])
            px = x + np.float64(dx_px[y, x])
            if not (py >= 0.0 and py <= rows - 1 and px >= 0.0 and px <= cols - 1):
                out[y, x] = np.nan
                continue
            fy = math.floor(py)
            fx = math.floor(px)
            _bspline_weights(py - fy, wy)
            _bspline_weights(px - fx, wx)
            y0 = int(fy) - 1
            x0 = int(fx) - 1
            acc = 0.0
            if y0 >= 0 and y0 + 3 < rows and x0 >= 0 and x0 + 3 < cols:
                for a in range(4):
                    row = coefficients[y0 + a]
                    acc += wy[a] * (wx[0] * row[x0] + wx[1] * row[x0 + 1] + wx[2] * row[x0 + 2]
                                    + wx[3] * row[x0 + 3])
            else:
                for b in range(4):
                    ix[b] = _mirror(x0 + b, cols)
                for a in range(4):
                    row = coefficients[_mirror(y0 + a, rows)]
                    acc += wy[a] * (wx[0] * row[ix[0]] + wx[1] * row[ix[1]] + wx[2] * row[ix[2]]
                                    + wx[3] * row[ix[3]])
            out[y, x] = acc


class SplineImage:
    """An image prepared once for repeated warping: cubic B-spline coefficients and its valid mask.

    Cubic B-spline interpolation (Unser 1999, IEEE Signal Process. Mag. 16(6))
    is used because its phase error is far smaller than OpenCV's bicubic
    convolution kernel, which biases sub-pixel shifts by a few hundredths of a
    pixel. No-data pixels are filled with the mean of the valid ones before
    the spline prefilter, and samples near them are set back to NaN.
    """

    def __init__(self, image: np.ndarray) -> None:
        from scipy import ndimage

        image = np.asarray(image, dtype=np.float32)
        self.valid = np.isfinite(image)
        fill = float(image[self.valid].mean()) if self.valid.any() else 0.0
        filled = np.where(self.valid, image, fill).astype(np.float64)
        self.coefficients = ndimage.spline_filter(filled, order=3, mode="mirror")
        self.shape = image.shape

    def warp(self, dx_px: np.ndarray, dy_px: np.ndarray) -> np.ndarray:
        """``out[y, x] = image[y + dy[y, x], x + dx[y, x]]``; NaN outside the image or near no-data."""
        out = np.empty(self.shape, np.float32)
        _bspline_sample(self.coefficients, np.broadcast_to(dx_px, self.shape), np.broadcast_to(dy_px, self.shape), out)
        if not self.valid.all():
            rows, cols = self.shape
            map_x = np.arange(cols, dtype=np.float32)[None, :] + dx_px
            map_y = np.arange(rows, dtype=np.float32)[:, None] + dy_px
            bad = cv2.remap((~self.valid).astype(np.float32), map_x.astype(np.float32), map_y.astype(np.float32),
                            cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=1.0)
            bad = cv2.dilate((bad > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            out[bad] = np.nan
        return out


def warp_by_field(image: np.ndarray, dx_px: np.ndarray, dy_px: np.ndarray) -> np.ndarray:
    """``out[y, x] = image[y + dy[y, x], x + dx[y, x]]`` by cubic B-spline interpolation.

    Pulling the secondary back by the current offset estimate leaves only a
    small remainder to measure, which removes most of the sub-pixel estimator's
    pixel-locking bias (iterative image deformation, Scarano 2002, Meas. Sci.
    Technol. 13:R1). NaN outside the image and next to no-data pixels.
    """
    return SplineImage(image).warp(dx_px, dy_px)


def smooth_prior_warp(
    spline: SplineImage, dx_px: np.ndarray, dy_px: np.ndarray, *, window_px: int, step_px: int, origin_px: int,
    reject_outliers: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The secondary warped by a smooth version of the current per-window offsets.

    Returns ``(prior_dx, prior_dy, warped)`` with the priors on the window grid.
    The offsets are cleaned (normalized median test when ``reject_outliers``),
    gap-filled and Gaussian-smoothed over about a window, so the next
    measurement sees the window average of (truth - warp) instead of chasing
    each window's noise.
    """
    import cv2

    from gvfuse.tracking.outliers import fill_nearest, normalized_median_test

    prior_x, prior_y = dx_px.copy(), dy_px.copy()
    if reject_outliers:
        bad = normalized_median_test(prior_x, prior_y)
        prior_x[bad] = np.nan
        prior_y[bad] = np.nan
    prior_x, prior_y = fill_nearest(prior_x), fill_nearest(prior_y)
    sigma = max(window_px / (4.0 * step_px), 0.5)
    prior_x = cv2.GaussianBlur(prior_x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    prior_y = cv2.GaussianBlur(prior_y, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    kw = {"origin_px": origin_px, "step_px": step_px, "window_px": window_px}
    shape = spline.shape
    warped = spline.warp(field_to_pixels(prior_x, shape, **kw), field_to_pixels(prior_y, shape, **kw))
    return prior_x, prior_y, warped
