"""The data model: frozen value types shared by every stage.

Units are in field names (``dt_days``, ``vx_m_per_day``). Arrays are numpy,
float32 in products, NaN for no data. Every gridded type carries its
:class:`Grid` (``crs`` and ``transform``). Types holding arrays compare by
identity (``eq=False``): comparing arrays element by element is the caller's
choice, not an accident of ``==``.
"""

from __future__ import annotations

import copyreg
import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, SupportsInt

import attrs
import numpy as np
from affine import Affine
from rasterio.crs import CRS

SECONDS_PER_DAY = 86400.0

#: The quality band of a velocity field holding its 1-sigma error per component (m/day).
ERROR_BAND = "error_m_per_day"


def _frozen_mapping(value: Mapping[str, Any] | None) -> MappingProxyType[str, Any]:
    return MappingProxyType(dict(value or {}))


# Read-only mappings must travel to worker processes (multiprocessing, dask) like the rest of a value.
copyreg.pickle(MappingProxyType, lambda proxy: (_frozen_mapping, (dict(proxy),)))


def parse_crs(value: CRS | str | int) -> CRS:
    """A CRS from an EPSG code or anything ``CRS.from_user_input`` takes; one PROJ does not know is
    rasterio's ``CRSError`` (a ``ValueError``) and nothing else.

    Parsed inside a ``rasterio.Env``, whose error handler passes GDAL's messages to Python logging: outside
    one, GDAL also prints ``ERROR 1: PROJ: ... crs not found`` on standard error, a second line before
    gvfuse's own one-line error (``EPSG:999999`` in a product definition, a tile's unknown EPSG code).
    """
    if isinstance(value, CRS):
        return value
    import rasterio

    with rasterio.Env():
        return CRS.from_epsg(value) if isinstance(value, int) else CRS.from_user_input(value)


def _check_transform(instance: Any, attribute: attrs.Attribute, value: Affine) -> None:
    if not isinstance(value, Affine):
        raise TypeError(f"{attribute.name} must be an affine.Affine, got {type(value).__name__}")
    if value.determinant == 0 or not all(math.isfinite(c) for c in value[:6]):
        raise ValueError(f"{attribute.name} is degenerate: {tuple(value[:6])}")


def _shape(value: Iterable[SupportsInt]) -> tuple[int, ...]:
    return tuple(int(n) for n in value)


def _check_shape(instance: Any, attribute: attrs.Attribute, value: tuple[int, int]) -> None:
    if len(value) != 2 or any(int(n) != n or n <= 0 for n in value):
        raise ValueError(f"{attribute.name} must be two positive integers (rows, cols), got {value}")


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError(f"acquisition time {value.isoformat()} has no time zone; give it in UTC")
    return value.astimezone(dt.timezone.utc)


@attrs.frozen(order=True)
class Month:
    """A calendar month, the product's unit of time: ``Month(2023, 7)``, written ``2023-07``.

    It owns month arithmetic and naming: its instants (:attr:`start`,
    :attr:`end`, :attr:`last_second`, all UTC), its file stem ``202307``, the
    distance to another month and the months of a range. Months sort in time.
    """

    year: int = attrs.field(validator=attrs.validators.and_(attrs.validators.instance_of(int),
                                                             attrs.validators.in_(range(1, 10000))))
    number: int = attrs.field(validator=attrs.validators.and_(attrs.validators.instance_of(int),
                                                               attrs.validators.in_(range(1, 13))))

    @classmethod
    def parse(cls, value: Month | str) -> Month:
        """``Month`` from ``"YYYY-MM"`` (a ``Month`` is returned as it is); ``ValueError`` otherwise."""
        if isinstance(value, Month):
            return value
        match = re.fullmatch(r"(\d{4})-(0[1-9]|1[0-2])", str(value))
        if match is None:
            raise ValueError(f"a month is written YYYY-MM, got {value!r}")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def span(cls, first: Month | str, last: Month | str) -> tuple[Month, ...]:
        """Every month from ``first`` to ``last``, both included (empty when ``last`` is earlier)."""
        first, last = cls.parse(first), cls.parse(last)
        return tuple(first.shifted(n) for n in range(last.index - first.index + 1))

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.number:02d}"

    @property
    def stem(self) -> str:
        """``YYYYMM``: the month in file and item names."""
        return f"{self.year:04d}{self.number:02d}"

    @property
    def index(self) -> int:
        """Months since year 0: differences of indices count months."""
        return self.year * 12 + self.number - 1

    def shifted(self, months: int) -> Month:
        """The month ``months`` later (earlier when negative)."""
        year, number0 = divmod(self.index + months, 12)
        return Month(year, number0 + 1)

    def months_to(self, other: Month) -> int:
        """How many months ``other`` is after this one (negative when before)."""
        return other.index - self.index

    @property
    def start(self) -> dt.datetime:
        """The first instant of the month, UTC."""
        return dt.datetime(self.year, self.number, 1, tzinfo=dt.timezone.utc)

    @property
    def end(self) -> dt.datetime:
        """The first instant of the next month, UTC: the month is ``[start, end)``."""
        return self.shifted(1).start

    @property
    def last_second(self) -> dt.datetime:
        """The month's last whole second, UTC (STAC's inclusive ``end_datetime``)."""
        return self.end - dt.timedelta(seconds=1)

    @property
    def days(self) -> float:
        """Length of the month in days."""
        return (self.end - self.start).total_seconds() / SECONDS_PER_DAY


