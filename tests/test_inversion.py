"""The pair-network inversion against known truth, and the properties an inversion must have."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from gvfuse import inversion as inv
from gvfuse.io.raster import write_bands
from gvfuse.model import ERROR_BAND, Grid, Month, PairObservation

UTC = dt.timezone.utc
T0 = dt.datetime(2023, 1, 1, tzinfo=UTC)


def network(starts_days, lengths_days, bin_days=6.0):
    starts = [T0 + dt.timedelta(days=float(s)) for s in starts_days]
    ends = [s + dt.timedelta(days=float(n)) for s, n in zip(starts, lengths_days)]
    bins = inv.TimeBins.covering(T0, max(ends), bin_days)
    return inv.Network.build(bins, starts, ends), starts, ends


def month_mean(net, fit, month):
    days = net.bins.overlaps(np.array([net.bins.days(month.start)]), np.array([net.bins.days(month.end)]))[0]
    return fit.mean(days / days.sum())


def interval_mean(net, fit, start, end):
    return fit.mean(net.bins.averaging(start, end))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), cells=st.integers(1, 6), band=st.integers(1, 6), count=st.integers(8, 40))
def test_banded_cholesky_solves_like_a_dense_solver(seed, cells, band, count):
    rng = np.random.default_rng(seed)
    dense = np.zeros((cells, count, count))
    for n in range(cells):
        b = np.triu(np.tril(rng.normal(size=(count, count)), band), 0)
        dense[n] = b @ b.T + count * np.eye(count)
    width = min(2 * band, count - 1)
    bands = np.zeros((cells, count, width + 1))
    for j in range(width + 1):
        bands[:, : count - j, j] = np.array([np.diagonal(m, j) for m in dense])
    lower = inv.banded_cholesky(bands)
    rhs = rng.normal(size=(cells, count))
    x = inv.back_substitution(lower, inv.forward_substitution(lower, rhs))
    np.testing.assert_allclose(x, np.linalg.solve(dense, rhs[..., None])[..., 0], rtol=1e-9, atol=1e-9)


pairs = st.lists(st.tuples(st.floats(0, 300), st.sampled_from([8.0, 12.0, 16.0, 24.0, 32.0, 36.0, 48.0])),
                 min_size=12, max_size=40)


@settings(max_examples=25, deadline=None)
@given(pairs=pairs, vx=st.floats(-3, 3), vy=st.floats(-3, 3), weight=st.sampled_from([0.3, 30.0, 3000.0]))
def test_a_constant_velocity_is_recovered_exactly(pairs, vx, vy, weight):
    net, starts, ends = network(*zip(*pairs))
    ones = np.ones((2, len(pairs)))
    fit = inv.solve(net, vx * ones, vy * ones, 0.01 * ones, weight * 1e4, robust_iterations=2)
    mx, my = interval_mean(net, fit, min(starts), max(ends))
    # exact but for the tiny ridge that keeps the normal matrix invertible
    np.testing.assert_allclose(mx, vx, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(my, vy, rtol=1e-6, atol=1e-7)


def test_a_velocity_linear_in_time_is_recovered_whatever_the_smoothing():
    starts = np.arange(0, 280, 5.0)
    lengths = np.tile([12.0, 24.0, 36.0], len(starts))[: len(starts)]
    net, s, _ = network(starts, lengths)
    # v(t) = a + b t: a pair's mean velocity is v at its mid-time; second differences of u vanish
    mid = np.array([(a - T0).total_seconds() / 86400 + n / 2 for a, n in zip(s, lengths)])
    v = 0.2 + 0.001 * mid
    ones = np.ones((1, len(starts)))
    for weight in (0.3e4, 3e7):
        fit = inv.solve(net, v[None, :], 0 * v[None, :], 0.01 * ones, weight, robust_iterations=0)
        may = Month(2023, 5)
        truth = 0.2 + 0.001 * ((may.start - T0).total_seconds() / 86400 + may.days / 2)
        # exact but for the binning: a bin cut by the month's edge counts with its mean, not its part's
        assert month_mean(net, fit, may)[0][0] == pytest.approx(truth, abs=0.001 * 6.0 / 4)


@settings(max_examples=20, deadline=None)
@given(pairs=pairs, seed=st.integers(0, 1000))
def test_pair_order_does_not_matter(pairs, seed):
    rng = np.random.default_rng(seed)
    starts, lengths = map(np.array, zip(*pairs))
    vx, vy = rng.normal(0.3, 0.05, (3, len(pairs))), rng.normal(0, 0.05, (3, len(pairs)))
    sigma = rng.uniform(0.005, 0.02, (3, len(pairs)))
    order = rng.permutation(len(pairs))
    net, _, _ = network(starts, lengths)
    shuffled, _, _ = network(starts[order], lengths[order])
    a = inv.solve(net, vx, vy, sigma, 1e5)
    b = inv.solve(shuffled, vx[:, order], vy[:, order], sigma[:, order], 1e5)
    span = (T0, T0 + dt.timedelta(days=float(np.max(starts + lengths))))
    np.testing.assert_allclose(interval_mean(net, a, *span)[0], interval_mean(shuffled, b, *span)[0],
                               rtol=1e-8, atol=1e-10)


@settings(max_examples=20, deadline=None)
@given(pairs=pairs, seed=st.integers(0, 1000), blunder=st.floats(-50, 50))
def test_a_pair_with_a_huge_error_changes_nothing(pairs, seed, blunder):
    rng = np.random.default_rng(seed)
    starts, lengths = map(np.array, zip(*pairs))
    vx = rng.normal(0.3, 0.01, (2, len(pairs)))
    sigma = np.full((2, len(pairs)), 0.01)
    # the extra pair lies inside the network's span, so both networks have the same bins
    net, starts_t, ends_t = network(np.append(starts, 0.0), np.append(lengths, 8.0))
    more, _, _ = network(np.append(starts, [0.0, 1.0]), np.append(lengths, [8.0, 6.0]))
    vx = np.hstack([vx, np.full((2, 1), 0.3)])
    sigma = np.hstack([sigma, np.full((2, 1), 0.01)])
    base = inv.solve(net, vx, 0 * vx, sigma, 1e5, robust_iterations=0)
    wild = np.hstack([vx, np.full((2, 1), blunder)])
    fit = inv.solve(more, wild, 0 * wild, np.hstack([sigma, np.full((2, 1), 1e6)]), 1e5, robust_iterations=0)
    assert more.bins == net.bins
    span = (min(starts_t), max(ends_t))
    np.testing.assert_allclose(interval_mean(more, fit, *span)[0], interval_mean(net, base, *span)[0], atol=1e-7)


def test_a_pair_spanning_two_months_informs_both():
    # pairs that each lie inside one month, plus one spanning January and February
    net, _, _ = network([2.0, 10.0, 40.0, 44.0, 20.0], [12.0, 16.0, 12.0, 12.0, 24.0])
    base = np.array([[0.3, 0.3, 0.3, 0.3, 0.3]])
    changed = base.copy()
    changed[0, 4] = 0.6  # the January-February pair reads faster
    sigma = np.full(base.shape, 0.01)
    a = inv.solve(net, base, 0 * base, sigma, 1e4, robust_iterations=0)
    b = inv.solve(net, changed, 0 * changed, sigma, 1e4, robust_iterations=0)
    for month in (Month(2023, 1), Month(2023, 2)):
        assert month_mean(net, b, month)[0][0] > month_mean(net, a, month)[0][0] + 0.01
    valid = np.zeros((1, 5), bool)
    valid[0, 4] = True  # only the spanning pair: it covers part of both months
    for month in (Month(2023, 1), Month(2023, 2)):
        overlap = net.bins.overlaps(np.array([net.bins.days(month.start)]), np.array([net.bins.days(month.end)]))[0]
        assert 0 < inv.coverage(net, valid, overlap)[0] < 1


def test_three_cornered_hat_finds_each_sensors_error_without_truth():
    rng = np.random.default_rng(1)
    truth = rng.normal(0.3, 0.1, (12, 4000))
    sigmas = {"a": 0.004, "b": 0.01, "c": 0.02}
    means = {name: [(t + rng.normal(0, s, t.shape), t + rng.normal(0, s, t.shape), np.full(t.shape, 0.005))
                    for t in truth] for name, s in sigmas.items()}
    found = inv.three_cornered_hat(means)
    for name, s in sigmas.items():
        assert np.sqrt(found[name][0]) == pytest.approx(s, rel=0.1)
        assert found[name][1] == pytest.approx(0.005**2)
    assert inv.three_cornered_hat({k: means[k] for k in "ab"}) == {}


def test_the_non_negative_hat_answers_where_the_plain_one_cannot_and_never_gives_a_negative_variance():
    rng = np.random.default_rng(2)
    truth = rng.normal(0.3, 0.1, (1, 600))  # one month of 600 common cells: below MIN_TCH_CELLS
    sigmas = {"a": 0.0, "b": 0.01, "c": 0.02}  # "a" perfect: least squares may give it a small negative variance
    means = {name: [(t + rng.normal(0, s, t.shape) if s else t.copy(), t + rng.normal(0, s, t.shape) if s else t.copy(),
                     np.full(t.shape, 0.005)) for t in truth] for name, s in sigmas.items()}
    assert inv.three_cornered_hat(means) == {}
    found = inv.three_cornered_hat(means, min_cells=inv.MIN_TCH_CELLS // 4, non_negative=True)
    assert all(found[name][0] >= 0 for name in sigmas)
    for name in ("b", "c"):
        assert np.sqrt(found[name][0]) == pytest.approx(sigmas[name], rel=0.15)
    assert np.sqrt(found["a"][0]) < 0.003


def test_speed_scales_bring_a_slow_reading_sensor_to_the_reference():
    starts = np.arange(0, 300, 4.0)
    lengths = np.tile([12.0, 24.0], len(starts))[: len(starts)]
    net, _, _ = network(starts, lengths)
    rng = np.random.default_rng(3)
    speed = np.concatenate([np.zeros(300), rng.uniform(0.2, 0.5, 300)])[:, None]
    names = ["ref" if i % 2 == 0 else "slow" for i in range(len(starts))]
    scale = np.where(np.array(names) == "slow", 0.9, 1.0)[None, :]
    vx = speed * scale + rng.normal(0, 0.005, (600, len(starts)))
    data = inv.Observations(vx, 0 * vx, np.full(vx.shape, 0.005))
    fits = inv.single_sensor_fits(net, data, names, 1e5, 1)
    factors = inv.speed_scales(net, fits, "ref")
    assert factors["ref"] == 1.0 and factors["slow"] == pytest.approx(1 / 0.9, rel=0.01)


def _write_pairs(folder, grid, truth_speed, pairs, rng):
    """Cached pair results of a flow v(t) = speed * (1 + 0.3 sin(2 pi t / 365)) with noise of each sensor."""
    observations = []
    for k, (sensor, start, days, noise) in enumerate(pairs):
        t = np.linspace(start, start + days, 50)
        factor = float(np.mean(1 + 0.3 * np.sin(2 * np.pi * t / 365.0)))
        vx = truth_speed * factor + rng.normal(0, noise, grid.shape)
        vy = rng.normal(0, noise, grid.shape)
        path = write_bands(folder / f"{k}.tif", {"vx": vx, "vy": vy, ERROR_BAND: np.full(grid.shape, 2 * noise),
                                                 "count": np.ones(grid.shape)}, grid, cog=False)
        begin = T0 + dt.timedelta(days=start)
        observations.append(PairObservation(sensor, f"p{k}", begin, begin + dt.timedelta(days=days), path))
    return observations


def test_a_fused_year_of_three_sensors_is_close_to_the_truth(tmp_path):
    rng = np.random.default_rng(7)
    grid = Grid(32647, Affine(30.0, 0, 400000, 0, -30.0, 3250000), (48, 40))
    rows = np.arange(grid.rows)[:, None] * np.ones(grid.cols)
    truth_speed = np.where(rows > 24, 0.4, 0.0)  # a glacier over the lower half, rock above
    pairs = ([("optical", s, d, 0.01) for s in range(0, 360, 8) for d in (16, 32)]
             + [("sar", s, d, 0.03) for s in range(3, 360, 12) for d in (12, 24)]
             + [("other", s, 20, 0.02) for s in range(5, 360, 10)])
    observations = _write_pairs(tmp_path, grid, truth_speed, pairs, rng)
    months = Month.span("2023-02", "2023-11")
    result = inv.invert_period(observations, months, grid, inv.InversionSettings(sample_cells=1024,
                                                                                 scale_sample_cells=1024))
    assert result.calibration.scale_reference == "optical"
    errors, predicted = [], []
    for month in months:
        arrays = result.months[month]
        t = np.linspace((month.start - T0).days, (month.end - T0).days, 200)
        truth = truth_speed * float(np.mean(1 + 0.3 * np.sin(2 * np.pi * t / 365.0)))
        error = np.hypot(arrays["vx"] - truth, arrays["vy"])
        assert np.isfinite(error).all() and (arrays["count"] > 3).all()
        errors.append(np.sqrt(np.mean(error**2) / 2))
        predicted.append(np.sqrt(np.mean(arrays["sigma"] ** 2)))
        sensors = {name.split(":")[1] for name in arrays if name.startswith("contributing:")}
        assert sensors == {"optical", "other", "sar"}
    # several pairs of three sensors per month: far below a single optical pair's noise (0.01 m/day)
    assert max(errors) < 0.004
    # the stated errors (twice the noise) were calibrated back down: predicted within a factor 2 of the real one
    ratio = np.array(errors) / np.array(predicted)
    assert 0.5 < np.median(ratio) < 2.0


def test_cells_are_inverted_independently_so_the_block_side_changes_nothing(tmp_path):
    rng = np.random.default_rng(8)
    grid = Grid(32647, Affine(30.0, 0, 400000, 0, -30.0, 3250000), (20, 18))
    truth_speed = np.where(np.arange(grid.rows)[:, None] * np.ones(grid.cols) > 9, 0.4, 0.0)
    pairs = ([("optical", s, 16, 0.01) for s in range(0, 200, 8)] + [("sar", s, 24, 0.03) for s in range(3, 200, 12)]
             + [("other", s, 20, 0.02) for s in range(5, 200, 10)])
    observations = _write_pairs(tmp_path, grid, truth_speed, pairs, rng)
    months = Month.span("2023-02", "2023-05")
    results = [inv.invert_period(observations, months, grid, inv.InversionSettings(
        sample_cells=256, scale_sample_cells=256, block_cells=side)) for side in (8, 128)]
    for month in months:
        for key, value in results[1].months[month].items():
            np.testing.assert_array_equal(results[0].months[month][key], value, err_msg=key)


def _three_sensor_network(rng, cells=600):
    """Three sensors on interleaved schedules with pairs of several lengths, and a seasonal truth per cell."""
    pairs = ([("a", s, d) for s in range(0, 330, 8) for d in (16, 32)]
             + [("b", s, d) for s in range(3, 330, 12) for d in (12, 24)]
             + [("c", s, 20) for s in range(5, 330, 10)])
    net, _, _ = network([p[1] for p in pairs], [p[2] for p in pairs])
    sensors = [p[0] for p in pairs]
    speed = rng.uniform(0.1, 0.5, cells)[:, None]
    bins_t = (net.bins.edges_days[:-1] + net.bins.edges_days[1:]) / 2
    u = speed * (1 + 0.3 * np.sin(2 * np.pi * bins_t / 365.0))[None, :]
    truth = np.asarray((net.design @ u.T).T)  # each pair's true mean velocity, (cells, pairs)
    return net, sensors, truth


def test_each_pairs_three_cornered_hat_finds_its_own_error_and_the_error_it_shares_with_its_sensor():
    rng = np.random.default_rng(11)
    net, sensors, truth = _three_sensor_network(rng)
    names = np.array(sensors)
    level = {"a": 0.005, "b": 0.02, "c": 0.01}
    real = np.array([level[s] * rng.uniform(0.5, 2.0) for s in sensors])  # every pair its own noise
    noise = rng.normal(0, 1, truth.shape) * real[None, :]
    # sensor "c" repeats a per-cell offset in every pair: invisible against its own pairs, seen by the hat
    shared = rng.normal(0, 0.01, (truth.shape[0], 1))
    vx = truth + noise + np.where(names == "c", shared, 0.0)
    vy = rng.normal(0, 1, truth.shape) * real[None, :] + np.where(names == "c", shared, 0.0)
    stated = np.ones(truth.shape) * 0.01
    data = inv.Observations(vx, vy, stated)
    fits = inv.single_sensor_fits(net, data, sensors, 30 * inv.reference_weight(stated), 1)
    found = np.sqrt(inv.pair_three_cornered_hat(net, fits, data, sensors))
    expected = np.where(names == "c", np.hypot(real, 0.01), real)
    assert np.isfinite(found).mean() > 0.9
    ratio = found / expected
    assert np.nanmedian(np.abs(ratio - 1)) < 0.15
    for name in "abc":  # the hat ranks the pairs of each sensor by their real error
        own = (names == name) & np.isfinite(found)
        assert np.corrcoef(found[own], expected[own])[0, 1] > 0.7


def test_a_pair_whose_hat_is_near_zero_is_not_believed_far_better_than_its_sensor(monkeypatch):
    """The hat is a difference of variances: a pair it puts near zero would outweigh the whole network
    (measured on a one-month demo: one Sentinel-2 pair at 0.03 of its sensor's factor, 19x too confident,
    which bent the fused month). A pair keeps at least half its sensor's median factor."""
    rng = np.random.default_rng(5)
    net, sensors, truth = _three_sensor_network(rng, cells=200)
    stated = np.full(truth.shape, 0.01)
    data = inv.Observations(truth + rng.normal(0, 0.01, truth.shape), rng.normal(0, 0.01, truth.shape), stated)
    fits = inv.single_sensor_fits(net, data, sensors, 30 * inv.reference_weight(stated), 1)
    real = np.full(len(sensors), 1e-4)  # every pair's real error the stated 0.01 m/day ...
    real[0] = 1e-8  # ... but the first pair's hat came out at 0.01 of it
    monkeypatch.setattr(inv, "pair_three_cornered_hat", lambda *args: real.copy())
    factors, per_sensor = inv._pair_hat_factors(net, fits, data, sensors, {}, np.ones(len(sensors)))
    assert per_sensor[sensors[0]] == pytest.approx(1.0)
    assert factors[0] == pytest.approx(inv.MIN_PAIR_FACTOR_SHARE) and np.allclose(factors[1:], 1.0)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), folds=st.integers(2, 6))
