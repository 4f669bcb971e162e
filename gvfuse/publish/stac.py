"""STAC metadata of a published product: one Collection, one Item per month.

Layout inside a publication folder (all links relative, no self links, so the
folder can be moved or served as it is)::

    collection.json                  the Collection (root of the STAC catalog)
    items/<product-id>-YYYYMM.json   one Item per month

Items use STAC 1.1 with these extensions (schema URIs in :data:`ITEM_EXTENSIONS`):

* one asset per variable, keyed by the variable's name (``vx``, ``vy``, ``v``,
  ``vx_error``, ``vy_error``, ``v_error``, ``count``, ``sensor_flag``), so
  ``odc.stac.load(items, bands=["vx"])`` and ``stackstac.stack(items,
  assets=["vx"])`` find them; plus ``quicklook``, ``thumbnail`` and, with a
  fixed colour scale, ``style`` (the QGIS ``.qml`` of ``v``);
* projection v2.0.0 on every variable asset: ``proj:code``, ``proj:shape``,
  ``proj:transform``, ``proj:bbox`` (the quick-looks are not on the grid).
  No ``proj:epsg``: v2.0.0 replaced it by ``proj:code`` and its schema
  refuses it (and pystac drops it when it reads an item), so stackstac 0.5,
  which reads only ``proj:epsg``, is given ``epsg``, ``resolution`` and
  ``bounds`` from these fields (``docs/products.md``);
* raster v2.0.0: band information lives in the STAC 1.1 common ``bands``
  array of each variable asset, one band (``name``, ``description``,
  ``nodata`` for floats, ``data_type``, ``unit``, ``statistics``) plus
  ``raster:spatial_resolution`` and ``raster:sampling``. v2 is the version
  written for STAC 1.1 (which pystac writes, and odc-stac reads);
* file v2.1.0 on every asset: ``file:checksum`` (SHA2-256 multihash) and ``file:size``;
* processing v1.2.0: ``processing:software`` (gvfuse and plugin versions),
  ``processing:lineage``, ``processing:level`` (``L3``: gridded, composited
  in time) and ``processing:version``; no ``processing:datetime``, since a
  month published again must be the same bytes;
* version v1.2.0: ``version`` (of the product, not of the software).

Common metadata: ``instruments`` (every instrument of the month's sensors),
and ``platform``/``constellation`` when the month's inputs have exactly one
(a list of all in ``gvfuse:platforms``/``gvfuse:constellations``), from the
product definition's sensors. ``gvfuse:observation_start_datetime`` and
``gvfuse:observation_end_datetime`` give the span of the image pairs behind
the month (first reference to last secondary acquisition), which runs over
the calendar month's ``start_datetime``/``end_datetime``. Empty objects are
left out of the properties (columnar tools such as stac-geoparquet cannot
store a struct without fields).

The month's full provenance is ``properties["gvfuse:provenance"]``
(:func:`gvfuse.publish.provenance.provenance_block`): input scenes are
identified by provider scene id, not by STAC links, because they are not STAC
items the publication can point at.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pystac
from rasterio.warp import transform as transform_points

from gvfuse.errors import InputError, excerpt
from gvfuse.model import Grid, Month, MonthlyProduct, SensorLegend
from gvfuse.product import ProductDefinition, SensorInfo, sensor_info
from gvfuse.publish.cog import (
    COG_MEDIA_TYPE,
    PNG_MEDIA_TYPE,
    QML_MEDIA_TYPE,
    VariableSpec,
    product_arrays,
    variable_specs,
)
from gvfuse.publish.provenance import lineage_text, software_versions

COLLECTION_FILE = "collection.json"
ITEMS_DIR = "items"

PROJECTION_V2 = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
RASTER_V2 = "https://stac-extensions.github.io/raster/v2.0.0/schema.json"
FILE_V2_1 = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
PROCESSING_V1_2 = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
VERSION_V1_2 = "https://stac-extensions.github.io/version/v1.2.0/schema.json"
ITEM_EXTENSIONS: tuple[str, ...] = (PROJECTION_V2, RASTER_V2, FILE_V2_1, PROCESSING_V1_2, VERSION_V1_2)
COLLECTION_EXTENSIONS: tuple[str, ...] = (VERSION_V1_2,)

PROVENANCE_KEY = "gvfuse:provenance"
#: ``processing:level`` of a month: gridded and composited in time from lower-level (L1) scenes.
PROCESSING_LEVEL = "L3"
_DECIMALS = 7


@attrs.frozen
class MonthFiles:
    """The product files of one month, as paths relative to the publication folder: ``cogs`` by variable."""

    cogs: Mapping[str, str]
    quicklook: str
    thumbnail: str
    style: str

    @property
    def all(self) -> tuple[str, ...]:
        """Every file, COGs first (in variable order), then quick-look, thumbnail and style."""
        return (*self.cogs.values(), self.quicklook, self.thumbnail, self.style)


def item_id(product_id: str, month: Month) -> str:
    """``<product-id>-YYYYMM``."""
    return f"{product_id}-{month.stem}"


def item_path(catalog_dir: str | Path, product_id: str, month: Month) -> Path:
    """Where the month's item is written: ``items/<item-id>.json``."""
    return Path(catalog_dir) / ITEMS_DIR / f"{item_id(product_id, month)}.json"


