"""Temporal closure of offset fields on real images, where no truth exists.

For three dates A < B < C on one grid, a point's displacement A->C equals its
displacement A->B plus the displacement B->C *at the point's position in B*:
``d_AC(p) = d_AB(p) + d_BC(p + d_AB(p))``. The closure error
``d_AC - d_AB - d_BC`` is zero for a perfect tracker, so its size over the
cells valid in all three fields measures a tracker's error on real texture
(with a geolocation shift per date, the three pairs' shifts cancel in the sum:
closure does not see them, only what a stable-ground correction adds). Used
on Sentinel-2 glacier crops by ``benchmarks/bench_real.py`` and
``tests/tracking/test_real_closure.py`` (issue 15's measure). Checking
displacements through a redundant network of image pairs, rather than one pair
alone, is what Altena & Kääb (2017, Remote Sens. 9(3):300) do to separate ice
flow from orthorectification offsets; the triplet closure here is its simplest case.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
from scipy import ndimage

from gvfuse.model import Image


@attrs.frozen
class ClosureFigures:
    """Coverage of the area to score and the closure error's size (pixels) where all three fields have a value."""

    coverage: float  # share of the area's cells valid in all three fields
    median_px: float  # median |d_AC - d_AB - d_BC|
    rms_px: float  # root mean square of |d_AC - d_AB - d_BC|
    cells: int  # cells of the area valid in all three


def read_crop(path: str | Path, band: int = 1) -> tuple[Image, np.ndarray]:
    """One band of a glacier crop as an :class:`Image` (NaN outside the crop), and the crop mask.

    The crop is where the pixels are not the fill: such crops fill outside the
    outline with 0 whatever their no-data tag says (the Rhone crops tag 65535),
    which :func:`gvfuse.formats.loading.load_plain_raster` finds in the data.
    """
    from gvfuse.formats.loading import load_plain_raster

    image = load_plain_raster(path, band=band)
    return image, np.isfinite(image.pixels)


def cells_inside(mask: np.ndarray, out_shape: tuple[int, int], *, window_px: int, step_px: int) -> np.ndarray:
    """Output cells of the window-centre grid whose centre pixel lies in ``mask``."""
    rows, cols = np.indices(out_shape)
    r = np.clip(rows * step_px + window_px // 2, 0, mask.shape[0] - 1)
    c = np.clip(cols * step_px + window_px // 2, 0, mask.shape[1] - 1)
    return np.asarray(mask[r, c], bool)


def closure(
    ab: tuple[np.ndarray, np.ndarray],
    bc: tuple[np.ndarray, np.ndarray],
    ac: tuple[np.ndarray, np.ndarray],
    area: np.ndarray,
    *,
    step_px: int,
) -> ClosureFigures:
    """Closure figures of three ``(dx_px, dy_px)`` fields on one window-centre grid with spacing ``step_px``.

    ``d_BC`` is interpolated (bilinearly, NaN if any neighbour is NaN) at each
    cell moved by ``d_AB``. ``area``: the cells to score (e.g. the glacier).
    """
    (abx, aby), (bcx, bcy), (acx, acy) = ab, bc, ac
    rows, cols = np.indices(abx.shape, dtype=np.float64)
    at_r, at_c = rows + aby / step_px, cols + abx / step_px
    moved = np.isfinite(at_r) & np.isfinite(at_c)
    bx = np.full(abx.shape, np.nan)
    by = np.full(abx.shape, np.nan)
    for band, out in ((bcx, bx), (bcy, by)):
        out[moved] = ndimage.map_coordinates(np.asarray(band, np.float64), [at_r[moved], at_c[moved]], order=1,
                                             mode="constant", cval=np.nan)
    ex, ey = acx - abx - bx, acy - aby - by
    valid = np.asarray(area, bool) & np.isfinite(ex) & np.isfinite(ey)
    size = np.hypot(ex[valid], ey[valid])
    total = int(np.asarray(area, bool).sum())
    if size.size == 0:
        return ClosureFigures(0.0, float("nan"), float("nan"), 0)
    return ClosureFigures(coverage=float(size.size / max(total, 1)), median_px=float(np.median(size)),
                          rms_px=float(np.sqrt(np.mean(size**2))), cells=int(size.size))