def test_pairs_held_out_by_scene_share_no_scene_with_the_pairs_that_predict_them(seed, folds):
    rng = np.random.default_rng(seed)
    count = int(rng.integers(10, 60))
    sensors = list(rng.choice(["a", "b", "c"], count))
    starts = rng.choice(np.arange(0, 200, 4.0), count)
    lengths = rng.choice([4.0, 8.0, 12.0, 24.0], count)
    net, _, _ = network(starts, lengths)
    held, left_out = inv.scene_folds(net, sensors, folds)
    scenes = [{(s, a), (s, b)} for s, a, b in zip(sensors, net.starts_days, net.ends_days)]
    for fold in range(folds):
        assert not (held[fold] & ~left_out[fold]).any()  # a held-out pair is never trained on
        trained = set().union(*(scenes[p] for p in np.flatnonzero(~left_out[fold])))
        for p in np.flatnonzero(held[fold]):
            assert not scenes[p] & trained


def test_a_sensors_steady_offset_in_some_cells_is_removed_and_noise_elsewhere_is_not_subtracted():
    rng = np.random.default_rng(5)
    net, sensors, truth = _three_sensor_network(rng, cells=400)
    names = np.array(sensors)
    noise = {"a": 0.004, "b": 0.02, "c": 0.01}
    sigma = np.array([noise[s] for s in sensors])[None, :] * np.ones(truth.shape)
    margin = np.arange(truth.shape[0]) < 100  # the first 100 cells: a large window's margin offset
    offset = np.where(margin[:, None] & (names != "a")[None, :], 0.04, 0.0)
    vx = truth + offset + rng.normal(0, 1, truth.shape) * sigma
    vy = rng.normal(0, 1, truth.shape) * sigma
    ox, oy = inv.cell_offsets(net, inv.Observations(vx, vy, sigma), sensors, "a", 30 * inv.reference_weight(sigma))
    assert np.all(ox[:, names == "a"] == 0)
    for name in "bc":
        found = ox[:, names == name][:, 0]
        assert np.median(np.abs(found[margin] - 0.04)) < 0.005
        assert np.sqrt(np.mean(found[~margin] ** 2)) < 0.5 * noise[name] / np.sqrt((names == name).sum()) * 3
    fit = inv.solve(net, vx - ox, vy - oy, sigma, 30 * inv.reference_weight(sigma))
    plain = inv.solve(net, vx, vy, sigma, 30 * inv.reference_weight(sigma))
    truth_bins = inv.solve(net, truth, 0 * truth, sigma, 30 * inv.reference_weight(sigma))

    def rmse(solution, cells):
        return np.sqrt(np.mean((solution.vx - truth_bins.vx)[cells] ** 2))

    # uncorrected, the offset shows in the margin; corrected, the margin is as good as the rest
    assert rmse(plain, margin) > 1.5 * rmse(plain, ~margin)
    assert rmse(fit, margin) < 1.25 * rmse(fit, ~margin)


