"""The CF-1.10 time cube of a publication: every published month in one Zarr store, ``cube.zarr``.

Built from the monthly COGs and the STAC items in ``items/`` each time a month is
published (an index, like the collection), so it always holds exactly the
published months, in time order. Layout (CF conventions 1.10; ITS_LIVE's
datacubes for the names):

* dimensions ``time`` (one step per month), ``y``, ``x`` (pixel centres, m,
  ``projection_y_coordinate``/``projection_x_coordinate``) and ``nv`` (2);
* ``time``: the month's middle (the STAC items' ``datetime``), with
  ``bounds = "time_bnds"``: ``time_bnds`` is the calendar month ``[start,
  next month's start)``; ``observation_start``/``observation_end`` (over
  ``time``) the span of the image pairs behind the month, ``date_dt`` its
  length in days (NaT/NaN where the provenance does not say);
* ``vx``, ``vy``, ``v``, ``vx_error``, ``vy_error``, ``v_error``
  (float32, ``m d-1``, NaN fill; ``standard_name``
  ``land_ice_surface_x_velocity`` ... and the ``standard_error`` modifier for
  the component errors), ``count`` (uint16 image pairs) and ``sensor_flag``
  (uint8/uint16 with CF ``flag_masks``/``flag_meanings``: the product's
  sensor legend), each with ``grid_mapping = "mapping"``;
* ``mapping``: the grid-mapping variable (pyproj's CF attributes,
  ``crs_wkt``, ``spatial_ref`` and GDAL's ``GeoTransform``);
* global attributes: ``Conventions``, ``title``, ``summary``, ``license``,
  ``source``, ``history`` (no date: publishing again gives the same bytes),
  ``references`` (the STAC items with each month's provenance), ``product_id``.

Chunks hold every month of a 256 x 256 tile, so one pixel's year is one read
per variable. Zarr format 2, consolidated metadata, for the widest support.
Written in the publication's staging folder and renamed into place.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import gvfuse
from gvfuse.errors import InputError
from gvfuse.io.atomic import atomic_target, confined
from gvfuse.io.checksums import folder_fields
from gvfuse.model import Grid, Month
from gvfuse.product import ProductDefinition
from gvfuse.publish.cog import read_month_bands, variable_specs
from gvfuse.publish.stac import ITEMS_DIR, published_items

CUBE_DIR = "cube.zarr"
#: Field of the collection's ``cube`` asset recording every file of the store (path -> file:checksum, file:size).
FILES_KEY = "gvfuse:files"
ZARR_MEDIA_TYPE = "application/vnd+zarr"
#: Tile edge of the cube's chunks (cells); a chunk holds every month of its tile.
CHUNK_CELLS = 256
_VELOCITY_NAMES = {"vx": "land_ice_surface_x_velocity", "vy": "land_ice_surface_y_velocity",
                   "v": "land_ice_surface_speed"}
_ERROR_OF = {"vx_error": "vx", "vy_error": "vy", "v_error": "v"}


def _month_items(catalog_dir: Path) -> list[tuple[Month, dict[str, Any], str]]:
    """The published months, in time order: ``(month, item, item path relative to catalog_dir)``."""
    out = [(Month.parse(item["properties"]["gvfuse:month"]), item, f"{ITEMS_DIR}/{item['id']}.json")
           for item in published_items(catalog_dir) if "properties" in item]
    return sorted(out, key=lambda entry: entry[0])


def _instant(value: object) -> np.datetime64:
    """An ISO 8601 string as naive ``datetime64[ns]`` in UTC (no zone: UTC); NaT for anything else."""
    if not isinstance(value, str):
        return np.datetime64("NaT", "ns")
    when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return np.datetime64(when, "ns")


def _mapping_attrs(grid: Grid) -> dict[str, Any]:
    from pyproj import CRS

    crs = CRS.from_user_input(grid.crs.to_wkt())
    t = grid.transform
    return {**crs.to_cf(), "spatial_ref": crs.to_wkt(),
            "GeoTransform": " ".join(f"{v:.12g}" for v in (t.c, t.a, t.b, t.f, t.d, t.e))}


def cube_dataset(catalog_dir: str | Path, definition: ProductDefinition) -> Any:
    """The cube of every published month as an ``xarray.Dataset`` (read into memory), or ``None`` when
    nothing is published."""
    import xarray as xr

    catalog_dir = Path(catalog_dir)
    months = _month_items(catalog_dir)
    if not months:
        return None
    legend = [str(name) for name in months[0][1]["properties"].get("gvfuse:sensor_flag_bits", {})]
    specs = variable_specs(legend)
    grids: list[Grid] = []
    stacks: dict[str, list[np.ndarray]] = {spec.name: [] for spec in specs}
    for month, _item, _path in months:
        bands, grid = read_month_bands(catalog_dir, month)
        grids.append(grid)
        for spec in specs:
            stacks[spec.name].append(bands[spec.name].astype(spec.data_type) if spec.floating
                                     else np.nan_to_num(bands[spec.name]).astype(spec.data_type))
    grid = grids[0]
    if any(g != grid for g in grids):
        raise ValueError(f"{catalog_dir}: the published months are not on one grid")
    t = grid.transform
    x = t.c + t.a * (np.arange(grid.cols) + 0.5)
    y = t.f + t.e * (np.arange(grid.rows) + 0.5)
    middles = np.array([_instant(m[1]["properties"]["datetime"]) for m in months])
    bounds = np.array([[_instant(m[0].start.isoformat().replace("+00:00", "Z")),
                        _instant(m[0].end.isoformat().replace("+00:00", "Z"))] for m in months])
    starts = np.array([_instant(m[1]["properties"].get("gvfuse:observation_start_datetime")) for m in months])
    ends = np.array([_instant(m[1]["properties"].get("gvfuse:observation_end_datetime")) for m in months])
    date_dt = ((ends - starts) / np.timedelta64(1, "D")).astype("float32")
    dims = ("time", "y", "x")
    data_vars: dict[str, Any] = {}
    for spec in specs:
        attrs: dict[str, Any] = {"long_name": spec.description, "grid_mapping": "mapping"}
        if spec.floating:
            attrs["units"] = "m d-1"
        else:
            attrs["units"] = "1"
        if spec.name in _VELOCITY_NAMES:
            attrs["standard_name"] = _VELOCITY_NAMES[spec.name]
        elif spec.name in _ERROR_OF:
            attrs["standard_name"] = f"{_VELOCITY_NAMES[_ERROR_OF[spec.name]]} standard_error"
        if spec.name == "sensor_flag":
            attrs["flag_masks"] = np.array([1 << i for i in range(len(legend))], dtype=spec.data_type)
            attrs["flag_meanings"] = " ".join(legend)
        data_vars[spec.name] = (dims, np.stack(stacks[spec.name]), attrs)
    data_vars["mapping"] = ((), np.int32(0), _mapping_attrs(grid))
    data_vars["time_bnds"] = (("time", "nv"), bounds, {"long_name": "calendar month"})
    data_vars["observation_start"] = (("time",), starts, {
        "long_name": "first acquisition of the image pairs behind the month"})
    data_vars["observation_end"] = (("time",), ends, {
        "long_name": "last acquisition of the image pairs behind the month"})
    data_vars["date_dt"] = (("time",), date_dt, {
        "long_name": "span of the image pairs behind the month", "units": "days"})
    dataset = xr.Dataset(
        data_vars,
        coords={
            "time": ("time", middles, {"standard_name": "time", "long_name": "middle of the month", "axis": "T",
                                       "bounds": "time_bnds"}),
            "y": ("y", y, {"standard_name": "projection_y_coordinate", "long_name": "y of the cell centre",
                           "units": "m", "axis": "Y"}),
            "x": ("x", x, {"standard_name": "projection_x_coordinate", "long_name": "x of the cell centre",
                           "units": "m", "axis": "X"}),
        },
        attrs={
            "Conventions": "CF-1.10",
            "title": definition.title,
            "summary": definition.description,
            "license": definition.license,
            "product_id": definition.id,
            "source": f"gvfuse {gvfuse.__version__}: monthly fusion of image-pair surface velocities",
            "history": f"gvfuse {gvfuse.__version__}: cube of {len(months)} published month(s) from the "
                       "monthly COGs",
            "references": "provenance of each month (input scenes, pairs, trackers, weights, validation): "
                          + ", ".join(m[2] for m in months),
            "sensor_flag_legend": ", ".join(f"{name} = {1 << i}" for i, name in enumerate(legend)),
        },
    )
    return dataset


def _grid_chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Chunks of a (time, y, x) variable: every month of a CHUNK_CELLS square tile (a pixel's year is one read)."""
    return tuple(min(c, n) for c, n in zip((shape[0], CHUNK_CELLS, CHUNK_CELLS), shape))


