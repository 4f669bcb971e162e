"""The bundled validator plugins: registration and thin delegation to gvfuse.quality."""

import numpy as np
import pytest
from affine import Affine

from gvfuse.errors import GridError, InputError
from gvfuse.model import Grid, VelocityField
from gvfuse.plugins import PluginInfo, PluginSet
from gvfuse_plugins import validators

GRID = Grid(32647, Affine(30.0, 0, 400000, 0, -30.0, 3250000), (60, 80))


def _field(vx, vy, grid=GRID):
    return VelocityField(np.asarray(vx, "float32"), np.asarray(vy, "float32"), grid, dt_days=30.0)


@pytest.fixture(scope="module")
def registry():
    plugins = PluginSet()
    plugins.add(validators, PluginInfo("validators", "gvfuse", "0", "gvfuse_plugins.validators"))
    return plugins


def test_hook_registers_the_three_validators(registry):
    assert set(registry.registry["validators"]) == {"stable-ground", "uav", "strain-rate"}


def test_stable_ground_validator_reports_noise_and_invalid_share(registry):
    rng = np.random.default_rng(0)
    vx, vy = rng.normal(0, 0.02, GRID.shape), rng.normal(0, 0.02, GRID.shape)
    vx[:6] = np.nan
    stable = np.zeros(GRID.shape, dtype=bool)
    stable[:30] = True
    figures = registry.get("validators", "stable-ground").cls().validate(_field(vx, vy), stable_mask=stable)
    assert figures["invalid_percent"] == pytest.approx(20.0)
    assert figures["vx_std_m_per_day"] == pytest.approx(0.02, rel=0.1)
    assert {"delta_x_m_per_day", "delta_y_m_per_day", "wrong_match_percent", "kde_peak_vx_m_per_day",
            "vy_normality_p_value", "vx_nmad_m_per_day", "vy_median_m_per_day"} <= set(figures)


def test_uav_validator_gives_the_bias(registry):
    rng = np.random.default_rng(1)
    ref = _field(rng.uniform(0, 1, GRID.shape), rng.uniform(0, 1, GRID.shape))
    field = _field(ref.vx_m_per_day + 0.05, ref.vy_m_per_day - 0.02)
    figures = registry.get("validators", "uav").cls().validate(field, reference=ref)
    assert figures["vx_bias_m_per_day"] == pytest.approx(0.05, abs=1e-6)
    assert figures["vy_bias_m_per_day"] == pytest.approx(-0.02, abs=1e-6)
    assert figures["count"] == GRID.rows * GRID.cols


def test_strain_rate_validator_on_a_stretching_glacier(registry):
    _rows, cols = np.mgrid[0:GRID.rows, 0:GRID.cols]
    x = 30.0 * cols
    rng = np.random.default_rng(2)
    vx = 0.5 + 1e-4 * x + rng.normal(0, 1e-3, GRID.shape)
    field = _field(vx, rng.normal(0, 1e-3, GRID.shape))
    figures = registry.get("validators", "strain-rate").cls().validate(field, on_ice_mask=np.ones(GRID.shape, bool))
    assert figures["delta_xx_per_day"] > 0
    assert figures["kde_peak_exx_per_day"] == pytest.approx(1e-4, abs=2e-5)


def test_missing_context_and_wrong_grids_are_input_errors(registry):
    field = _field(np.zeros(GRID.shape), np.zeros(GRID.shape))
    with pytest.raises(InputError, match="stable_mask"):
        registry.get("validators", "stable-ground").cls().validate(field)
    with pytest.raises(GridError, match="shape"):
        registry.get("validators", "strain-rate").cls().validate(field, on_ice_mask=np.ones((3, 3), bool))
    other = Grid(32647, Affine(60.0, 0, 400000, 0, -60.0, 3250000), (30, 40))
    ref = _field(np.zeros(other.shape), np.zeros(other.shape), other)
    with pytest.raises(GridError, match="grid"):
        registry.get("validators", "uav").cls().validate(field, reference=ref)
