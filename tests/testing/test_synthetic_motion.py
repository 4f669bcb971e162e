"""Displacement fields: each has the properties its docstring states."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from gvfuse.testing import (
    GlacierFlow,
    MotionModel,
    Rotation,
    SimpleShear,
    Translation,
    ValleyGlacier,
    default_glaciers,
    max_displacement_gradient,
    pixel_centres,
    sample_motion,
    stable_ground_mask,
)

FAST = settings(max_examples=12, deadline=None, database=None)


def straight_glacier(**kwargs: float) -> ValleyGlacier:
    """Flows down the rows along column x = 1000 m, from y = 0 to y = 3000 m."""
    return ValleyGlacier(head_m=(1000.0, 0.0), terminus_m=(1000.0, 3000.0), half_width_m=200.0,
                         max_speed_m_per_day=1.0, **kwargs)


def test_every_model_is_a_motion_model() -> None:
    for model in (Translation(1, 2), SimpleShear(0.1), Rotation(5, 1, 1), GlacierFlow([straight_glacier()], 10, 10)):
        assert isinstance(model, MotionModel)


def test_pixel_centres_of_an_oversampled_grid() -> None:
    rows, cols = pixel_centres((2, 3), oversample=2, offset_px=-1.0)
    np.testing.assert_allclose(rows.ravel(), [0.25, 0.75, 1.25, 1.75] - np.float64(1.0))
    assert cols.shape == (1, 6) and cols[0, 0] == pytest.approx(-0.75)


def test_translation_and_shear() -> None:
    dx, dy, ice = sample_motion(Translation(0.25, -1.5), (4, 5))
    assert (dx == 0.25).all() and (dy == -1.5).all() and ice.all()
    dx, dy, _ = sample_motion(SimpleShear(0.1, origin_row_px=2.0), (4, 5))
    np.testing.assert_allclose(dx[:, 0], 0.1 * (np.arange(4) + 0.5 - 2.0), rtol=1e-6)
    assert (dx == dx[:, :1]).all() and (dy == 0).all()


@FAST
@given(
    angle=st.floats(-20.0, 20.0),
    centre=st.tuples(st.floats(-50.0, 150.0), st.floats(-50.0, 150.0)),
    points=st.lists(st.tuples(st.floats(0.0, 100.0), st.floats(0.0, 100.0)), min_size=3, max_size=8),
)
def test_rotation_is_rigid(angle: float, centre: tuple[float, float], points: list[tuple[float, float]]) -> None:
    rotation = Rotation(angle, *centre)
    rows, cols = (np.array(v) for v in zip(*points))
    dx, dy, _ = rotation.evaluate(rows, cols)
    before = np.hypot(rows[:, None] - rows[None, :], cols[:, None] - cols[None, :])
    moved_rows, moved_cols = rows + dy, cols + dx
    after = np.hypot(moved_rows[:, None] - moved_rows[None, :], moved_cols[:, None] - moved_cols[None, :])
    np.testing.assert_allclose(after, before, atol=1e-9)
    # The centre stays put.
    cx, cy, _ = rotation.evaluate(np.array(centre[0]), np.array(centre[1]))
    assert abs(cx) < 1e-12 and abs(cy) < 1e-12


@FAST
@given(angle=st.floats(-40.0, 40.0), shear=st.floats(-0.9, 0.9))
def test_displacement_gradient_of_rotation_and_shear(angle: float, shear: float) -> None:
    dx, dy, _ = sample_motion(Rotation(angle, 8.0, 8.0), (16, 16))
    assert max_displacement_gradient(dx, dy) == pytest.approx(2 * abs(math.sin(math.radians(angle) / 2)), abs=1e-5)
    dx, dy, _ = sample_motion(SimpleShear(shear), (16, 16))
    assert max_displacement_gradient(dx, dy) == pytest.approx(abs(shear), abs=1e-5)


def test_rotation_turns_counter_clockwise_on_a_north_up_map() -> None:
    # A point east of the centre goes north (up: smaller row) under +90 degrees.
    dx, dy, _ = Rotation(90.0, 10.0, 10.0).evaluate(np.array(10.0), np.array(15.0))
    assert (float(dx), float(dy)) == pytest.approx((-5.0, -5.0))


def test_straight_glacier_has_a_parabolic_no_slip_profile() -> None:
    glacier = straight_glacier()
    y = 1200.0
    x = np.linspace(700.0, 1300.0, 601)
    vx, vy, ice = glacier.velocity(x, np.full_like(x, y))
    xi = y / 3000.0
    expected = (1.0 - xi**2) * np.clip(1.0 - ((x - 1000.0) / 200.0) ** 2, 0.0, None)
    np.testing.assert_allclose(vy, expected, atol=1e-12)
    np.testing.assert_array_equal(vx, 0.0)
    assert vy[np.argmax(vy)] == pytest.approx(1.0 - xi**2) and x[np.argmax(vy)] == pytest.approx(1000.0)
    assert vy[np.abs(np.abs(x - 1000.0) - 200.0) < 1e-9].max() == 0.0  # zero at both margins
    np.testing.assert_array_equal(ice, np.abs(x - 1000.0) < 200.0)


def test_glen_profile_is_flatter() -> None:
    parabolic, glen = straight_glacier(), straight_glacier(profile_exponent=4.0)
    _, u2, _ = parabolic.velocity(np.array([1100.0]), np.array([0.0]))
    _, u4, _ = glen.velocity(np.array([1100.0]), np.array([0.0]))
    assert u2[0] == pytest.approx(0.75) and u4[0] == pytest.approx(1 - 0.5**4)


def test_speed_decreases_towards_the_terminus_and_the_snout_is_rounded() -> None:
    glacier = straight_glacier(snout_fraction=0.2)
    y = np.linspace(0.0, 3100.0, 311)
    _, vy, ice = glacier.velocity(np.full_like(y, 1000.0), y)
    assert (np.diff(vy[y <= 3000.0]) <= 0).all() and vy[y >= 3000.0].max() == 0.0
    assert not ice[y > 3000.0].any()
    # Half a snout length before the terminus, the half-width is sqrt(1 - 0.5^2) of the full one.
    assert glacier.half_width_at(np.array(0.9)) == pytest.approx(200.0 * math.sqrt(0.75))


@FAST
@given(amplitude=st.floats(0.0, 400.0), phase=st.floats(0.0, 6.28), a=st.floats(100.0, 2650.0))  # before the snout
def test_meandering_profile_across_the_axis_is_parabolic(amplitude: float, phase: float, a: float) -> None:
    """Across the head-terminus axis at fixed ``a``: an exact parabola about the centreline, zero at the margins."""
    glacier = ValleyGlacier(head_m=(0.0, 500.0), terminus_m=(3000.0, 500.0), half_width_m=150.0,
                            max_speed_m_per_day=2.0, meander_amplitude_m=amplitude, meander_wavelength_m=3000.0,
                            meander_phase_rad=phase)
    offset, slope = glacier.centreline_offset(np.array(a))
    half_span = 150.0 * math.sqrt(1.0 + float(slope) ** 2)
    b = np.linspace(-1.2, 1.2, 240) * half_span  # no sample exactly on a margin
    # The axis runs along +x, so "across" (+90 degrees in the x-right, y-down frame) is +y.
    vx, vy, ice = glacier.velocity(np.full_like(b, a), 500.0 + float(offset) + b)
    speed = np.hypot(vx, vy)
    peak = 2.0 * (1 - (a / 3000.0) ** 2)
    np.testing.assert_allclose(speed, peak * np.clip(1 - (b / half_span) ** 2, 0, None), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(ice, np.abs(b) < half_span)
    # Flow is parallel to the centreline: (vx, vy) along (1, c'(a)).
    np.testing.assert_allclose(vy[ice], vx[ice] * float(slope), atol=1e-12)
    assert (vx[ice] > 0).all()


@FAST
@given(seed=st.integers(0, 10_000), rows=st.integers(48, 160), cols=st.integers(48, 160),
       count=st.integers(1, 3), pixel=st.sampled_from([1.0, 10.0, 15.0]), dt=st.floats(1.0, 40.0))
def test_glacier_fields_respect_speed_mask_and_stable_ground(
    seed: int, rows: int, cols: int, count: int, pixel: float, dt: float
) -> None:
    glaciers = default_glaciers((rows, cols), pixel, rng=np.random.default_rng(seed), max_speed_m_per_day=1.5,
                                count=count)
    flow = GlacierFlow(glaciers, pixel, dt)
    dx, dy, ice = sample_motion(flow, (rows, cols))
    speed_m_per_day = np.hypot(dx, dy) * pixel / dt
    assert speed_m_per_day.max() <= 1.5 * (1 + 1e-6)
    assert ice.any() and not ice.all()
    assert (dx[~ice] == 0).all() and (dy[~ice] == 0).all()
    assert (speed_m_per_day[ice] > 0).all()
    assert (dy[ice] > 0).all()  # every default glacier flows down the image (south)
    stable = stable_ground_mask(ice, 3.0)
    assert not (stable & ice).any()
    assert (ndimage.distance_transform_edt(~ice)[stable] > 3.0).all()
    assert stable.sum() == (ndimage.distance_transform_edt(~ice) > 3.0).sum()
    # Lanes keep the glaciers apart: each pixel's ice belongs to exactly one glacier.
    owners = np.zeros((rows, cols), int)
    for glacier in glaciers:
        owners += sample_motion(GlacierFlow([glacier], pixel, dt), (rows, cols))[2]
    assert owners.max() <= 1


def test_glacier_flow_converts_metres_per_day_to_pixels() -> None:
    flow = GlacierFlow([straight_glacier()], pixel_size_m=10.0, dt_days=20.0)
    # Centreline at y = 0 (head), in pixels: column 100, any row near 0.
    dx, dy, ice = flow.evaluate(np.array([0.001]), np.array([100.0]))
    assert ice[0] and dy[0] == pytest.approx(1.0 * 20.0 / 10.0, rel=1e-6) and dx[0] == 0.0


def test_meanders_too_steep_are_refused() -> None:
    with pytest.raises(ValueError, match="meander too steep"):
        ValleyGlacier(head_m=(0, 0), terminus_m=(0, 1000), half_width_m=50, max_speed_m_per_day=1,
                      meander_amplitude_m=400, meander_wavelength_m=500)
    with pytest.raises(ValueError):
        ValleyGlacier(head_m=(0, 0), terminus_m=(0, 0), half_width_m=50, max_speed_m_per_day=1)