def _encoding(dataset: Any) -> dict[str, dict[str, Any]]:
    encoding: dict[str, dict[str, Any]] = {}
    for name, variable in dataset.data_vars.items():
        if variable.dims == ("time", "y", "x"):
            fill = np.nan if np.issubdtype(variable.dtype, np.floating) else None
            encoding[name] = {"chunks": _grid_chunks(variable.shape), "_FillValue": fill}
    time_units = {"units": "days since 1970-01-01 00:00:00", "calendar": "proleptic_gregorian"}
    for name in ("time", "time_bnds", "observation_start", "observation_end"):
        encoding[name] = {**time_units, "dtype": "float64"}
    encoding["date_dt"] = {"_FillValue": np.nan}
    return encoding


def write_cube(catalog_dir: str | Path, definition: ProductDefinition, staging: str | Path) -> Path | None:
    """(Re)write ``catalog_dir/cube.zarr`` from the published months, made in ``staging`` and renamed into
    place (the old cube, if any, is removed after). ``None`` when nothing is published."""
    catalog_dir = Path(catalog_dir)
    dataset = cube_dataset(catalog_dir, definition)
    target = confined(catalog_dir, catalog_dir / CUBE_DIR)
    if dataset is None:
        return None
    made = Path(staging) / CUBE_DIR
    dataset.to_zarr(made, mode="w", zarr_format=2, consolidated=True,
                    encoding=_encoding(dataset))
    old = Path(staging) / f"{CUBE_DIR}.old"
    if target.exists():
        target.rename(old)
    made.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def cube_asset(definition: ProductDefinition, months: Sequence[str], cube_dir: str | Path) -> dict[str, Any]:
    """The collection-level STAC asset of the cube at ``cube_dir`` (fields of ``pystac.Asset``).

    A Zarr store is a folder, which ``file:checksum`` cannot describe: the asset records every file of it
    in :data:`FILES_KEY`, its path in the store -> ``file:checksum`` and ``file:size``
    (:func:`gvfuse.io.checksums.folder_fields`), which ``gvfuse check`` verifies, and reports a file missing
    from it or added to it.
    """
    return {"href": f"./{CUBE_DIR}", "media_type": ZARR_MEDIA_TYPE, "roles": ["data"],
            "title": f"{definition.title}: CF-1.10 time cube of {len(months)} month(s)",
            "description": "Every published month in one Zarr store (format 2, consolidated): vx, vy, v, "
                           "vx_error, vy_error, v_error, count, sensor_flag over (time, y, x); time is the "
                           "month's middle with time_bnds; grid mapping 'mapping'.",
            "extra_fields": {FILES_KEY: folder_fields(cube_dir)}}


