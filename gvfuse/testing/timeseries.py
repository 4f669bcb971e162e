"""A year of acquisitions per sensor over one synthetic landscape whose glaciers speed up in summer.

:class:`Landscape` fixes what every sensor shares: the area (top-left corner
and size in metres, CRS), the glaciers (:class:`ValleyGlacier` geometry in
metres from that corner), the terrain texture seed and a seasonal speed model

    v(x, t) = v_shape(x) * f(t),   f(t) = 1 + a * cos(2 pi (t - t_peak) / P),

where ``v_shape`` is the glaciers' field with their ``max_speed_m_per_day``
(so that is the *annual mean* speed at the fastest point: ``f`` averages to 1
over a period), ``a = seasonal_amplitude`` (0.3: 30 % faster at the peak,
30 % slower in the trough; must be < 1 so ice never flows backwards),
``t_peak`` the day of year of the fastest flow (``peak_day_of_year``, 200 =
mid-July) and ``P = period_days`` (365.25, so the peak stays on its calendar
day year after year). Times are continuous days since 2000-01-01 00:00 UTC
(naive datetimes are taken as UTC); day of year ``d`` is day ``d - 1`` of 2000.
The cumulative displacement between two dates is ``v_shape * (F(t2) - F(t1))``
with the closed form ``F(t) = t + a P / (2 pi) * sin(2 pi (t - t_peak) / P)``.

:func:`render_series` renders one sensor's acquisitions, each the landscape's
surface at the landscape ``epoch`` (mid-period) advected by
``D(t) = v_shape * (F(t) - F(epoch))``, plus the date's geolocation error,
exactly as :func:`gvfuse.testing.scene.make_pair` renders a secondary
(oversampled padded working grid, exact inverse warp, block mean to sensor
pixels); radiometry, noise and clouds are then drawn per date. Advecting from
the middle of the period keeps ``|D|`` at most half a year's motion, so the
surface folds later than it would from a January epoch.

What "the truth" means: ``D`` is evaluated at the surface point's *epoch*
position, so between two dates every material point moves by exactly
``v_shape(p) * (F(t2) - F(t1))`` with ``p`` its epoch position, and the ice at
map position ``x`` on date ``t`` is the point ``p`` with ``p + v_shape(p) D(t) = x``
(found by fixed-point iteration, as the renderer's warp finds it). The truth
helpers give the velocity of *that* ice: :meth:`Landscape.velocity_m_per_day`
is ``v_shape(p(x, t)) f(t)`` and :meth:`Landscape.mean_velocity_m_per_day` its
mean over the interval at the fixed map position ``x`` (Gauss-Legendre
quadrature in time), which is what a monthly map at ``x`` means. (A pair
follows the ice that was at ``x`` on its first date, which differs from that
by about ``(v . grad v) dt / 2``: second order, not corrected.) Taking
``v_shape(x)`` instead ignores that the speed pattern moves with the ice: up
to half a year from the epoch it is off by ~1 % of the speed (measured on the
demo: 0.002 m/d on interior ice, a quarter of the fused error).

SAR speckle: each date's complex speckle (in the surface frame, then warped
with the surface) is ``rho_0^(1/4) Z(t) + sqrt(1 - sqrt(rho_0)) N(t)`` with
``N`` fresh per date and ``Z`` an Ornstein-Uhlenbeck chain over the sorted
dates, ``Z_i = g Z_(i-1) + sqrt(1 - g^2) E_i`` with ``g = (rho_12 / rho_0)^(dt/24)``,
where ``rho_0`` and ``rho_12`` are :func:`speckle_coherence` at 0 and 12 days
on stable ground. The complex correlation of two dates is then
``sqrt(rho_0) (rho_12 / rho_0)^(dt/24)``, so their speckle *intensity*
correlation is ``rho_0 (rho_12 / rho_0)^(dt/12) = speckle_coherence(0, dt)``
for every separation: 12-day pairs have the model's 0.74, and dates further
apart correlate less. (The model's decorrelation with displacement is not
applied in series.) Because of the chain, a SAR date's speckle depends on the
dates before it in the request; textures, clouds, noise and radiometry are
drawn per date from streams keyed by the date itself.

Each sensor draws its texture on its own grid (pixel size, PSF), so sensors
share the glaciers and their motion, not one pixel-identical surface.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone

import attrs
import numpy as np
from affine import Affine

from gvfuse.model import Grid
from gvfuse.testing.clouds import cloud_cover, smooth_field
from gvfuse.testing.glacier import GlacierFlow, ValleyGlacier, float_pair
from gvfuse.testing.motion import MotionModel, stable_ground_mask
from gvfuse.testing.optical import LANDSAT_RADIOMETRY, UAV_RADIOMETRY, render_optical, surface_reflectance
from gvfuse.testing.sar import SIGMA0_CALIBRATION, backscatter_amplitude, circular_speckle, speckle_coherence
from gvfuse.testing.scene import GANGRIGAB_ORIGIN, MAX_GRADIENT, PRESETS, fine_motion, padded_motion, soft_ice_weight
from gvfuse.testing.texture import block_mean, terrain_texture
from gvfuse.testing.warping import warp

_TIME_ORIGIN = datetime(2000, 1, 1)
_KEY_ORIGIN = datetime(1, 1, 1)

# Random streams, keyed apart from scene.py's (0-9) so a series never repeats a pair's draws.
_STREAMS = {
    "texture": 100, "clouds": 101, "noise": 102, "radiometry": 103, "illumination": 104,
    "chain": 105, "fresh": 106,
}


def _utc_naive(t: datetime) -> datetime:
    return t.astimezone(timezone.utc).replace(tzinfo=None) if t.tzinfo is not None else t


def _days(t: datetime) -> float:
    """Continuous days since 2000-01-01 00:00 UTC."""
    return (_utc_naive(t) - _TIME_ORIGIN).total_seconds() / 86400.0


def _stream(seed: int, name: str, t: datetime | None = None) -> np.random.Generator:
    """A random stream per ingredient and (optionally) per date: a date's draws do not depend on the others."""
    key: tuple[int, ...] = (_STREAMS[name],)
    if t is not None:
        key += (int((_utc_naive(t) - _KEY_ORIGIN).total_seconds()),)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@attrs.frozen