def _edge_points(grid: Grid, per_edge: int = 4) -> tuple[list[float], list[float]]:
    """The grid outline (pixel edges), densified, as map coordinates, counter-clockwise from top-left."""
    rows, cols = grid.shape
    steps = np.linspace(0.0, 1.0, per_edge, endpoint=False)
    ring = ([(c * cols, 0.0) for c in steps] + [(cols, r * rows) for r in steps]
            + [(cols - c * cols, rows) for c in steps] + [(0.0, rows - r * rows) for r in steps])
    ring = ring[::-1]  # top-left, down the left edge, ...: counter-clockwise for a north-up grid
    xs, ys = zip(*(grid.transform @ point for point in ring))
    return list(xs), list(ys)


def footprint_lonlat(grid: Grid) -> tuple[dict[str, Any], list[float]]:
    """GeoJSON polygon of the grid's outline in WGS 84 and its bbox, rounded to 1e-7 degrees."""
    xs, ys = _edge_points(grid)
    lons, lats = transform_points(grid.crs, "EPSG:4326", xs, ys)
    ring = [[round(lon, _DECIMALS), round(lat, _DECIMALS)] for lon, lat in zip(lons, lats)]
    ring.append(ring[0])
    bbox = [min(p[0] for p in ring), min(p[1] for p in ring), max(p[0] for p in ring), max(p[1] for p in ring)]
    return {"type": "Polygon", "coordinates": [ring]}, bbox


def projection_fields(grid: Grid) -> dict[str, Any]:
    """projection v2 fields of a grid: code (or WKT2 when there is no EPSG code), shape, transform, bbox."""
    epsg = grid.crs.to_epsg()
    fields: dict[str, Any] = {"proj:code": f"EPSG:{epsg}"} if epsg else {"proj:code": None,
                                                                        "proj:wkt2": grid.crs.to_wkt()}
    fields["proj:shape"] = [grid.rows, grid.cols]
    fields["proj:transform"] = [float(v) for v in tuple(grid.transform)[:6]]
    fields["proj:bbox"] = [float(v) for v in grid.bounds]
    return fields


def _round(value: float) -> float:
    return float(round(float(value), 6))