def export_netcdf(catalog_dir: str | Path, target: str | Path, *, overwrite: bool = False) -> Path:
    """The publication's cube (``cube.zarr``) as one CF-1.10 netCDF-4 file at ``target``, written atomically.

    The same variables, attributes and values; the velocity grids deflated in chunks of every month per
    tile, as in the Zarr cube. Coordinates and ``time_bnds`` carry no ``_FillValue`` (CF 2.5.1). Needs
    h5netcdf (``pip install 'gvfuse[netcdf]'``).
    """
    import xarray

    catalog_dir, target = Path(catalog_dir), Path(target)
    cube = catalog_dir / CUBE_DIR
    if not (cube / ".zmetadata").is_file():
        raise InputError(f"has no {CUBE_DIR} (a publication makes it with its first month)", source=catalog_dir)
    try:  # the engine xarray writes with, and the HDF5 library under it
        import h5netcdf  # noqa: F401
        import h5py  # noqa: F401
    except ImportError:
        raise InputError("writing netCDF needs h5netcdf: pip install 'gvfuse[netcdf]'", source=target) from None
    if target.is_dir():
        raise InputError("is a folder; give the netCDF file's name", source=target)
    with xarray.open_zarr(cube, consolidated=True) as dataset, atomic_target(target, overwrite=overwrite) as tmp:
        encoding: dict[str, dict[str, Any]] = {}
        for name, variable in dataset.variables.items():
            kept = {k: variable.encoding[k] for k in ("units", "calendar", "dtype", "_FillValue")
                    if k in variable.encoding}
            if name in dataset.coords or name == "time_bnds":
                kept["_FillValue"] = None
            if variable.dims == ("time", "y", "x"):
                kept.update(zlib=True, complevel=4, shuffle=True, chunksizes=_grid_chunks(variable.shape))
            encoding[str(name)] = kept
        dataset.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)
    return target