def test_ice_free_cells_do_not_choose_the_smoothing():
    """On ground that never moves any smoothing predicts held-out pairs, and the more the better: the
    choice must come from the moving cells, so adding still cells must not change it."""
    rng = np.random.default_rng(2)
    net, sensors, truth = _three_sensor_network(rng, cells=300)
    sensors = ["a" if s == "a" else "b" for s in sensors]
    sigma = np.full(truth.shape, 0.01)

    def observed(values):
        return values + rng.normal(0, 0.01, values.shape), rng.normal(0, 0.01, values.shape)

    moving_x, moving_y = observed(truth * 2)  # 0.2-1.0 m/day with a +-30 % seasonal cycle
    still_x, still_y = observed(np.zeros((2700, truth.shape[1])))
    settings_ = inv.InversionSettings(smoothing_candidates=(0.3, 3.0, 30.0, 300.0, 3000.0), calibrate_errors=False,
                                      scale_reference="none")
    alone = inv.calibrate(net, inv.Observations(moving_x, moving_y, sigma), sensors, settings_)
    mixed = inv.calibrate(net, inv.Observations(np.vstack([moving_x, still_x]), np.vstack([moving_y, still_y]),
                                                np.vstack([sigma, np.full(still_x.shape, 0.01)])), sensors, settings_)
    assert mixed.cross_validation.smoothing_weight == alone.cross_validation.smoothing_weight
    assert alone.cross_validation.smoothing_weight < 3000.0