def parse_month(value: Month | str) -> Month:
    """:meth:`Month.parse` as a plain function: the form of attrs converter that type checkers read."""
    return Month.parse(value)


@attrs.frozen
class Grid:
    """A north-up or rotated raster grid: CRS, affine transform and (rows, cols) shape."""

    crs: CRS = attrs.field(converter=parse_crs)
    transform: Affine = attrs.field(validator=_check_transform)
    shape: tuple[int, int] = attrs.field(converter=_shape, validator=_check_shape)

    @property
    def rows(self) -> int:
        return self.shape[0]

    @property
    def cols(self) -> int:
        return self.shape[1]

    @property
    def pixel_size_m(self) -> tuple[float, float]:
        """Pixel width and height in CRS units (metres for projected CRSs)."""
        t = self.transform
        return (math.hypot(t.a, t.d), math.hypot(t.b, t.e))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) of the grid's outer edges."""
        t = self.transform
        corners = [t @ (c, r) for c, r in ((0, 0), (self.cols, 0), (0, self.rows), (self.cols, self.rows))]
        xs, ys = zip(*corners)
        return (min(xs), min(ys), max(xs), max(ys))

    @classmethod
    def from_bounds(
        cls, crs: CRS | str | int, left: float, bottom: float, right: float, top: float, resolution_m: float
    ) -> Grid:
        """A north-up grid covering the bounds, snapped outward to whole multiples of the resolution."""
        if resolution_m <= 0:
            raise ValueError(f"resolution_m must be positive, got {resolution_m}")
        left = math.floor(left / resolution_m) * resolution_m
        top = math.ceil(top / resolution_m) * resolution_m
        cols = math.ceil((right - left) / resolution_m)
        rows = math.ceil((top - bottom) / resolution_m)
        return cls(crs, Affine(resolution_m, 0.0, left, 0.0, -resolution_m, top), (rows, cols))

    def pixel_to_map_displacement(
        self, dx_px: np.ndarray, dy_px: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Turn offsets along columns/rows (pixels) into east/north offsets (CRS units).

        Only the linear part of the transform applies: a displacement has no origin.
        For a north-up grid, a positive row offset is a southward move.
        """
        t = self.transform
        return (t.a * dx_px + t.b * dy_px, t.d * dx_px + t.e * dy_px)

    def window_centre_grid(self, step_px: int, window_px: int) -> Grid:
        """The grid of window centres for a tracker with this window and step.

        Window ``k`` along an axis covers pixels ``[k * step_px, k * step_px + window_px)``;
        its geometric centre, in continuous pixel coordinates (pixel ``i`` spans
        ``[i, i + 1)``), is ``k * step_px + window_px / 2``. The returned grid's
        cells are ``step_px`` pixels wide and centred on those points.
        """
        if step_px < 1 or window_px < 1:
            raise ValueError(f"step_px and window_px must be >= 1, got {step_px}, {window_px}")
        rows = (self.rows - window_px) // step_px + 1
        cols = (self.cols - window_px) // step_px + 1
        if rows < 1 or cols < 1:
            raise ValueError(f"a {window_px} px window does not fit in a {self.shape} grid")
        corner = window_px / 2.0 - step_px / 2.0
        origin = self.transform @ (corner, corner)
        t = self.transform
        return Grid(
            self.crs,
            Affine(t.a * step_px, t.b * step_px, origin[0], t.d * step_px, t.e * step_px, origin[1]),
            (rows, cols),
        )


@attrs.frozen
class Scene:
    """One acquisition as a reader found it: what, when and where, never pixels."""

    sensor: str = attrs.field(validator=attrs.validators.min_len(1))
    platform: str
    scene_id: str = attrs.field(validator=attrs.validators.min_len(1))
    acquired_at: dt.datetime = attrs.field(converter=_utc)
    path: Path = attrs.field(converter=Path)
    reader: str = ""
    cloud_cover_percent: float | None = attrs.field(default=None)
    grid: Grid | None = None
    metadata: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)

    @cloud_cover_percent.validator
    def _check_cloud(self, attribute: attrs.Attribute, value: float | None) -> None:
        if value is not None and not (0.0 <= value <= 100.0):
            raise ValueError(f"cloud_cover_percent must be within 0..100, got {value}")


@attrs.frozen
class Pair:
    """Two scenes of one sensor: the earlier is the reference."""

    reference: Scene
    secondary: Scene

    def __attrs_post_init__(self) -> None:
        if self.dt_days <= 0:
            raise ValueError(
                f"secondary {self.secondary.scene_id} is not later than reference "
                f"{self.reference.scene_id} (dt = {self.dt_days:.3f} days)"
            )

    @property
    def dt_days(self) -> float:
        return (self.secondary.acquired_at - self.reference.acquired_at).total_seconds() / SECONDS_PER_DAY

    @property
    def pair_id(self) -> str:
        return f"{self.reference.scene_id}_X_{self.secondary.scene_id}"


@attrs.frozen
class Provenance:
    """Where a result came from: software, plugins, inputs and the parameters used."""

    software: str = "gvfuse"
    software_version: str = ""
    plugins: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)
    inputs: tuple[str, ...] = attrs.field(factory=tuple, converter=tuple[str, ...])
    parameters: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)

    def to_dict(self) -> dict[str, Any]:
        return {
            "software": self.software,
            "software_version": self.software_version,
            "plugins": dict(self.plugins),
            "inputs": list(self.inputs),
            "parameters": dict(self.parameters),
        }


def _check_arrays_on_grid(instance: Any, names: tuple[str, ...]) -> None:
    for name in names:
        arr = getattr(instance, name)
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {type(arr).__name__}")
        if arr.shape != instance.grid.shape:
            raise ValueError(f"{name} has shape {arr.shape}, the grid has {instance.grid.shape}")


@attrs.frozen(eq=False)
class VelocityField:
    """Surface velocity on a grid: east and north components in m/day.

    ``quality`` holds named per-cell arrays on the same grid (peak correlation,
    SNR, error estimate ``v_error_m_per_day``, ...). ``dt_days`` is the time
    baseline of the pair (or the span a combined field stands for).
    """

    vx_m_per_day: np.ndarray
    vy_m_per_day: np.ndarray
    grid: Grid
    dt_days: float
    quality: Mapping[str, np.ndarray] = attrs.field(factory=dict, converter=_frozen_mapping)
    provenance: Provenance = attrs.field(factory=Provenance)

    def __attrs_post_init__(self) -> None:
        _check_arrays_on_grid(self, ("vx_m_per_day", "vy_m_per_day"))
        for name, arr in self.quality.items():
            if np.shape(arr) != self.grid.shape:
                raise ValueError(f"quality band {name!r} has shape {np.shape(arr)}, grid has {self.grid.shape}")
        if not (self.dt_days > 0 and math.isfinite(self.dt_days)):
            raise ValueError(f"dt_days must be positive and finite, got {self.dt_days}")

    @property
    def speed_m_per_day(self) -> np.ndarray:
        return np.hypot(self.vx_m_per_day, self.vy_m_per_day)


def _notes(notes: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(note) for note in notes)


@attrs.frozen(eq=False)
class Image:
    """One band of a scene on a grid: float32, NaN where there is no usable data.

    Readers set clouds, borders and fill values to NaN, so trackers need no
    other mask. ``source`` names where the pixels came from, for error messages;
    ``notes`` say what the reader decided that the user may not expect (a band
    chosen among several, a fill value taken from the data), one sentence each.
    """

    pixels: np.ndarray
    grid: Grid
    source: str = ""
    notes: tuple[str, ...] = attrs.field(default=(), converter=_notes)

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


@attrs.frozen
class SensorLegend:
    """The sensor bitmask codec: bit ``i`` of a ``sensor_mask`` stands for ``sensors[i]``.

    A product keeps one legend for all its months, so a bit means the same
    sensor in every file; fusion encodes with the sorted sensors of a stack.
    """

    sensors: tuple[str, ...] = attrs.field(converter=tuple[str, ...])

    @property
    def bits(self) -> dict[str, int]:
        """Each sensor's bit value, ``{sensors[i]: 1 << i}``."""
        return {str(name): 1 << i for i, name in enumerate(self.sensors)}

    def encode(self, contributing: Mapping[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
        """A ``uint32`` bitmask from boolean arrays keyed by sensor; every key must be in the legend."""
        unknown = sorted(set(contributing) - set(self.sensors))
        if unknown:
            raise ValueError(f"sensors {unknown} are not in the legend {list(self.sensors)}")
        out = np.zeros(shape, dtype="uint32")
        for name, used in contributing.items():
            out |= np.asarray(used, dtype="uint32") << np.uint32(self.sensors.index(name))
        return out

    def decode(self, mask: np.ndarray) -> dict[str, np.ndarray]:
        """Boolean arrays keyed by sensor from a bitmask (NaN counts as no sensor)."""
        bits = np.nan_to_num(mask).astype("uint32")
        return {name: (bits >> np.uint32(i)) & np.uint32(1) == 1 for i, name in enumerate(self.sensors)}


@attrs.frozen(eq=False)
class SensorStack:
    """Per-sensor vx, vy and 1-sigma error on one grid, stacked in sorted sensor order."""

    sensors: tuple[str, ...]
    vx: np.ndarray
    vy: np.ndarray
    sigma: np.ndarray
    grid: Grid

    @property
    def valid(self) -> np.ndarray:
        """(n_sensors, rows, cols) True where the sensor has a usable value and error."""
        return np.isfinite(self.vx) & np.isfinite(self.vy) & np.isfinite(self.sigma) & (self.sigma > 0)


@attrs.frozen
class WeightFit:
    """Sensor weights fitted against a reference (UAV) velocity.

    ``borrowed_from`` is empty for a month's own fit; the pipeline sets it to
    the month the fit was made on when it lends the fit to a month without one.
    """

    weights: Mapping[str, float] = attrs.field(converter=_frozen_mapping)
    cells_used: int
    residual_rms_m_per_day: float
    borrowed_from: str = ""


@attrs.frozen(eq=False)
class FusionResult:
    """A fused month, as a weighting or a fusion over time returns it.

    ``field`` carries the fused vx, vy and the quality bands
    ``v_error_m_per_day``, ``vx_error_m_per_day``, ``vy_error_m_per_day``;
    ``contributing`` says, per input sensor, where it contributed (a boolean
    array on the field's grid); ``weights`` are the scalar sensor weights when
    the scheme has them; ``details`` describe the scheme's choices, for the
    product's provenance.
    """

    field: VelocityField
    contributing: Mapping[str, np.ndarray] = attrs.field(converter=_frozen_mapping)
    weights: Mapping[str, float] = attrs.field(factory=dict, converter=_frozen_mapping)
    details: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    #: Pair observations behind each cell, when the scheme counts them itself (a fusion over time);
    #: ``None``: the pipeline counts the pairs of the contributing sensors' monthly maps.
    count: np.ndarray | None = None
    #: The fused velocity over the month's reference pairs' own intervals (a UAV survey's 56-85 days, not
    #: the calendar month), when the scheme can say it (a fusion over time): what validators compare
    #: with the reference, like with like. ``None``: they compare the month's map.
    over_reference: VelocityField | None = None

    def __attrs_post_init__(self) -> None:
        if "v_error_m_per_day" not in self.field.quality:
            raise ValueError("the fused field has no 'v_error_m_per_day' quality band")
        if self.over_reference is not None and self.over_reference.grid != self.field.grid:
            raise ValueError("over_reference is not on the fused field's grid")
        for name, used in {**self.contributing, **({"count": self.count} if self.count is not None else {})}.items():
            if np.shape(used) != self.field.grid.shape:
                raise ValueError(f"{name!r} has shape {np.shape(used)}, the grid has {self.field.grid.shape}")


@attrs.frozen
class PairObservation:
    """One tracked pair on the product grid, as a fusion over time sees it.

    ``start`` and ``end`` are the acquisition times of the reference and the
    secondary: the pair measured the mean velocity over that interval.
    ``path`` is its cached result on the product grid (bands ``vx``, ``vy``,
    ``error_m_per_day`` and ``count``); :meth:`read` reads all or a block of it,
    so a fusion can work tile by tile on grids too large for memory.
    """

    sensor: str
    pair_id: str
    start: dt.datetime = attrs.field(converter=_utc)
    end: dt.datetime = attrs.field(converter=_utc)
    path: Path = attrs.field(converter=Path)
    #: The tracking window's footprint on the ground (window x pixel size), when the tracker has a window.
    window_m: float | None = None

    def __attrs_post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"pair {self.pair_id}: end {self.end.isoformat()} is not after start "
                             f"{self.start.isoformat()}")

    @property
    def dt_days(self) -> float:
        return (self.end - self.start).total_seconds() / SECONDS_PER_DAY

    def read(self, window: tuple[slice, slice] | None = None) -> VelocityField:
        """The pair's velocity (with its ``error_m_per_day`` and ``count`` bands), whole or a block of it."""
        from gvfuse.io.raster import read_bands  # the raster module builds on this one

        bands, grid, _ = read_bands(self.path, ("vx", "vy", ERROR_BAND, "count"), window=window)
        return VelocityField(bands["vx"], bands["vy"], grid, self.dt_days,
                             quality={ERROR_BAND: bands[ERROR_BAND], "count": np.nan_to_num(bands["count"])})

    def read_blocks(self, windows: list[tuple[slice, slice]]) -> list[VelocityField]:
        """:meth:`read` of several blocks, opening the file once."""
        from gvfuse.io.raster import read_windows

        return [VelocityField(b["vx"], b["vy"], grid, self.dt_days,
                              quality={ERROR_BAND: b[ERROR_BAND], "count": np.nan_to_num(b["count"])})
                for b, grid in read_windows(self.path, ("vx", "vy", ERROR_BAND, "count"), windows)]


@attrs.frozen(eq=False)
class MonthlyProduct:
    """One fused month: the bands of ``YYYYMM.tif`` and everything said about them.

    ``count`` is the number of pair observations behind each cell;
    ``sensor_mask`` the contributing sensors, encoded with ``SensorLegend(sensors)``;
    ``vx_error_m_per_day``/``vy_error_m_per_day`` the 1-sigma errors of the components
    (``None`` when the fusion did not state them).
    """

    month: Month = attrs.field(converter=parse_month)
    vx_m_per_day: np.ndarray
    vy_m_per_day: np.ndarray
    v_error_m_per_day: np.ndarray
    count: np.ndarray
    sensor_mask: np.ndarray
    grid: Grid
    sensors: tuple[str, ...] = attrs.field(converter=tuple[str, ...])
    weights: Mapping[str, float] = attrs.field(factory=dict, converter=_frozen_mapping)
    validation: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    provenance: Provenance = attrs.field(factory=Provenance)
    vx_error_m_per_day: np.ndarray | None = None
    vy_error_m_per_day: np.ndarray | None = None

    def __attrs_post_init__(self) -> None:
        _check_arrays_on_grid(
            self, ("vx_m_per_day", "vy_m_per_day", "v_error_m_per_day", "count", "sensor_mask")
        )
        _check_arrays_on_grid(self, tuple(name for name in ("vx_error_m_per_day", "vy_error_m_per_day")
                                          if getattr(self, name) is not None))

    @property
    def speed_m_per_day(self) -> np.ndarray:
        return np.hypot(self.vx_m_per_day, self.vy_m_per_day)

    @property
    def legend(self) -> SensorLegend:
        """The codec of ``sensor_mask``."""
        return SensorLegend(self.sensors)
