"""The product files of one month: one COG per variable (``YYYYMM_<variable>.tif``), quick-look, thumbnail.

One single-band Cloud-Optimized GeoTIFF per variable, as ITS_LIVE publishes
its mosaics, so that loaders which stack one band per asset (stackstac,
odc-stac) read each variable by name. The variables, in
:data:`PRODUCT_VARIABLES` order:

* ``vx``, ``vy``, ``v``, ``vx_error``, ``vy_error``, ``v_error``: float32
  m/d, NaN for no data, averaged overviews;
* ``count``: uint16, image pairs behind the cell (0 where none), overviews
  by nearest neighbour (a count of some cell, never a fraction);
* ``sensor_flag``: uint8 (uint16 past 8 sensors), bit ``i`` set where the
  ``i``-th sensor of the product's legend contributed (0 where none),
  overviews by mode (a combination that occurs, never an average of bits).

The legend is the product definition's (:meth:`ProductDefinition.legend`),
the same in every month whatever sensors it had; a month's mask, encoded in
its own legend (:attr:`MonthlyProduct.legend`), is re-encoded into it. Every
file carries the same dataset tags, a provenance summary (see
:func:`product_tags`); the full block lives in the STAC item. All writing goes
through :func:`gvfuse.io.raster.write_bands` (atomic, COG, NaN nodata set
before overviews).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from gvfuse.errors import InputError, OutputExistsError
from gvfuse.io.raster import read_bands, write_bands
from gvfuse.model import Grid, Month, MonthlyProduct, SensorLegend
from gvfuse.publish.provenance import provenance_block

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
PNG_MEDIA_TYPE = "image/png"
QML_MEDIA_TYPE = "text/xml"


@attrs.frozen
class VariableSpec:
    """One published variable: name (file suffix, band description, STAC asset key), unit, what it holds,
    its data type, how its overviews are made, and its CF standard name (empty: none applies)."""

    name: str
    unit: str
    description: str
    data_type: str = "float32"
    resampling: str = "average"
    standard_name: str = ""

    @property
    def floating(self) -> bool:
        return np.issubdtype(np.dtype(self.data_type), np.floating)


#: The variables of every month, in file order. ``sensor_flag``'s data type is the legend's (see
#: :func:`flag_dtype`); ``uint8`` here is the type for up to 8 sensors.
PRODUCT_VARIABLES: tuple[VariableSpec, ...] = (
    VariableSpec("vx", "m/d", "surface velocity, east (grid x) component", standard_name="land_ice_surface_x_velocity"),
    VariableSpec("vy", "m/d", "surface velocity, north (grid y) component",
                 standard_name="land_ice_surface_y_velocity"),
    VariableSpec("v", "m/d", "surface speed, hypot(vx, vy) of the fused components",
                 standard_name="land_ice_surface_speed"),
    VariableSpec("vx_error", "m/d", "1-sigma error of vx"),
    VariableSpec("vy_error", "m/d", "1-sigma error of vy"),
    VariableSpec("v_error", "m/d", "1-sigma error of the speed"),
    VariableSpec("count", "1", "number of image pairs behind the cell (0 where none)", "uint16", "nearest"),
    VariableSpec("sensor_flag", "1", "bit i set where sensor i of the product's legend contributed (0: none)",
                 "uint8", "mode"),
)
VARIABLE_NAMES: tuple[str, ...] = tuple(spec.name for spec in PRODUCT_VARIABLES)
#: The largest count a uint16 holds; more pairs than this are published as this.
MAX_COUNT = int(np.iinfo("uint16").max)


def flag_dtype(legend: Sequence[str]) -> str:
    """``uint8`` for up to 8 sensors, else ``uint16`` (a definition has at most 16)."""
    return "uint8" if len(legend) <= 8 else "uint16"


def variable_specs(legend: Sequence[str]) -> tuple[VariableSpec, ...]:
    """:data:`PRODUCT_VARIABLES` with ``sensor_flag``'s data type fitted to ``legend``."""
    return tuple(attrs.evolve(spec, data_type=flag_dtype(legend)) if spec.name == "sensor_flag" else spec
                 for spec in PRODUCT_VARIABLES)


def cog_name(month: Month, variable: str) -> str:
    """``YYYYMM_<variable>.tif``."""
    return f"{month.stem}_{variable}.tif"


def cog_names(month: Month) -> dict[str, str]:
    """Every variable's COG name of the month, in :data:`PRODUCT_VARIABLES` order."""
    return {name: cog_name(month, name) for name in VARIABLE_NAMES}


def quicklook_name(month: Month) -> str:
    """``YYYYMM_quicklook.png``: speed map with colour bar and flow arrows."""
    return f"{month.stem}_quicklook.png"


def thumbnail_name(month: Month) -> str:
    """``YYYYMM_thumbnail.png``: a small speed image."""
    return f"{month.stem}_thumbnail.png"