@given(curvature=st.floats(-1e-6, 1e-6), reference_m=st.floats(100, 400), extra_m=st.floats(50, 600))
def test_the_reference_windows_own_bias_is_extrapolated_from_a_larger_windows_offset(curvature, reference_m,
                                                                                     extra_m):
    """A box window of side W over a flow of constant curvature reads it too fast by curvature W^2 / 12 (per
    axis); from the offset between two windows the smaller one's own bias follows exactly."""
    larger_m = reference_m + extra_m
    bias = {w: curvature * w**2 / 12 for w in (reference_m, larger_m)}
    sensors = ["small", "large", "large"]
    offsets_x = np.full((5, 3), bias[larger_m] - bias[reference_m])
    offsets_x[:, 0] = 0.0
    variance = inv.window_error_variance(offsets_x, np.zeros((5, 3)), sensors,
                                         {"small": reference_m, "large": larger_m}, "small")
    assert np.allclose(variance, bias[reference_m] ** 2 / 2, rtol=1e-9, atol=1e-30)
    # a sensor with an unknown window, or one no larger, says nothing
    assert np.all(inv.window_error_variance(offsets_x, offsets_x, sensors, {"small": reference_m}, "small") == 0)
    assert np.all(inv.window_error_variance(offsets_x, offsets_x, sensors,
                                            {"small": reference_m, "large": reference_m}, "small") == 0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), cols=st.integers(1, 30), missing=st.floats(0, 1))
