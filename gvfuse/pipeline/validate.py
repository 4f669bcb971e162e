"""Running the registered validators on a velocity map, for `gvfuse run` and `gvfuse validate`.

Each validator declares the context entries it ``needs``
(:class:`gvfuse.interfaces.Validator`); :class:`ValidationContext` supplies
them from what the run (or the command line) configured: a ``"mask"`` entry
is loaded onto the field's grid (once per grid), a ``"path"`` made absolute,
a ``"value"`` passed as it is, and a ``"reference"`` entry is the month's
reference velocity. A validator whose entry is missing is not run; its
figures say why (``{"skipped": "no stable mask for this month"}``). A
validator that finds the input unusable reports ``{"error": ...}``; the other
validators still run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gvfuse.errors import GridError, GvfuseError, InputError
from gvfuse.interfaces import ContextKind, Validator
from gvfuse.io.masks import load_mask, stable_ground
from gvfuse.io.raster import read_bands, read_single_band
from gvfuse.model import Grid, VelocityField
from gvfuse.plugins import PluginSet, plugin_errors


class ValidationContext:
    """The configured context entries, and the means to hand each validator the ones it needs.

    ``entries`` maps keys to configured values (paths, numbers, strings);
    relative paths are taken from ``base_dir``. ``missing`` ends the reason
    given for a missing entry ("no stable mask for this month"). With a
    ``glacier_mask`` (a path), the stable mask is the ``stable_mask`` entry's
    cells outside the glaciers, or without that entry every cell outside them
    (:func:`gvfuse.io.masks.stable_ground`: the ground the tracking corrected
    on; the static terrain GLAFT measures on, Zheng et al. 2023, The Cryosphere
    17:4063).
    """

    def __init__(self, entries: Mapping[str, Any], base_dir: Path, *, missing: str = "for this month",
                 glacier_mask: Path | None = None) -> None:
        self.entries = dict(entries)
        self.base_dir = base_dir
        self.missing = missing
        self.glacier_mask = glacier_mask
        self._masks: dict[tuple[str, Grid], np.ndarray] = {}

    def _given(self, key: str) -> bool:
        return self.entries.get(key) is not None or (key == "stable_mask" and self.glacier_mask is not None)

    def _path(self, key: str) -> Path:
        return (self.base_dir / str(self.entries[key])).resolve()

    def _mask(self, key: str, grid: Grid) -> np.ndarray:
        if (key, grid) not in self._masks:
            if key == "stable_mask":  # the ground the tracking corrected on (see the class)
                given = self._path(key) if self.entries.get(key) is not None else None
                stable = stable_ground(grid, stable_mask=given, glacier_mask=self.glacier_mask)
                assert stable is not None  # one of them was given: _given() says so
                self._masks[key, grid] = stable
            else:
                self._masks[key, grid] = load_mask(self._path(key), grid, what=key.replace("_", " "))
        return self._masks[key, grid]

    def mask(self, key: str, grid: Grid) -> np.ndarray | None:
        """The configured mask ``key`` on ``grid``, or ``None`` when none is configured."""
        return self._mask(key, grid) if self._given(key) else None

    def supply(self, needs: Mapping[str, ContextKind], grid: Grid,
               reference: VelocityField | None) -> tuple[dict[str, Any], str]:
        """The context for a validator on ``grid``, or ``({}, reason)`` when an entry is missing.

        A configured mask that cannot be read is an :class:`InputError`, not a
        missing entry: the configuration is wrong, and every month would say so.
        """
        context: dict[str, Any] = {}
        for key, kind in needs.items():
            if kind == "reference":
                if reference is None:
                    return {}, f"no {key.replace('_', ' ')} {self.missing}"
                context[key] = reference
            elif not self._given(key):
                return {}, f"no {key.replace('_', ' ')} {self.missing}"
            elif kind == "mask":
                context[key] = self._mask(key, grid)
                if key == "stable_mask" and not context[key].any():  # only from the glaciers: load_mask refuses
                    return {}, f"no stable ground outside the glaciers {self.missing}"
            elif kind == "path":
                context[key] = self._path(key)
            else:
                context[key] = self.entries[key]
        return context, ""


def _figures(validator: Validator, field: VelocityField, context: Mapping[str, Any]) -> dict[str, Any]:
    figures = validator.validate(field, **context)
    if not isinstance(figures, Mapping):
        raise InputError(f"validate() returned {type(figures).__name__}, not a mapping of figures",
                         source=f"validator {validator.name!r}")
    return dict(figures)


def run_validators(plugins: PluginSet, names: Sequence[str], fused: VelocityField,
                   sensors: Mapping[str, VelocityField], context: ValidationContext,
                   reference: VelocityField | None = None, *,
                   fused_over_reference: VelocityField | None = None) -> dict[str, Any]:
    """Figures of each validator ``names``: on the fused map, and on every sensor's for per-sensor ones.

    A validator that compares with the ``reference`` sees, as the fused map,
    ``fused_over_reference`` when given: the fused velocity over the
    reference's own time span (:attr:`gvfuse.model.FusionResult.over_reference`),
    so like is compared with like; its fused figures then say
    ``"compared_over": "reference interval"`` (else ``"month"``).

    Returns ``{name: {"fused": figures, <sensor>: figures, ...}}``, or
    ``{name: {"skipped": reason}}`` when its context is missing, or
    ``{name: {"error": message}}`` when it found the input unusable.
    Unknown names are an :class:`~gvfuse.errors.UnknownComponentError`.
    """
    figures: dict[str, Any] = {}
    for name in names:
        registration = plugins.get("validators", name)
        cls = registration.cls
        assert issubclass(cls, Validator)  # checked when the plugin registered it
        supplied, missing = context.supply(cls.needs, fused.grid, reference)
        if missing:
            figures[name] = {"skipped": missing}
            continue
        try:
            with plugin_errors(registration.plugin.name, f"validator {name!r}"):
                validator = cls()
                compares_reference = "reference" in cls.needs.values()
                over_interval = compares_reference and fused_over_reference is not None
                target = fused_over_reference if over_interval and fused_over_reference is not None else fused
                figures[name] = {"fused": _figures(validator, target, supplied)}
                if compares_reference:
                    figures[name]["fused"]["compared_over"] = "reference interval" if over_interval else "month"
                if cls.per_sensor:
                    for sensor, field in sorted(sensors.items()):
                        figures[name][sensor] = _figures(validator, field, supplied)
        except GvfuseError as exc:
            figures[name] = {"error": str(exc)}
    return figures


#: A map read from a file has no known time span; validators compare velocities, never baselines.
_UNKNOWN_SPAN_DAYS = 1.0


def read_velocity(product: Path | None = None, vx: Path | None = None, vy: Path | None = None) -> VelocityField:
    """A velocity map (m/day, NaN no data) from one raster with bands described ``vx`` and ``vy``,
    or from two single-band rasters on the same grid."""
    if product is not None:
        if vx is not None or vy is not None:
            raise InputError("give either PRODUCT or --vx and --vy, not both", source="command line")
        bands, grid, _tags = read_bands(product, ("vx", "vy"))
        return VelocityField(bands["vx"], bands["vy"], grid, dt_days=_UNKNOWN_SPAN_DAYS)
    if vx is None or vy is None:
        raise InputError("give PRODUCT (bands vx, vy) or both --vx and --vy", source="command line")
    vx_arr, grid = read_single_band(vx)
    vy_arr, grid_y = read_single_band(vy)
    if grid_y != grid:
        raise GridError(f"not on the grid of {vx}", source=vy)
    return VelocityField(vx_arr, vy_arr, grid, dt_days=_UNKNOWN_SPAN_DAYS)


def read_reference(path: Path, grid: Grid) -> VelocityField:
    """A reference (UAV) velocity with bands ``vx`` and ``vy``, which must be on ``grid``."""
    bands, ref_grid, _tags = read_bands(path, ("vx", "vy"))
    if ref_grid != grid:
        raise GridError(f"reference is on grid {ref_grid.shape} {tuple(ref_grid.transform)[:6]}, the map on "
                        f"{grid.shape} {tuple(grid.transform)[:6]}; resample it onto the map's grid", source=path)
    return VelocityField(bands["vx"], bands["vy"], grid, dt_days=_UNKNOWN_SPAN_DAYS)


def validate_map(plugins: PluginSet, field: VelocityField, *, names: Sequence[str] | None = None,
                 entries: Mapping[str, Any] | None = None, reference: VelocityField | None = None,
                 base_dir: Path | None = None, glacier_mask: Path | None = None) -> dict[str, Any]:
    """Figures of one map by every validator ``names`` (default: every registered one), keyed by name.

    ``entries`` are the context entries (masks and others, as paths or
    values); a validator that finds the input unusable raises its
    :class:`~gvfuse.errors.InputError` here, since there is no month to go on with. ``glacier_mask``:
    without a ``stable_mask`` entry, the ground outside the glaciers is the stable mask
    (:class:`ValidationContext`).
    """
    names = list(names) if names is not None else sorted(plugins.registry["validators"])
    context = ValidationContext(entries or {}, base_dir or Path.cwd(), missing="given", glacier_mask=glacier_mask)
    figures = run_validators(plugins, names, field, {}, context, reference)
    out: dict[str, Any] = {}
    for name, result in figures.items():
        if "error" in result:
            raise InputError(result["error"], source=f"validator {name!r}")
        out[name] = result.get("fused", result)
    return out
