"""Sub-pixel image warping by a displacement field, and sampling fields at arbitrary positions.

The secondary image shows each reference surface point ``p`` at ``q = p + d(p)``,
so ``sec(q) = ref(p)``: a *backward* warp needs ``p = q - d(p)`` at every output
pixel ``q``. It is found by the fixed-point iteration ``p <- q - d(p)`` (Chen et
al. 2008, "A simple fixed-point approach to invert a deformation field",
Med. Phys. 35(1), 81-88), which converges wherever the field is contracting
(``|grad d| < 1``, i.e. the motion does not fold the surface over itself). The
reference is then sampled at ``p`` by cubic B-spline interpolation (Unser 1999,
"Splines: a perfect fit for signal and image processing", IEEE Signal Process.
Mag. 16(6), 22-38), which reproduces the samples exactly at whole-pixel
positions and whose error falls off with the fourth power of frequency, so
band-limited content well below Nyquist is resampled almost exactly.

Array positions here are *index* coordinates (pixel ``i``'s centre at ``i``);
public functions that take positions say which convention they use.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from gvfuse.testing.texture import block_mean

SETTLE_BLOCK = 16


def _settled_blocks(
    dx_px: np.ndarray, dy_px: np.ndarray, shift_px: tuple[float, float], block: int = SETTLE_BLOCK
) -> np.ndarray:
    """Per ``block x block`` tile: True where the field is constant over every position the
    inversion of any pixel of the tile can reach, so ``p = q - d(q)`` holds there exactly."""
    # An upper bound of |d + shift| from four reductions, without full-size temporaries.
    reach = (
        max(abs(float(dx_px.max())), abs(float(dx_px.min()))) + abs(shift_px[0])
        + max(abs(float(dy_px.max())), abs(float(dy_px.min()))) + abs(shift_px[1])
        + 2.0
    )
    starts = [np.arange(0, n, block) for n in dx_px.shape]
    radius = int(np.ceil(reach / block))
    size = 2 * radius + 1
    settled = np.ones((len(starts[0]), len(starts[1])), dtype=bool)
    for field in (dx_px, dy_px):
        high = np.maximum.reduceat(np.maximum.reduceat(field, starts[0], axis=0), starts[1], axis=1)
        low = np.minimum.reduceat(np.minimum.reduceat(field, starts[0], axis=0), starts[1], axis=1)
        high = ndimage.maximum_filter(high, size=size, mode="nearest")
        low = ndimage.minimum_filter(low, size=size, mode="nearest")
        settled &= high == low
    return settled


def _solve_positions(
    top: int,
    bottom: int,
    dx_px: np.ndarray,
    dy_px: np.ndarray,
    shift_px: tuple[float, float],
    settled: np.ndarray,
    *,
    tolerance_px: float,
    max_iterations: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Index positions ``p`` with ``p + d(p) + shift = q`` for the pixels ``q`` of rows ``[top, bottom)``.

    Returned flat (row-major), as float64 row and column index arrays.

    ``d`` between pixel centres is bilinear in the arrays. The iteration
    starts from ``d(q)``, which is the answer where the field is locally
    constant (``settled``: stable ground, uniform motion); elsewhere points
    leave it once their update falls below ``tolerance_px``.
    """
    shift_x, shift_y = shift_px
    rows = np.arange(top, bottom)
    cols = np.arange(dx_px.shape[1])
    p_row = (rows[:, None] - shift_y - dy_px[top:bottom].astype(np.float64)).ravel()
    p_col = (cols[None, :] - shift_x - dx_px[top:bottom].astype(np.float64)).ravel()
    block_settled = settled[rows // SETTLE_BLOCK][:, cols // SETTLE_BLOCK]
    active = np.flatnonzero(~block_settled)
    target_row = top + active // cols.size - shift_y
    target_col = active % cols.size - shift_x
    for _ in range(max_iterations):
        if active.size == 0:
            return p_row, p_col
        at = np.stack([p_row[active], p_col[active]])
        new_row = target_row - ndimage.map_coordinates(dy_px, at, order=1, mode="nearest")
        new_col = target_col - ndimage.map_coordinates(dx_px, at, order=1, mode="nearest")
        moved = np.maximum(np.abs(new_row - at[0]), np.abs(new_col - at[1]))
        p_row[active], p_col[active] = new_row, new_col
        going = moved > tolerance_px
        active, target_row, target_col = active[going], target_row[going], target_col[going]
    raise ValueError(
        f"displacement field is not invertible at {active.size} pixel(s) (the fixed-point inversion did not "
        f"converge in {max_iterations} iterations): its gradient must stay below 1 (no fold-over)"
    )


def warp(
    image: np.ndarray,
    dx_px: np.ndarray,
    dy_px: np.ndarray,
    *,
    shift_px: tuple[float, float] = (0.0, 0.0),
    integrate_blocks: int = 1,
    order: int = 3,
    mode: str = "reflect",
    tolerance_px: float = 1e-4,
    max_iterations: int = 50,
    chunk_rows: int = 256,
) -> np.ndarray:
    """The secondary image: ``out(q) = image(p)`` where ``q = p + d(p) + shift_px``.

    ``image`` is 2-D or a ``(bands, rows, cols)`` stack (bands share the
    positions); it must be finite. ``dx_px``/``dy_px`` are on the image grid,
    in its pixels (columns/rows). ``shift_px = (dx, dy)`` is a constant added
    to the field (a geolocation error). ``integrate_blocks = k`` returns the
    output averaged over ``k x k`` blocks (a fine grid integrated to sensor
    pixels) without holding the full fine output. ``order = 3`` is cubic
    B-spline interpolation; ``mode`` is the scipy boundary mode (``"reflect"``
    mirrors about the outer pixel edge, matching pixels as areas).

    Between pixel centres the field is taken as bilinear. The inversion stops
    per pixel once ``p`` moves less than ``tolerance_px``; a field that folds
    the surface over (gradient >= 1) does not converge and raises ValueError.
    Work is done in strips of ``chunk_rows`` rows, so memory beyond the inputs
    and the spline coefficients stays small.
    """
    stack = np.asarray(image)
    single = stack.ndim == 2
    if single:
        stack = stack[None]
    if stack.ndim != 3 or stack.shape[1:] != np.shape(dx_px) or stack.shape[1:] != np.shape(dy_px):
        raise ValueError(f"image {np.shape(image)} and field {np.shape(dx_px)}, {np.shape(dy_px)} do not match")
    if not np.isfinite(stack).all():
        raise ValueError("image has non-finite values; spline interpolation would spread them")
    rows, cols = stack.shape[1:]
    k = int(integrate_blocks)
    if k < 1 or rows % k or cols % k:
        raise ValueError(f"integrate_blocks={integrate_blocks} must be >= 1 and divide the shape {rows, cols}")
    dx_px = np.asarray(dx_px, dtype=np.float32)
    dy_px = np.asarray(dy_px, dtype=np.float32)
    if not (np.isfinite(dx_px).all() and np.isfinite(dy_px).all()):
        raise ValueError("displacement field has non-finite values")
    # Spline coefficients once for the whole image, then interpolate strip by strip.
    coefficients = (
        [ndimage.spline_filter(band, order=order, output=np.float32, mode=mode) for band in stack]
        if order > 1
        else list(stack.astype(np.float32))
    )
    settled = _settled_blocks(dx_px, dy_px, shift_px)
    out = np.empty((stack.shape[0], rows // k, cols // k), dtype=np.float32)
    strip = max(k, chunk_rows - chunk_rows % k)
    for top in range(0, rows, strip):
        bottom = min(rows, top + strip)
        p_row, p_col = _solve_positions(
            top, bottom, dx_px, dy_px, shift_px, settled, tolerance_px=tolerance_px, max_iterations=max_iterations
        )
        at = np.stack([p_row, p_col])
        for band, coeff in enumerate(coefficients):
            values = ndimage.map_coordinates(coeff, at, order=order, mode=mode, prefilter=False, output=np.float32)
            out[band, top // k : bottom // k] = block_mean(values.reshape(bottom - top, cols), k)
    return out[0] if single else out


def sample_bilinear(field: np.ndarray, row_px: np.ndarray, col_px: np.ndarray) -> np.ndarray:
    """Bilinear sample of ``field`` at continuous pixel positions (pixel ``i`` spans ``[i, i + 1)``).

    Pixel values are taken to sit at pixel centres ``i + 0.5``; between the
    outermost centres and the image edge the edge value holds. Positions
    outside the image ``[0, rows] x [0, cols]`` give NaN; NaN pixels spread
    to the positions that use them. Returns float32 of the broadcast shape.
    """
    row_px, col_px = np.broadcast_arrays(np.asarray(row_px, dtype=np.float64), np.asarray(col_px, dtype=np.float64))
    at = np.stack([row_px.ravel() - 0.5, col_px.ravel() - 0.5])
    values = ndimage.map_coordinates(np.asarray(field, dtype=np.float64), at, order=1, mode="nearest")
    rows, cols = np.shape(field)
    outside = (row_px.ravel() < 0) | (row_px.ravel() > rows) | (col_px.ravel() < 0) | (col_px.ravel() > cols)
    values[outside] = np.nan
    return values.reshape(row_px.shape).astype(np.float32)