def test_the_row_median_is_numpys_nanmedian(seed, cols, missing):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(20, cols))
    values[rng.random(values.shape) < missing] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: numpy warns, and gives NaN
        expected = np.nanmedian(values, axis=1)
    np.testing.assert_allclose(inv.row_nanmedian(values), expected, equal_nan=True)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000), cells=st.integers(20, 90), robust=st.integers(0, 3))
def test_a_solve_split_over_threads_is_the_solve_in_one_piece(seed, cells, robust):
    """The calibration's solves run in the main thread split into parts on dask's threads: cells are
    independent, so the parts put together are the solve of all cells at once, to the bit."""
    rng = np.random.default_rng(seed)
    net, _, truth = _three_sensor_network(rng, cells=cells)
    vx = truth + rng.normal(0, 0.01, truth.shape)
    vy = 0.5 * truth + rng.normal(0, 0.01, truth.shape)
    sigma = np.where(rng.random(truth.shape) < 0.2, np.nan, 0.01)
    whole = inv._solve_cells(net, vx, vy, sigma, 1e4, robust)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inv, "SOLVE_PART_CELLS", 8)
        patch.setattr(inv, "default_threads", lambda: 3)
        split = inv.solve(net, vx, vy, sigma, 1e4, robust_iterations=robust)
    for name in ("vx", "vy", "lower", "robust_weights"):
        np.testing.assert_array_equal(getattr(split, name), getattr(whole, name))


