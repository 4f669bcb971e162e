import numpy as np
import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from gvfuse.errors import GridError
from gvfuse.model import Grid, VelocityField
from gvfuse.pipeline.regrid import regrid_field

TARGET = Grid(32647, Affine(30, 0, 300000, 0, -30, 3250000), (20, 25))


def fine_field(vx, vy, error=None, res=15.0):
    g = Grid(32647, Affine(res, 0, 300000, 0, -res, 3250000), vx.shape)
    quality = {} if error is None else {"error_m_per_day": error}
    return VelocityField(vx.astype("f4"), vy.astype("f4"), g, dt_days=16, quality=quality)


def test_block_average_of_components_with_count_and_error():
    rng = np.random.default_rng(0)
    vx = rng.normal(1, 0.1, (40, 50))
    vy = rng.normal(-2, 0.1, (40, 50))
    vx[0, 0] = np.nan  # one missing point in the first cell
    out = regrid_field(fine_field(vx, vy, error=np.full((40, 50), 0.2, "f4")), TARGET)
    blocks = vx.reshape(20, 2, 25, 2)
    np.testing.assert_allclose(out.vx_m_per_day, np.nanmean(blocks, axis=(1, 3)), rtol=1e-5)
    assert out.quality["count"][0, 0] == 3 and out.quality["count"][1, 1] == 4
    np.testing.assert_allclose(out.quality["error_m_per_day"], 0.2, rtol=1e-5)


def test_components_are_averaged_not_speeds():
    # Opposite motions in one cell average to zero velocity, not to a speed of 1.
    vx = np.tile([[1.0, -1.0], [1.0, -1.0]], (20, 25))
    out = regrid_field(fine_field(vx, np.zeros_like(vx)), TARGET)
    np.testing.assert_allclose(out.speed_m_per_day, 0, atol=1e-6)


def test_cells_with_too_few_points_are_nan():
    vx = np.full((40, 50), np.nan)
    vx[0, 0] = 1.0
    out = regrid_field(fine_field(vx, vx), TARGET, min_points=2)
    assert np.isnan(out.vx_m_per_day).all() and out.quality["count"].max() == 0


def test_a_coarser_source_fills_every_cell_it_covers_as_one_point():
    # a 60 m tracking step onto the 30 m product grid: each product cell lies in one tracking cell
    vx = np.arange(130, dtype="f4").reshape(10, 13) / 100
    out = regrid_field(fine_field(vx, -vx, res=60.0), TARGET)
    np.testing.assert_allclose(out.vx_m_per_day, np.repeat(np.repeat(vx, 2, axis=0), 2, axis=1)[:20, :25], rtol=1e-6)
    assert np.all(out.quality["count"] == 1)


def test_no_overlap_is_an_error():
    far = Grid(32647, Affine(15, 0, 900000, 0, -15, 3250000), (4, 4))
    z = np.zeros((4, 4), "f4")
    with pytest.raises(GridError, match="does not overlap"):
        regrid_field(VelocityField(z, z, far, dt_days=1), TARGET)


@settings(max_examples=15, deadline=None)
@given(vx=st.floats(-50, 50), vy=st.floats(-50, 50))
def test_uniform_field_across_utm_zones_keeps_speed_and_turns_by_meridian_convergence(vx, vy):
    # Source in UTM 46N covering the target (UTM 47N, near 96.9 E, 29.3 N).
    target = Grid(32647, Affine(30, 0, 300000, 0, -30, 3250000), (20, 20))
    src = Grid(32646, Affine(15, 0, 882000, 0, -15, 3255500), (120, 120))
    f = VelocityField(np.full(src.shape, vx, "f4"), np.full(src.shape, vy, "f4"), src, dt_days=1)
    out = regrid_field(f, target)
    ok = np.isfinite(out.vx_m_per_day)
    assert ok.sum() > 100
    np.testing.assert_allclose(out.speed_m_per_day[ok], np.hypot(vx, vy), rtol=1e-4, atol=1e-4)
    # Meridian convergence of transverse Mercator: gamma = atan(tan(lon - lon0) * sin(lat)).
    lon, lat = np.radians(96.95), np.radians(29.36)
    gamma = [np.arctan(np.tan(lon - np.radians(m)) * np.sin(lat)) for m in (93.0, 99.0)]
    turn = gamma[0] - gamma[1]  # ~2.9 degrees clockwise
    expected = (vx * np.cos(turn) + vy * np.sin(turn), -vx * np.sin(turn) + vy * np.cos(turn))
    np.testing.assert_allclose(out.vx_m_per_day[ok], expected[0], atol=2e-3 * max(1, np.hypot(vx, vy)))
    np.testing.assert_allclose(out.vy_m_per_day[ok], expected[1], atol=2e-3 * max(1, np.hypot(vx, vy)))
