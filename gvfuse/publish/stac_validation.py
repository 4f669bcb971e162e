"""Validate published STAC JSON offline, against extension schemas kept in a folder.

pystac ships the core STAC 1.1 and GeoJSON schemas but downloads extension
schemas on demand. :func:`offline_validator` seeds a validator's schema cache
with every ``*.json`` schema in a folder, keyed by the schema's ``$id``
without a trailing ``#`` (the URI items list in ``stac_extensions``), so
nothing is fetched; an extension whose schema is not in the folder is
reported, never downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pystac
from pystac.errors import STACValidationError
from pystac.validation import JsonSchemaSTACValidator

from gvfuse.publish.stac import COLLECTION_FILE, read_items, read_json_object


def schema_cache_from_dir(schema_dir: str | Path) -> dict[str, dict[str, Any]]:
    """``{$id without '#': schema}`` for every JSON schema file in ``schema_dir``."""
    cache = {}
    for path in sorted(Path(schema_dir).glob("*.json")):
        schema = read_json_object(path)  # malformed: an InputError naming the file
        schema_id = schema.get("$id") or schema.get("id")
        if isinstance(schema_id, str) and schema_id.startswith("http"):
            cache[schema_id.rstrip("#")] = schema
    return cache


def offline_validator(schema_dir: str | Path) -> JsonSchemaSTACValidator:
    """A pystac validator whose cache holds pystac's core schemas plus those in ``schema_dir``."""
    validator = JsonSchemaSTACValidator()
    validator.schema_cache.update(schema_cache_from_dir(schema_dir))
    return validator


def validate_stac_dict(data: dict[str, Any], validator: JsonSchemaSTACValidator) -> list[str]:
    """Problems of one STAC object (empty when valid); missing extension schemas are problems too."""
    label = f"{data.get('type', '?')} {data.get('id', '?')}"
    missing = [uri for uri in data.get("stac_extensions", []) if uri not in validator.schema_cache]
    if missing:
        return [f"{label}: no offline schema for extension(s) {missing}"]
    try:
        pystac.validation.validate_dict(data, extensions=list(data.get("stac_extensions", [])),
                                        validator=validator)
    except STACValidationError as exc:
        return [f"{label}: {exc}"]
    return []


def validate_catalog(catalog_dir: str | Path, schema_dir: str | Path) -> list[str]:
    """Validate ``collection.json`` and every item it links, offline. Returns the problems found."""
    catalog_dir = Path(catalog_dir)
    validator = offline_validator(schema_dir)
    collection_path = catalog_dir / COLLECTION_FILE
    if not collection_path.is_file():
        return [f"{collection_path}: missing"]
    problems = validate_stac_dict(read_json_object(collection_path), validator)
    for path, item in read_items(catalog_dir):
        problems += [f"{path}: missing"] if not item else validate_stac_dict(item, validator)
    return problems
