"""One month, from cached pair results to the product: per-sensor maps, the weighting's fit, fusion.

* :func:`sensor_month` combines the pairs of one sensor in one month into the
  sensor's monthly map: a robust error-weighted mean of the pairs' vx and vy
  (the Tukey IRLS of :func:`gvfuse.fusion.robust_weights`), so a pair with
  blunders does not pull the month.
* :func:`fit_months` asks the configured weighting for each month's own fit
  (against the reference sensor, the UAV, when the month has one), and
  :func:`fit_for` hands a month its own fit or, failing that, lends it the
  fit of the nearest month that has one — for any weighting that fits.
* :func:`fuse_month` fuses the sensors with that fit; :func:`monthly_product`
  assembles the :class:`~gvfuse.model.MonthlyProduct`: the fused bands and
  their component errors, the pair observations behind each cell (the
  fusion's own count when it makes one) and the sensor bitmask in the
  product's fixed legend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from gvfuse import fusion
from gvfuse.errors import GvfuseError, InputError
from gvfuse.interfaces import Weighting
from gvfuse.model import (
    ERROR_BAND,
    FusionResult,
    Month,
    MonthlyProduct,
    Provenance,
    SensorLegend,
    VelocityField,
    WeightFit,
)
from gvfuse.plugins import PluginSet, Registration, plugin_errors


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
    count = np.sum([used for used in result.contributing.values()], axis=0).astype("float32")
    return VelocityField(result.field.vx_m_per_day, result.field.vy_m_per_day, result.field.grid,
                         result.field.dt_days, quality={ERROR_BAND: error.astype("float32"), "count": count},
                         provenance=Provenance(inputs=tuple(sorted(pairs))))


@attrs.frozen
class ConfiguredWeighting:
    """The run's weighting: its registration (for error messages) and its instance."""

    registration: Registration
    instance: Weighting

    @classmethod
    def create(cls, plugins: PluginSet, name: str, parameters: Mapping[str, Any]) -> ConfiguredWeighting:
        """The registered weighting ``name``, constructed with the configured ``parameters``."""
        registration = plugins.get("weightings", name)
        assert issubclass(registration.cls, Weighting)  # checked when the plugin registered it
        with plugin_errors(registration.plugin.name, f"weighting {name!r}"):
            return cls(registration, registration.cls(**parameters))

    def guarded(self) -> Any:
        """A context in which an unexpected exception is re-raised naming the weighting's plugin."""
        return plugin_errors(self.registration.plugin.name, f"weighting {self.registration.name!r}")


@attrs.frozen
class MonthFit:
    """A month's own fit; or why the weighting could not fit it (``reason``: the month borrows a fit);
    or the error that stops the month (``error``). All empty: the scheme fits nothing."""

    fit: WeightFit | None = None
    reason: str = ""
    error: str = ""


def fit_months(weighting: ConfiguredWeighting, sensors: Mapping[Month, Mapping[str, VelocityField]],
               references: Mapping[Month, VelocityField | None]) -> dict[Month, MonthFit]:
    """Each month's own fit (months without sensor maps are not fitted).

    A weighting's :class:`~gvfuse.errors.InputError` from ``fit`` means "not
    possible this month": it is recorded as the reason, and the month will
    borrow a fit. Any other error (a failing plugin) is the month's error.
    """
    fits: dict[Month, MonthFit] = {}
    for month, maps in sensors.items():
        if not maps:
            continue
        try:
            with weighting.guarded():
                fits[month] = MonthFit(weighting.instance.fit(maps, references.get(month), month=month))
        except InputError as exc:
            fits[month] = MonthFit(reason=str(exc))
        except GvfuseError as exc:
            fits[month] = MonthFit(error=str(exc))
    return fits


def fit_for(month: Month, fits: Mapping[Month, MonthFit]) -> WeightFit | None:
    """The month's own fit; else the fit of the nearest month that has one (the earlier on a tie), lent.

    A lent fit carries ``borrowed_from``, the month it was made on.
    """
    own = fits.get(month)
    if own is not None and own.fit is not None:
        return own.fit
    fitted = [m for m, f in fits.items() if f.fit is not None]
    if not fitted:
        return None
    nearest = min(fitted, key=lambda m: (abs(month.months_to(m)), m))
    lent = fits[nearest].fit
    assert lent is not None
    return attrs.evolve(lent, borrowed_from=str(nearest))