def band_object(spec: VariableSpec, array: np.ndarray, resolution_m: float) -> dict[str, Any]:
    """The STAC 1.1 band (raster v2) of one variable's COG: name, description, nodata (floats), data type,
    unit, statistics over valid cells (finite; every cell of an integer variable)."""
    valid = array[np.isfinite(array)] if spec.floating else array.ravel()
    band: dict[str, Any] = {"name": spec.name, "description": spec.description}
    if spec.floating:
        band["nodata"] = "nan"
    band.update({"data_type": spec.data_type, "unit": spec.unit, "raster:spatial_resolution": resolution_m,
                 "raster:sampling": "area"})
    if valid.size:
        band["statistics"] = {
            "minimum": _round(valid.min()), "maximum": _round(valid.max()),
            "mean": _round(valid.mean(dtype="float64")), "stddev": _round(valid.std(dtype="float64")),
            "valid_percent": _round(100.0 * valid.size / array.size),
        }
    return band


def without_empty_objects(value: Any) -> Any:
    """``value`` with every empty object (dict) left out, recursively; lists keep their length."""
    if isinstance(value, Mapping):
        pruned = {k: without_empty_objects(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if not (isinstance(v, Mapping) and not v)}
    if isinstance(value, list):
        return [without_empty_objects(v) for v in value]
    return value


def observation_span(block: Mapping[str, Any]) -> tuple[str, str] | None:
    """First reference and last secondary acquisition of the month's pairs (ISO 8601 UTC), if recorded."""
    starts = [p["reference"]["datetime"] for p in block["pairs"]
              if isinstance(p.get("reference"), Mapping) and p["reference"].get("datetime")]
    ends = [p["secondary"]["datetime"] for p in block["pairs"]
            if isinstance(p.get("secondary"), Mapping) and p["secondary"].get("datetime")]
    if not starts or not ends:
        return None
    first, last = (min(pystac.utils.str_to_datetime(str(t)) for t in starts),
                   max(pystac.utils.str_to_datetime(str(t)) for t in ends))
    start, end = (pystac.utils.datetime_to_str(t.astimezone(dt.timezone.utc)) for t in (first, last))
    return start, end


def input_metadata(block: Mapping[str, Any], legend: Sequence[SensorInfo]) -> dict[str, Any]:
    """STAC common metadata of the month's inputs (the sensors of its pairs), described by ``legend``."""
    known = {s.name: s for s in legend}
    used = sorted({str(p.get("sensor")) for p in block["pairs"] if p.get("sensor")})
    infos = [known.get(name) or sensor_info(name) for name in used]
    platforms = sorted({p for info in infos for p in info.platforms})
    constellations = sorted({info.constellation for info in infos if info.constellation})
    out: dict[str, Any] = {}
    instruments = sorted({i for info in infos for i in info.instruments})
    if instruments:
        out["instruments"] = instruments
    if len(platforms) == 1:
        out["platform"] = platforms[0]
    if len(constellations) == 1:
        out["constellation"] = constellations[0]
    if platforms:
        out["gvfuse:platforms"] = platforms
    if constellations:
        out["gvfuse:constellations"] = constellations
    return out


def build_item(
    product: MonthlyProduct,
    definition: ProductDefinition,
    block: Mapping[str, Any],
    files: MonthFiles,
    file_info: Mapping[str, Mapping[str, Any]],
    *,
    version: str,
) -> pystac.Item:
    """The month's Item. ``files`` are hrefs relative to the publication folder; ``file_info`` maps
    each of them to its ``file:checksum``/``file:size`` (a file without an entry has no asset)."""
    start, end = product.month.start, product.month.last_second
    # the month's middle, to the second: tools that stack items by time (stackstac, odc-stac) need a
    # datetime, and a month's mean velocity belongs to its middle (ITS_LIVE's mid_date)
    middle = (start + (product.month.end - start) / 2).replace(microsecond=0)
    geometry, bbox = footprint_lonlat(product.grid)
    legend = definition.legend(product.sensors)
    properties: dict[str, Any] = {
        "title": f"{definition.title}: {product.month}",
        "description": f"Fused monthly surface velocity for {product.month} ({definition.id}).",
        "version": version,
        "deprecated": False,
        **input_metadata(block, legend),
        "processing:level": PROCESSING_LEVEL,
        "processing:software": software_versions(block),
        "processing:version": str(block["software"]["version"]),
        "processing:lineage": lineage_text(block),
        "gvfuse:month": str(product.month),
        "gvfuse:sensor_flag_bits": SensorLegend([s.name for s in legend]).bits,
    }
    span = observation_span(block)
    if span is not None:
        properties["gvfuse:observation_start_datetime"], properties["gvfuse:observation_end_datetime"] = span
    properties[PROVENANCE_KEY] = dict(block)
    item = pystac.Item(
        id=item_id(definition.id, product.month),
        geometry=geometry,
        bbox=bbox,
        datetime=middle,
        start_datetime=start,
        end_datetime=end,
        properties=without_empty_objects(properties),
        collection=definition.id,
    )
    item.stac_extensions = list(ITEM_EXTENSIONS)
    up = "../"
    names = [s.name for s in legend]
    arrays = product_arrays(product, names)
    resolution = _round(max(product.grid.pixel_size_m))
    projection = projection_fields(product.grid)
    for spec in variable_specs(names):
        name = files.cogs[spec.name]
        item.add_asset(spec.name, pystac.Asset(
            href=up + name, media_type=COG_MEDIA_TYPE, roles=["data"],
            title=f"{spec.description} ({spec.unit}), {product.month}",
            extra_fields={**projection, "bands": [band_object(spec, arrays[spec.name], resolution)],
                          **file_info[name]},
        ))
    item.add_asset("quicklook", pystac.Asset(
        href=up + files.quicklook, media_type=PNG_MEDIA_TYPE, roles=["overview", "visual"],
        title=f"Speed and flow direction {product.month}", extra_fields=dict(file_info[files.quicklook]),
    ))
    item.add_asset("thumbnail", pystac.Asset(
        href=up + files.thumbnail, media_type=PNG_MEDIA_TYPE, roles=["thumbnail"],
        title=f"Speed thumbnail {product.month}", extra_fields=dict(file_info[files.thumbnail]),
    ))
    if files.style in file_info:
        item.add_asset("style", pystac.Asset(
            href=up + files.style, media_type=QML_MEDIA_TYPE, roles=["style", "metadata"],
            title=f"QGIS style of v (0 to {definition.speed_max_m_per_day:g} m/d)",
            extra_fields=dict(file_info[files.style]),
        ))
    for rel in (pystac.RelType.ROOT, pystac.RelType.PARENT, pystac.RelType.COLLECTION):
        item.add_link(pystac.Link(rel, up + COLLECTION_FILE, media_type=pystac.MediaType.JSON,
                                  title=definition.title))
    return item


def collection_extent(definition: ProductDefinition, items: Sequence[Mapping[str, Any]]) -> pystac.Extent:
    """The extent of the published items: the union of their bboxes, first start to last end;
    the definition's area and months while nothing is published."""
    boxes = [item["bbox"] for item in items if isinstance(item.get("bbox"), list) and len(item["bbox"]) == 4]
    if boxes:
        spatial = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                   max(b[3] for b in boxes)]
    else:
        area = definition.area
        spatial = [area.west_deg, area.south_deg, area.east_deg, area.north_deg]
    times = [(pystac.utils.str_to_datetime(item["properties"]["start_datetime"]),
              pystac.utils.str_to_datetime(item["properties"]["end_datetime"])) for item in items
             if "start_datetime" in item.get("properties", {}) and "end_datetime" in item.get("properties", {})]
    if times:
        interval = [min(t[0] for t in times), max(t[1] for t in times)]
    else:
        interval = [definition.first_month.start, definition.last_month.last_second]
    return pystac.Extent(pystac.SpatialExtent([spatial]), pystac.TemporalExtent([interval]))


