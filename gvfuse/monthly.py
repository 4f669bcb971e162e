"""From cached pair results to one fused, validated month.

* :func:`sensor_month` combines the pairs of one sensor in one month into the
  sensor's monthly map: a robust error-weighted mean of the pairs' vx and vy
  (the same Tukey IRLS as the ``robust`` weighting, :func:`gvfuse.fusion.robust_weights`),
  so a pair with blunders does not pull the month.
* :func:`fuse_month` fuses the sensors with the configured weighting plugin,
  against the reference sensor (UAV) when the month has one.
* :func:`validate_month` runs the validators on the fused map and on every
  sensor, and :func:`monthly_product` assembles the :class:`MonthlyProduct`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gvfuse import fusion
from gvfuse.errors import GvfuseError
from gvfuse.model import MonthlyProduct, Provenance, VelocityField
from gvfuse.plugins import PluginSet, plugin_errors
from gvfuse.regrid import ERROR_BAND


def sensor_month(pairs: Mapping[str, VelocityField]) -> VelocityField:
    """One sensor's monthly map from its pairs (keyed by pair id), with error and pair count.

    Quality bands: ``error_m_per_day`` (1-sigma per component, the RMS of the
    propagated vx and vy errors) and ``count`` (pair observations that
    contributed to each cell).
    """
    stack = fusion.stack_fields(pairs)
    result = fusion.fusion_result(stack, fusion.robust_weights(stack),
                                  dt_days=float(np.mean([f.dt_days for f in pairs.values()])))
    q = result.field.quality
    error = np.sqrt((q["vx_error_m_per_day"] ** 2 + q["vy_error_m_per_day"] ** 2) / 2)
    return VelocityField(result.field.vx_m_per_day, result.field.vy_m_per_day, result.field.grid,
                         result.field.dt_days, quality={ERROR_BAND: error.astype("float32"), "count": q["count"]},
                         provenance=Provenance(inputs=tuple(sorted(pairs))))


def weighting_instance(plugins: PluginSet, name: str, parameters: Mapping[str, Any],
                       weights: Mapping[str, float] | None = None, weights_from: str = "") -> Any:
    """The configured weighting; fitted weights of another month are passed when it takes them."""
    reg = plugins.get("weightings", name)
    kwargs = dict(parameters)
    accepted = inspect.signature(reg.cls.__init__).parameters
    if weights and "weights" in accepted and "weights" not in kwargs:
        kwargs.update(weights=dict(weights), weights_from=weights_from)
    with plugin_errors(reg.plugin.name, f"weighting {name!r}"):
        return reg.cls(**kwargs)


def fuse_month(plugins: PluginSet, name: str, parameters: Mapping[str, Any], sensors: Mapping[str, VelocityField],
               reference: VelocityField | None, weights: Mapping[str, float] | None = None,
               weights_from: str = "") -> fusion.FusionResult:
    """Fuse the month's sensor maps with the weighting ``name``."""
    weighting = weighting_instance(plugins, name, parameters, weights, weights_from)
    reg = plugins.get("weightings", name)
    with plugin_errors(reg.plugin.name, f"weighting {name!r}"):
        return weighting.fuse(sensors, reference=reference)


def _contributed(sensors: Mapping[str, VelocityField], fused: VelocityField) -> dict[str, np.ndarray]:
    """Per sensor, where it contributed to the fused field (the fusion's bitmask is in sorted-name order)."""
    bits = np.nan_to_num(fused.quality["sensor_mask"]).astype("uint32")
    return {name: (bits >> np.uint32(i)) & np.uint32(1) == 1 for i, name in enumerate(sorted(sensors))}


def observation_count(sensors: Mapping[str, VelocityField], fused: VelocityField) -> np.ndarray:
    """Pair observations behind each fused cell: the pair counts of the sensors that contributed."""
    total = np.zeros(fused.grid.shape, dtype="float32")
    for name, used in _contributed(sensors, fused).items():
        total += np.where(used, np.nan_to_num(sensors[name].quality["count"]), 0)
    return total


def sensor_bitmask(sensors: Mapping[str, VelocityField], fused: VelocityField, legend: Sequence[str]) -> np.ndarray:
    """Bit ``i`` set where ``legend[i]`` contributed: one legend for every month of a product."""
    out = np.zeros(fused.grid.shape, dtype="uint32")
    for name, used in _contributed(sensors, fused).items():
        out |= used.astype("uint32") << np.uint32(legend.index(name))
    return out.astype("float32")


def validate_month(plugins: PluginSet, names: Sequence[str], fused: VelocityField,
                   sensors: Mapping[str, VelocityField], context: Mapping[str, Any]) -> dict[str, Any]:
    """Run each validator whose inputs exist; the fused map first, then per sensor for the UAV comparison.

    A validator whose context is missing (no stable mask, no UAV that month)
    is reported as skipped with the reason, not run on invented inputs.
    """
    needs = {"stable-ground": "stable_mask", "uav": "reference", "strain-rate": "on_ice_mask"}
    figures: dict[str, Any] = {}
    for name in names:
        key = needs.get(name)
        if key and context.get(key) is None:
            figures[name] = {"skipped": f"no {key.replace('_', ' ')} for this month"}
            continue
        reg = plugins.get("validators", name)
        try:
            with plugin_errors(reg.plugin.name, f"validator {name!r}"):
                validator = reg.cls()
                figures[name] = {"fused": dict(validator.validate(fused, **context))}
                if name == "uav":
                    for sensor, field in sorted(sensors.items()):
                        figures[name][sensor] = dict(validator.validate(field, **context))
        except GvfuseError as exc:
            figures[name] = {"error": str(exc)}
    return figures


def monthly_product(month: str, result: fusion.FusionResult, sensors: Mapping[str, VelocityField],
                    legend: Sequence[str], validation: Mapping[str, Any], provenance: Provenance) -> MonthlyProduct:
    """The published month: fused bands, pair-observation count, sensor bitmask and everything said about it.

    ``legend`` is the product's fixed sensor order: bit ``i`` of ``sensor_mask`` is ``legend[i]``.
    """
    f = result.field
    return MonthlyProduct(
        month=month, vx_m_per_day=f.vx_m_per_day, vy_m_per_day=f.vy_m_per_day,
        v_error_m_per_day=f.quality["v_error_m_per_day"], count=observation_count(sensors, f),
        sensor_mask=sensor_bitmask(sensors, f, legend), grid=f.grid, sensors=tuple(legend),
        weights=dict(result.weights), validation={"weighting": dict(result.details), **validation},
        provenance=provenance,
    )
