"""The bundled validators: stable ground, UAV reference, along-flow strain rates.

Thin classes over :mod:`gvfuse.quality`; the figures they return are the
``to_dict()`` of its result types (JSON-able, units in the keys).

Context keys (``validate(field, **context)``):

* ``stable-ground``: ``stable_mask`` — a boolean array on the field's grid, or
  a path to a raster or vector mask (:func:`gvfuse.io.masks.load_mask`).
* ``strain-rate``: ``on_ice_mask`` — the same kinds as ``stable_mask``.
* ``uav``: ``reference`` — a :class:`~gvfuse.model.VelocityField` on the same
  grid; optional ``area`` (boolean array) restricting the comparison.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from gvfuse import hookimpl
from gvfuse.errors import GridError, InputError
from gvfuse.interfaces import ContextKind, Validator
from gvfuse.io.masks import load_mask
from gvfuse.model import Grid, VelocityField
from gvfuse.quality import compare_to_reference, stable_ground_statistics, strain_rate_metric


def _mask(context: Mapping[str, Any], key: str, grid: Grid, validator: str) -> tuple[np.ndarray, object]:
    """The boolean mask named ``key`` in the context, and what to name in errors."""
    value = context.get(key)
    if value is None:
        raise InputError(f"validator {validator!r} needs a {key!r} (boolean array or mask file)", source=validator)
    if isinstance(value, (str, os.PathLike)):
        return load_mask(value, grid, what=key.replace("_", " ")), value
    mask = np.asarray(value, dtype=bool)
    if mask.shape != grid.shape:
        raise GridError(f"{key} has shape {mask.shape}, the field's grid has {grid.shape}", source=validator)
    return mask, key


class StableGroundValidator(Validator):
    name = "stable-ground"
    description = "error on ice-free ground: mean, median, std, NMAD, normality, GLAFT metric 1 (δx, δy, wrong matches)"
    needs: ClassVar[Mapping[str, ContextKind]] = {"stable_mask": "mask"}

    def validate(self, field: VelocityField, **context: Any) -> Mapping[str, Any]:
        mask, source = _mask(context, "stable_mask", field.grid, self.name)
        try:
            return stable_ground_statistics(field.vx_m_per_day, field.vy_m_per_day, mask).to_dict()
        except ValueError as exc:
            raise InputError(str(exc), source=source) from exc

    @classmethod
    def summarise(cls, figures: Mapping[str, Any]) -> list[str]:
        sg = figures
        lines = [
            f"stable ground: {sg['valid_count']} valid of {sg['cell_count']} cells "
            f"({sg['invalid_percent']:.1f} % invalid)",
            "            mean      median    std       NMAD     (m/day)",
        ]
        for c in ("vx", "vy"):
            lines.append(f"  {c}   " + "".join(f"{sg[f'{c}_{k}_m_per_day']:>+10.4f}"
                                               for k in ("mean", "median", "std", "nmad")))
        for c in ("vx", "vy"):
            if f"{c}_normality_p_value" in sg:
                verdict = "normal" if sg[f"{c}_normal_at_5_percent"] else "not normal"
                lines.append(f"  {c} D'Agostino-Pearson K2 = {sg[f'{c}_normality_statistic']:.1f}, "
                             f"p = {sg[f'{c}_normality_p_value']:.3g} ({verdict} at 5 %)")
        lines.append(f"  GLAFT metric 1: dx = {sg['delta_x_m_per_day']:.4f}, dy = {sg['delta_y_m_per_day']:.4f} "
                     f"m/day, KDE peak ({sg['kde_peak_vx_m_per_day']:+.4f}, {sg['kde_peak_vy_m_per_day']:+.4f}) "
                     f"m/day, {sg['wrong_match_percent']:.1f} % wrong matches")
        return lines


class StrainRateValidator(Validator):
    name = "strain-rate"
    description = "GLAFT metric 2 on ice: spread of along-flow normal and shear strain rates (δx'x', δx'y')"
    needs: ClassVar[Mapping[str, ContextKind]] = {"on_ice_mask": "mask"}

    def validate(self, field: VelocityField, **context: Any) -> Mapping[str, Any]:
        mask, source = _mask(context, "on_ice_mask", field.grid, self.name)
        try:
            return strain_rate_metric(field.vx_m_per_day, field.vy_m_per_day, field.grid, mask).to_dict()
        except ValueError as exc:
            raise InputError(str(exc), source=source) from exc

    @classmethod
    def summarise(cls, figures: Mapping[str, Any]) -> list[str]:
        sr = figures
        return [
            f"strain rate on ice: {sr['valid_count']} of {sr['cell_count']} cells",
            f"  GLAFT metric 2: dx'x' = {sr['delta_xx_per_day']:.3e}, dx'y' = {sr['delta_xy_per_day']:.3e} 1/day "
            f"(GLAFT's unnormalised-Sobel convention: {sr['delta_xx_glaft_per_day']:.3e}, "
            f"{sr['delta_xy_glaft_per_day']:.3e})",
        ]


class UavValidator(Validator):
    name = "uav"
    description = "difference to a UAV (reference) velocity: bias, std, RMSE, NMAD per component and speed"
    needs: ClassVar[Mapping[str, ContextKind]] = {"reference": "reference"}
    per_sensor = True

    def validate(self, field: VelocityField, **context: Any) -> Mapping[str, Any]:
        reference = context.get("reference")
        if not isinstance(reference, VelocityField):
            raise InputError(f"validator {self.name!r} needs a 'reference' VelocityField", source=self.name)
        if reference.grid != field.grid:
            raise GridError("the reference velocity is not on the field's grid; resample it first", source=self.name)
        try:
            return compare_to_reference(
                field.vx_m_per_day, field.vy_m_per_day, reference.vx_m_per_day, reference.vy_m_per_day,
                area=context.get("area"),
            ).to_dict()
        except ValueError as exc:
            raise InputError(str(exc), source=self.name) from exc

    @classmethod
    def summarise(cls, figures: Mapping[str, Any]) -> list[str]:
        lines = [f"UAV reference: {figures['count']} common cells",
                 "            bias      std       RMSE      NMAD     (m/day)"]
        for c in ("vx", "vy", "speed"):
            lines.append(f"  {c:<6}" + "".join(f"{figures[f'{c}_{k}_m_per_day']:>+10.4f}"
                                              for k in ("bias", "std", "rmse", "nmad")))
        return lines


@hookimpl
def gvfuse_register_validators() -> list[type[Validator]]:
    return [StableGroundValidator, UavValidator, StrainRateValidator]