def build_collection(definition: ProductDefinition, items: Sequence[Mapping[str, Any]], *,
                     version: str, assets: Mapping[str, Mapping[str, Any]] | None = None) -> pystac.Collection:
    """The Collection from the product definition, linking the given items (parsed JSON; sorted by id),
    its extent computed from them (:func:`collection_extent`); ``assets`` are collection-level assets
    (keyword arguments of ``pystac.Asset``)."""
    collection = pystac.Collection(
        id=definition.id,
        title=definition.title,
        description=definition.description,
        license=definition.license,
        keywords=list(definition.keywords),
        providers=[pystac.Provider(name=str(p["name"]), roles=list(p.get("roles", [])),
                                   url=p.get("url"), description=p.get("description"))
                   for p in definition.providers],
        extent=collection_extent(definition, items),
        extra_fields={"version": version, "deprecated": False},
    )
    collection.stac_extensions = list(COLLECTION_EXTENSIONS)
    for key, fields in (assets or {}).items():
        collection.add_asset(key, pystac.Asset(**fields))
    collection.set_self_href(None)
    collection.links = [pystac.Link(pystac.RelType.ROOT, f"./{COLLECTION_FILE}", media_type=pystac.MediaType.JSON,
                                    title=definition.title)]
    for identifier in sorted(str(item["id"]) for item in items):
        collection.links.append(pystac.Link(pystac.RelType.ITEM, f"./{ITEMS_DIR}/{identifier}.json",
                                            media_type=pystac.MediaType.GEOJSON))
    return collection


