"""Bundled weighting schemes: thin classes around :mod:`gvfuse.fusion`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from gvfuse import fusion
from gvfuse.errors import ConfigError, InputError
from gvfuse.hookspecs import hookimpl
from gvfuse.interfaces import Weighting
from gvfuse.model import VelocityField


def _mean_dt_days(fields: Mapping[str, VelocityField]) -> float:
    return float(np.mean([f.dt_days for f in fields.values()]))


class _CellWeighting(Weighting):
    """A scheme defined by a function from the sensor stack to cell weights."""

    cell_weights: ClassVar[Callable[[fusion.SensorStack], np.ndarray]]

    def fuse(self, fields: Mapping[str, VelocityField], reference: VelocityField | None = None) -> fusion.FusionResult:
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

    With a ``reference`` (UAV) field, the weights are fitted on the cells where
    the UAV and every sensor have a value (:func:`gvfuse.fusion.fit_reference_weights`).
    Without one, or when too few cells allow the fit (``details["fit_not_possible"]``
    says why), ``weights`` given at construction (fitted on the nearest month
    with UAV data; ``weights_from`` says which) are used; failing those, the
    ``fallback`` scheme.
    """

    name = "wls-uav"
    description = "weights fitted by WLS to UAV velocities (non-negative, sum 1), mask re-normalised per cell"

    def __init__(self, fallback: str = "inverse-variance", weights: Mapping[str, float] | None = None,
                 weights_from: str = "", min_cells: int = 10) -> None:
        if fallback not in FALLBACKS:
            raise ConfigError(f"unknown fallback {fallback!r}; choose one of {sorted(FALLBACKS)}",
                              source="weighting wls-uav", field="fallback")
        self.fallback = fallback
        self.weights = dict(weights or {})
        self.weights_from = weights_from
        self.min_cells = min_cells

    def fuse(self, fields: Mapping[str, VelocityField], reference: VelocityField | None = None) -> fusion.FusionResult:
        stack = fusion.stack_fields(fields)
        dt_days = _mean_dt_days(fields)
        details: dict[str, Any] = {"scheme": self.name}
        fit = None
        if reference is not None:
            try:
                fit = fusion.fit_reference_weights(stack, reference.vx_m_per_day, reference.vy_m_per_day,
                                                   min_cells=self.min_cells)
            except InputError as exc:
                # The survey does not overlap every sensor this month: as if there were no survey.
                details["fit_not_possible"] = str(exc)
        if fit is not None:
            weights = dict(fit.weights)
            details.update(weights_from="this month's UAV survey", cells_used=fit.cells_used,
                           residual_rms_m_per_day=fit.residual_rms_m_per_day)
        elif self.weights:
            weights = self.weights
            details.update(weights_from=self.weights_from or "given in the configuration")
        else:
            result = FALLBACKS[self.fallback]().fuse(fields)
            return fusion.FusionResult(result.field, {}, {**details, "fallback": self.fallback,
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
