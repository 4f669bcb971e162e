"""STAC metadata of a published product: one Collection, one Item per month.

Layout inside a publication folder (all links relative, no self links, so the
folder can be moved or served as it is)::

    collection.json                  the Collection (root of the STAC catalog)
    items/<product-id>-YYYYMM.json   one Item per month

Items use STAC 1.1 with these extensions (schema URIs in :data:`ITEM_EXTENSIONS`):

* projection v2.0.0 on the ``data`` asset: ``proj:code``, ``proj:shape``,
  ``proj:transform``, ``proj:bbox`` (the quick-looks are not on the grid);
* raster v2.0.0: band information lives in the STAC 1.1 common ``bands``
  array of the ``data`` asset (``name``, ``description``, ``nodata``,
  ``data_type``, ``unit``, ``statistics``) plus ``raster:spatial_resolution``
  and ``raster:sampling``. v2 is the version written for STAC 1.1 (which
  pystac writes); v1.1.0's ``raster:bands`` is deprecated there;
* file v2.1.0 on every asset: ``file:checksum`` (SHA2-256 multihash) and ``file:size``;
* processing v1.2.0: ``processing:software`` (gvfuse and plugin versions) and
  ``processing:lineage``;
* version v1.2.0: ``version`` (of the product, not of the software).

The month's full provenance is ``properties["gvfuse:provenance"]``
(:func:`gvfuse.publish.provenance.provenance_block`): input scenes are
identified by provider scene id, not by STAC links, because they are not STAC
items the publication can point at.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pystac
from rasterio.warp import transform as transform_points

from gvfuse.errors import InputError, excerpt
from gvfuse.model import Grid, Month, MonthlyProduct
from gvfuse.product import ProductDefinition
from gvfuse.publish.cog import COG_MEDIA_TYPE, PNG_MEDIA_TYPE, PRODUCT_BANDS, product_band_arrays
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
_DECIMALS = 7


@attrs.frozen
class MonthFiles:
    """The product files of one month, as paths relative to the publication folder."""

    cog: str
    quicklook: str
    thumbnail: str


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


def band_objects(product: MonthlyProduct, bits: Mapping[str, int]) -> list[dict[str, Any]]:
    """STAC 1.1 ``bands`` of the COG (raster v2): name, description, nodata, data type, unit, statistics."""
    resolution = _round(max(product.grid.pixel_size_m))
    bands = []
    for spec, array in zip(PRODUCT_BANDS, product_band_arrays(product).values()):
        finite = array[np.isfinite(array)]
        band: dict[str, Any] = {
            "name": spec.name, "description": spec.description, "nodata": "nan", "data_type": "float32",
            "unit": spec.unit, "raster:spatial_resolution": resolution, "raster:sampling": "area",
        }
        if finite.size:
            band["statistics"] = {
                "minimum": _round(finite.min()), "maximum": _round(finite.max()),
                "mean": _round(finite.mean(dtype="float64")), "stddev": _round(finite.std(dtype="float64")),
                "valid_percent": _round(100.0 * finite.size / array.size),
            }
        if spec.name == "sensor_mask":
            band["gvfuse:sensor_mask_bits"] = dict(bits)
        bands.append(band)
    return bands


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
    each of them to its ``file:checksum``/``file:size``."""
    start, end = product.month.start, product.month.last_second
    # the month's middle, to the second: tools that stack items by time (stackstac, odc-stac) need a
    # datetime, and a month's mean velocity belongs to its middle (ITS_LIVE's mid_date)
    middle = (start + (product.month.end - start) / 2).replace(microsecond=0)
    geometry, bbox = footprint_lonlat(product.grid)
    item = pystac.Item(
        id=item_id(definition.id, product.month),
        geometry=geometry,
        bbox=bbox,
        datetime=middle,
        start_datetime=start,
        end_datetime=end,
        properties={
            "title": f"{definition.title}: {product.month}",
            "description": f"Fused monthly surface velocity for {product.month} ({definition.id}).",
            "version": version,
            "deprecated": False,
            "processing:software": software_versions(block),
            "processing:lineage": lineage_text(block),
            "gvfuse:month": str(product.month),
            PROVENANCE_KEY: dict(block),
        },
        collection=definition.id,
    )
    item.stac_extensions = list(ITEM_EXTENSIONS)
    up = "../"
    item.add_asset("data", pystac.Asset(
        href=up + files.cog, media_type=COG_MEDIA_TYPE, roles=["data"],
        title=f"Surface velocity {product.month} (vx, vy, v, v_error, count, sensor_mask)",
        extra_fields={**projection_fields(product.grid), "bands": band_objects(product, block["sensor_mask_bits"]),
                      **file_info[files.cog]},
    ))
    item.add_asset("quicklook", pystac.Asset(
        href=up + files.quicklook, media_type=PNG_MEDIA_TYPE, roles=["overview", "visual"],
        title=f"Speed and flow direction {product.month}", extra_fields=dict(file_info[files.quicklook]),
    ))
    item.add_asset("thumbnail", pystac.Asset(
        href=up + files.thumbnail, media_type=PNG_MEDIA_TYPE, roles=["thumbnail"],
        title=f"Speed thumbnail {product.month}", extra_fields=dict(file_info[files.thumbnail]),
    ))
    for rel in (pystac.RelType.ROOT, pystac.RelType.PARENT, pystac.RelType.COLLECTION):
        item.add_link(pystac.Link(rel, up + COLLECTION_FILE, media_type=pystac.MediaType.JSON,
                                  title=definition.title))
    return item


def build_collection(definition: ProductDefinition, item_ids: list[str], *, version: str) -> pystac.Collection:
    """The Collection from the product definition, linking the given items (sorted)."""
    start, end = definition.first_month.start, definition.last_month.last_second
    area = definition.area
    collection = pystac.Collection(
        id=definition.id,
        title=definition.title,
        description=definition.description,
        license=definition.license,
        keywords=list(definition.keywords),
        providers=[pystac.Provider(name=str(p["name"]), roles=list(p.get("roles", [])),
                                   url=p.get("url"), description=p.get("description"))
                   for p in definition.providers],
        extent=pystac.Extent(
            pystac.SpatialExtent([[area.west_deg, area.south_deg, area.east_deg, area.north_deg]]),
            pystac.TemporalExtent([[start, end]]),
        ),
        extra_fields={"version": version, "deprecated": False},
    )
    collection.stac_extensions = list(COLLECTION_EXTENSIONS)
    collection.set_self_href(None)
    collection.links = [pystac.Link(pystac.RelType.ROOT, f"./{COLLECTION_FILE}", media_type=pystac.MediaType.JSON,
                                    title=definition.title)]
    for identifier in sorted(item_ids):
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


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from a publication file; malformed JSON or another JSON value is an :class:`InputError`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
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
