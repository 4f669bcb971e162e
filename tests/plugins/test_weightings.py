"""The bundled ``wls-uav`` weighting: its fit against the UAV, and where its fused weights come from."""

import numpy as np
import pytest

from gvfuse.errors import InputError
from gvfuse.model import Month, WeightFit
from gvfuse_plugins.weightings import WlsUavWeighting
from tests.helpers.fields import field, noisy_sensors


def test_wls_recovers_inverse_variance_weights_for_known_sensor_errors():
    sigmas = {"landsat": 0.04, "sentinel-1": 0.08, "sentinel-2": 0.05}
    fields, (tx, ty) = noisy_sensors(sigmas, dict.fromkeys(sigmas, 1.0), seed=3, shape=(150, 200))
    scheme = WlsUavWeighting()
    fit = scheme.fit(fields, field(tx, ty, 0.01), month=Month(2023, 7))
    result = scheme.fuse(fields, fitted=fit)
    inv = {k: 1 / s**2 for k, s in sigmas.items()}
    expected = {k: v / sum(inv.values()) for k, v in inv.items()}
    assert result.weights == pytest.approx(expected, abs=0.02)
    assert result.details["cells_used"] == 150 * 200
    assert result.details["weights_from"] == "this month's UAV survey"


def test_wls_without_a_fit_uses_configured_then_borrowed_weights_then_the_fallback():
    fields, _ = noisy_sensors({"a": 0.05, "b": 0.1}, {"a": 1.0, "b": 1.0})
    assert WlsUavWeighting().fit(fields, None, month=Month(2023, 7)) is None  # no survey, nothing to fit
    borrowed = WeightFit({"a": 0.6, "b": 0.4}, 10, 0.0, borrowed_from="2023-06")
    given_w = WlsUavWeighting(weights={"a": 0.9, "b": 0.1}).fuse(fields, fitted=borrowed)
    assert given_w.weights == {"a": 0.9, "b": 0.1} and given_w.details["weights_from"] == "given in the configuration"
    lent = WlsUavWeighting().fuse(fields, fitted=borrowed)
    assert lent.weights == {"a": 0.6, "b": 0.4} and lent.details["weights_from"] == "fitted on 2023-06"
    fallback = WlsUavWeighting(fallback="equal").fuse(fields)
    assert fallback.details["fallback"] == "equal" and fallback.weights == {}
    expected = (fields["a"].vx_m_per_day + fields["b"].vx_m_per_day) / 2
    np.testing.assert_allclose(fallback.field.vx_m_per_day, expected, rtol=1e-6)


def test_wls_fit_is_not_possible_when_the_survey_misses_a_sensor():
    fields, (tx, ty) = noisy_sensors({"a": 0.05, "b": 0.1}, {"a": 1.0, "b": 1.0})
    vx = fields["b"].vx_m_per_day.copy()
    vx[:] = np.nan  # sensor b has no value anywhere the survey is
    fields["b"] = field(vx, vx, 0.1)
    with pytest.raises(InputError, match="only 0 cells"):
        WlsUavWeighting().fit(fields, field(tx, ty, 0.01), month=Month(2023, 7))


def test_wls_cells_seen_only_by_zero_weight_sensors_take_the_fallback():
    fields, _ = noisy_sensors({"a": 0.05, "b": 0.1}, {"a": 1.0, "b": 1.0})
    vx = fields["a"].vx_m_per_day.copy()
    vx[:5] = np.nan  # sensor a (all the weight) is missing on the first rows
    fields["a"] = field(vx, fields["a"].vy_m_per_day, 0.05)
    result = WlsUavWeighting(weights={"a": 1.0, "b": 0.0}, fallback="equal").fuse(fields)
    np.testing.assert_allclose(result.field.vx_m_per_day[:5], fields["b"].vx_m_per_day[:5], rtol=1e-6)
    np.testing.assert_allclose(result.field.vx_m_per_day[5:], fields["a"].vx_m_per_day[5:], rtol=1e-6)
    assert result.details["cells_filled_by_fallback"] == 5 * 50
