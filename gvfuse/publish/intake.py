"""The intake (2.x) catalog of a publication: ``catalog.yaml``, one entry per month.

Each entry is an ``intake.readers.readers.XArrayDatasetReader`` with
``engine="rasterio"``, ``band_as_variable=True`` and ``open_local=True`` on an
``intake.readers.datatypes.TIFF`` whose URL is ``{CATALOG_DIR}/YYYYMM.tif``,
so the catalog works wherever the folder is and from any working directory.

Entry names are ``<product_id>_YYYYMM`` with ``-`` replaced by ``_``
(``gangrigab_2023_202301``): valid Python identifiers, so both
``cat["gangrigab_2023_202301"]`` and ``cat.gangrigab_2023_202301`` work.
``.read()`` gives an ``xarray.Dataset`` with variables ``band_1`` ...
``band_6`` (``vx``, ``vy``, ``v``, ``v_error``, ``count``, ``sensor_mask``;
each variable's ``long_name`` is its band name and ``units`` its unit).

The catalog is rebuilt from the STAC items on disk each time a month is
published, so it always lists exactly the published months; an entry's
metadata holds the item's provenance block, its STAC item path and the COG's
checksum.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gvfuse.io.atomic import confined, write_text_atomic
from gvfuse.model import Month
from gvfuse.publish.stac import PROVENANCE_KEY, read_items

INTAKE_FILE = "catalog.yaml"
#: Reader arguments of every entry. ``engine`` and ``band_as_variable`` go to
#: ``xarray.open_dataset`` (the rasterio engine comes from rioxarray).
#: ``open_local=True`` makes intake hand xarray a local path: without it intake
#: opens the ``file://`` URL it builds from ``{CATALOG_DIR}`` through fsspec and
#: passes a Python file object, from which rioxarray's lazy tile reads fail
#: with deflate decoding errors (intake 2.0.9, rioxarray 0.19).
READ_KWARGS: dict[str, Any] = {"engine": "rasterio", "band_as_variable": True, "open_local": True}


def entry_name(product_id: str, month: Month) -> str:
    """``<product_id>_YYYYMM`` with dashes as underscores, e.g. ``gangrigab_2023_202301``."""
    return f"{product_id.replace('-', '_')}_{month.stem}"


def build_catalog(catalog_dir: str | Path) -> Any:
    """An ``intake.entry.Catalog`` with one entry per published STAC item (read from disk)."""
    from intake.readers.datatypes import TIFF
    from intake.readers.entry import Catalog
    from intake.readers.readers import XArrayDatasetReader

    catalog_dir = Path(catalog_dir).resolve()
    catalog = Catalog()
    for path, item in read_items(catalog_dir):
        if not item:
            continue
        provenance = item["properties"][PROVENANCE_KEY]
        data_asset = item["assets"]["data"]
        cog_relative = (path.parent / data_asset["href"]).resolve().relative_to(catalog_dir).as_posix()
        name = entry_name(str(item["collection"]), Month.parse(provenance["month"]))
        metadata = {
            "title": item["properties"].get("title", name),
            "month": provenance["month"],
            "stac_item": path.relative_to(catalog_dir).as_posix(),
            "file": cog_relative,
            "file:checksum": data_asset.get("file:checksum"),
            "bands": {f"band_{i}": band["name"] for i, band in enumerate(data_asset.get("bands", []), start=1)},
            "units": {band["name"]: band.get("unit") for band in data_asset.get("bands", [])},
            "provenance": provenance,
        }
        reader = XArrayDatasetReader(TIFF(url="{CATALOG_DIR}/" + cog_relative), metadata=metadata, **READ_KWARGS)
        catalog[name] = reader
        catalog.aliases[name] = name  # so that list(catalog) names the entries
    return catalog


def write_intake_catalog(catalog_dir: str | Path, *, title: str = "") -> Path:
    """(Re)write ``catalog_dir/catalog.yaml`` atomically from the published items."""
    catalog = build_catalog(catalog_dir)
    if title:
        catalog.metadata["title"] = title
    text = yaml.safe_dump(catalog.to_dict(), sort_keys=True, allow_unicode=True)
    return write_text_atomic(confined(catalog_dir, Path(catalog_dir) / INTAKE_FILE), text, overwrite=True)
