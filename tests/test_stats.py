"""Robust statistics (gvfuse.stats) against known values and their defining properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from gvfuse.stats import NMAD_FACTOR, nmad


def test_factor_is_the_normal_mad_to_sigma_ratio():
    assert NMAD_FACTOR == pytest.approx(1.0 / scipy.stats.norm.ppf(0.75), abs=1e-4)


def test_nmad_of_a_known_sample():
    # median 3, absolute deviations 2, 1, 0, 1, 97: their median is 1, and the outlier does not matter
    assert nmad(np.array([1.0, 2.0, 3.0, 4.0, 100.0])) == pytest.approx(NMAD_FACTOR)
    assert nmad(np.array([5.0, 5.0, 5.0])) == 0.0


@pytest.mark.parametrize(("sigma", "mu"), [(1.0, 0.0), (0.05, 3.0), (250.0, -1e4)])
def test_nmad_of_a_normal_sample_is_its_sigma(sigma, mu):
    values = np.random.default_rng(7).normal(mu, sigma, 200_000)
    assert nmad(values) == pytest.approx(sigma, rel=0.01)


def test_nmad_ignores_outliers_that_move_the_std():
    rng = np.random.default_rng(8)
    values = rng.normal(0.0, 1.0, 10_000)
    values[:500] = 1e3  # 5 % gross blunders
    assert np.std(values) > 100
    assert nmad(values) == pytest.approx(1.0, rel=0.1)


def test_nmad_ignores_non_finite_values():
    clean = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    dirty = np.array([np.nan, 1.0, np.inf, 2.0, 3.0, -np.inf, 4.0, 100.0, np.nan])
    assert nmad(dirty) == nmad(clean)


@pytest.mark.parametrize("values", [np.array([]), np.array([np.nan, np.inf]), np.full((3, 4), np.nan)])
def test_nmad_without_finite_values_is_nan(values):
    assert math.isnan(nmad(values))


def test_nmad_takes_any_shape_and_integer_input():
    grid = np.arange(12).reshape(3, 4)
    assert nmad(grid) == nmad(grid.ravel().astype(float)) == pytest.approx(3.0 * NMAD_FACTOR)
    assert isinstance(nmad(grid), float)


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=60), shift=finite)
def test_nmad_is_shift_invariant(values, shift):
    x = np.array(values)
    assert nmad(x + shift) == pytest.approx(nmad(x), rel=1e-9, abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=60), scale=st.floats(-1e3, 1e3, allow_nan=False))
def test_nmad_scales_with_the_absolute_factor(values, scale):
    x = np.array(values)
    assert nmad(scale * x) == pytest.approx(abs(scale) * nmad(x), rel=1e-9, abs=1e-9)