def stac_json(obj: pystac.Item | pystac.Collection) -> str:
    """Deterministic JSON text of an item or collection, hrefs exactly as built (relative)."""
    data = obj.to_dict(include_self_link=False, transform_hrefs=False)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def published_item_ids(catalog_dir: str | Path) -> list[str]:
    """Ids of the items present in ``catalog_dir/items`` (file stems), sorted."""
    folder = Path(catalog_dir) / ITEMS_DIR
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def published_items(catalog_dir: str | Path) -> list[dict[str, Any]]:
    """The items present in ``catalog_dir/items``, parsed, sorted by file stem; the ``id`` is the stem (the
    name the collection links). An item that does not parse is kept as ``{"id": stem}``."""
    items = []
    for stem in published_item_ids(catalog_dir):
        try:
            item = read_json_object(Path(catalog_dir) / ITEMS_DIR / f"{stem}.json")
        except InputError:
            item = {}
        items.append({**item, "id": stem})
    return items


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from a publication file; malformed JSON or another JSON value is an :class:`InputError`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"malformed JSON: {exc}", source=path, field="document") from None
    if not isinstance(data, dict):
        raise InputError(f"holds a JSON {type(data).__name__}, not an object", source=path, field="document")
    return data


def linked_item_paths(catalog_dir: str | Path, collection: Mapping[str, Any]) -> list[Path]:
    """The resolved paths of the items ``collection`` links, in link order.

    A link that is not an object with a string ``href``, or whose target
    resolves outside ``catalog_dir``, is an :class:`InputError`.
    """
    root = Path(catalog_dir).resolve()
    links = collection.get("links", [])
    out = []
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict) or link.get("rel") != "item":
            continue
        href = link.get("href")
        if not isinstance(href, str) or "://" in href:
            raise InputError(f"item link {excerpt(str(href))} is not a relative path", source=root / COLLECTION_FILE,
                             field="links")
        path = (root / href).resolve()
        if not path.is_relative_to(root):
            raise InputError(f"item link {excerpt(href)} leaves the publication folder", source=root / COLLECTION_FILE,
                             field="links")
        out.append(path)
    return out


def read_items(catalog_dir: str | Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every item the collection links, as ``(path, parsed JSON)``, in link order.

    Raises ``FileNotFoundError`` when ``collection.json`` is missing, and
    :class:`InputError` for malformed JSON or a link leaving ``catalog_dir``; a
    linked item that is missing is returned with an empty dict.
    """
    catalog_dir = Path(catalog_dir)
    collection_file = catalog_dir / COLLECTION_FILE
    if not collection_file.exists():
        raise FileNotFoundError(collection_file)
    paths = linked_item_paths(catalog_dir, read_json_object(collection_file))
    return [(path, read_json_object(path) if path.is_file() else {}) for path in paths]
