"""Reading one band onto a target grid: a windowed read, then ``rasterio.warp.reproject``.

Every reader loads its tracking band through :func:`load_band`. Given a target
:class:`~gvfuse.model.Grid`, only the source window that covers the grid (plus
``margin_px`` pixels for the resampling kernel) is read, so a 3 km tracking
tile of a 185 km Landsat scene reads a few hundred kilobytes, not the scene.
Without a grid the band is read on its native grid.

Conventions (what trackers may rely on): float32, NaN wherever there is no
usable data — the provider's fill value, outside the source, and every pixel a
cloud-mask band flags. Digital numbers are turned into physical values by the
caller's ``dn_to_value`` (e.g. the Sentinel-2 radiometric offset).

Radar images in slant/ground-range geometry carry no affine transform, only
ground control points (GCPs); :func:`load_gcp_band` locates the window through
GDAL's GCP transformer and warps with the GCPs, shifted to the window.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import attrs
import numpy as np
import rasterio
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.transform import GCPTransformer
from rasterio.warp import reproject
from rasterio.warp import transform as transform_points
from rasterio.windows import Window, from_bounds

from gvfuse.errors import InputError
from gvfuse.formats.fill import find_fill
from gvfuse.model import Grid, Image
from gvfuse.product import memory_shortfall

#: Extra source pixels read around the window: covers the cubic kernel (2 px) and rounding.
DEFAULT_MARGIN_PX = 4

#: Bytes a read holds per source pixel besides the pixel's own value: the nodata mask (``masked=True``), its
#: copy and the float32 values (:func:`_as_float`).
READ_BYTES_PER_PIXEL = 6


@attrs.frozen
class MaskBand:
    """A band whose values flag unusable pixels (clouds, shadows, fill).

    ``is_unusable`` maps the band's raw values to a boolean array (True = set the
    image to NaN). The mask is warped with nearest-neighbour resampling, so its
    classes are never blended; where the mask has no coverage, pixels count as
    unusable.
    """

    gdal_path: str
    is_unusable: Callable[[np.ndarray], np.ndarray]
    band: int = 1


@contextlib.contextmanager
def _open(gdal_path: str) -> Iterator[rasterio.DatasetReader]:
    """The raster, open; failing to open it, or to read its pixels later (a file cut short behind a whole
    header), is an :class:`InputError` naming it."""
    try:
        src = rasterio.open(gdal_path)
    except RasterioIOError as exc:
        raise InputError(f"cannot open raster: {exc}", source=gdal_path, field="band") from exc
    with src:
        try:
            yield src
        except RasterioIOError as exc:
            raise InputError(f"cannot read its pixels (truncated or corrupt file): {str(exc).splitlines()[0]}",
                             source=gdal_path, field="band") from exc


def _check_read_fits(src: rasterio.DatasetReader, band: int, window: Window | None, grid: Grid | None,
                     label: str) -> None:
    """Refuse, in one line naming the file and its size, a read that cannot fit in this machine's memory.

    A sparse GeoTIFF of 200000 x 200000 pixels is a few megabytes on disk and 37 GiB as uint8 in memory
    (about 260 GiB with its mask and float32 values): found out before reading, not by an allocation error.
    """
    rows, cols = (src.height, src.width) if window is None else (int(window.height), int(window.width))
    dtype = src.dtypes[band - 1]
    needed = rows * cols * (np.dtype(dtype).itemsize + READ_BYTES_PER_PIXEL)
    if grid is not None:
        needed += grid.rows * grid.cols * 4  # the float32 warp target
    problem = memory_shortfall(needed, f"its {rows} x {cols} px {dtype} band", "to read")
    if problem is not None:
        raise InputError(problem, source=label, field="band")


def _grid_edge_points(grid: Grid, points_per_edge: int = 21) -> tuple[np.ndarray, np.ndarray]:
    """Map coordinates of points along the grid's outer edges (so curved edges in another CRS are covered)."""
    steps = np.linspace(0.0, 1.0, points_per_edge)
    cols = np.concatenate([steps * grid.cols, np.full_like(steps, grid.cols), steps[::-1] * grid.cols,
                           np.zeros_like(steps)])
    rows = np.concatenate([np.zeros_like(steps), steps * grid.rows, np.full_like(steps, grid.rows),
                           steps[::-1] * grid.rows])
    xs, ys = grid.transform @ (cols, rows)  # type: ignore[operator]  # affine's stubs take no arrays
    return np.asarray(xs), np.asarray(ys)


def _clip_window(col_min: float, row_min: float, col_max: float, row_max: float,
                 width: int, height: int, margin_px: int) -> Window | None:
    col_off = max(0, math.floor(col_min) - margin_px)
    row_off = max(0, math.floor(row_min) - margin_px)
    col_end = min(width, math.ceil(col_max) + margin_px)
    row_end = min(height, math.ceil(row_max) + margin_px)
    if col_end <= col_off or row_end <= row_off:
        return None
    return Window(col_off, row_off, col_end - col_off, row_end - row_off)


