"""The base classes that every registered plugin class follows.

A plugin registers *classes* (``gvfuse_register_readers`` and friends); each
class has a unique ``name`` that run configurations and the CLI use to pick it.
The classes are thin: the numerical work lives in plain functions in
``gvfuse`` (``gvfuse.tracking``, ...) so it can be tested on its own.
Pixel work never goes through pluggy calls: the plugin manager is asked once
for the classes, then the classes are used directly.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np

from gvfuse.model import Grid, Provenance, Scene, VelocityField, _frozen_mapping


@attrs.frozen(eq=False)
class Image:
    """One band of a scene on a grid: float32, NaN where there is no usable data.

    Readers set clouds, borders and fill values to NaN, so trackers need no
    other mask. ``source`` names where the pixels came from, for error messages.
    """

    pixels: np.ndarray
    grid: Grid
    source: str = ""

    def __attrs_post_init__(self) -> None:
        if self.pixels.ndim != 2 or self.pixels.shape != self.grid.shape:
            raise ValueError(f"{self.source}: pixels {self.pixels.shape} do not match grid {self.grid.shape}")


@attrs.frozen(eq=False)
class OffsetField:
    """Offsets measured by a tracker, in pixels of the image grid it tracked on.

    ``dx_px`` is along columns, ``dy_px`` along rows of ``image_grid``;
    ``grid`` is the output grid of window centres. ``quality`` holds per-cell
    arrays such as ``peak_correlation`` and ``snr``. ``parameters`` records
    what was used (window, step, search radius, filters, the stable-ground
    correction) so it can be written into the output's tags.
    """

    dx_px: np.ndarray
    dy_px: np.ndarray
    grid: Grid
    image_grid: Grid
    quality: Mapping[str, np.ndarray] = attrs.field(factory=dict, converter=_frozen_mapping)
    parameters: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)

    def __attrs_post_init__(self) -> None:
        for name, arr in {"dx_px": self.dx_px, "dy_px": self.dy_px, **self.quality}.items():
            if np.shape(arr) != self.grid.shape:
                raise ValueError(f"{name} has shape {np.shape(arr)}, the output grid has {self.grid.shape}")

    def to_velocity(self, dt_days: float, provenance: Provenance | None = None) -> VelocityField:
        """East/north velocity in m/day, using the image grid's pixel size and orientation."""
        east_m, north_m = self.image_grid.pixel_to_map_displacement(self.dx_px, self.dy_px)
        return VelocityField(
            vx_m_per_day=(east_m / dt_days).astype("float32"),
            vy_m_per_day=(north_m / dt_days).astype("float32"),
            grid=self.grid,
            dt_days=dt_days,
            quality=dict(self.quality),
            provenance=provenance or Provenance(parameters=dict(self.parameters)),
        )


class Component(abc.ABC):
    """What every registered class has: a unique ``name`` and a one-line ``description``."""

    name: ClassVar[str]
    description: ClassVar[str] = ""


class Reader(Component):
    """Finds, describes and loads one kind of scene (a sensor's product format).

    ``detect`` must be cheap (file names, a metadata file at most, never pixels)
    so ``gvfuse scan`` can run every reader over a large download folder.
    """

    #: The sensor name this reader produces scenes for, e.g. ``"landsat"``.
    sensor: ClassVar[str]
    #: When several readers detect one path, the highest priority wins (ties: by name).
    #: Provider formats with a precise signature use 100, heuristics 50, catch-alls 0.
    priority: ClassVar[int] = 0

    @classmethod
    @abc.abstractmethod
    def detect(cls, path: Path) -> bool:
        """True when ``path`` (file or folder) looks like this reader's format."""

    @abc.abstractmethod
    def open(self, path: Path) -> Scene:
        """Parse the metadata of the scene at ``path``; raise ``MetadataError`` naming file and field."""

    @abc.abstractmethod
    def load(self, scene: Scene, grid: Grid | None = None) -> Image:
        """The tracking band, warped onto ``grid`` when given (else its native grid).

        Only the part of the file that covers ``grid`` is read. Clouds and fill
        are NaN.
        """


class Tracker(Component):
    """Measures offsets between a reference and a secondary image on the same grid.

    Constructed with keyword parameters (window, step, ...) that it validates;
    ``defaults`` documents them. ``track`` returns an :class:`OffsetField`
    with NaN wherever the match cannot be trusted.
    """

    defaults: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, **parameters: Any) -> None:
        unknown = set(parameters) - set(self.defaults)
        if unknown:
            raise TypeError(f"tracker {self.name!r} has no parameter(s) {sorted(unknown)}; "
                            f"known: {sorted(self.defaults)}")
        self.parameters: dict[str, Any] = {**self.defaults, **parameters}

    @abc.abstractmethod
    def track(
        self,
        reference: Image,
        secondary: Image,
        *,
        search_radius_px: float,
        stable_mask: np.ndarray | None = None,
    ) -> OffsetField:
        """Offsets of ``secondary`` relative to ``reference`` (both on the same grid)."""


class Weighting(Component):
    """Fuses per-sensor velocity fields of one month (all on the product grid) into one field.

    Each input field carries a 1-sigma error per component in its quality band
    ``error_m_per_day``. ``reference`` is an independent velocity on the same
    grid (the UAV survey) for schemes that fit weights to it. The result is a
    :class:`gvfuse.fusion.FusionResult`.
    """

    @abc.abstractmethod
    def fuse(self, fields: Mapping[str, VelocityField], reference: VelocityField | None = None) -> Any:
        """Fuse ``fields`` (keyed by sensor name); return a ``gvfuse.fusion.FusionResult``."""


class Validator(Component):
    """Measures the quality of a velocity field; returns JSON-able figures."""

    @abc.abstractmethod
    def validate(self, field: VelocityField, **context: Any) -> Mapping[str, Any]:
        """Figures such as bias, spread and invalid share, keyed by name."""


class Publisher(Component):
    """Writes a monthly product somewhere (files, catalogs)."""

    @abc.abstractmethod
    def publish(self, product: Any, destination: Path, *, force: bool = False) -> list[Path]:
        """Write the product and return the paths written."""
