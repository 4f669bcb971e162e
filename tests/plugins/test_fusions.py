"""The bundled time-series fusion as the pipeline calls it: monthly maps, and the velocity over a reference's
own interval for like-with-like validation."""

from __future__ import annotations

import datetime as dt

import numpy as np
from affine import Affine

from gvfuse.io.raster import write_bands
from gvfuse.model import ERROR_BAND, Grid, Month, PairObservation
from gvfuse_plugins.fusions import TimeSeriesFusion

UTC = dt.timezone.utc
T0 = dt.datetime(2023, 1, 1, tzinfo=UTC)
GRID = Grid(32647, Affine(30.0, 0, 400000, 0, -30.0, 3250000), (24, 20))


def speed_over(start_days: float, end_days: float) -> float:
    """The true mean speed over an interval: 0.3 m/day with a strong seasonal swing."""
    t = np.linspace(start_days, end_days, 400)
    return float(np.mean(0.3 * (1 + 0.5 * np.sin(2 * np.pi * (t - 60) / 365.0))))


def pair(folder, sensor: str, k: int, start_days: float, length_days: float, noise: float,
         rng: np.random.Generator) -> PairObservation:
    v = speed_over(start_days, start_days + length_days)
    bands = {"vx": v + rng.normal(0, noise, GRID.shape), "vy": rng.normal(0, noise, GRID.shape),
             ERROR_BAND: np.full(GRID.shape, noise), "count": np.ones(GRID.shape)}
    path = write_bands(folder / f"{sensor}{k}.tif", bands, GRID, cog=False)
    begin = T0 + dt.timedelta(days=start_days)
    return PairObservation(sensor, f"{sensor}{k}", begin, begin + dt.timedelta(days=length_days), path)


def test_the_reference_is_matched_over_its_own_interval_not_the_calendar_month(tmp_path):
    rng = np.random.default_rng(3)
    observations = [pair(tmp_path, "optical", k, s, 16, 0.004, rng) for k, s in enumerate(range(0, 340, 8))]
    june = Month.parse("2023-06")
    survey = pair(tmp_path, "uav", 0, 90, 70, 0.001, rng)  # 1 April to 10 June: not June
    fusion = TimeSeriesFusion(sample_cells=256, scale_sample_cells=256, calibrate_errors=False)
    result = fusion.fuse_period(observations, [june], GRID, references={june: [survey]})[june]
    assert result.over_reference is not None and not result.details["reference_in_inversion"]
    over = float(np.mean(result.over_reference.vx_m_per_day))
    month = float(np.mean(result.field.vx_m_per_day))
    # the two truths differ by far more than the fusion's error, so each estimate must be of its own span
    assert abs(speed_over(90, 160) - speed_over(151, 181)) > 0.01
    assert abs(over - speed_over(90, 160)) < 0.002 and abs(month - speed_over(151, 181)) < 0.002
    assert np.all(result.over_reference.quality["v_error_m_per_day"] > 0)


def test_without_references_there_is_no_interval_map(tmp_path):
    rng = np.random.default_rng(4)
    observations = [pair(tmp_path, "optical", k, s, 16, 0.004, rng) for k, s in enumerate(range(0, 120, 8))]
    march = Month.parse("2023-03")
    result = TimeSeriesFusion(sample_cells=256, scale_sample_cells=256).fuse_period(observations, [march], GRID)
    assert result[march].over_reference is None


def test_the_reference_enters_the_inversion_only_when_told_and_then_says_so(tmp_path):
    rng = np.random.default_rng(5)
    observations = [pair(tmp_path, "optical", k, s, 16, 0.01, rng) for k, s in enumerate(range(0, 200, 8))]
    june = Month.parse("2023-06")
    survey = pair(tmp_path, "uav", 0, 140, 40, 0.0005, rng)
    settings = {"sample_cells": 256, "scale_sample_cells": 256, "calibrate_errors": False}
    independent = TimeSeriesFusion(**settings).fuse_period(observations, [june], GRID, references={june: [survey]})
    joined = TimeSeriesFusion(use_reference=True, **settings).fuse_period(observations, [june], GRID,
                                                                          references={june: [survey]})
    assert not independent[june].details["reference_in_inversion"] and "note" not in independent[june].details
    details = joined[june].details
    assert details["reference_in_inversion"] and "not independent" in details["note"]
    assert details["pairs"] == independent[june].details["pairs"] + 1
    # a precise survey pulls the fused velocity over its own interval towards it
    truth = speed_over(140, 180)
    error = {name: abs(float(np.mean(result[june].over_reference.vx_m_per_day)) - truth)
             for name, result in (("independent", independent), ("joined", joined))}
    assert error["joined"] < error["independent"]
