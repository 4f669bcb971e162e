"""Bundled fusion over time: ``time-series``, a thin class around :mod:`gvfuse.inversion`.

Every pair of every fused sensor is an observation of the mean velocity over
its own interval; per cell they are inverted into a velocity time series on
short bins (weighted least squares, second-difference regularisation with its
weight chosen by cross-validation, Tukey reweighting, per-sensor error and
speed-scale calibration), and each calendar month is the mean of its bins,
published where valid pairs cover enough of the month, with the inversion's
own 1-sigma error.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from gvfuse.errors import ConfigError, InputError
from gvfuse.fusion import speed_error
from gvfuse.hookspecs import hookimpl
from gvfuse.interfaces import Fusion
from gvfuse.model import FusionResult, Grid, Month, PairObservation, Provenance, VelocityField

if TYPE_CHECKING:
    from gvfuse.inversion import InversionSettings


class TimeSeriesFusion(Fusion):
    """Pair-network inversion into a velocity time series per cell; calendar-month means of it.

    Parameters are those of :class:`gvfuse.inversion.InversionSettings`, plus
    ``use_reference`` (default false): let the reference sensor's pairs (the
    UAV) enter the inversion as observations with their real intervals; the
    validation against the UAV is then no longer independent, and the
    details say so. Given a ``glacier_mask``, the errors near the glaciers'
    edges include the smear measured on the ice-free side
    (:func:`gvfuse.inversion.margin_smear_variance`), and each month's details
    its RMS per band of cells from the edge (``margin_smear_rms_m_per_day``).
    """

    name = "time-series"
    description = ("every pair of every sensor inverted per cell into a regularised velocity time series "
                   "(cross-validated), monthly means with their own error")

    def __init__(self, use_reference: bool = False, **parameters: Any) -> None:
        # imported here, not with the module: every command loads every plugin, and the inversion's
        # imports (scipy.sparse among them, ~0.15 s) are wanted only by runs that fuse over time
        from gvfuse.inversion import InversionSettings

        self.settings: InversionSettings
        for key in ("smoothing_candidates",):
            if key in parameters:
                parameters[key] = tuple(parameters[key])
        try:
            self.settings = InversionSettings(**parameters)
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc), source=f"fusion {self.name!r}", field="parameters") from exc
        self.use_reference = bool(use_reference)

    def fuse_period(self, observations: Sequence[PairObservation], months: Sequence[Month], grid: Grid, *,
                    references: Mapping[Month, Sequence[PairObservation]] | None = None,
                    glacier_mask: np.ndarray | None = None) -> Mapping[Month, FusionResult]:
        from gvfuse.inversion import invert_period

        references = references or {}
        reference_pairs = list({obs.pair_id: obs for month in months for obs in references.get(month, ())}.values())
        used = list(observations) + (reference_pairs if self.use_reference else [])
        try:
            inversion = invert_period(used, months, grid, self.settings,
                                      intervals=[(obs.start, obs.end) for obs in reference_pairs],
                                      glacier_mask=glacier_mask)
        except ValueError as exc:
            raise InputError(str(exc), source=f"fusion {self.name!r}") from exc
        details: dict[str, Any] = {
            "scheme": self.name,
            "bin_days": self.settings.bin_days,
            "robust_iterations": self.settings.robust_iterations,
            "min_month_coverage": self.settings.min_month_coverage,
            "pairs": len(used),
            "period": [inversion.bins.start.isoformat(),
                       (inversion.bins.start + dt.timedelta(days=inversion.bins.count * inversion.bins.bin_days))
                       .isoformat()],
            **inversion.calibration.to_dict(),
            "reference_in_inversion": self.use_reference and bool(reference_pairs),
        }
        if details["reference_in_inversion"]:
            details["note"] = ("the reference sensor's pairs entered the inversion: "
                               "validation against it is not independent")
        results = {}
        for month, arrays in inversion.months.items():
            vx, vy, sigma = arrays["vx"], arrays["vy"], arrays["sigma"]
            if not np.isfinite(vx).any():
                continue
            quality = {"v_error_m_per_day": speed_error(vx, vy, sigma, sigma).astype("float32"),
                       "vx_error_m_per_day": sigma.astype("float32", copy=False),
                       "vy_error_m_per_day": sigma.astype("float32", copy=False),
                       "coverage": arrays["coverage"].astype("float32", copy=False)}
            smear = inversion.margin_smear.get((month.start, month.end))
            month_details = details if smear is None else {
                **details, "margin_smear_rms_m_per_day": [None if math.isnan(v) else round(v, 6) for v in smear]}
            field = VelocityField(vx.astype("float32", copy=False), vy.astype("float32", copy=False), grid,
                                  dt_days=month.days,
                                  quality=quality, provenance=Provenance(parameters=month_details))
            contributing = {name: arrays[f"contributing:{name}"] for name in inversion.legend}
            over = [inversion.intervals[obs.start, obs.end] for obs in references.get(month, ())]
            results[month] = FusionResult(field, contributing, {}, month_details,
                                          count=arrays["count"].astype("float32", copy=False),
                                          over_reference=_interval_mean(over, grid, [obs.dt_days for obs in
                                                                                     references.get(month, ())])
                                          if over else None)
        return results


def _interval_mean(intervals: Sequence[Mapping[str, np.ndarray]], grid: Grid,
                   dt_days: Sequence[float]) -> VelocityField:
    """The fused velocity over the reference pairs' intervals: the mean of its means over each interval
    (a month has several reference pairs when several surveys fall in it), with the error of that mean."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # cells no interval covers stay NaN
        vx = np.nanmean([a["vx"] for a in intervals], axis=0)
        vy = np.nanmean([a["vy"] for a in intervals], axis=0)
        sigma = np.sqrt(np.nansum([a["sigma"] ** 2 for a in intervals], axis=0)) / np.sum(
            [np.isfinite(a["sigma"]) for a in intervals], axis=0)
    return VelocityField(vx.astype("float32"), vy.astype("float32"), grid, dt_days=float(np.mean(dt_days)),
                         quality={"v_error_m_per_day": speed_error(vx, vy, sigma, sigma).astype("float32")})


@hookimpl
def gvfuse_register_fusions() -> list[type[Fusion]]:
    return [TimeSeriesFusion]
