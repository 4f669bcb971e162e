"""The contracts every registered plugin class follows.

A plugin registers *classes* (``gvfuse_register_readers`` and friends); each
class has a unique ``name`` that run configurations and the CLI use to pick it.
The classes are thin: the numerical work lives in plain functions in
``gvfuse`` (``gvfuse.tracking``, ``gvfuse.fusion``, ``gvfuse.quality``) so it
can be tested on its own. Pixel work never goes through pluggy calls: the
plugin manager is asked once for the classes, then the classes are used
directly.

What the core does with each kind, and so what a class may rely on:

* :class:`Reader` — constructed with no arguments; ``detect``, ``open`` and
  ``load`` are called by ``gvfuse scan``, ``gvfuse run`` and ``gvfuse track``.
* :class:`Tracker` — constructed with the sensor's ``tracker_parameters``
  (or the ``gvfuse track`` options) as keyword arguments, checked against
  ``defaults``.
* :class:`Weighting` — constructed with the ``[weighting] parameters`` as
  keyword arguments. Each month, the core calls ``fit`` (on every month) and
  then ``fuse`` with the month's own fit or, when it has none, the fit of the
  nearest month that has one (``WeightFit.borrowed_from`` names it).
* :class:`Fusion` — constructed with the ``[fusion] parameters``; a fusion
  over time gets every pair observation of the product period at once and
  returns every month (it replaces the per-month weighting when configured).
* :class:`Validator` — constructed with no arguments; it declares the context
  entries it ``needs`` and the core supplies them (or reports the validator
  as skipped, with the reason, when one is missing).
* :class:`Publisher` — constructed with ``definition=`` (the product
  definition) and ``plugins=`` (the plugin set, for event hooks).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

import numpy as np

from gvfuse.model import (
    FusionResult,
    Grid,
    Image,
    Month,
    MonthlyProduct,
    OffsetField,
    PairObservation,
    Scene,
    VelocityField,
    WeightFit,
)

if TYPE_CHECKING:
    from gvfuse.plugins import PluginSet
    from gvfuse.product import ProductDefinition

#: What a validator's context entry is, and so how the core supplies it:
#:
#: * ``"mask"``: a boolean array on the field's grid, from a raster (non-zero =
#:   inside) or polygon file configured under that key;
#: * ``"reference"``: the month's reference velocity (the UAV survey), a
#:   :class:`~gvfuse.model.VelocityField` on the field's grid;
#: * ``"path"``: the configured file path, made absolute;
#: * ``"value"``: the configured value as it is.
ContextKind = Literal["mask", "reference", "path", "value"]
CONTEXT_KINDS: tuple[str, ...] = get_args(ContextKind)


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
    #: A catch-all for generic rasters: when its ``open`` cannot date a file, ``gvfuse track``
    #: reads the raster as it is (and asks for ``--dt``) instead of failing.
    catch_all: ClassVar[bool] = False
    #: Whether ``load`` honours a band chosen by the user (``scene.metadata["band"]``, 1-based; ``gvfuse
    #: track --band``): plain and drone rasters; sensor formats read their sensor's tracking band.
    band_selectable: ClassVar[bool] = False

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
    #: Number parameters that ``false`` switches off (a run file cannot write None), e.g. a check's tolerance.
    switchable: ClassVar[frozenset[str]] = frozenset()

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

    def warm_up(self) -> None:
        """Load or compile whatever the first :meth:`track` would (e.g. numba's cached kernels), so that the
        first pair does not wait for it. Optional (the default does nothing); ``gvfuse track`` calls it in a
        thread while it reads the images. Best effort: a failure here must not raise (the real call will)."""


class Weighting(Component):
    """Fuses per-sensor velocity fields of one month (all on the product grid) into one field.

    Each input field carries a 1-sigma error per component in its quality band
    ``error_m_per_day`` (:data:`gvfuse.model.ERROR_BAND`).

    A scheme that fits something — sensor weights against the reference
    sensor, say — does it in :meth:`fit`; the core then hands the fit to
    :meth:`fuse`, and lends it to the months that have none of their own, so
    every fitted scheme gets "borrow the nearest month's fit" for free.
    """

    def fit(self, fields: Mapping[str, VelocityField], reference: VelocityField | None, *,
            month: Month) -> WeightFit | None:
        """Fit ``month``'s weights; ``None`` when the scheme fits nothing (the default).

        ``reference`` is the month's reference velocity (the UAV survey) on the
        same grid, or ``None``. Raise :class:`gvfuse.errors.InputError` when a
        fit was attempted and is not possible this month: the reason is
        recorded as ``details["fit_not_possible"]`` and the month borrows the
        nearest fit.
        """
        return None

    @abc.abstractmethod
    def fuse(self, fields: Mapping[str, VelocityField], *, fitted: WeightFit | None = None) -> FusionResult:
        """Fuse ``fields`` (keyed by sensor name) with this month's or a borrowed ``fitted`` result."""


class Fusion(Component):
    """Fuses every pair observation of the product period into one map per month: fusion over time.

    Where a :class:`Weighting` combines each month's per-sensor maps, a fusion
    sees each pair as what it is — a measurement of the mean velocity over its
    own interval, with its per-cell error — so pairs that span a month's edges
    inform both months, and the whole network constrains every month.
    """

    @abc.abstractmethod
    def fuse_period(self, observations: Sequence[PairObservation], months: Sequence[Month], grid: Grid, *,
                    references: Mapping[Month, Sequence[PairObservation]] | None = None,
                    glacier_mask: np.ndarray | None = None) -> Mapping[Month, FusionResult]:
        """The fused map of every month in ``months`` on ``grid`` (months it cannot make are left out).

        ``observations`` are the pairs of the fused sensors; ``references``
        the reference sensor's (the UAV's) pairs of each month. A fusion
        should return, as ``over_reference``, its velocity over those pairs'
        own intervals, so that validation compares like with like; it uses
        them as observations only when told to (they then no longer check it
        independently, and its details must say so). Each
        :class:`~gvfuse.model.FusionResult` should carry ``count``, the pair
        observations behind each cell. ``glacier_mask`` is the glaciers'
        extent on ``grid`` (``[fusion] glacier_mask``), given only when the run
        configures one: where the glaciers' edges are, for the error model.
        """


class Validator(Component):
    """Measures the quality of a velocity field; returns JSON-able figures.

    ``needs`` declares the context entries ``validate`` receives, by key and
    kind (:data:`ContextKind`). The core supplies exactly those; when one is
    missing (no stable-ground mask configured, no UAV survey this month) the
    validator is not run and the month records why. ``per_sensor = True``
    runs the validator on every sensor's monthly map too, not only on the
    fused one.
    """

    needs: ClassVar[Mapping[str, ContextKind]] = {}
    per_sensor: ClassVar[bool] = False

    @abc.abstractmethod
    def validate(self, field: VelocityField, **context: Any) -> Mapping[str, Any]:
        """Figures such as bias, spread and invalid share, keyed by name."""

    @classmethod
    def summarise(cls, figures: Mapping[str, Any]) -> list[str]:
        """Readable lines of this validator's figures (``gvfuse validate``'s text output).

        The default lists them key by key; override it to lay them out.
        """
        return [f"{cls.name}:"] + [f"  {key}: {value}" for key, value in figures.items()]


class Publisher(Component):
    """Writes a monthly product somewhere (files, catalogs).

    Constructed by the core as ``cls(definition=..., plugins=...)``: the
    product definition the month belongs to, and the plugin set (for the
    ``gvfuse_stac_item_ready`` event). Override ``__init__`` with the same
    keyword arguments when a publisher needs more set-up.
    """

    def __init__(self, *, definition: ProductDefinition, plugins: PluginSet) -> None:
        self.definition = definition
        self.plugins = plugins

    @abc.abstractmethod
    def publish(self, product: MonthlyProduct, destination: Path, *, force: bool = False) -> list[Path]:
        """Write the product and return the paths written."""
