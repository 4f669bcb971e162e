"""Per-date offsets from a network of pairs' shifts: exact on consistent shifts, loops that add up, noise
averaged down, a blunder outvoted where the network can tell, never where it cannot."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gvfuse.tracking.date_network import PairShift, solve_date_offsets


def _network(offsets: dict[int, np.ndarray], edges: list[tuple[int, int]], noise: float = 0.0,
             rng: np.random.Generator | None = None, sigma: float = 0.05) -> list[PairShift]:
    out = []
    for a, b in edges:
        shift = offsets[b] - offsets[a] + (rng.normal(0.0, noise, 2) if rng is not None else 0.0)
        out.append(PairShift(f"{a}-{b}", a, b, (float(shift[0]), float(shift[1])), sigma))
    return out


@st.composite
def connected_networks(draw: st.DrawFn) -> tuple[dict[int, np.ndarray], list[tuple[int, int]]]:
    """Dates 0..n-1 with offsets, a chain tying them all, and any further pairs."""
    n = draw(st.integers(2, 8))
    values = draw(st.lists(st.tuples(st.floats(-2, 2), st.floats(-2, 2)), min_size=n, max_size=n))
    offsets = {i: np.array(v) for i, v in enumerate(values)}
    extra = draw(st.lists(st.sampled_from(list(itertools.combinations(range(n), 2))), max_size=10, unique=True))
    edges = sorted({(i, i + 1) for i in range(n - 1)} | set(extra))
    return offsets, edges


@settings(max_examples=60, deadline=None)
@given(case=connected_networks())
def test_consistent_shifts_are_reproduced_exactly_and_nothing_is_outvoted(case):
    offsets, edges = case
    result = solve_date_offsets(_network(offsets, edges), tolerance=0.1)
    assert result.dropped == ()
    for a, b in edges:
        assert result.pair_shifts[f"{a}-{b}"] == pytest.approx(tuple(offsets[b] - offsets[a]), abs=1e-9)
    # only differences are determined: the offsets come with zero mean
    assert np.abs(np.mean(list(result.date_offsets.values()), axis=0)).max() < 1e-9


@settings(max_examples=60, deadline=None)
@given(case=connected_networks(), seed=st.integers(0, 2**16))
def test_the_corrections_of_every_loop_add_up_whatever_the_measurements(case, seed):
    offsets, edges = case
    rng = np.random.default_rng(seed)
    result = solve_date_offsets(_network(offsets, edges, noise=0.3, rng=rng), tolerance=0.2)
    present = set(edges)
    for a, b, c in itertools.combinations(sorted(offsets), 3):
        if {(a, b), (b, c), (a, c)} <= present:
            ab, bc, ac = (np.array(result.pair_shifts[f"{p}-{q}"]) for p, q in ((a, b), (b, c), (a, c)))
            assert np.abs(ac - ab - bc).max() < 1e-9


def test_redundant_pairs_average_the_noise_down():
    """Six dates, all 15 pairs: 5 unknowns from 15 measurements, so the error of a pair's shift falls to about
    sqrt(5 / 15) = 0.58 of a single measurement's."""
    rng = np.random.default_rng(7)
    own, network = [], []
    for _ in range(200):
        offsets = {i: rng.normal(0.0, 0.5, 2) for i in range(6)}
        edges = list(itertools.combinations(range(6), 2))
        pairs = _network(offsets, edges, noise=0.05, rng=rng)
        result = solve_date_offsets(pairs, tolerance=1.0)
        for p in pairs:
            truth = offsets[p.secondary] - offsets[p.reference]
            own.append(np.asarray(p.shift) - truth)
            network.append(np.asarray(result.pair_shifts[p.pair_id]) - truth)
    ratio = np.sqrt(np.mean(np.square(network))) / np.sqrt(np.mean(np.square(own)))
    assert 0.5 < ratio < 0.66