class _OffsetMotion:
    """A :class:`MotionModel` seen from a grid whose pixel (0, 0) is (row0, col0) of the model's grid."""

    model: MotionModel
    row0_px: float
    col0_px: float

    def evaluate(self, row: np.ndarray, col: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.model.evaluate(np.asarray(row) + self.row0_px, np.asarray(col) + self.col0_px)


def _amplitude_below_one(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{attribute.name} must be within [0, 1) so ice never flows backwards, got {value}")


#: Fixed-point steps to find the ice at a pixel (each shrinks the error by the motion's gradient, < 0.8).
MATERIAL_ITERATIONS = 60


@attrs.frozen
class Landscape:
    """One demo area shared by every sensor: extent, glaciers, terrain seed and seasonal speed.

    ``origin_m`` is the (x, y) of the top-left corner in ``crs``, ``size_m``
    the (width, height). Glacier geometry is in metres from that corner (x
    east, y south). ``epoch`` is the date at which the surface is drawn
    undisplaced (the middle of the period the series cover). See the module
    docstring for the speed model.
    """

    glaciers: tuple[ValleyGlacier, ...] = attrs.field(converter=tuple[ValleyGlacier, ...])
    size_m: tuple[float, float] = attrs.field(converter=float_pair)
    origin_m: tuple[float, float] = attrs.field(default=GANGRIGAB_ORIGIN, converter=float_pair)
    crs: str | int = "EPSG:32647"
    seed: int = 0
    seasonal_amplitude: float = attrs.field(default=0.3, validator=_amplitude_below_one)
    peak_day_of_year: float = 200.0
    period_days: float = attrs.field(default=365.25, validator=attrs.validators.gt(0.0))
    epoch: datetime = datetime(2023, 7, 2, 12)

    @size_m.validator
    def _check_size(self, attribute: attrs.Attribute, value: tuple[float, float]) -> None:
        if not (value[0] > 0 and value[1] > 0):
            raise ValueError(f"size_m must be positive, got {value}")

    # --- the seasonal speed model ---------------------------------------------------------

    def _phase(self, t: datetime) -> float:
        return 2.0 * math.pi * (_days(t) - (self.peak_day_of_year - 1.0)) / self.period_days

    def speed_factor(self, t: datetime) -> float:
        """``f(t)``: the instantaneous speed as a fraction of the annual mean."""
        return 1.0 + self.seasonal_amplitude * math.cos(self._phase(t))

    def _integral(self, t: datetime) -> float:
        return _days(t) + self.seasonal_amplitude * self.period_days / (2.0 * math.pi) * math.sin(self._phase(t))

    def motion_days(self, start: datetime, end: datetime) -> float:
        """``F(end) - F(start)``: days of annual-mean motion between the dates (closed form)."""
        return self._integral(end) - self._integral(start)

    # --- truth on any grid ----------------------------------------------------------------

    def grid(self, pixel_size_m: float, extent_m: tuple[float, float, float, float] | None = None) -> Grid:
        """The north-up grid of whole ``pixel_size_m`` pixels covering the landscape or ``extent_m``.

        ``extent_m = (x0, y0, width, height)`` in metres from the top-left
        corner (y down) must lie within the landscape; partial pixels at the
        right and bottom are dropped.
        """
        if not pixel_size_m > 0:
            raise ValueError(f"pixel_size_m must be positive, got {pixel_size_m}")
        x0, y0, width, height = extent_m if extent_m is not None else (0.0, 0.0, *self.size_m)
        tol = 1e-6 * max(self.size_m)
        if x0 < -tol or y0 < -tol or x0 + width > self.size_m[0] + tol or y0 + height > self.size_m[1] + tol:
            raise ValueError(f"extent_m {extent_m} is not within the landscape's {self.size_m} m")
        shape = (math.floor(height / pixel_size_m + 1e-9), math.floor(width / pixel_size_m + 1e-9))
        if min(shape) < 1:
            raise ValueError(f"extent {width} x {height} m holds no {pixel_size_m} m pixel")
        left, top = self.origin_m[0] + x0, self.origin_m[1] - y0
        return Grid(self.crs, Affine(pixel_size_m, 0.0, left, 0.0, -pixel_size_m, top), shape)

    def _flow(self, grid: Grid, pad_px: int = 0) -> tuple[_OffsetMotion, float]:
        """The per-day motion (px/day on ``grid``, padded by ``pad_px``) and the pixel size."""
        t = grid.transform
        if t.b != 0.0 or t.d != 0.0 or not math.isclose(t.a, -t.e, rel_tol=1e-9) or t.a <= 0:
            raise ValueError("truth is defined on north-up grids with square pixels only")
        pixel = t.a
        x_off, y_off = t.c - self.origin_m[0], self.origin_m[1] - t.f
        tol = 1e-6 * max(self.size_m)
        if not (-tol <= x_off <= self.size_m[0] + tol and -tol <= y_off <= self.size_m[1] + tol):
            raise ValueError(f"the grid's top-left corner ({t.c}, {t.f}) is outside the landscape")
        flow = GlacierFlow(self.glaciers, pixel, 1.0)
        return _OffsetMotion(flow, y_off / pixel - pad_px, x_off / pixel - pad_px), pixel

    def _shape_field(self, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``v_shape`` along columns/rows in px/day at the grid's pixel centres, and the ice mask."""
        flow, _ = self._flow(grid)
        rows = np.arange(grid.rows) + 0.5
        cols = np.arange(grid.cols) + 0.5
        dx, dy, ice = flow.evaluate(*np.broadcast_arrays(rows[:, None], cols[None, :]))
        return dx, dy, ice

    def velocity_m_per_day(self, grid: Grid, t: datetime) -> tuple[np.ndarray, np.ndarray]:
        """Instantaneous (east, north) velocity in m/day at ``t`` of the ice at the grid's pixel centres (float32)."""
        dx, dy = self._material_shape(grid, self.motion_days(self.epoch, t))
        return self._map_velocity(grid, dx * self.speed_factor(t), dy * self.speed_factor(t))

    def mean_velocity_m_per_day(self, grid: Grid, start: datetime, end: datetime) -> tuple[np.ndarray, np.ndarray]:
        """Mean (east, north) velocity in m/day over ``[start, end]`` at the grid's pixel centres (float32): the
        time mean of :meth:`velocity_m_per_day`, by Gauss-Legendre quadrature (one node per ~10 days, >= 4)."""
        duration = _days(end) - _days(start)
        if duration <= 0:
            raise ValueError(f"end {end} must be after start {start}")
        nodes, weights = np.polynomial.legendre.leggauss(max(4, math.ceil(duration / 10.0)))
        sum_x, sum_y = np.zeros(grid.shape), np.zeros(grid.shape)
        for node, weight in zip(nodes, weights):
            t = start + (end - start) * float((node + 1.0) / 2.0)
            dx, dy = self._material_shape(grid, self.motion_days(self.epoch, t))
            sum_x += weight / 2.0 * self.speed_factor(t) * dx
            sum_y += weight / 2.0 * self.speed_factor(t) * dy
        return self._map_velocity(grid, sum_x, sum_y)

    def _material_shape(self, grid: Grid, advection_days: float) -> tuple[np.ndarray, np.ndarray]:
        """``v_shape(p)`` (px/day along columns/rows) of the ice at each pixel centre ``x`` after
        ``advection_days`` of annual-mean motion from the epoch: ``p + v_shape(p) * advection_days = x``."""
        flow, _ = self._flow(grid)
        rows, cols = np.broadcast_arrays((np.arange(grid.rows) + 0.5)[:, None], (np.arange(grid.cols) + 0.5)[None, :])
        dx, dy, _ = flow.evaluate(rows, cols)
        for _ in range(MATERIAL_ITERATIONS):
            if advection_days == 0.0:
                return dx, dy
            new_dx, new_dy, _ = flow.evaluate(rows - dy * advection_days, cols - dx * advection_days)
            moved = abs(advection_days) * max(float(np.abs(new_dx - dx).max(initial=0.0)),
                                               float(np.abs(new_dy - dy).max(initial=0.0)))
            dx, dy = new_dx, new_dy
            if moved < 1e-6:
                return dx, dy
        raise ValueError(f"the ice at some pixel is not found after {advection_days:.0f} days of annual-mean motion "
                         "from the epoch: the motion folds the surface over")

    def _map_velocity(self, grid: Grid, dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        east, north = grid.pixel_to_map_displacement(dx, dy)
        return np.asarray(east, dtype=np.float32), np.asarray(north, dtype=np.float32)

    def ice_mask(self, grid: Grid) -> np.ndarray:
        """True where the grid's pixel centre is on a glacier."""
        return self._shape_field(grid)[2]

    def stable_mask(self, grid: Grid, margin_m: float) -> np.ndarray:
        """Ice-free pixels farther than ``margin_m`` from any ice, counting ice just outside the grid too."""
        flow, pixel = self._flow(grid)
        pad = math.ceil(margin_m / pixel) + 1
        padded = (grid.rows + 2 * pad, grid.cols + 2 * pad)
        rows = np.arange(padded[0]) + 0.5 - pad
        cols = np.arange(padded[1]) + 0.5 - pad
        _, _, ice = flow.evaluate(*np.broadcast_arrays(rows[:, None], cols[None, :]))
        return stable_ground_mask(ice, margin_m / pixel)[pad:-pad, pad:-pad]


@attrs.frozen(eq=False)
class RenderedScene:
    """One acquisition of a series: the image on its grid, its clouds and its geolocation error."""

    acquired_at: datetime
    kind: str
    pixels: np.ndarray
    grid: Grid
    cloud_mask: np.ndarray
    geolocation_shift_px: tuple[float, float]
    units: str


def series_speckle_correlation(dt_days: float) -> float:
    """Speckle intensity correlation of two SAR dates ``dt_days`` apart in :func:`render_series`."""
    return float(speckle_coherence(np.zeros(()), abs(dt_days)))


def render_series(
    landscape: Landscape,
    kind: str,
    pixel_size_m: float,
    dates: Sequence[datetime],
    *,
    cloud_fractions: Sequence[float] | None = None,
    geolocation_shifts_px: Sequence[tuple[float, float]] | None = None,
    extent_m: tuple[float, float, float, float] | None = None,
    seed: int = 0,
    oversample: int = 2,
    psf_fwhm_px: float | None = None,
    clouds_as_nan: bool = True,
    illumination_change: float = 0.1,
) -> list[RenderedScene]:
    """Render one sensor's acquisitions of ``landscape`` on ``dates`` (returned in the same order).

    ``kind`` is ``"optical"`` (Landsat-like DN, clouds NaN or painted with
    ``clouds_as_nan``), ``"sar"`` (linear amplitude with time-decorrelating
    surface speckle) or ``"uav"`` (8-bit gray). ``cloud_fractions`` (optical
    only; default none) and ``geolocation_shifts_px`` ((dx, dy) per date,
    default none) go one per date. ``extent_m = (x0, y0, width, height)`` in
    metres from the landscape's corner renders a sub-area (a UAV survey).
    The terrain comes from ``landscape.seed``; per-date noise, clouds,
    radiometry and speckle from ``seed``. Same inputs, same images, bit for bit.

    Raises ValueError when the motion from the epoch to some date folds the
    surface over (displacement gradient >= 0.8).
    """
    if kind not in PRESETS:
        raise ValueError(f"kind must be one of {sorted(PRESETS)}, got {kind!r}")
    dates = list(dates)
    if not dates:
        return []
    n = len(dates)
    fractions = [0.0] * n if cloud_fractions is None else [float(f) for f in cloud_fractions]
    shifts = [(0.0, 0.0)] * n if geolocation_shifts_px is None else [
        (float(s[0]), float(s[1])) for s in geolocation_shifts_px
    ]
    if len(fractions) != n or len(shifts) != n:
        raise ValueError(f"cloud_fractions and geolocation_shifts_px need one entry per date ({n})")
    if kind != "optical" and any(fractions):
        raise ValueError(f"{kind} images have no clouds; cloud fractions must be 0")
    preset = PRESETS[kind]
    psf = preset.psf_fwhm_px if psf_fwhm_px is None else float(psf_fwhm_px)
    k = int(oversample)
    grid = landscape.grid(pixel_size_m, extent_m)
    shape = grid.shape
    per_day, _ = landscape._flow(grid)
    advection = [landscape.motion_days(landscape.epoch, t) for t in dates]

    # The working grid holds the largest move of any date; the fold check is on that date's field.
    largest = max(abs(a) for a in advection)
    largest_shift = max(math.hypot(*s) for s in shifts)
    check_model = _OffsetMotion(
        GlacierFlow(landscape.glaciers, pixel_size_m, largest if largest > 0 else 1.0),
        per_day.row0_px, per_day.col0_px,
    )
    try:
        margin, _, _, ice_pad = padded_motion(check_model, shape, (largest_shift, 0.0))
    except ValueError as error:
        raise ValueError(
            f"the seasonal motion folds the surface over by some date: up to {largest:.0f} days of annual-mean "
            f"motion from the landscape epoch {landscape.epoch:%Y-%m-%d}, gradient limit {MAX_GRADIENT} px/px. "
            f"Lower the glaciers' speeds, make them wider, or keep the dates closer to the epoch ({error})"
        ) from error
    del check_model
    crop = (slice(margin, margin + shape[0]), slice(margin, margin + shape[1]))
    # One per-day field on the fine grid; each date scales it (D = v_shape * (F(t) - F(epoch))).
    fine_vx, fine_vy = fine_motion(per_day, ice_pad, k, margin)
    texture = terrain_texture(ice_pad.shape, rng=_stream(landscape.seed, "texture"), oversample=k, psf_fwhm_px=psf)
    ice_weight = soft_ice_weight(ice_pad, k)
    if kind == "sar":
        surface = backscatter_amplitude(texture, ice_weight)
    else:
        surface = surface_reflectance(texture, ice_weight)
    del texture, ice_weight

    def move(stack: np.ndarray, index: int, integrate_blocks: int = 1) -> np.ndarray:
        """The surface's fine bands as date ``index`` sees them (moved, plus its geolocation error)."""
        c = np.float32(advection[index])
        return warp(
            stack, fine_vx * c, fine_vy * c, shift_px=(shifts[index][0] * k, shifts[index][1] * k),
            integrate_blocks=integrate_blocks,
        )

    no_clouds = np.zeros(shape, dtype=bool)
    results: list[RenderedScene | None] = [None] * n
    if kind == "sar":
        for index, pixels in _render_sar(surface, move, crop, dates, seed=seed, resolution_px=psf, oversample=k):
            results[index] = RenderedScene(
                dates[index], kind, _readonly(pixels), grid, _readonly(no_clouds.copy()), shifts[index], preset.units
            )
        return results  # type: ignore[return-value]
    radiometry = UAV_RADIOMETRY if kind == "uav" else LANDSAT_RADIOMETRY
    for index, t in enumerate(dates):
        reflectance = move(surface, index, k)[crop]
        clouds = cloud_cover(shape, fractions[index], rng=_stream(seed, "clouds", t))
        draws = _stream(seed, "radiometry", t)
        gain, offset = 1.0 + draws.normal(0.0, 0.05), draws.normal(0.0, 0.01) * radiometry.dn_per_reflectance
        illumination = None
        if illumination_change:
            change = smooth_field(shape, rng=_stream(seed, "illumination", t), scale_px=max(shape) / 3.0)
            illumination = 1.0 + np.float32(illumination_change) * np.clip(change, -3.0, 3.0) / np.float32(3.0)
        pixels = render_optical(
            reflectance, rng=_stream(seed, "noise", t), radiometry=radiometry, gain=gain, offset_dn=offset,
            illumination=illumination, clouds=clouds, clouds_as_nan=clouds_as_nan,
        )
        results[index] = RenderedScene(
            t, kind, _readonly(pixels), grid, _readonly(clouds.mask), shifts[index], preset.units
        )
    return results  # type: ignore[return-value]


def _render_sar(
    backscatter: np.ndarray,
    move: Callable[[np.ndarray, int], np.ndarray],
    crop: tuple[slice, slice],
    dates: list[datetime],
    *,
    seed: int,
    resolution_px: float,
    oversample: int,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, amplitude)`` per date in time order: speckle from the chain described in the module docstring."""
    k = oversample
    coarse = (backscatter.shape[0] // k, backscatter.shape[1] // k)
    rho_0 = series_speckle_correlation(0.0)
    rho_12 = series_speckle_correlation(12.0)
    chain_weight, fresh_weight = np.float32(rho_0**0.25), np.float32(math.sqrt(1.0 - math.sqrt(rho_0)))
    chain: np.ndarray | None = None
    previous = 0.0
    for index in sorted(range(len(dates)), key=lambda i: _days(dates[i])):
        t = dates[index]
        innovation = circular_speckle(coarse, rng=_stream(seed, "chain", t), resolution_px=resolution_px, oversample=k)
        if chain is None:
            chain = innovation
        else:
            g = np.float32((rho_12 / rho_0) ** ((_days(t) - previous) / 24.0))
            chain *= g
            innovation *= np.float32(math.sqrt(max(0.0, 1.0 - float(g) ** 2)))
            chain += innovation
        del innovation
        previous = _days(t)
        speckle = circular_speckle(coarse, rng=_stream(seed, "fresh", t), resolution_px=resolution_px, oversample=k)
        speckle *= fresh_weight
        speckle += chain_weight * chain
        # Reflectivity and speckle are warped apart: each is band-limited, their product is not.
        moved = move(np.stack([backscatter, speckle.real, speckle.imag]), index)
        del speckle
        # The complex echo averaged over each sensor pixel, then its amplitude (as a GRD pixel does).
        real, imag = (block_mean(moved[0] * part, k)[crop] for part in (moved[1], moved[2]))
        yield index, (SIGMA0_CALIBRATION * np.sqrt(real * real + imag * imag)).astype(np.float32)


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array