def window_for_grid(src_transform: Affine, src_crs: CRS, src_shape: tuple[int, int], grid: Grid,
                    margin_px: int = DEFAULT_MARGIN_PX) -> Window | None:
    """The source window (whole pixels, clipped to the raster) covering ``grid``, or None if disjoint."""
    xs, ys = _grid_edge_points(grid)
    if CRS.from_user_input(src_crs) != grid.crs:
        xs, ys = transform_points(grid.crs, src_crs, xs, ys)
    bounds = (min(xs), min(ys), max(xs), max(ys))
    approx = from_bounds(*bounds, transform=src_transform)
    return _clip_window(approx.col_off, approx.row_off, approx.col_off + approx.width,
                        approx.row_off + approx.height, src_shape[1], src_shape[0], margin_px)


def _as_float(data: np.ma.MaskedArray, nodata_values: Sequence[float],
              dn_to_value: Callable[[np.ndarray], np.ndarray] | None) -> np.ndarray:
    raw = np.ma.getdata(data)
    invalid = np.ma.getmaskarray(data).copy()
    for value in nodata_values:
        invalid |= raw == value
    values = raw.astype("float32")
    if dn_to_value is not None:
        values = np.asarray(dn_to_value(values), dtype="float32")
    values[invalid] = np.nan
    return values


def _warp(values: np.ndarray, src_transform: Affine | None, src_crs: CRS, grid: Grid,
          resampling: Resampling, gcps: Sequence[GroundControlPoint] | None = None) -> np.ndarray:
    out = np.full(grid.shape, np.nan, dtype="float32")
    reproject(
        source=values, destination=out, src_transform=src_transform, gcps=gcps, src_crs=src_crs,
        src_nodata=np.nan, dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan,
        resampling=resampling,
    )
    return out


def _apply_mask(pixels: np.ndarray, mask: MaskBand, grid: Grid) -> None:
    """Set ``pixels`` (on ``grid``) to NaN where the mask band flags them, reading only its window."""
    with _open(mask.gdal_path) as src:
        window = window_for_grid(src.transform, src.crs, (src.height, src.width), grid)
        if window is None:
            pixels[...] = np.nan
            return
        _check_read_fits(src, mask.band, window, grid, mask.gdal_path)
        raw = src.read(mask.band, window=window)
        unusable = np.asarray(mask.is_unusable(raw), dtype="uint8")
        warped = np.full(grid.shape, 1, dtype="uint8")  # no mask coverage = unusable
        reproject(
            source=unusable, destination=warped, src_transform=src.window_transform(window), src_crs=src.crs,
            dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=1, resampling=Resampling.nearest,
        )
    pixels[warped.astype(bool)] = np.nan


def load_band(
    gdal_path: str,
    grid: Grid | None = None,
    *,
    band: int = 1,
    nodata_values: Sequence[float] = (),
    dn_to_value: Callable[[np.ndarray], np.ndarray] | None = None,
    mask: MaskBand | None = None,
    resampling: Resampling = Resampling.bilinear,
    margin_px: int = DEFAULT_MARGIN_PX,
    source: str = "",
    detect_fill: bool = False,
) -> Image:
    """One band of a map-georeferenced raster as float32 with NaN for no data, on ``grid`` or natively.

    ``nodata_values`` adds fill values to the file's own nodata/mask;
    ``detect_fill`` also takes a fill that the file's tag does not declare from
    the data (:func:`gvfuse.formats.fill.find_fill`; for plain GeoTIFFs, whose
    tags are often wrong), saying so in the image's ``notes``;
    ``dn_to_value`` converts digital numbers before resampling (so the offset is
    applied to real values, never to NaN); ``mask`` is applied on the target grid.
    A grid disjoint from the raster gives an all-NaN image (nothing is read).
    """
    label = source or gdal_path
    with _open(gdal_path) as src:
        if src.crs is None:
            raise InputError("raster has no CRS (not map-georeferenced)", source=label, field="crs")
        if not 1 <= band <= src.count:
            raise InputError(f"has {src.count} band(s), band {band} requested", source=label, field="band")
        notes: tuple[str, ...] = ()
        if detect_fill and (fill := find_fill(src)) is not None:
            nodata_values, notes = (*nodata_values, fill.value), (fill.describe(),)
        if grid is None:
            _check_read_fits(src, band, None, None, label)
            grid = Grid(src.crs, src.transform, (src.height, src.width))
            pixels = _as_float(src.read(band, masked=True), nodata_values, dn_to_value)
        else:
            window = window_for_grid(src.transform, src.crs, (src.height, src.width), grid, margin_px)
            if window is None:
                return Image(np.full(grid.shape, np.nan, dtype="float32"), grid, label)
            _check_read_fits(src, band, window, grid, label)
            values = _as_float(src.read(band, window=window, masked=True), nodata_values, dn_to_value)
            pixels = _warp(values, src.window_transform(window), src.crs, grid, resampling)
    if mask is not None:
        _apply_mask(pixels, mask, grid)
    return Image(pixels, grid, label, notes)


