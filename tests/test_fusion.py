"""Fusion maths against known truth, and the properties every scheme must have."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gvfuse import fusion
from gvfuse.errors import InputError
from gvfuse.model import VelocityField
from gvfuse_plugins.weightings import (
    EqualWeighting,
    InverseVarianceWeighting,
    RobustWeighting,
)
from tests.helpers.fields import field, grid, noisy_sensors, rmse, truth

SCHEMES = [EqualWeighting, InverseVarianceWeighting, RobustWeighting]
CONVEX = [EqualWeighting, InverseVarianceWeighting, RobustWeighting]


@pytest.mark.parametrize("scheme", [InverseVarianceWeighting, RobustWeighting])
def test_fused_map_beats_best_single_sensor_where_sensors_overlap(scheme):
    sigmas = {"landsat": 0.05, "sentinel-1": 0.06, "sentinel-2": 0.05}
    fields, (tx, ty) = noisy_sensors(sigmas, {"landsat": 0.7, "sentinel-1": 0.9, "sentinel-2": 0.7},
                                     shape=(120, 150))
    result = scheme().fuse(fields)
    fused = result.field
    overlap = np.sum(list(result.contributing.values()), axis=0) >= 2
    best_single = min(rmse(f, tx, ty, overlap & np.isfinite(f.vx_m_per_day)) for f in fields.values())
    assert rmse(fused, tx, ty, overlap) <= 0.75 * best_single


def test_wls_recovers_weights_that_cancel_a_known_bias():
    # Sensor a reads 20 % fast, sensor b 20 % slow: the exact answer is 1/2, 1/2, residual 0.
    tx, ty = truth()
    fields = {"a": field(1.2 * tx, 1.2 * ty, 0.05), "b": field(0.8 * tx, 0.8 * ty, 0.05)}
    fit = fusion.fit_reference_weights(fusion.stack_fields(fields), tx, ty)
    assert fit.weights == pytest.approx({"a": 0.5, "b": 0.5}, abs=1e-6)
    assert fit.residual_rms_m_per_day < 1e-6


def test_robust_scheme_resists_one_sensor_blunder():
    sigmas = {"a": 0.05, "b": 0.05, "c": 0.05}
    fields, (tx, _ty) = noisy_sensors(sigmas, dict.fromkeys(sigmas, 1.0), seed=5)
    blunder = fields["c"].vx_m_per_day.copy()
    blunder[::3, ::3] += 3.0
    fields["c"] = field(blunder, fields["c"].vy_m_per_day, 0.05)
    hit = np.zeros(blunder.shape, bool)
    hit[::3, ::3] = True
    robust = RobustWeighting().fuse(fields).field
    plain = InverseVarianceWeighting().fuse(fields).field
    assert np.abs(robust.vx_m_per_day - tx)[hit].max() < 0.3
    assert np.abs(plain.vx_m_per_day - tx)[hit].min() > 0.8
    # ... and the plain scheme says so: its error is inflated where sensors disagree.
    error = plain.quality["vx_error_m_per_day"]
    assert np.median(error[hit]) > 5 * np.median(error[~hit])


def test_error_propagation_of_inverse_variance_mean():
    g = grid((1, 1))
    fields = {"a": field(np.array([[1.0]]), np.array([[0.0]]), 0.1, g),
              "b": field(np.array([[1.0]]), np.array([[0.0]]), 0.2, g)}
    result = InverseVarianceWeighting().fuse(fields)
    assert result.field.quality["vx_error_m_per_day"][0, 0] == pytest.approx((1 / 0.1**2 + 1 / 0.2**2) ** -0.5,
                                                                             rel=1e-6)
    assert result.contributing["a"][0, 0] and result.contributing["b"][0, 0]


def test_fusion_needs_errors_and_one_grid():
    tx, ty = truth()
    no_error = VelocityField(tx.astype("f4"), ty.astype("f4"), grid(), dt_days=16)
    with pytest.raises(InputError, match="error_m_per_day"):
        EqualWeighting().fuse({"a": no_error})
    other = field(tx[:10], ty[:10], 0.1)
    with pytest.raises(InputError, match="grid"):
        EqualWeighting().fuse({"a": field(tx, ty, 0.1), "b": other})


# --- properties -----------------------------------------------------------------------------------

values = st.floats(-5, 5, allow_nan=False, width=32)
sigma_s = st.floats(0.01, 1.0)
n_sensors_s = st.integers(1, 4)


@st.composite
def sensor_cells(draw, n_sensors=n_sensors_s):
    n = draw(n_sensors)
    shape = (3, 4)
    out = {}
    for i in range(n):
        vx = np.array(draw(st.lists(values, min_size=12, max_size=12)), "f4").reshape(shape)
        vy = np.array(draw(st.lists(values, min_size=12, max_size=12)), "f4").reshape(shape)
        holes = np.array(draw(st.lists(st.booleans(), min_size=12, max_size=12))).reshape(shape)
        vx[holes] = np.nan
        out[f"s{i}"] = field(vx, vy, draw(sigma_s), grid(shape))
    return out


@settings(max_examples=30, deadline=None)
@given(fields=sensor_cells(), data=st.data())
def test_properties_of_every_scheme(fields, data):
    scheme = data.draw(st.sampled_from(SCHEMES))
    fused = scheme().fuse(fields).field
    # order of sensors does not matter
    shuffled = dict(reversed(list(fields.items())))
    again = scheme().fuse(shuffled).field
    np.testing.assert_array_equal(fused.vx_m_per_day, again.vx_m_per_day)
    # convex: within the inputs' range, cell by cell
    stack = fusion.stack_fields(fields)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.nanmin(np.where(stack.valid, stack.vx, np.nan), axis=0)
        hi = np.nanmax(np.where(stack.valid, stack.vx, np.nan), axis=0)
    has = np.isfinite(fused.vx_m_per_day)
    assert np.all(fused.vx_m_per_day[has] >= lo[has] - 1e-4) and np.all(fused.vx_m_per_day[has] <= hi[has] + 1e-4)
    # a value wherever some sensor has one, and nowhere else
    np.testing.assert_array_equal(has, stack.valid.any(axis=0))


@settings(max_examples=30, deadline=None)
@given(fields=sensor_cells(n_sensors=st.integers(1, 3)), scheme=st.sampled_from(SCHEMES))
def test_identical_inputs_fuse_to_themselves(fields, scheme):
    one = next(iter(fields.values()))
    copies = {name: one for name in ("a", "b", "c")}
    fused = scheme().fuse(copies).field
    np.testing.assert_allclose(fused.vx_m_per_day, one.vx_m_per_day, rtol=1e-6, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(raw=st.lists(st.floats(0.0, 10.0), min_size=2, max_size=5), holes=st.data())
def test_renormalised_weights_are_non_negative_sum_to_one_and_only_rescale(raw, holes):
    w = np.array(raw)
    valid = np.array(holes.draw(st.lists(st.booleans(), min_size=len(raw), max_size=len(raw))))[:, None, None]
    cell = fusion.renormalise(w, valid)[:, 0, 0]
    if (w * valid[:, 0, 0]).sum() == 0:
        assert np.all(np.isnan(cell))
        return
    assert np.all(cell >= 0) and cell.sum() == pytest.approx(1.0)
    # a missing sensor only re-normalises the others: their ratios are unchanged
    kept = valid[:, 0, 0] & (w > 0)
    np.testing.assert_allclose(cell[kept] / cell[kept].sum(), w[kept] / w[kept].sum())
    assert np.all(cell[~valid[:, 0, 0]] == 0)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 4))
def test_fitted_weights_are_non_negative_and_sum_to_one(seed, n):
    rng = np.random.default_rng(seed)
    shape = (6, 7)
    fields = {f"s{i}": field(rng.normal(size=shape), rng.normal(size=shape), 0.1, grid(shape)) for i in range(n)}
    fit = fusion.fit_reference_weights(fusion.stack_fields(fields), rng.normal(size=shape), rng.normal(size=shape))
    w = np.array(list(fit.weights.values()))
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0)
