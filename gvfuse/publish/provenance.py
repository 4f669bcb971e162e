"""The provenance block of a published month: one JSON-able dict, written everywhere.

The same block goes into the STAC item (``properties["gvfuse:provenance"]``),
the intake entry's metadata (``metadata["provenance"]``) and, summarised, the
COG's tags. It is built from :class:`gvfuse.model.MonthlyProduct` and its
:class:`gvfuse.model.Provenance`, whose ``parameters["pairs"]`` the pipeline
fills with one dict per pair::

    {"pair_id", "sensor", "reference": {"id", "sensor", "datetime"},
     "secondary": {...}, "dt_days", "tracker", "tracker_parameters"}

Everything is made canonical so publishing twice gives the same bytes: keys
sorted, pairs sorted by ``pair_id``, inputs by id, datetimes as ISO 8601 UTC
(``...Z``), tuples and sets as lists, numpy scalars as Python numbers, and
non-finite floats as ``null`` (JSON has no NaN).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np

import gvfuse
from gvfuse.model import MonthlyProduct, SensorLegend


def canonical(value: Any) -> Any:
    """A JSON-able, deterministically ordered copy of ``value``."""
    if isinstance(value, Mapping):
        return {str(k): canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (set, frozenset)):
        return [canonical(v) for v in sorted(value, key=str)]
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, np.ndarray):
        return [canonical(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return canonical(value.item())
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"datetime {value.isoformat()} has no time zone; provenance needs UTC")
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return value.as_posix()
    return str(value)


def _scene_record(raw: Any) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        record = canonical(raw)
        return {"id": str(record.get("id", "")), "sensor": record.get("sensor"),
                "datetime": record.get("datetime"), **{k: v for k, v in record.items()
                                                       if k not in ("id", "sensor", "datetime")}}
    return {"id": str(raw), "sensor": None, "datetime": None}


def contributing_sensors(product: MonthlyProduct) -> list[str]:
    """The month's sensors that gave at least one cell a value (bit ``i`` of ``sensor_mask`` is
    ``product.sensors[i]``), in that order: a sensor whose every pair failed is not one of them."""
    used = SensorLegend(product.sensors).decode(product.sensor_mask)
    return [name for name in product.sensors if used[name].any()]


def provenance_block(product: MonthlyProduct) -> dict[str, Any]:
    """The month's provenance, canonical and JSON-able (layout in ``docs/products.md``).

    ``inputs`` is the union of ``provenance.inputs`` and every scene named by a
    pair, each as ``{"id", "sensor", "datetime"}`` (``null`` where only the id
    is known).
    """
    prov = product.provenance
    parameters = dict(prov.parameters)
    pairs = sorted((canonical(p) for p in parameters.pop("pairs", ()) or ()),
                   key=lambda p: str(p.get("pair_id", "")))
    scenes: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        for side in ("reference", "secondary"):
            if side in pair:
                record = _scene_record(pair[side])
                scenes.setdefault(record["id"], record)
    for scene_id in prov.inputs:
        scenes.setdefault(str(scene_id), _scene_record(scene_id))
    return {
        "month": str(product.month),
        "software": {"name": prov.software, "version": prov.software_version or gvfuse.__version__},
        "plugins": canonical(prov.plugins),
        "sensors": contributing_sensors(product),
        "inputs": [scenes[k] for k in sorted(scenes)],
        "pairs": pairs,
        "weights": canonical(product.weights),
        "validation": canonical(product.validation),
        "parameters": canonical(parameters),
    }


def software_versions(block: Mapping[str, Any]) -> dict[str, str]:
    """``processing:software``: gvfuse's version, then each plugin's, by name."""
    software = block["software"]
    return {str(software["name"]): str(software["version"]),
            **{str(k): str(v) for k, v in block["plugins"].items() if k != software["name"]}}


def lineage_text(block: Mapping[str, Any]) -> str:
    """``processing:lineage``: one human-readable paragraph saying how the month was made."""
    per_sensor: dict[str, list[str]] = {}
    for pair in block["pairs"]:
        per_sensor.setdefault(str(pair.get("sensor")), []).append(str(pair.get("tracker")))
    pair_text = "; ".join(
        f"{sensor}: {len(trackers)} pair(s) tracked with {', '.join(sorted(set(trackers)))}"
        for sensor, trackers in sorted(per_sensor.items())
    ) or "no pair recorded"
    weights = ", ".join(f"{k} = {v:.4g}" if isinstance(v, (int, float)) else f"{k} = {v}"
                        for k, v in block["weights"].items()) or "none recorded"
    return (
        f"Monthly surface velocity for {block['month']} fused by {block['software']['name']} "
        f"{block['software']['version']} from {len(block['inputs'])} input scene(s) in "
        f"{len(block['pairs'])} image pair(s) ({pair_text}). Sensors: {', '.join(block['sensors']) or 'none'}; "
        f"sensor weights: {weights}. Velocity components are averaged (never speeds); v is computed "
        f"from the fused vx, vy."
    )