def load_plain_raster(path: str | Path, grid: Grid | None = None, *, band: int | None = None) -> Image:
    """The tracking band of a plain raster (a GeoTIFF without a sensor format): ``band`` (1-based) or band 1.

    The fill is taken from the data when the tag does not declare it
    (``detect_fill``); a raster of several bands read without a chosen band says
    which one was tracked in the image's ``notes`` (a 3-band RGB crop is
    otherwise tracked on red without a word).
    """
    with _open(str(path)) as src:
        count = src.count
    image = load_band(str(path), grid, band=int(band or 1), source=str(path), detect_fill=True)
    if band is None and count > 1:
        chosen = f"{count} bands: band 1 is tracked (choose another with --band)"
        image = attrs.evolve(image, notes=(chosen, *image.notes))
    return image


def _shift_gcps(gcps: Sequence[GroundControlPoint], window: Window) -> list[GroundControlPoint]:
    return [GroundControlPoint(row=g.row - window.row_off, col=g.col - window.col_off, x=g.x, y=g.y, z=g.z,
                               id=g.id, info=g.info) for g in gcps]


def gcp_window_for_grid(gcps: Sequence[GroundControlPoint], gcp_crs: CRS, src_shape: tuple[int, int],
                        grid: Grid, margin_px: int) -> Window | None:
    """The image window of a GCP-georeferenced raster that covers ``grid``, or None if disjoint.

    The grid's edge points go to the GCPs' CRS, then to image (row, col) through
    GDAL's GCP transformer (a polynomial fitted to the GCPs). The polynomial is
    an approximation, hence the margin: keep it generous (tens of pixels).
    """
    xs, ys = _grid_edge_points(grid)
    xs, ys = transform_points(grid.crs, gcp_crs, xs, ys)
    with GCPTransformer(list(gcps)) as transformer:
        rows, cols = transformer.rowcol(xs, ys, op=lambda v: v)
    rows, cols = np.asarray(rows, dtype=float), np.asarray(cols, dtype=float)
    return _clip_window(cols.min(), rows.min(), cols.max(), rows.max(), src_shape[1], src_shape[0], margin_px)


def load_gcp_band(
    gdal_path: str,
    grid: Grid,
    *,
    band: int = 1,
    nodata_values: Sequence[float] = (0,),
    dn_to_value: Callable[[np.ndarray], np.ndarray] | None = None,
    resampling: Resampling = Resampling.bilinear,
    margin_px: int = 32,
    source: str = "",
) -> Image:
    """One band of a raster georeferenced only by GCPs (Sentinel-1 GRD), warped onto ``grid``.

    Only the image window covering the grid (plus ``margin_px``) is read; the
    GCPs are shifted into the window's pixel frame and the warp uses them.
    Sentinel-1 GRD marks no-data border pixels with DN 0, hence the default.
    """
    label = source or gdal_path
    with _open(gdal_path) as src:
        gcps, gcp_crs = src.gcps
        if not gcps or gcp_crs is None:
            raise InputError("raster has no ground control points", source=label, field="gcps")
        window = gcp_window_for_grid(gcps, gcp_crs, (src.height, src.width), grid, margin_px)
        if window is None:
            return Image(np.full(grid.shape, np.nan, dtype="float32"), grid, label)
        _check_read_fits(src, band, window, grid, label)
        values = _as_float(src.read(band, window=window, masked=True), nodata_values, dn_to_value)
    pixels = _warp(values, None, gcp_crs, grid, resampling, gcps=_shift_gcps(gcps, window))
    return Image(pixels, grid, label)


def default_grid_for_gcps(gdal_path: str, resolution_m: float, crs: CRS | str | None = None) -> Grid:
    """A north-up map grid covering a GCP-georeferenced raster: the UTM zone of its centre by default."""
    from rasterio.warp import calculate_default_transform

    with _open(gdal_path) as src:
        gcps, gcp_crs = src.gcps
        if not gcps or gcp_crs is None:
            raise InputError("raster has no ground control points", source=gdal_path, field="gcps")
        if crs is None:
            lons, lats = transform_points(gcp_crs, "EPSG:4326", [g.x for g in gcps], [g.y for g in gcps])
            crs = utm_crs_for(float(np.mean(lons)), float(np.mean(lats)))
        transform, width, height = calculate_default_transform(
            gcp_crs, crs, src.width, src.height, gcps=gcps, resolution=resolution_m)
    return Grid(crs, transform, (height, width))


def utm_crs_for(lon_deg: float, lat_deg: float) -> CRS:
    """The WGS 84 / UTM zone CRS containing a point (north: EPSG:326zz, south: EPSG:327zz)."""
    zone = min(60, max(1, int((lon_deg + 180.0) // 6.0) + 1))
    return CRS.from_epsg((32600 if lat_deg >= 0 else 32700) + zone)
