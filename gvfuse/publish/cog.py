"""The product files of one month: ``YYYYMM.tif`` (COG), its quick-look and thumbnail names.

The COG has six float32 bands, NaN for no data, in this fixed order
(:data:`PRODUCT_BANDS`): ``vx``, ``vy``, ``v``, ``v_error`` (m/d), ``count``
(observations that contributed, unit ``1``) and ``sensor_mask`` (bit ``i`` set
where ``product.sensors[i]`` contributed). Dataset tags carry a provenance
summary (see :func:`product_tags`); the full block lives in the STAC item.
All writing goes through :func:`gvfuse.io.raster.write_bands` (atomic, COG,
NaN nodata set before overviews).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from gvfuse.io.raster import write_bands
from gvfuse.model import Month, MonthlyProduct
from gvfuse.publish.provenance import provenance_block

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
PNG_MEDIA_TYPE = "image/png"


@attrs.frozen
class BandSpec:
    """One band of the product: name (the band description), unit and what it holds."""

    name: str
    unit: str
    description: str


PRODUCT_BANDS: tuple[BandSpec, ...] = (
    BandSpec("vx", "m/d", "surface velocity, east component"),
    BandSpec("vy", "m/d", "surface velocity, north component"),
    BandSpec("v", "m/d", "surface speed, hypot(vx, vy) of the fused components"),
    BandSpec("v_error", "m/d", "1-sigma error of the speed"),
    BandSpec("count", "1", "number of image-pair observations behind the cell"),
    BandSpec("sensor_mask", "bitmask", "bit i set where sensor i contributed (see sensor_mask_bits)"),
)


def cog_name(month: Month) -> str:
    """``YYYYMM.tif``."""
    return f"{month.stem}.tif"


def quicklook_name(month: Month) -> str:
    """``YYYYMM_quicklook.png``: speed map with colour bar and flow arrows."""
    return f"{month.stem}_quicklook.png"


def thumbnail_name(month: Month) -> str:
    """``YYYYMM_thumbnail.png``: a small speed image."""
    return f"{month.stem}_thumbnail.png"


def product_band_arrays(product: MonthlyProduct) -> dict[str, np.ndarray]:
    """The six bands as float32 arrays, in :data:`PRODUCT_BANDS` order."""
    arrays = {
        "vx": product.vx_m_per_day,
        "vy": product.vy_m_per_day,
        "v": product.speed_m_per_day,
        "v_error": product.v_error_m_per_day,
        "count": product.count,
        "sensor_mask": product.sensor_mask,
    }
    return {spec.name: np.asarray(arrays[spec.name], dtype="float32") for spec in PRODUCT_BANDS}


def product_tags(block: Mapping[str, Any]) -> dict[str, str]:
    """Dataset tags: a provenance summary, each value a string (JSON for structures), keys sorted."""
    trackers = sorted({str(p.get("tracker")) for p in block["pairs"]})
    tags = {
        "month": block["month"],
        "software": f"{block['software']['name']} {block['software']['version']}",
        "plugins": block["plugins"],
        "sensors": block["sensors"],
        "sensor_mask_bits": block["sensor_mask_bits"],
        "input_scene_count": len(block["inputs"]),
        "pair_count": len(block["pairs"]),
        "trackers": trackers,
        "weights": block["weights"],
        "validation": block["validation"],
        "band_units": {spec.name: spec.unit for spec in PRODUCT_BANDS},
    }
    return {k: v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":"))
            for k, v in sorted(tags.items())}


def write_product_cog(product: MonthlyProduct, directory: str | Path, *, force: bool = False) -> Path:
    """Write ``directory/YYYYMM.tif``; an existing file needs ``force=True`` (else ``OutputExistsError``)."""
    block = provenance_block(product)
    return write_bands(
        Path(directory) / cog_name(product.month),
        product_band_arrays(product),
        product.grid,
        units={spec.name: spec.unit for spec in PRODUCT_BANDS},
        tags=product_tags(block),
        cog=True,
        dtype="float32",
        overwrite=force,
    )
