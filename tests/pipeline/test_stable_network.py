"""A run's stable-ground corrections over each sensor's date network: per-date geolocation errors recovered,
loops that add up, skipped pairs corrected from their neighbours, and ``stable_shift = "per-pair"`` unchanged."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path

import attrs
import numpy as np
import pytest

from gvfuse.config import load_config
from gvfuse.io.raster import read_bands, write_bands
from gvfuse.pipeline.pair import read_pair_info
from gvfuse.pipeline.run import build_plan, execute
from gvfuse.pipeline.stable_network import network_outcomes
from gvfuse.testing.glacier import ValleyGlacier
from gvfuse.testing.timeseries import Landscape, render_series
from tests.helpers.scenes import product_toml

PIXEL_M = 15.0
DATES = [datetime(2023, 7, 2, 4) + timedelta(days=8 * i) for i in range(4)]
#: Each date's geolocation error (dx, dy) in pixels: what the network must recover, up to a common constant.
SHIFTS_PX = [(0.3, -0.1), (-0.2, 0.25), (0.1, 0.2), (-0.25, -0.3)]
GLACIER = ValleyGlacier(head_m=(900.0, -3000.0), terminus_m=(900.0, 4000.0), half_width_m=350.0,
                        max_speed_m_per_day=0.6)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """Four optical dates 8 days apart with their own geolocation errors, all six pairs, a stable mask."""
    root = tmp_path_factory.mktemp("network")
    landscape = Landscape(glaciers=[GLACIER], size_m=(1800.0, 1800.0), seed=5, epoch=datetime(2023, 7, 14))
    scenes = render_series(landscape, "optical", PIXEL_M, DATES, geolocation_shifts_px=SHIFTS_PX, seed=2)
    for scene in scenes:
        write_bands(root / "scenes" / f"optical_{scene.acquired_at:%Y%m%d}.tif", {"B8": scene.pixels}, scene.grid,
                    cog=False)
    grid = scenes[0].grid
    write_bands(root / "masks" / "stable.tif", {"stable": landscape.stable_mask(grid, 90.0).astype("f4")}, grid,
                cog=False)
    (root / "product.toml").write_text(product_toml(grid, "network-test", "one month", "2023-07", "2023-07"))
    (root / "run.toml").write_text('''
product = "product.toml"
input_dir = "scenes"
output_dir = "out"
months = ["2023-07"]
[sensors.optical]
reader = "geotiff"
pairing = "network"
pair_rules = { min_dt_days = 1, max_dt_days = 30 }
tracker = "ncc"
tracker_parameters = { window_px = 32, step_px = 4 }
max_speed_m_per_day = 1.0
[weighting]
name = "inverse-variance"
[validation]
validators = []
stable_mask = "masks/stable.tif"
''')
    return root


def _truth_px(info: dict) -> np.ndarray:
    day = {f"{d:%Y-%m-%d}": i for i, d in enumerate(DATES)}
    a, b = (day[info[side]["datetime"][:10]] for side in ("reference", "secondary"))
    return np.subtract(SHIFTS_PX[b], SHIFTS_PX[a])


def test_the_network_recovers_each_dates_geolocation_error_and_its_loops_add_up(workspace, plugins):
    result = execute(load_config(workspace / "run.toml", plugins), plugins=plugins, publish_results=False)
    assert len(result.pairs) == 6 and all(o.adjusted is not None for o in result.pairs), result.pairs
    notes = {o.pair_id: read_pair_info(o.adjusted)["stable_network"] for o in result.pairs}
    infos = {o.pair_id: read_pair_info(o.path) for o in result.pairs}
    network = {k: np.array(n["shift_px"]) for k, n in notes.items()}
    own = {k: np.array([i["tracker_parameters"]["stable_shift_dx_px"], i["tracker_parameters"]["stable_shift_dy_px"]])
           for k, i in infos.items()}
    network_error = np.array([network[k] - _truth_px(infos[k]) for k in notes])
    own_error = np.array([own[k] - _truth_px(infos[k]) for k in notes])
    assert np.abs(network_error).max() < 0.03, network_error
    assert np.sqrt(np.mean(network_error**2)) <= np.sqrt(np.mean(own_error**2))
    by_dates = {(infos[k]["reference"]["datetime"], infos[k]["secondary"]["datetime"]): network[k] for k in notes}
    for a, b, c in itertools.combinations(sorted({d for pair in by_dates for d in pair}), 3):
        assert np.abs(by_dates[a, c] - by_dates[a, b] - by_dates[b, c]).max() < 1e-5
    # the adjusted pair is the cached one moved by (own - network shift) / dt, nothing else
    some = result.pairs[0]
    adjusted, _, _ = read_bands(some.adjusted)
    cached, _, _ = read_bands(some.path)
    note, dt_days = notes[some.pair_id], infos[some.pair_id]["dt_days"]
    expected = (note["own_shift_m"][0] - note["shift_m"][0]) / dt_days
    assert np.nanmax(np.abs(adjusted["vx"] - cached["vx"] - expected)) < 1e-6
    assert np.array_equal(np.isnan(adjusted["vx"]), np.isnan(cached["vx"]))
    assert np.array_equal(adjusted["error_m_per_day"], cached["error_m_per_day"], equal_nan=True)
    # a second run reuses the adjusted pairs as they are
    again = execute(load_config(workspace / "run.toml", plugins), plugins=plugins, publish_results=False)
    assert [o.adjusted for o in again.pairs] == [o.adjusted for o in result.pairs]
    assert all(o.cached for o in again.pairs)


def test_a_pair_whose_correction_was_skipped_is_corrected_from_its_neighbours(workspace, plugins):
    config = load_config(workspace / "run.toml", plugins)
    plan = build_plan(config, plugins)
    outcomes = execute(config, plugins=plugins, publish_results=False).pairs
    skipped = outcomes[1]
    info = read_pair_info(skipped.path)
    parameters = info["tracker_parameters"]
    own_px = np.array([parameters["stable_shift_dx_px"], parameters["stable_shift_dy_px"]])
    bands, grid, _ = read_bands(skipped.path)
    # as the tracker leaves a pair where no stable ground was shown: the shift not removed, decision "skipped"
    east_m, north_m = own_px * PIXEL_M * np.array([1, -1])
    bands["vx"] += np.float32(east_m / info["dt_days"])
    bands["vy"] += np.float32(north_m / info["dt_days"])
    parameters.update(stable_shift_decision="skipped", stable_shift_source="none", stable_shift_dx_px=0.0,
                      stable_shift_dy_px=0.0)
    lost = skipped.path.with_name("skipped.tif")
    write_bands(lost, bands, grid, tags={"gvfuse_pair": info}, cog=False)
    changed = [attrs.evolve(o, path=lost) if o is skipped else o for o in outcomes]
    adjusted = network_outcomes(plan.jobs, changed, {"optical": "network"})
    note = read_pair_info(adjusted[1].adjusted)["stable_network"]
    assert note["own_decision"] == "skipped" and note["residual_px"] is None
    network_px = np.array(note["shift_px"])
    assert np.abs(network_px - _truth_px(info)).max() < 0.03
    # the velocities lose the network's shift instead of none
    expected = bands["vx"] - np.float32(note["shift_m"][0] / info["dt_days"])
    assert np.nanmax(np.abs(read_bands(adjusted[1].adjusted)[0]["vx"] - expected)) < 1e-6


def test_per_pair_keeps_each_pairs_own_correction(workspace, plugins, tmp_path):
    text = (workspace / "run.toml").read_text().replace('max_speed_m_per_day = 1.0',
                                                         'max_speed_m_per_day = 1.0\nstable_shift = "per-pair"')
    (workspace / "per-pair.toml").write_text(text)
    result = execute(load_config(workspace / "per-pair.toml", plugins), plugins=plugins, publish_results=False)
    assert all(o.adjusted is None and o.result_path == o.path for o in result.pairs)
    assert "stable_network" not in json.dumps(read_pair_info(result.pairs[0].path))


@pytest.fixture(scope="module")
def tracked(workspace, plugins):
    config = load_config(workspace / "run.toml", plugins)
    return build_plan(config, plugins), execute(config, plugins=plugins, publish_results=False)


@pytest.mark.parametrize("index", range(6))
def test_a_pair_whose_shift_the_others_contradict_is_outvoted_and_reported(tracked, index):
    """Four scenes, all six pairs: each pair's redundancy number is 1/2, so a blunder in any of them is found."""
    plan, result = tracked
    blunder = result.pairs[index]
    bands, grid, _ = read_bands(blunder.path)
    info = read_pair_info(blunder.path)
    info["tracker_parameters"]["stable_shift_dx_px"] += 0.8  # as if fresh snow had biased its own estimate
    biased = blunder.path.with_name(f"biased-{index}.tif")
    write_bands(biased, bands, grid, tags={"gvfuse_pair": info}, cog=False, overwrite=True)
    changed = [attrs.evolve(o, path=biased) if o is blunder else o for o in result.pairs]
    adjusted = network_outcomes(plan.jobs, changed, {"optical": "network"})
    note = read_pair_info(adjusted[index].adjusted)["stable_network"]
    assert note["outvoted"] and note["residual_px"][0] > 0.7
    assert np.abs(np.array(note["shift_px"]) - _truth_px(info)).max() < 0.03  # the network's, not its own
    assert [bool(o.warning) for o in adjusted] == [i == index for i in range(6)]
    assert "stable-ground shift" in adjusted[index].warning and "the network's is used" in adjusted[index].warning
    problems = attrs.evolve(result, pairs=adjusted).problems
    assert any(p.startswith(f"pair {blunder.pair_id} (optical): its stable-ground shift") for p in problems)


