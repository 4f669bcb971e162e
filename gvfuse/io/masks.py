"""Area masks on a velocity grid: stable (ice-free) ground and on-ice areas.

A mask comes either from a raster (any non-zero, finite value marks the area;
warped onto the target grid with nearest-neighbour resampling when its grid
differs) or from a vector file that OGR reads through pyogrio (shapefile,
GeoPackage, GeoJSON, ...). Polygons are reprojected to the grid's CRS and
burnt with **pixel-centre semantics**: a cell belongs to the area when its
centre lies inside a polygon (``rasterio.features.rasterize`` with
``all_touched=False``). This is also what ``rasterio.mask.mask`` does by
default, hence what GLAFT (Zheng et al. 2023, The Cryosphere 17:4063) uses to
select its static-terrain and on-ice pixels.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import rasterio
import rasterio.features
import rasterio.warp
from rasterio._err import CPLE_BaseError  # GDAL/PROJ errors (rasterio.errors does not export their base)
from rasterio.enums import Resampling
from rasterio.errors import CRSError

from gvfuse.errors import InputError
from gvfuse.io.raster import open_raster
from gvfuse.model import Grid

#: File suffixes read as rasters; anything else is tried as a vector file.
RASTER_SUFFIXES = frozenset({".tif", ".tiff", ".vrt", ".img", ".nc", ".jp2"})

#: The files beside a ``.shp`` that OGR reads with it: the record index, the attributes, the CRS and the
#: attributes' encoding. A changed ``.prj`` moves every polygon without touching the ``.shp``.
SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj", ".cpg")


def mask_files(path: str | os.PathLike[str]) -> list[Path]:
    """Every file a mask is read from: the file itself, and for a shapefile its sidecars that exist.

    Sidecars are matched by stem, with the suffix in the case of the ``.shp``'s or the other case
    (``AREA.SHP`` with ``AREA.PRJ``), as OGR looks for them. What the pair cache fingerprints a mask by.
    """
    path = Path(path)
    files = [path]
    if path.suffix.lower() == ".shp":
        for suffix in SHAPEFILE_SIDECARS:
            for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
                if candidate.is_file() and candidate not in files:
                    files.append(candidate)
                    break
    return files


def _boxes_overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def read_polygons(path: str | os.PathLike[str], crs: object, *,
                  bbox: tuple[float, float, float, float] | None = None) -> list[dict]:
    """The polygons of a vector file as GeoJSON-like mappings, reprojected to ``crs``.

    Non-polygonal and empty geometries are dropped. A file without a CRS is
    taken to be in ``crs`` already. ``bbox`` (in the file's CRS): only the
    features meeting it, through the layer's spatial index where the format
    has one; none there is then an empty list, not an error.
    """
    import pyogrio.raw
    import shapely

    path = Path(path)
    try:
        meta, _fids, wkb, _fields = pyogrio.raw.read(path, read_geometry=True, columns=[], bbox=bbox)
    except Exception as exc:  # pyogrio raises DataSourceError, DataLayerError, ...
        raise InputError(f"cannot read vector mask: {exc}", source=path) from exc
    geoms = [g for g in shapely.from_wkb(wkb) if g is not None and not g.is_empty]
    polygons = [g for g in geoms if g.geom_type in ("Polygon", "MultiPolygon")]
    if not polygons:
        if bbox is not None:
            return []
        raise InputError("vector mask has no polygon", source=path, field="geometry")
    shapes = [shapely.geometry.mapping(g) for g in polygons]
    source_crs = meta.get("crs")
    if source_crs:
        try:
            src = rasterio.crs.CRS.from_user_input(source_crs)
            dst = rasterio.crs.CRS.from_user_input(crs)
            if src != dst:
                shapes = [rasterio.warp.transform_geom(src, dst, s) for s in shapes]
        except (CPLE_BaseError, CRSError) as exc:  # PROJ: a latitude of 95 degrees, a CRS it does not know
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputError(f"its polygons cannot be reprojected onto the velocity grid ({reason}): are their "
                             "coordinates within the range of the file's CRS?", source=path, field="crs") from None
    return shapes


#: Geometry types of a layer that holds no polygon (``pyogrio.read_info``'s names, with or without " Z").
NOT_POLYGONAL = frozenset({"Point", "MultiPoint", "LineString", "MultiLineString", "LinearRing"})


def _vector_area(path: Path, grid: Grid) -> tuple[np.ndarray, bool]:
    """The cells of ``grid`` inside a vector file's polygons, and whether the layer's extent overlaps the grid.

    Only the polygons near the grid are read and reprojected: a glacier inventory's region file (RGI) holds
    tens of thousands of outlines, and reading them all took 17 s for every pair of a run (50 000 polygons).
    """
    import pyogrio

    try:
        info = pyogrio.read_info(path)
    except Exception as exc:  # pyogrio raises DataSourceError, DataLayerError, ...
        raise InputError(f"cannot read vector mask: {exc}", source=path) from exc
    geometry_type = str(info.get("geometry_type", "")).removesuffix(" Z")
    if info.get("features") == 0 or geometry_type in NOT_POLYGONAL:
        raise InputError("vector mask has no polygon", source=path, field="geometry")
    layer_crs = info.get("crs") or grid.crs
    bbox: tuple[float, float, float, float] | None = None
    total = info.get("total_bounds")
    # Only a layer known to hold polygons, with a known extent, is read near the grid: of a mixed ("Unknown")
    # layer, an empty read could not tell "no polygon here" from "no polygon at all".
    if geometry_type in ("Polygon", "MultiPolygon") and total is not None and np.all(np.isfinite(total)):
        try:
            if _boxes_overlap(rasterio.warp.transform_bounds(layer_crs, grid.crs, *total, densify_pts=21),
                              grid.bounds):
                # the grid's box in the layer's CRS, a cell wider on each side against the densified edges' bulge
                pad = max(abs(grid.transform.a), abs(grid.transform.e))
                left, bottom, right, top = grid.bounds
                box = rasterio.warp.transform_bounds(grid.crs, layer_crs, left - pad, bottom - pad, right + pad,
                                                     top + pad, densify_pts=21)
                bbox = box if box[0] < box[2] else None  # across the antimeridian: read every polygon
            # else an error to come: every polygon read, so that the error says what is wrong with them
        except (CPLE_BaseError, CRSError):  # a box PROJ cannot transform: read every polygon
            bbox = None
    overlaps = True
    shapes = read_polygons(path, grid.crs, bbox=bbox)
    if bbox is None:
        bounds = rasterio.features.bounds({"type": "GeometryCollection", "geometries": shapes})
        overlaps = _boxes_overlap(bounds, grid.bounds)
    return rasterize_polygons(shapes, grid), overlaps


def rasterize_polygons(shapes: list[dict], grid: Grid) -> np.ndarray:
    """Boolean mask of the cells whose centre lies inside one of ``shapes`` (in the grid's CRS)."""
    if not shapes:
        return np.zeros(grid.shape, dtype=bool)
    burnt = rasterio.features.rasterize(
        ((s, 1) for s in shapes),
        out_shape=grid.shape,
        transform=grid.transform,
        fill=0,
        all_touched=False,
        dtype="uint8",
    )
    return burnt.astype(bool)


def _raster_mask(path: Path, grid: Grid) -> tuple[np.ndarray, np.ndarray, bool]:
    """The raster mask warped onto ``grid``, where it says anything (its data, not its no-data or beyond its
    extent), and whether its footprint overlaps the grid."""
    with open_raster(path, "raster mask") as src:
        # no-data is unknown (NaN), except a no-data of 0, which a binary mask (1 = inside) means as outside
        values = src.read(1, masked=True).astype("float32").filled(0.0 if src.nodata == 0 else np.nan)
        footprint = rasterio.warp.transform_bounds(src.crs, grid.crs, *src.bounds)
        same_grid = src.crs == grid.crs and src.transform == grid.transform and src.shape == grid.shape
        if same_grid:
            on_grid = values
        else:
            on_grid = np.full(grid.shape, np.nan, dtype="float32")
            rasterio.warp.reproject(
                values, on_grid,
                src_transform=src.transform, src_crs=src.crs, src_nodata=np.nan,
                dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan,
                resampling=Resampling.nearest,
            )
    known = np.isfinite(on_grid)
    return known & (on_grid != 0), known, _boxes_overlap(footprint, grid.bounds)


def _area_on_grid(path: str | os.PathLike[str], grid: Grid, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The cells of ``grid`` inside the area, and the cells the file says anything about (a raster's data;
    everywhere for polygons, outside which is outside the area). Raises when the file cannot be read or
    does not overlap the grid."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} file does not exist", source=path)
    if not (path.is_file() or path.is_dir()):  # a FIFO or device would block the reader forever
        raise InputError(f"{what} is not a regular file", source=path)
    if path.suffix.lower() in RASTER_SUFFIXES:
        inside, known, overlaps = _raster_mask(path, grid)
    else:
        inside, overlaps = _vector_area(path, grid)
        known = np.ones(grid.shape, dtype=bool)
    if not overlaps:
        raise InputError(f"{what} does not overlap the velocity raster (bounds {grid.bounds})", source=path)
    return inside, known


def load_mask(path: str | os.PathLike[str], grid: Grid, *, what: str = "mask") -> np.ndarray:
    """Boolean mask of the cells of ``grid`` that are inside the area that ``path`` describes.

    ``path`` is a raster (``.tif`` ...; non-zero finite values are the area) or
    a vector file (polygons; a cell is inside when its centre is). ``what``
    names the mask in error messages (``"stable-ground mask"``). Raises
    :class:`InputError` naming the file when it cannot be read, does not
    overlap the grid, or selects no cell.
    """
    inside, _known = _area_on_grid(path, grid, what)
    if not inside.any():
        raise InputError(f"{what} selects no cell of the velocity raster (no cell centre inside it)", source=path)
    return inside


def stable_ground(grid: Grid, *, stable_mask: str | os.PathLike[str] | None = None,
                  glacier_mask: str | os.PathLike[str] | None = None) -> np.ndarray | None:
    """Where the stable-ground correction measures the images' relative shift, on ``grid``.

    The stable mask's cells outside the glaciers; with only a glacier mask, every cell outside the glaciers
    (off-glacier ground, as ITS_LIVE corrects on land outside its ice and water masks; Gardner et al. 2018,
    The Cryosphere 12:521), so an image that is all ice has none and its correction is skipped instead of
    fitted on slow ice. Only where the glacier mask says something counts as outside: a raster's no-data
    (but a no-data of 0, read as outside) and the cells beyond its extent are neither ice nor ground; a
    vector layer says something everywhere. A glacier mask that selects no cell is a
    scene without glaciers (all ground). None when neither mask is given: the tracker then judges its
    slowest points (:mod:`gvfuse.tracking.stable_ground`).
    """
    if stable_mask is None and glacier_mask is None:
        return None
    stable = (load_mask(stable_mask, grid, what="stable-ground mask") if stable_mask is not None
              else np.ones(grid.shape, dtype=bool))
    if glacier_mask is not None:
        ice, known = _area_on_grid(glacier_mask, grid, "glacier mask")
        stable &= known & ~ice
    return stable
