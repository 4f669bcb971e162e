"""The normalized median test (gvfuse.tracking.outliers) against np.nanmedian and known blunders."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gvfuse.tracking.outliers import _NETWORK_8, normalized_median_residual, normalized_median_test


def test_the_sorting_network_sorts_every_input_of_eight():
    # the 0-1 principle: a comparator network that sorts every 0/1 sequence sorts every sequence
    for bits in itertools.product((0, 1), repeat=8):
        values = list(bits)
        for a, b in _NETWORK_8:
            values[a], values[b] = min(values[a], values[b]), max(values[a], values[b])
        assert values == sorted(values)


def brute_residual(field: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = field.shape
    res, count = np.full(field.shape, np.nan), np.zeros(field.shape, int)
    for i in range(rows):
        for j in range(cols):
            nb = [field[a, b] for a in range(i - 1, i + 2) for b in range(j - 1, j + 2)
                  if 0 <= a < rows and 0 <= b < cols and (a, b) != (i, j) and np.isfinite(field[a, b])]
            count[i, j] = len(nb)
            if nb:
                med = np.median(nb)
                res[i, j] = abs(field[i, j] - med) / (np.median(np.abs(np.array(nb) - med)) + epsilon)
    return res, count


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 9), cols=st.integers(1, 9), seed=st.integers(0, 10_000),
       holes=st.floats(0.0, 0.9))
def test_the_residual_is_the_median_formula_over_the_valid_neighbours(rows, cols, seed, holes):
    rng = np.random.default_rng(seed)
    field = rng.normal(size=(rows, cols)).astype(np.float32)
    field[rng.random((rows, cols)) < holes] = np.nan
    got, n = normalized_median_residual(field, epsilon_px=0.1)
    want, want_n = brute_residual(field.astype(np.float64), 0.1)
    np.testing.assert_array_equal(n, want_n)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = np.isfinite(want)
    assert (np.abs(got[ok] - want[ok]) <= 1e-5 * (1 + np.abs(want[ok]))).all()


def test_a_blunder_in_a_smooth_field_is_rejected_and_its_neighbours_kept():
    yy, xx = np.mgrid[0:20, 0:20].astype(np.float32)
    dx, dy = 0.05 * xx, 0.02 * yy
    dx[7, 9] += 3.0
    bad = normalized_median_test(dx, dy)
    assert bad[7, 9] and bad.sum() == 1


def test_an_isolated_match_cannot_be_checked_and_is_rejected():
    dx = np.full((5, 5), np.nan, np.float32)
    dx[2, 2] = 1.0
    assert normalized_median_test(dx, dx.copy())[2, 2]
