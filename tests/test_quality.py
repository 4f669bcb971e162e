"""Quality figures: GLAFT metrics against GLAFT's published values, and synthetic fields with known truth."""


import numpy as np
import pytest
from affine import Affine

from gvfuse.model import Grid
from gvfuse.quality import (
    GLAFT_SOBEL_GAIN,
    compare_to_reference,
    epanechnikov_density,
    kde_threshold_spread,
    stable_ground_statistics,
    strain_rate_metric,
    strain_rates,
)
from tests.helpers import SHARED

DEMO = SHARED / "data" / "glaft-kaskawulsh-demo"
needs_demo = pytest.mark.skipif(not DEMO.is_dir(), reason=f"GLAFT demo data not found at {DEMO}")

# GLAFT 1.0 quickstart output for the demo files (SOURCE.md there).
GLAFT_PUBLISHED = {
    "delta_x": 0.1501, "delta_y": 0.1598, "wrong_percent": 7.1,
    "delta_xx": 0.001755, "delta_xy": 0.001646,
}


@pytest.fixture(scope="module")
def demo():
    from gvfuse.io.masks import load_mask
    from gvfuse.io.raster import read_single_band

    vx, grid = read_single_band(DEMO / "20180304-20180405_velo-raw_vx.tif")
    vy, _ = read_single_band(DEMO / "20180304-20180405_velo-raw_vy.tif")
    stable = load_mask(DEMO / "bedrock_V2.shp", grid)
    on_ice = load_mask(DEMO / "glacier_V1_Kaskawulsh_s_inwardBuffer600m.shp", grid)
    return vx, vy, grid, stable, on_ice


@needs_demo
def test_metric1_agrees_with_glaft_published_values(demo):
    vx, vy, _grid, stable, _ = demo
    stats = stable_ground_statistics(vx, vy, stable)
    assert stats.kde.delta_x == pytest.approx(GLAFT_PUBLISHED["delta_x"], rel=0.02)
    assert stats.kde.delta_y == pytest.approx(GLAFT_PUBLISHED["delta_y"], rel=0.02)
    assert stats.kde.outside_percent == pytest.approx(GLAFT_PUBLISHED["wrong_percent"], rel=0.02)
    assert (stats.kde.peak_x, stats.kde.peak_y) == pytest.approx((-0.01949, -0.02445), abs=5e-4)
    # the plain statistics of SOURCE.md
    assert (stats.cell_count, stats.valid_count) == (47823, 46677)
    assert stats.vx.std_m_per_day == pytest.approx(0.393, abs=1e-3)
    assert stats.vy.nmad_m_per_day == pytest.approx(0.054, abs=1e-3)
    assert not stats.vx.normality.normal_at_5_percent  # heavy tails of real mismatches


@needs_demo
def test_metric2_agrees_with_glaft_published_values(demo):
    vx, vy, grid, _, on_ice = demo
    metric = strain_rate_metric(vx, vy, grid, on_ice)
    figures = metric.to_dict()
    assert figures["delta_xx_glaft_per_day"] == pytest.approx(GLAFT_PUBLISHED["delta_xx"], rel=0.02)
    assert figures["delta_xy_glaft_per_day"] == pytest.approx(GLAFT_PUBLISHED["delta_xy"], rel=0.02)
    # our own figures are true velocity gradients: GLAFT's unnormalised Sobel is 8 times larger
    assert figures["delta_xx_per_day"] * GLAFT_SOBEL_GAIN == pytest.approx(figures["delta_xx_glaft_per_day"])


def test_epanechnikov_density_equals_brute_force():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=500), rng.normal(0.2, 0.5, size=500)
    mesh_x, mesh_y = np.linspace(-2, 2, 17), np.linspace(-1, 1.5, 13)
    h = 0.4
    gx, gy = np.meshgrid(mesh_x, mesh_y)
    d2 = (gx[..., None] - x) ** 2 + (gy[..., None] - y) ** 2
    expected = np.clip(1 - d2 / h**2, 0, None).sum(axis=-1)
    np.testing.assert_allclose(epanechnikov_density(x, y, mesh_x, mesh_y, h), expected, rtol=1e-12, atol=1e-12)


def test_gaussian_noise_gives_its_sigma_and_passes_normality():
    sigma = 0.05
    rng = np.random.default_rng(11)
    vx, vy = rng.normal(0.01, sigma, (200, 100)), rng.normal(-0.02, sigma, (200, 100))
    mask = np.ones(vx.shape, dtype=bool)
    stats = stable_ground_statistics(vx, vy, mask)
    for comp in (stats.vx, stats.vy):
        assert comp.std_m_per_day == pytest.approx(sigma, rel=0.03)
        assert comp.nmad_m_per_day == pytest.approx(sigma, rel=0.05)
        assert comp.normality.normal_at_5_percent
    assert (stats.vx.mean_m_per_day, stats.vy.mean_m_per_day) == pytest.approx((0.01, -0.02), abs=2e-3)
    # for a normal cloud the 2-sigma KDE box is about +-2 sigma, centred on the bias
    assert (stats.kde.delta_x, stats.kde.delta_y) == pytest.approx((2 * sigma, 2 * sigma), rel=0.1)
    assert (stats.kde.peak_x, stats.kde.peak_y) == pytest.approx((0.01, -0.02), abs=0.01)
    assert stats.invalid_share == 0


def test_invalid_cells_are_counted_not_used():
    rng = np.random.default_rng(2)
    vx, vy = rng.normal(0, 0.05, (100, 100)), rng.normal(0, 0.05, (100, 100))
    vx[:25] = np.nan
    stats = stable_ground_statistics(vx, vy, np.ones(vx.shape, dtype=bool))
    assert stats.invalid_share == pytest.approx(0.25)
    assert stats.valid_count == 7500


