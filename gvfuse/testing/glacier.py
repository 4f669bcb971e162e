"""Curved valley glaciers: flow along a meandering centreline with a no-slip cross profile.

Each glacier follows a centreline from its head to its terminus that meanders
as a sine about the straight head-terminus axis. Ice flows parallel to the
centreline with speed

    u(xi, n) = u_max * (1 - xi^2) * (1 - (|n| / w(xi))^p)

where ``xi`` is the fraction of the way from head (0) to terminus (1) along
the head-terminus axis, ``n``
the cross-glacier coordinate and ``w`` the half-width. ``p = 2`` is the
parabolic profile of laminar flow in a channel (Nye 1965, J. Glaciol. 5(41),
661-690); ``p = 4`` is the shape of Glen's law with n = 3 (Cuffey & Paterson
2010, *The Physics of Glaciers*, 4th ed., ch. 8). Speed is zero at the margins
and at the terminus and falls toward the terminus, so the displacement field
is continuous and the glacier outline itself does not move between the dates.
The tongue narrows to an elliptical snout over its last ``snout_fraction``.

Glacier coordinates are closed-form, so the field is exact and cheap at any
resolution: with ``a`` the distance along the straight head-terminus axis and
``b`` across it, the centreline is ``b = c(a)`` and ``n = (b - c(a)) cos(theta)``
with ``theta = atan c'(a)`` the centreline's slope to the axis. ``n`` equals the
perpendicular distance to the centreline on straight reaches and differs from
it by O(curvature x width^2) on bends; streamlines are the curves
``b = c(a) + const``, so ice flows along the centreline direction everywhere.

Geometry is given in *scene metres*: ``x`` along columns from the left edge,
``y`` along rows from the top edge (pixel size times continuous pixel
coordinates), so the same glaciers can be rendered at any resolution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs
import numpy as np

CHUNK_ELEMENTS = 1 << 17


def float_pair(value: Sequence[float]) -> tuple[float, float]:
    """An (x, y) or (width, height) in metres as two floats (the attrs converter of such fields)."""
    return (float(value[0]), float(value[1]))


def _positive(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{attribute.name} must be positive and finite, got {value}")


@attrs.frozen
class ValleyGlacier:
    """One glacier's geometry (scene metres) and speed (m/day)."""

    head_m: tuple[float, float] = attrs.field(converter=float_pair)
    terminus_m: tuple[float, float] = attrs.field(converter=float_pair)
    half_width_m: float = attrs.field(validator=_positive)
    max_speed_m_per_day: float = attrs.field(validator=attrs.validators.ge(0.0))
    meander_amplitude_m: float = 0.0
    meander_wavelength_m: float = attrs.field(default=math.inf, validator=attrs.validators.gt(0.0))
    meander_phase_rad: float = 0.0
    profile_exponent: float = attrs.field(default=2.0, validator=_positive)
    snout_fraction: float = attrs.field(
        default=0.1, validator=attrs.validators.and_(attrs.validators.gt(0.0), attrs.validators.le(1.0))
    )

    def __attrs_post_init__(self) -> None:
        if self.length_m <= 0:
            raise ValueError("head_m and terminus_m must differ")
        # Beyond 45 degrees from its axis the glacier would fold back on
        # itself in these coordinates: make the meander gentler or the axis longer.
        if self._max_slope > 1.0:
            raise ValueError(
                f"meander too steep: slope {self._max_slope:.2f} to the head-terminus axis exceeds 1; "
                "use a longer meander_wavelength_m or a smaller meander_amplitude_m"
            )

    @property
    def length_m(self) -> float:
        return math.hypot(self.terminus_m[0] - self.head_m[0], self.terminus_m[1] - self.head_m[1])

    @property
    def _wavenumber(self) -> float:
        return 2.0 * math.pi / self.meander_wavelength_m

    def _axes(self) -> tuple[np.ndarray, np.ndarray]:
        along = np.subtract(self.terminus_m, self.head_m) / self.length_m
        return along, np.array([-along[1], along[0]])

    def centreline_offset(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Offset (m) of the centreline from the head-terminus axis at axis distance ``t`` (m), and its slope.

        The centreline starts at the head and ends at the terminus exactly.
        """
        return self._offset_terms(np.asarray(t, dtype=np.float64))

    def centreline_m(self, samples: int = 256) -> np.ndarray:
        """``(samples, 2)`` points ``(x, y)`` along the centreline, head first."""
        t = np.linspace(0.0, self.length_m, samples)
        along, across = self._axes()
        b = self.centreline_offset(t)[0]
        return np.asarray(self.head_m) + t[:, None] * along + b[:, None] * across

    def half_width_at(self, xi: np.ndarray) -> np.ndarray:
        """Half-width (m) at fraction ``xi`` of the way to the terminus: constant, then an elliptical snout."""
        start = 1.0 - self.snout_fraction
        into_snout = np.clip((xi - start) / self.snout_fraction, 0.0, 1.0)
        return self.half_width_m * np.sqrt(1.0 - into_snout**2)

    def velocity(self, x_m: np.ndarray, y_m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(vx, vy, ice)`` in m/day along scene x (columns) and y (rows), broadcast over the inputs."""
        shape = np.broadcast_shapes(np.shape(x_m), np.shape(y_m))
        index, vx_ice, vy_ice = self.ice_velocity(x_m, y_m)
        vx, vy, ice = np.zeros(shape), np.zeros(shape), np.zeros(shape, dtype=bool)
        vx.flat[index], vy.flat[index], ice.flat[index] = vx_ice, vy_ice, True
        return vx, vy, ice

    def ice_velocity(self, x_m: np.ndarray, y_m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sparse form of :meth:`velocity`: flat indices of the ice points (row-major over the
        broadcast shape) and their ``vx``, ``vy`` in m/day. Off-ice points cost only the screening."""
        along, across = self._axes()
        rel_x = np.asarray(x_m, dtype=np.float64) - self.head_m[0]
        rel_y = np.asarray(y_m, dtype=np.float64) - self.head_m[1]
        # Inputs are often a column and a row vector: then the products stay
        # vectors and only the sums are full-size.
        a = np.add(rel_x * along[0], rel_y * along[1]).ravel()
        b = np.add(rel_x * across[0], rel_y * across[1]).ravel()
        index = self._screen(a, b)
        a, b = a[index], b[index]
        off, slope = self._offset_terms(a)
        cos_theta = 1.0 / np.sqrt(1.0 + slope * slope)
        n = (b - off) * cos_theta
        xi = a / self.length_m
        width = self.half_width_at(xi)
        inside = (a >= 0.0) & (a <= self.length_m) & (np.abs(n) < width)
        index, n, width, xi, slope, cos_theta = (v[inside] for v in (index, n, width, xi, slope, cos_theta))
        speed = self.max_speed_m_per_day * (1.0 - xi**2) * (1.0 - np.abs(n / width) ** self.profile_exponent)
        speed *= cos_theta  # normalises the tangent (1, slope) below
        return index, speed * (along[0] + slope * across[0]), speed * (along[1] + slope * across[1])

    def _screen(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flat indices of points that may be ice, by a cheap single-precision test with a safety margin."""
        # A necessary condition only (inside => kept), so rounding cannot lose ice.
        reach = self.half_width_m * math.sqrt(1.0 + self._max_slope**2) + 1e-3 * self.length_m + 1.0
        # Single precision runs the sine several times faster (SIMD); its error
        # (< 0.01 m here) is far inside the margin above.
        a32 = a.astype(np.float32)
        keep = (a32 >= -1.0) & (a32 <= self.length_m + 1.0)
        amp, k, phi = (np.float32(v) for v in (self.meander_amplitude_m, self._wavenumber, self.meander_phase_rad))
        off32 = amp * np.sin(a32 * k + phi) - np.float32(self.meander_amplitude_m * math.sin(self.meander_phase_rad))
        off32 -= np.float32(self._linear_slope) * a32
        keep &= np.abs(b.astype(np.float32) - off32) < reach
        return np.flatnonzero(keep)

    @property
    def _max_slope(self) -> float:
        return abs(self.meander_amplitude_m) * self._wavenumber + abs(self._linear_slope)

    @property
    def _linear_slope(self) -> float:
        a, k, phi = self.meander_amplitude_m, self._wavenumber, self.meander_phase_rad
        return a * (math.sin(k * self.length_m + phi) - math.sin(phi)) / self.length_m

    def _offset_terms(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centreline offset ``c(t)`` and slope ``c'(t)``: a sine minus the line through its end values."""
        a, k, phi = self.meander_amplitude_m, self._wavenumber, self.meander_phase_rad
        phase = k * t + phi
        offset = a * np.sin(phase) - a * math.sin(phi) - self._linear_slope * t
        return offset, a * k * np.cos(phase) - self._linear_slope


@attrs.frozen
class GlacierFlow:
    """Valley glaciers on a grid of ``pixel_size_m``, displacing over ``dt_days``: a :class:`MotionModel`.

    Where glaciers overlap the faster one wins (confluences are not modelled;
    keep glaciers apart).
    """

    glaciers: tuple[ValleyGlacier, ...] = attrs.field(converter=tuple[ValleyGlacier, ...])
    pixel_size_m: float = attrs.field(validator=_positive)
    dt_days: float = attrs.field(validator=_positive)

    def evaluate(self, row: np.ndarray, col: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        shape = np.broadcast_shapes(np.shape(row), np.shape(col))
        work_shape = shape or (1,)
        x_m = np.broadcast_to(np.asarray(col, dtype=np.float64) * self.pixel_size_m, shape).reshape(work_shape)
        y_m = np.broadcast_to(np.asarray(row, dtype=np.float64) * self.pixel_size_m, shape).reshape(work_shape)
        to_px = self.dt_days / self.pixel_size_m
        dx, dy = np.zeros(work_shape), np.zeros(work_shape)
        ice = np.zeros(work_shape, dtype=bool)
        speed = np.zeros(work_shape)
        # Blocks of leading-axis slices keep every temporary small (and in cache).
        per_row = int(np.prod(work_shape[1:]))
        step = max(1, CHUNK_ELEMENTS // max(per_row, 1))
        for start in range(0, work_shape[0], step):
            rows = slice(start, start + step)
            for glacier in self.glaciers:
                index, vx, vy = glacier.ice_velocity(x_m[rows], y_m[rows])
                index += start * per_row
                g_speed = np.hypot(vx, vy)
                faster = g_speed >= speed.flat[index]
                index = index[faster]
                dx.flat[index], dy.flat[index] = vx[faster] * to_px, vy[faster] * to_px
                speed.flat[index], ice.flat[index] = g_speed[faster], True
        return dx.reshape(shape), dy.reshape(shape), ice.reshape(shape)


def default_glaciers(
    shape: tuple[int, int],
    pixel_size_m: float,
    *,
    rng: np.random.Generator,
    max_speed_m_per_day: float,
    count: int = 1,
) -> tuple[ValleyGlacier, ...]:
    """``count`` non-overlapping glaciers scaled to the scene, flowing from beyond the top edge downward.

    Each occupies a vertical lane; the first reaches ``max_speed_m_per_day``
    (at its head, above the scene), the others 40-80 % of it. Widths,
    meanders and terminus positions are drawn from ``rng``.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    height_m, width_m = shape[0] * pixel_size_m, shape[1] * pixel_size_m
    lane_m = width_m / count
    glaciers = []
    for lane in range(count):
        half_width = 0.12 * min(lane_m, height_m) * rng.uniform(0.8, 1.1)
        centre_x = (lane + 0.5) * lane_m
        head = (centre_x + rng.uniform(-0.1, 0.1) * lane_m, -0.25 * height_m)
        terminus = (centre_x + rng.uniform(-0.1, 0.1) * lane_m, rng.uniform(0.7, 0.85) * height_m)
        length = math.dist(head, terminus)
        # Room for the meander within the lane, leaving a margin of stable ground.
        amplitude = rng.uniform(0.3, 0.6) * max(0.0, 0.5 * lane_m - 1.6 * half_width)
        wavelength = rng.uniform(0.7, 1.1) * length
        wavenumber = 2 * math.pi / wavelength
        # Bends no tighter than 1.5 half-widths in radius and no steeper than
        # ~30 degrees to the axis, as valleys are.
        limit = min(1.0 / (1.5 * half_width * wavenumber**2), 0.6 / wavenumber)
        glaciers.append(
            ValleyGlacier(
                head_m=head,
                terminus_m=terminus,
                half_width_m=half_width,
                max_speed_m_per_day=max_speed_m_per_day * (1.0 if lane == 0 else rng.uniform(0.4, 0.8)),
                meander_amplitude_m=min(amplitude, limit),
                meander_wavelength_m=wavelength,
                meander_phase_rad=rng.uniform(0.0, 2.0 * math.pi),
            )
        )
    return tuple(glaciers)