def test_a_new_network_replaces_the_adjusted_copies_of_the_last(tracked):
    """Another set of pairs (a scene added or gone) is another network: each pair's earlier copy goes."""
    plan, result = tracked
    before = {o.pair_id: o.adjusted for o in result.pairs}
    fewer = network_outcomes(plan.jobs, result.pairs[:5], {"optical": "network"})
    for outcome in fewer:
        assert outcome.adjusted is not None and outcome.adjusted != before[outcome.pair_id]
        assert outcome.adjusted.exists() and not before[outcome.pair_id].exists()
    assert before[result.pairs[5].pair_id].exists()  # not part of this network: left as it was
    again = network_outcomes(plan.jobs, result.pairs, {"optical": "network"})  # and back: written again
    assert [o.adjusted for o in again] == list(before.values()) and all(p.exists() for p in before.values())


def test_a_months_publication_key_follows_the_networks_that_corrected_its_pairs(tracked):
    """A month is published again (or refused without --force) when its pairs' network changed, even where the
    pairs themselves did not: a scene added in another month moves every pair's correction a little."""
    from gvfuse.pipeline.run import _month_key

    plan, result = tracked
    month = plan.config.months[0]
    tracked_only = _month_key(plan, month)
    corrected = _month_key(plan, month, result.pairs)
    other = [attrs.evolve(o, adjusted=o.adjusted.with_name(f"{o.path.stem}.network-000000000000.tif"))
             for o in result.pairs]
    assert len({tracked_only, corrected, _month_key(plan, month, other)}) == 3
    # per-pair (nothing adjusted): the key of a run before the network existed
    assert _month_key(plan, month, [attrs.evolve(o, adjusted=None) for o in result.pairs]) == tracked_only