def style_name(month: Month) -> str:
    """``YYYYMM_v.qml``: the QGIS style of the speed COG (QGIS applies a same-named ``.qml`` when it opens one)."""
    return f"{month.stem}_v.qml"


def sensor_flag(product: MonthlyProduct, legend: Sequence[str]) -> np.ndarray:
    """The month's sensor mask re-encoded in ``legend`` (the product's), as :func:`flag_dtype` integers.

    A sensor of the month that the legend does not hold is an :class:`InputError` naming it.
    """
    used = product.legend.decode(product.sensor_mask)
    missing = sorted(name for name, cells in used.items() if name not in legend and cells.any())
    if missing:
        raise InputError(f"month {product.month} has sensor(s) {missing} that the product's sensor legend "
                         f"{list(legend)} does not hold; add them to the definition's [[sensors]]",
                         source="product definition", field="sensors")
    flag = SensorLegend(legend).encode({k: v for k, v in used.items() if k in legend}, product.grid.shape)
    return flag.astype(flag_dtype(legend))


def product_arrays(product: MonthlyProduct, legend: Sequence[str]) -> dict[str, np.ndarray]:
    """Every variable's array in its data type, in :data:`PRODUCT_VARIABLES` order.

    Component errors the fusion did not state are NaN (unknown), never guessed.
    """
    unknown = np.full(product.grid.shape, np.nan, dtype="float32")
    count = np.clip(np.rint(np.nan_to_num(product.count, nan=0.0)), 0, MAX_COUNT)
    arrays = {
        "vx": product.vx_m_per_day,
        "vy": product.vy_m_per_day,
        "v": product.speed_m_per_day,
        "vx_error": unknown if product.vx_error_m_per_day is None else product.vx_error_m_per_day,
        "vy_error": unknown if product.vy_error_m_per_day is None else product.vy_error_m_per_day,
        "v_error": product.v_error_m_per_day,
        "count": count,
        "sensor_flag": sensor_flag(product, legend),
    }
    return {spec.name: np.asarray(arrays[spec.name], dtype=spec.data_type) for spec in variable_specs(legend)}


def product_tags(block: Mapping[str, Any], legend: Sequence[str], spec: VariableSpec) -> dict[str, str]:
    """Dataset tags of one variable's COG: a provenance summary, each value a string (JSON for structures)."""
    trackers = sorted({str(p.get("tracker")) for p in block["pairs"]})
    tags: dict[str, Any] = {
        "month": block["month"],
        "variable": spec.name,
        "software": f"{block['software']['name']} {block['software']['version']}",
        "plugins": block["plugins"],
        "sensors": block["sensors"],
        "sensor_flag_bits": SensorLegend(legend).bits,
        "input_scene_count": len(block["inputs"]),
        "pair_count": len(block["pairs"]),
        "trackers": trackers,
        "weights": block["weights"],
        "validation": block["validation"],
    }
    if spec.standard_name:
        tags["standard_name"] = spec.standard_name
    return {k: v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":"))
            for k, v in sorted(tags.items())}


def write_product_cogs(product: MonthlyProduct, directory: str | Path, legend: Sequence[str] | None = None, *,
                       force: bool = False) -> list[Path]:
    """Write every variable's ``directory/YYYYMM_<variable>.tif``; ``legend`` defaults to the month's own.

    An existing file needs ``force=True`` (else ``OutputExistsError``, raised before any file is written).
    """
    legend = tuple(product.sensors if legend is None else legend)
    block = provenance_block(product)
    arrays = product_arrays(product, legend)
    targets = {spec: Path(directory) / cog_name(product.month, spec.name) for spec in variable_specs(legend)}
    if not force:
        existing = [str(path) for path in targets.values() if path.exists()]
        if existing:
            raise OutputExistsError(f"{', '.join(existing)} exist(s); refusing to overwrite (use --force)")
    return [write_bands(path, {spec.name: arrays[spec.name]}, product.grid, units={spec.name: spec.unit},
                        tags=product_tags(block, legend, spec), cog=True, dtype=spec.data_type, overwrite=force,
                        overview_resampling=spec.resampling)
            for spec, path in targets.items()]


def read_month_bands(directory: str | Path, month: Month,
                     names: Sequence[str] = VARIABLE_NAMES) -> tuple[dict[str, np.ndarray], Grid]:
    """The variables ``names`` of a published month (float32, NaN no data) and their grid, read from
    ``directory/YYYYMM_<variable>.tif``; a missing file is an :class:`InputError` naming it."""
    bands: dict[str, np.ndarray] = {}
    grid: Grid | None = None
    for name in names:
        read, grid, _ = read_bands(Path(directory) / cog_name(month, name), (name,))
        bands[name] = read[name]
    if grid is None:
        raise ValueError("no variable named")
    return bands, grid
