"""The intake (2.x) catalog of a publication: ``catalog.yaml``, one entry per month and one for all of them.

Every entry is a pipeline of intake 2's own readers, nothing of gvfuse's, so
the catalog opens wherever intake, xarray and rioxarray are installed:

* one ``intake.readers.readers.XArrayDatasetReader`` per variable
  (``engine="rasterio"``, ``default_name=<variable>``, ``open_local=True``)
  on an ``intake.readers.datatypes.TIFF`` whose URL is
  ``{CATALOG_DIR}/YYYYMM_<variable>.tif``, so the catalog works wherever the
  folder is and from any working directory; the integer variables (``count``,
  ``sensor_flag``) are read with ``mask_and_scale=False`` so they stay integers;
* merged (``Dataset.merge``), the ``band`` dimension squeezed away, and a
  ``time`` dimension added whose coordinate is the month's middle (the STAC
  item's ``datetime``), made by ``numpy.array(..., dtype="datetime64[ns]")``
  through ``intake.readers.convert.GenericFunc``.

Entry names are ``<product_id>_YYYYMM`` with ``-`` replaced by ``_``
(``gangrigab_2023_202301``): valid Python identifiers, so both
``cat["gangrigab_2023_202301"]`` and ``cat.gangrigab_2023_202301`` work.
``.read()`` gives an ``xarray.Dataset`` with dimensions ``(time, y, x)`` and
variables ``vx``, ``vy``, ``v``, ``vx_error``, ``vy_error``, ``v_error``,
``count`` and ``sensor_flag`` (each with ``units``). The entry
``<product_id>`` (``gangrigab_2023``) holds every published month along
``time`` (each variable's months read with ``xarray.open_mfdataset``, lazily),
and ``<product_id>_cube`` opens the CF time cube ``cube.zarr``
(:mod:`gvfuse.publish.cube`) with xarray's zarr engine.

The catalog is rebuilt from the STAC items on disk each time a month is
published, so it always lists exactly the published months; an entry's
metadata holds the item's provenance block, its STAC item path and its files
with their checksums.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gvfuse.io.atomic import confined, write_text_atomic
from gvfuse.model import Month
from gvfuse.publish.cog import PRODUCT_VARIABLES
from gvfuse.publish.cube import CUBE_DIR
from gvfuse.publish.stac import PROVENANCE_KEY, read_items

INTAKE_FILE = "catalog.yaml"
#: Reader arguments of every variable. ``engine`` and ``default_name`` go to
#: ``xarray.open_dataset`` (the rasterio engine comes from rioxarray).
#: ``open_local=True`` makes intake hand xarray a local path: without it intake
#: opens the ``file://`` URL it builds from ``{CATALOG_DIR}`` through fsspec and
#: passes a Python file object, from which rioxarray's lazy tile reads fail
#: with deflate decoding errors (intake 2.0.9, rioxarray 0.19).
READ_KWARGS: dict[str, Any] = {"engine": "rasterio", "open_local": True}


def entry_name(product_id: str, month: Month | None = None) -> str:
    """``<product_id>_YYYYMM`` (or ``<product_id>`` for the whole product) with dashes as underscores."""
    base = product_id.replace("-", "_")
    return base if month is None else f"{base}_{month.stem}"


def _variable_reader(urls: Sequence[str], name: str, floating: bool) -> Any:
    from intake.readers.datatypes import TIFF
    from intake.readers.readers import XArrayDatasetReader

    kwargs: dict[str, Any] = {**READ_KWARGS, "default_name": name}
    if not floating:
        kwargs["mask_and_scale"] = False  # integer codes and counts stay integers
    if len(urls) > 1:
        kwargs.update(combine="nested", concat_dim="time")
    return XArrayDatasetReader(TIFF(url=list(urls) if len(urls) > 1 else urls[0]), **kwargs)


def dataset_reader(files: Sequence[Mapping[str, str]], times: Sequence[str], metadata: Mapping[str, Any]) -> Any:
    """A pipeline reading the months ``files`` (variable -> ``{CATALOG_DIR}``-relative path, one mapping per
    month, in time order) as one ``xarray.Dataset`` with named variables and a ``time`` coordinate ``times``
    (ISO 8601, UTC, no zone suffix)."""
    import numpy as np
    from intake.readers.convert import GenericFunc

    pipeline = None
    for spec in PRODUCT_VARIABLES:
        reader = _variable_reader(["{CATALOG_DIR}/" + month[spec.name] for month in files], spec.name, spec.floating)
        pipeline = reader if pipeline is None else pipeline.merge(other=reader, compat="override", join="exact")
    time = GenericFunc(list(times), func=np.array, dtype="datetime64[ns]", output_instance="numpy:ndarray")
    assert pipeline is not None
    pipeline = pipeline.squeeze("band", drop=True)
    pipeline = pipeline.expand_dims(time=time) if len(files) == 1 else pipeline.assign_coords(time=time)
    pipeline.metadata.update(metadata)
    return pipeline


def build_catalog(catalog_dir: str | Path) -> Any:
    """An ``intake.entry.Catalog`` with one entry per published STAC item (read from disk) and one for all."""
    from intake.readers.entry import Catalog

    catalog_dir = Path(catalog_dir).resolve()
    catalog = Catalog()
    months: list[tuple[str, dict[str, str], str]] = []
    product_id = ""
    for path, item in read_items(catalog_dir):
        if not item:
            continue
        provenance = item["properties"][PROVENANCE_KEY]
        files = {spec.name: (path.parent / item["assets"][spec.name]["href"]).resolve().relative_to(catalog_dir)
                 .as_posix() for spec in PRODUCT_VARIABLES}
        product_id = str(item["collection"])
        name = entry_name(product_id, Month.parse(provenance["month"]))
        time = str(item["properties"]["datetime"]).removesuffix("Z")
        stac_item = path.relative_to(catalog_dir).as_posix()
        metadata = {
            "title": item["properties"].get("title", name),
            "month": provenance["month"],
            "stac_item": stac_item,
            "files": files,
            "file:checksum": {k: item["assets"][k].get("file:checksum") for k in files},
            "units": {k: item["assets"][k]["bands"][0].get("unit") for k in files},
            "provenance": provenance,
        }
        catalog[name] = dataset_reader([files], [time], metadata)
        catalog.aliases[name] = name  # so that list(catalog) names the entries
        months.append((time, files, stac_item))
    if (catalog_dir / CUBE_DIR).is_dir() and product_id:
        from intake.readers.datatypes import Zarr
        from intake.readers.readers import XArrayDatasetReader

        name = f"{entry_name(product_id)}_cube"
        catalog[name] = XArrayDatasetReader(Zarr(url="{CATALOG_DIR}/" + CUBE_DIR), engine="zarr", consolidated=True,
                                            metadata={"title": f"{product_id}: CF time cube of every published month",
                                                      "files": {"cube": CUBE_DIR}})
        catalog.aliases[name] = name
    if months:
        months.sort()
        name = entry_name(product_id)
        catalog[name] = dataset_reader([m[1] for m in months], [m[0] for m in months], {
            "title": f"{product_id}: every published month", "stac_items": [m[2] for m in months],
            "files": [m[1] for m in months]})
        catalog.aliases[name] = name
    return catalog


def write_intake_catalog(catalog_dir: str | Path, *, title: str = "") -> Path:
    """(Re)write ``catalog_dir/catalog.yaml`` atomically from the published items."""
    catalog = build_catalog(catalog_dir)
    if title:
        catalog.metadata["title"] = title
    return write_text_atomic(confined(catalog_dir, Path(catalog_dir) / INTAKE_FILE), catalog_text(catalog.to_dict()),
                             overwrite=True)


def catalog_text(content: Any) -> str:
    """``content`` as YAML: libyaml's emitter when PyYAML has it (4x faster than PyYAML's own: each month
    rewrites the whole catalog, every month's full provenance in it), the same bytes either way.

    The two emitters differ only in how they wrap long quoted strings and escape characters beyond the
    BMP; lines are never wrapped and every non-ASCII character is escaped, so that the same publication is
    the same bytes on every install (tests/publish/test_intake.py checks both emitters).
    """
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(content, Dumper=dumper, sort_keys=True, allow_unicode=False, width=YAML_NO_WRAP)


#: A line width no YAML line reaches (libyaml takes an int): the emitters never wrap.
YAML_NO_WRAP = 2**31 - 1