def test_a_blunder_is_outvoted_and_its_pair_gets_the_network_shift():
    rng = np.random.default_rng(3)
    offsets = {i: rng.normal(0.0, 0.5, 2) for i in range(6)}
    pairs = _network(offsets, list(itertools.combinations(range(6), 2)), noise=0.02, rng=rng)
    bad = pairs[4]
    pairs[4] = PairShift(bad.pair_id, bad.reference, bad.secondary, (bad.shift[0] + 0.9, bad.shift[1] - 0.4), 0.05)
    result = solve_date_offsets(pairs, tolerance=0.2)
    assert result.dropped == (bad.pair_id,)
    truth = offsets[bad.secondary] - offsets[bad.reference]
    assert np.abs(np.asarray(result.pair_shifts[bad.pair_id]) - truth).max() < 0.05
    assert np.hypot(*result.residuals[bad.pair_id]) > 0.9


@settings(max_examples=60, deadline=None)
@given(index=st.integers(0, 5), size=st.floats(0.5, 2.0), angle=st.floats(0.0, 2 * np.pi),
       jitter=st.lists(st.floats(0.9, 1.1), min_size=6, max_size=6), seed=st.integers(0, 2**16))
def test_four_scenes_pin_a_blunder_on_the_right_pair_whatever_the_weights(index, size, angle, jitter, seed):
    """Four scenes, all six pairs: every pair's redundancy number is 1/2, in floating point a hair either side;
    a blunder in any pair, with sigmas 10 % apart, is outvoted and no other pair is."""
    rng = np.random.default_rng(seed)
    offsets = {i: rng.normal(0.0, 0.5, 2) for i in range(4)}
    pairs = _network(offsets, list(itertools.combinations(range(4), 2)), noise=0.01, rng=rng)
    pairs = [PairShift(p.pair_id, p.reference, p.secondary, p.shift, 0.05 * k) for p, k in zip(pairs, jitter)]
    bad = pairs[index]
    moved = (bad.shift[0] + size * np.cos(angle), bad.shift[1] + size * np.sin(angle))
    pairs[index] = PairShift(bad.pair_id, bad.reference, bad.secondary, moved, bad.sigma)
    result = solve_date_offsets(pairs, tolerance=0.2)
    assert result.dropped == (bad.pair_id,)


def test_a_lone_triangle_that_does_not_close_shares_the_misfit_and_outvotes_no_one():
    """With one loop, a misfit could be in any of its three pairs: the network cannot tell which."""
    pairs = [PairShift("ab", "a", "b", (0.1, 0.0)), PairShift("bc", "b", "c", (0.1, 0.0)),
             PairShift("ac", "a", "c", (0.5, 0.0))]
    result = solve_date_offsets(pairs, tolerance=0.05)
    assert result.dropped == ()
    assert result.redundancy == 1
    assert [result.residuals[k][0] for k in ("ab", "bc", "ac")] == pytest.approx([-0.1, -0.1, 0.1])
    assert result.pair_shifts["ac"][0] == pytest.approx(result.pair_shifts["ab"][0] + result.pair_shifts["bc"][0])


def test_a_pair_without_its_own_estimate_gets_one_only_where_its_dates_are_tied():
    pairs = [PairShift("ab", "a", "b", (0.2, -0.1)), PairShift("bc", "b", "c", (0.1, 0.3)),
             PairShift("ac", "a", "c", None),  # skipped, tied through b
             PairShift("cd", "c", "d", None),  # skipped, d tied to nothing measured
             PairShift("de", "d", "e", (0.4, 0.4)),  # measured, but its own group
             PairShift("ae", "a", "e", None)]  # skipped, a and e in different groups
    result = solve_date_offsets(pairs, tolerance=0.1)
    assert result.pair_shifts["ac"] == pytest.approx((0.3, 0.2))
    assert result.pair_shifts["de"] == pytest.approx((0.4, 0.4))
    assert result.pair_shifts["cd"] is None and result.pair_shifts["ae"] is None
    assert set(result.residuals) == {"ab", "bc", "de"}


@pytest.mark.parametrize(("pair", "words"), [
    (PairShift("aa", "a", "a", (0.0, 0.0)), "the same date"),
    (PairShift("ab", "a", "b", (float("nan"), 0.0)), "must be finite"),
    (PairShift("ab", "a", "b", (0.0, 0.0), sigma=0.0), "sigma > 0"),
])
def test_a_malformed_pair_is_refused_naming_it(pair, words):
    with pytest.raises(ValueError, match=words):
        solve_date_offsets([pair], tolerance=0.1)