def fuse_month(weighting: ConfiguredWeighting, sensors: Mapping[str, VelocityField], fitted: WeightFit | None,
               fit_failure: str = "") -> FusionResult:
    """Fuse the month's sensor maps; a failed own fit is recorded as ``details["fit_not_possible"]``."""
    with weighting.guarded():
        result: FusionResult = weighting.instance.fuse(sensors, fitted=fitted)
    if not isinstance(result, FusionResult):
        raise InputError(f"fuse() returned {type(result).__name__}, not a FusionResult",
                         source=f"weighting {weighting.registration.name!r}")
    if fit_failure:
        result = attrs.evolve(result, details={**result.details, "fit_not_possible": fit_failure})
    return result


#: Fewer stable-ground cells than this and the errors are left as the fusion stated them.
MIN_STABLE_CELLS = 30


def calibrate_on_stable_ground(result: FusionResult, stable: np.ndarray) -> FusionResult:
    """Scale the fused month's errors so that they describe its scatter on ice-free ground.

    On stable ground the true velocity is zero, so the fused vx and vy there
    are errors: their root mean square over the root mean square of the stated
    1-sigma (per component) is the factor every error band is multiplied by
    (robust: values beyond 5 NMAD are left out of the mean square; clipped to
    1..20: errors are raised where stable ground shows them too small, never
    lowered, since ice-free ground is the easy case). This is the check by which an error model is judged (Hugonnet et
    al. 2022, IEEE JSTARS 15:6456, for elevation; ITS_LIVE's
    ``error_stationary`` for velocity), applied to the published errors; the
    factor and the cells are recorded in ``details["stable_ground_error_calibration"]``.
    """
    f = result.field
    q = f.quality
    sigma = q.get("vx_error_m_per_day")
    if sigma is None:
        sigma = q["v_error_m_per_day"]
    cells = stable & np.isfinite(f.vx_m_per_day) & np.isfinite(f.vy_m_per_day) & np.isfinite(sigma) & (sigma > 0)
    if cells.sum() < MIN_STABLE_CELLS:
        return result
    values = np.concatenate([f.vx_m_per_day[cells], f.vy_m_per_day[cells]]).astype(float)
    centre = np.median(values)
    spread = 1.4826 * np.median(np.abs(values - centre))
    kept = values[np.abs(values - centre) <= 5 * max(spread, 1e-12)]
    # Only ever raised: ice-free ground is the easy case, and errors that hold there may not on ice.
    factor = float(np.clip(np.sqrt(np.mean(kept**2) / np.mean(sigma[cells].astype(float) ** 2)), 1.0, 20.0))
    quality = {name: (band * factor).astype("float32") if name.endswith("error_m_per_day") else band
               for name, band in q.items()}
    field = VelocityField(f.vx_m_per_day, f.vy_m_per_day, f.grid, f.dt_days, quality=quality,
                          provenance=f.provenance)
    details = {**result.details, "stable_ground_error_calibration": {"factor": factor, "cells": int(cells.sum())}}
    return attrs.evolve(result, field=field, details=details)


def observation_count(sensors: Mapping[str, VelocityField], contributing: Mapping[str, np.ndarray]) -> np.ndarray:
    """Pair observations behind each fused cell: the pair counts of the sensors that contributed there."""
    grid = next(iter(sensors.values())).grid
    total = np.zeros(grid.shape, dtype="float32")
    for name in sorted(sensors):
        if name in contributing:
            total += np.where(contributing[name], np.nan_to_num(sensors[name].quality["count"]), 0)
    return total


def monthly_product(month: Month, result: FusionResult, sensors: Mapping[str, VelocityField],
                    legend: Sequence[str], validation: Mapping[str, Any], provenance: Provenance) -> MonthlyProduct:
    """The published month: fused bands, pair-observation count, sensor bitmask and everything said about it.

    ``legend`` is the product's fixed sensor order: bit ``i`` of ``sensor_mask`` is ``legend[i]``.
    """
    f = result.field
    codec = SensorLegend(legend)
    return MonthlyProduct(
        month=month, vx_m_per_day=f.vx_m_per_day, vy_m_per_day=f.vy_m_per_day,
        v_error_m_per_day=f.quality["v_error_m_per_day"],
        count=observation_count(sensors, result.contributing) if result.count is None else result.count,
        sensor_mask=codec.encode(result.contributing, f.grid.shape).astype("float32"), grid=f.grid,
        sensors=codec.sensors, weights=dict(result.weights),
        validation={"weighting": dict(result.details), **validation}, provenance=provenance,
        vx_error_m_per_day=f.quality.get("vx_error_m_per_day"), vy_error_m_per_day=f.quality.get("vy_error_m_per_day"),
    )
