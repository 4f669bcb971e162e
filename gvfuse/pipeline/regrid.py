"""Putting a pair's velocity field onto the product grid.

Each product cell gets the area-weighted mean of the vx and vy values that
cover it (never of speeds: speeds are Rician and their mean is biased upward),
the number of valid tracking points that contributed, and an error.

Error: tracking windows overlap heavily (a 32 px window at a 2 px step shares
most of its pixels with its neighbours), so the points falling in one product
cell are not independent measurements, and dividing their error by the square
root of their count would overstate the accuracy. The cell error is therefore
the root mean square of the contributing points' errors, not reduced by the
count; the count is published beside it so a user can judge.
"""

from __future__ import annotations

import numpy as np
from rasterio.warp import Resampling, reproject, transform, transform_bounds

from gvfuse.errors import GridError
from gvfuse.model import ERROR_BAND, Grid, VelocityField


def _reproject(values: np.ndarray, src: Grid, dst: Grid, resampling: Resampling) -> np.ndarray:
    out = np.full(dst.shape, np.nan, dtype="float32")
    reproject(
        np.ascontiguousarray(values, dtype="float32"), out,
        src_transform=src.transform, src_crs=src.crs, src_nodata=np.nan,
        dst_transform=dst.transform, dst_crs=dst.crs, dst_nodata=np.nan,
        resampling=resampling,
    )
    return out


def _overlaps(a: Grid, b: Grid) -> bool:
    left, bottom, right, top = transform_bounds(a.crs, b.crs, *a.bounds)
    bl, bb, br, bt = b.bounds
    return left < br and right > bl and bottom < bt and top > bb


def grid_north_rotation(src_crs: object, target: Grid, step_m: float = 10.0) -> np.ndarray:
    """Angle (radians, clockwise) from the target's grid north to the source CRS's grid north, per cell.

    Velocity components are east/north *of their CRS*; between two projections
    (say UTM 46N and 47N) grid north differs by the difference of their
    meridian convergences, a few degrees. Found numerically: each target cell
    centre is taken into the source CRS, moved ``step_m`` to grid north there,
    and brought back.
    """
    rows, cols = np.mgrid[0 : target.rows, 0 : target.cols]
    xs, ys = target.transform @ (cols.ravel() + 0.5, rows.ravel() + 0.5)
    sx, sy = transform(target.crs, src_crs, xs, ys)
    nx, ny = transform(src_crs, target.crs, sx, np.asarray(sy) + step_m)
    return np.arctan2(np.asarray(nx) - xs, np.asarray(ny) - ys).reshape(target.shape)


def regrid_field(field: VelocityField, target: Grid, *, min_points: int = 1) -> VelocityField:
    """Area-average ``field`` onto ``target``, carrying count and error.

    The result has quality bands ``count`` (valid source points per cell) and
    ``error_m_per_day`` (RMS of the points' errors when the field has that
    band, else NaN). Cells with fewer than ``min_points`` valid points are NaN.
    Finer source grids are averaged; a coarser source is sampled by its
    covering cell (GDAL's "average" resampling weights by overlap area).
    Between different CRSs the vectors are rotated into the target's grid
    north (:func:`grid_north_rotation`).
    """
    if not _overlaps(field.grid, target):
        raise GridError(f"field on {field.grid.bounds} ({field.grid.crs}) does not overlap the target grid "
                        f"{target.bounds} ({target.crs})", source="regrid")
    valid = np.isfinite(field.vx_m_per_day) & np.isfinite(field.vy_m_per_day)
    vx = np.where(valid, field.vx_m_per_day, np.nan)
    vy = np.where(valid, field.vy_m_per_day, np.nan)
    mean_vx = _reproject(vx, field.grid, target, Resampling.average)
    mean_vy = _reproject(vy, field.grid, target, Resampling.average)
    # Count = valid share of the cell x source cells per target cell (nominal areas, in CRS units); a
    # coarser source cell covering the target cell is one point (else 0.25 of a point rounds to none).
    cells_per_target = max(1.0, abs(target.transform.determinant) / abs(field.grid.transform.determinant))
    share = _reproject(np.where(valid, 1.0, 0.0), field.grid, target, Resampling.average)
    count = np.rint(np.nan_to_num(share) * cells_per_target).astype("float32")
    if ERROR_BAND in field.quality:
        err2 = np.where(valid, np.asarray(field.quality[ERROR_BAND], dtype="float64") ** 2, np.nan)
        error = np.sqrt(_reproject(err2, field.grid, target, Resampling.average))
    else:
        error = np.full(target.shape, np.nan, dtype="float32")
    if field.grid.crs != target.crs:
        theta = grid_north_rotation(field.grid.crs, target)
        mean_vx, mean_vy = (mean_vx * np.cos(theta) + mean_vy * np.sin(theta),
                            -mean_vx * np.sin(theta) + mean_vy * np.cos(theta))
    keep = (count >= min_points) & np.isfinite(mean_vx) & np.isfinite(mean_vy)
    return VelocityField(
        np.where(keep, mean_vx, np.nan).astype("float32"),
        np.where(keep, mean_vy, np.nan).astype("float32"),
        target,
        dt_days=field.dt_days,
        quality={"count": np.where(keep, count, 0).astype("float32"),
                 ERROR_BAND: np.where(keep, error, np.nan).astype("float32")},
        provenance=field.provenance,
    )