def test_ten_percent_blunders_are_reported_as_ten_percent_wrong_matches():
    rng = np.random.default_rng(1)
    n, k = 20000, 2000
    x, y = rng.normal(0, 0.05, n), rng.normal(0, 0.05, n)
    angle, radius = rng.uniform(0, 2 * np.pi, k), rng.uniform(1, 3, k)
    x[:k], y[:k] = radius * np.cos(angle), radius * np.sin(angle)
    spread = kde_threshold_spread(x, y)
    assert spread.outside_percent == pytest.approx(10.0, abs=1.0)


def test_kde_spread_is_scale_equivariant():
    rng = np.random.default_rng(4)
    x, y = rng.standard_t(3, 3000), rng.standard_t(3, 3000)
    a, b = kde_threshold_spread(x, y), kde_threshold_spread(8 * x, 8 * y)
    assert b.delta_x == pytest.approx(8 * a.delta_x) and b.outside_share == a.outside_share


def test_too_few_points_is_an_error():
    with pytest.raises(ValueError, match="at least 3"):
        stable_ground_statistics(np.ones((3, 3)), np.ones((3, 3)), np.zeros((3, 3), dtype=bool))


def _grid(rows=80, cols=90, res=30.0):
    return Grid(32607, Affine(res, 0, 500000, 0, -res, 7000000), (rows, cols))


def _coordinates(grid):
    rows, cols = np.mgrid[0:grid.rows, 0:grid.cols]
    t = grid.transform
    return t.c + t.a * (cols + 0.5), t.f + t.e * (rows + 0.5)


def test_map_frame_strain_rates_of_a_linear_field():
    grid = _grid()
    x, y = _coordinates(grid)
    x, y = x - x.mean(), y - y.mean()
    vx = 0.5 + 2e-3 * x + 1e-3 * y  # dvx/dx, dvx/dy
    vy = 0.2 - 4e-4 * x + 3e-4 * y  # dvy/dx, dvy/dy
    rates = strain_rates(vx, vy, grid)
    inner = (slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(rates.exx_per_day[inner], 2e-3, rtol=1e-9)
    np.testing.assert_allclose(rates.eyy_per_day[inner], 3e-4, rtol=1e-9)
    np.testing.assert_allclose(rates.exy_per_day[inner], 0.5 * (1e-3 - 4e-4), rtol=1e-9)
    assert np.isnan(rates.exx_per_day[0]).all()  # the Sobel needs a neighbour on every side


@pytest.mark.parametrize("flow_deg", [0.0, 30.0, 75.0])
def test_uniform_along_flow_strain_is_recovered(flow_deg):
    """Ice flowing in direction n, stretching along it at rate e and sheared across it at rate g."""
    grid = _grid()
    x, y = _coordinates(grid)
    x, y = x - x.mean(), y - y.mean()
    theta = np.radians(flow_deg)
    n = np.array([np.cos(theta), np.sin(theta)])
    t = np.array([-np.sin(theta), np.cos(theta)])
    e, g = 1.5e-3, 8e-4
    speed = 5.0 + e * (x * n[0] + y * n[1]) + g * (x * t[0] + y * t[1])
    vx, vy = speed * n[0], speed * n[1]
    rates = strain_rates(vx, vy, grid, kernel_px=5)
    inner = (slice(3, -3), slice(3, -3))  # away from the zero padding of the direction median
    np.testing.assert_allclose(rates.flow_direction_rad[inner], theta, atol=1e-9)
    np.testing.assert_allclose(rates.along_flow_normal_per_day[inner], e, rtol=1e-6)
    np.testing.assert_allclose(rates.along_flow_shear_per_day[inner], g / 2, rtol=1e-6)


def test_strain_rate_metric_peaks_at_the_true_strain_rate():
    grid = _grid(120, 120)
    x, _y = _coordinates(grid)
    e = 2e-3
    rng = np.random.default_rng(5)
    vx = 0.3 + e * (x - x.mean()) + rng.normal(0, 0.002, grid.shape)
    vy = rng.normal(0, 0.002, grid.shape)
    ice = np.zeros(grid.shape, dtype=bool)
    ice[20:100, 20:100] = True
    metric = strain_rate_metric(vx, vy, grid, ice)
    assert metric.kde.peak_x == pytest.approx(e, abs=0.1 * e)
    assert metric.kde.peak_y == pytest.approx(0, abs=0.1 * e)
    assert metric.valid_count == 78 * 78  # the mask's border cells lose a Sobel neighbour


def test_reference_comparison_recovers_a_bias():
    rng = np.random.default_rng(7)
    ref_vx, ref_vy = rng.uniform(0, 2, (60, 60)), rng.uniform(-1, 1, (60, 60))
    noise = 0.01
    vx = ref_vx + 0.1 + rng.normal(0, noise, ref_vx.shape)
    vy = ref_vy - 0.05 + rng.normal(0, noise, ref_vx.shape)
    ref_vx[:10] = np.nan
    result = compare_to_reference(vx, vy, ref_vx, ref_vy)
    assert result.vx.count == 50 * 60 == result.reference_count
    assert result.vx.bias_m_per_day == pytest.approx(0.1, abs=1e-3)
    assert result.vy.bias_m_per_day == pytest.approx(-0.05, abs=1e-3)
    assert result.vx.std_m_per_day == pytest.approx(noise, rel=0.05)
    assert result.vx.rmse_m_per_day == pytest.approx(np.hypot(0.1, noise), rel=0.01)
    figures = result.to_dict()
    assert {"vx_bias_m_per_day", "vy_rmse_m_per_day", "speed_nmad_m_per_day", "count"} <= set(figures)

