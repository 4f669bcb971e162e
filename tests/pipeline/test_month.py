"""A month's stage: per-sensor maps from pairs, fits lent between months, fusion and the product's bands."""

import numpy as np
import pytest

from gvfuse.model import ERROR_BAND, Month, Provenance, SensorLegend, WeightFit
from gvfuse.pipeline.month import (
    ConfiguredWeighting,
    MonthFit,
    fit_for,
    fit_months,
    fuse_month,
    monthly_product,
    sensor_month,
)
from tests.helpers.fields import field, noisy_sensors, rmse


def test_sensor_month_averages_pairs_and_counts_them():
    pairs, (tx, ty) = noisy_sensors({"p1": 0.05, "p2": 0.05, "p3": 0.05}, {"p1": 1.0, "p2": 0.5, "p3": 1.0},
                                    shape=(60, 80))
    month = sensor_month(pairs)
    counts = month.quality["count"]
    assert set(np.unique(counts)) == {2.0, 3.0}
    everywhere = np.ones(counts.shape, bool)
    assert rmse(month, tx, ty, everywhere) < 0.8 * rmse(pairs["p1"], tx, ty, everywhere)
    # error of a mean of n pairs of equal error: sigma / sqrt(n), inflated only where they disagree
    assert np.median(month.quality[ERROR_BAND][counts == 3]) == pytest.approx(0.05 / np.sqrt(3), rel=0.3)


def test_a_month_without_its_own_fit_borrows_the_nearest_then_the_earlier():
    fit = WeightFit({"a": 1.0}, 10, 0.0)
    fits = {Month(2023, m): MonthFit(fit) for m in (3, 7, 11)} | {Month(2023, 5): MonthFit(reason="too few cells")}
    assert fit_for(Month(2023, 7), fits) == fit  # its own
    assert fit_for(Month(2023, 5), fits).borrowed_from == "2023-03"  # tie: the earlier
    assert fit_for(Month(2024, 1), fits).borrowed_from == "2023-11"
    assert fit_for(Month(2023, 1), {Month(2023, 1): MonthFit()}) is None  # nothing fitted anywhere


def test_a_failed_fit_is_recorded_and_the_month_is_fused_with_a_lent_fit(plugins):
    fields, (tx, ty) = noisy_sensors({"a": 0.05, "b": 0.1}, {"a": 1.0, "b": 1.0})
    survey = field(tx, ty, 0.01)
    gap = dict(fields)
    gap["b"] = field(np.full(tx.shape, np.nan), np.full(tx.shape, np.nan), 0.1)
    weighting = ConfiguredWeighting.create(plugins, "wls-uav", {})
    july, august = Month(2023, 7), Month(2023, 8)
    fits = fit_months(weighting, {july: fields, august: gap}, {july: survey, august: survey})
    assert fits[july].fit is not None and "only 0 cells" in fits[august].reason
    result = fuse_month(weighting, gap, fit_for(august, fits), fits[august].reason)
    assert result.details["weights_from"] == "fitted on 2023-07"
    assert "only 0 cells" in result.details["fit_not_possible"]
    assert result.weights == pytest.approx(dict(fits[july].fit.weights))


def test_product_counts_pair_observations_and_encodes_sensors_in_the_product_legend(plugins):
    fields, _ = noisy_sensors({"landsat": 0.05, "sentinel-2": 0.05}, {"landsat": 1.0, "sentinel-2": 0.6})
    for name, pairs in (("landsat", 2.0), ("sentinel-2", 3.0)):
        fields[name] = field(fields[name].vx_m_per_day, fields[name].vy_m_per_day, 0.05)
        fields[name] = type(fields[name])(fields[name].vx_m_per_day, fields[name].vy_m_per_day, fields[name].grid,
                                          16, quality={**fields[name].quality, "count": np.full(
                                              fields[name].grid.shape, pairs, "float32")})
    result = fuse_month(ConfiguredWeighting.create(plugins, "inverse-variance", {}), fields, None)
    legend = ("landsat", "sentinel-1", "sentinel-2")  # sentinel-1 absent this month: its bit stays unset
    product = monthly_product(Month(2023, 7), result, fields, legend, {}, Provenance())
    both = np.isfinite(fields["sentinel-2"].vx_m_per_day)
    assert np.all(product.count[both] == 5) and np.all(product.count[~both] == 2)
    decoded = SensorLegend(legend).decode(product.sensor_mask)
    assert decoded["landsat"].all() and not decoded["sentinel-1"].any()
    np.testing.assert_array_equal(decoded["sentinel-2"], both)
    assert product.validation["weighting"]["scheme"] == "inverse-variance"
