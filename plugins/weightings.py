"""Bundled weighting schemes: thin classes around :mod:`gvfuse.fusion`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from gvfuse import fusion
from gvfuse.errors import ConfigError
from gvfuse.hookspecs import hookimpl
from gvfuse.interfaces import Weighting
from gvfuse.model import FusionResult, Month, VelocityField, WeightFit


def _mean_dt_days(fields: Mapping[str, VelocityField]) -> float:
    return float(np.mean([f.dt_days for f in fields.values()]))


class _CellWeighting(Weighting):
    """A scheme defined by a function from the sensor stack to cell weights."""

    cell_weights: ClassVar[staticmethod[[fusion.SensorStack], np.ndarray]]

    def fuse(self, fields: Mapping[str, VelocityField], *, fitted: WeightFit | None = None) -> FusionResult:
        stack = fusion.stack_fields(fields)
        return fusion.fusion_result(stack, type(self).cell_weights(stack), dt_days=_mean_dt_days(fields),
                                    details={"scheme": self.name})


class EqualWeighting(_CellWeighting):
    name = "equal"
    description = "plain mean of the sensors with a value (baseline)"
    cell_weights = staticmethod(fusion.equal_weights)


class InverseVarianceWeighting(_CellWeighting):
    name = "inverse-variance"
    description = "error-weighted mean (1/sigma^2) with propagated, disagreement-inflated error"
    cell_weights = staticmethod(fusion.inverse_variance_weights)


class RobustWeighting(_CellWeighting):
    name = "robust"
    description = "Tukey-biweight IRLS: a blundering sensor does not pull the fused value"
    cell_weights = staticmethod(fusion.robust_weights)


FALLBACKS: dict[str, type[_CellWeighting]] = {
    cls.name: cls for cls in (EqualWeighting, InverseVarianceWeighting, RobustWeighting)
}


class WlsUavWeighting(Weighting):
    """The reference method: sensor weights fitted to UAV velocities, re-normalised per cell.

    :meth:`fit` fits the weights on the cells where the UAV and every sensor
    have a value (:func:`gvfuse.fusion.fit_reference_weights`); it raises
    :class:`~gvfuse.errors.InputError` when too few cells allow it. :meth:`fuse`
    uses, in this order: the month's own fit, ``weights`` given in the
    configuration, a fit borrowed from the nearest month, and failing all of
    them the ``fallback`` scheme.
    """

    name = "wls-uav"
    description = "weights fitted by WLS to UAV velocities (non-negative, sum 1), mask re-normalised per cell"

    def __init__(self, fallback: str = "inverse-variance", weights: Mapping[str, float] | None = None,
                 min_cells: int = 10) -> None:
        if fallback not in FALLBACKS:
            raise ConfigError(f"unknown fallback {fallback!r}; choose one of {sorted(FALLBACKS)}",
                              source="weighting wls-uav", field="fallback")
        self.fallback = fallback
        self.weights = dict(weights or {})
        self.min_cells = min_cells

    def fit(self, fields: Mapping[str, VelocityField], reference: VelocityField | None, *,
            month: Month) -> WeightFit | None:
        if reference is None:
            return None
        return fusion.fit_reference_weights(fusion.stack_fields(fields), reference.vx_m_per_day,
                                            reference.vy_m_per_day, min_cells=self.min_cells)

    def fuse(self, fields: Mapping[str, VelocityField], *, fitted: WeightFit | None = None) -> FusionResult:
        stack = fusion.stack_fields(fields)
        dt_days = _mean_dt_days(fields)
        details: dict[str, Any] = {"scheme": self.name}
        if fitted is not None and not fitted.borrowed_from:
            weights = dict(fitted.weights)
            details.update(weights_from="this month's UAV survey", cells_used=fitted.cells_used,
                           residual_rms_m_per_day=fitted.residual_rms_m_per_day)
        elif self.weights:
            weights = self.weights
            details.update(weights_from="given in the configuration")
        elif fitted is not None:
            weights = dict(fitted.weights)
            details.update(weights_from=f"fitted on {fitted.borrowed_from}")
        else:
            result = FALLBACKS[self.fallback]().fuse(fields)
            return FusionResult(result.field, result.contributing, {},
                                {**details, "fallback": self.fallback,
                                 "weights_from": "no usable UAV data: fallback scheme"})
        cell_weights = fusion.renormalise(fusion.weights_vector(stack, weights), stack.valid)
        # Where only sensors with weight 0 have a value, the fit says nothing: rather than a gap, those
        # cells take the fallback scheme over the sensors present (counted in the details).
        orphan = ~np.isfinite(cell_weights).all(axis=0) & stack.valid.any(axis=0)
        if orphan.any():
            fallback = FALLBACKS[self.fallback].cell_weights(stack)
            cell_weights = np.where(orphan[None], fallback, cell_weights)
        details["cells_filled_by_fallback"] = int(orphan.sum())
        return fusion.fusion_result(stack, cell_weights, dt_days=dt_days, weights=weights, details=details)


@hookimpl
def gvfuse_register_weightings() -> list[type[Weighting]]:
    return [WlsUavWeighting, InverseVarianceWeighting, RobustWeighting, EqualWeighting]