def _smeared_edge(rows: int = 60, cols: int = 90, edge: int = 30, window: int = 7, noise: float = 0.0,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A glacier right of column ``edge`` whose speed rises from its edge (slope varying along it, twice as
    steep at the bottom as at the top), seen through a ``window``-cell box: (measured, truth, glacier)."""
    slope = 0.004 * (1.0 + np.arange(rows) / rows)[:, None]
    truth = slope * np.clip(np.arange(cols) - edge + 0.5, 0.0, 40.0)[None, :]
    from scipy import ndimage

    measured = ndimage.uniform_filter1d(truth, window, axis=1, mode="nearest")
    measured += np.random.default_rng(seed).normal(0.0, noise, truth.shape)
    glacier = np.zeros(truth.shape, dtype=bool)
    glacier[:, edge:] = True
    return measured, truth, glacier


def test_the_smear_measured_beside_the_glacier_is_the_error_on_its_edge():
    """A box window across a kink errs alike at equal distances on both sides: the ice-free side's excess
    speed, scaled by the speed along the edge, is each edge cell's error exactly; nothing beyond the window."""
    measured, truth, glacier = _smeared_edge()
    variance, rms = inv.margin_smear_variance(np.zeros_like(measured), measured, glacier, bands=5)
    error = measured - truth
    near = glacier & (np.arange(90)[None, :] < 30 + 3)  # the window (7 cells) reaches 3 cells in
    np.testing.assert_allclose(variance[near], error[near] ** 2, rtol=1e-9)
    assert np.all(variance[glacier & ~near] == 0)
    # the ice-free cells beside the edge, still ground given a speed, get their band's mean square smear
    for k in range(1, 4):
        band = ~glacier & (np.arange(90)[None, :] == 30 - k)
        np.testing.assert_allclose(variance[band], np.mean(measured[band] ** 2), rtol=1e-9)
    assert np.all(variance[~glacier & (np.arange(90)[None, :] < 27)] == 0)
    assert np.isnan(rms).sum() == 0 and rms[0] > rms[1] > rms[2] > 0 and rms[3] == rms[4] == 0
    # with noise, the far ice-free ground's noise is not counted as smear
    measured, _, _ = _smeared_edge(rows=400)
    noisy, truth, glacier = _smeared_edge(rows=400, noise=0.001, seed=3)
    variance, _ = inv.margin_smear_variance(np.zeros_like(noisy), noisy, glacier, bands=5)
    for k in range(2):  # the third cell's smear (0.0004 m/d) is lost in the noise (0.001 m/d)
        band = glacier & (np.arange(90)[None, :] == 30 + k)
        smear = np.sqrt(np.mean((measured - truth)[band] ** 2))
        assert np.sqrt(np.mean(variance[band])) == pytest.approx(smear, rel=0.2)


def test_the_margin_smear_says_nothing_it_cannot_measure():
    measured, _, glacier = _smeared_edge()
    zeros = np.zeros_like(measured)
    # no bands (no window known), all ice, no ice: nothing
    assert not inv.margin_smear_variance(zeros, measured, glacier, bands=0)[0].any()
    assert not inv.margin_smear_variance(zeros, measured, np.ones_like(glacier), bands=3)[0].any()
    assert not inv.margin_smear_variance(zeros, measured, np.zeros_like(glacier), bands=3)[0].any()
    # too little far ice-free ground: every band unmeasured
    variance, rms = inv.margin_smear_variance(zeros, measured, glacier, bands=30)
    assert not variance.any() and len(rms) == 30 and all(np.isnan(rms))
    # ice-free cells without a value at some distance leave that band unmeasured
    holes = measured.copy()
    holes[:, 28] = np.nan
    variance, rms = inv.margin_smear_variance(zeros, holes, glacier, bands=5)
    assert np.isnan(rms[1]) and not variance[:, 31].any() and variance[:, 30].all()
    assert inv.margin_bands([None, 480.0, 160.0], 30.0) == 8 and inv.margin_bands([None], 30.0) == 0


def test_a_glacier_mask_makes_the_errors_at_the_smeared_edge_honest(tmp_path):
    """Three sensors that all smear the flow across a glacier's edge (a 5-cell box, as a window would): no
    comparison between them can see it, the error beside the glacier does. Without the glacier mask the
    edge cells' errors are several times too small; with it they are about right, inside unchanged."""
    import attrs
    from scipy import ndimage

    rng = np.random.default_rng(11)
    grid = Grid(32647, Affine(30.0, 0, 400000, 0, -30.0, 3250000), (48, 40))
    rows = np.arange(grid.rows)[:, None] * np.ones(grid.cols)
    glacier = rows > 24
    truth_speed = np.where(glacier, np.minimum(0.03 * (rows - 24.5), 0.4), 0.0)  # rising from the edge
    seen = ndimage.uniform_filter1d(truth_speed, 5, axis=0, mode="nearest")
    pairs = ([("optical", s, d, 0.01) for s in range(0, 360, 8) for d in (16, 32)]
             + [("sar", s, d, 0.03) for s in range(3, 360, 12) for d in (12, 24)]
             + [("other", s, 20, 0.02) for s in range(5, 360, 10)])
    observations = [attrs.evolve(o, window_m=150.0) for o in _write_pairs(tmp_path, grid, seen, pairs, rng)]
    months = Month.span("2023-03", "2023-10")
    settings = inv.InversionSettings(sample_cells=1024, scale_sample_cells=1024)
    edge, inside = glacier & (rows <= 26), glacier & (rows > 30)

    def honesty(mask):
        result = inv.invert_period(observations, months, grid, settings, glacier_mask=mask)
        ratios = {}
        for name, cells in (("edge", edge), ("inside", inside)):
            actual, predicted = [], []
            for month in months:
                arrays = result.months[month]
                t = np.linspace((month.start - T0).days, (month.end - T0).days, 200)
                truth = truth_speed * float(np.mean(1 + 0.3 * np.sin(2 * np.pi * t / 365.0)))
                actual.append(np.mean((arrays["vx"] - truth)[cells] ** 2))
                predicted.append(np.mean(arrays["sigma"][cells] ** 2))
            ratios[name] = float(np.sqrt(np.mean(actual) / np.mean(predicted)))
        return ratios, result

    without, _ = honesty(None)
    with_mask, result = honesty(glacier)
    assert without["edge"] > 2.0  # the smear is invisible to the sensors' comparisons
    assert 0.7 < with_mask["edge"] < 1.4
    assert with_mask["inside"] == pytest.approx(without["inside"], rel=0.25)
    smear = result.margin_smear[months[0].start, months[0].end]
    assert len(smear) == 3 and smear[0] > smear[1] > 0  # bands of 30 m cells out to half the 150 m window
    beside = ~glacier & (rows == 24)  # still ground next to the ice: its error is the smear measured there
    assert np.all(result.months[months[0]]["sigma"][beside] >= smear[0] * (1 - 1e-6))
