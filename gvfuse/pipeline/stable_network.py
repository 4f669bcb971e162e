"""A run's stable-ground corrections made consistent over each sensor's date network.

Every pair is tracked and corrected on its own (:mod:`gvfuse.tracking.stable_ground`);
this stage then takes the shifts the pairs measured, solves one geolocation
offset per scene over the sensor's pairs (:func:`gvfuse.tracking.date_network.solve_date_offsets`),
and gives every pair the difference of its two scenes' offsets instead of its
own estimate: the corrections of any loop of pairs then add up, noise averages
down over the redundant pairs, a pair whose estimate disagrees with the rest is
outvoted, and a pair whose correction was skipped (no stable ground shown) is
corrected when its scenes are tied to the others.

The cached pair results stay as tracked; each adjusted pair is written beside
its cache file, named by a digest of every pair of the network, and reused
while none of them changes.
"""

from __future__ import annotations

import glob
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from gvfuse import __version__
from gvfuse.errors import GvfuseError
from gvfuse.io.raster import read_bands, write_bands
from gvfuse.model import Grid
from gvfuse.pipeline.pair import PAIR_RESULT_UNITS, PairJob, PairOutcome, read_pair_info, readable_pair_result
from gvfuse.tracking.date_network import (
    NETWORK_TOLERANCE_PX,
    NetworkShifts,
    PairShift,
    measured_shift,
    solve_date_offsets,
)


@attrs.frozen
class _Member:
    """A pair taking part: its job and outcome, its cached tags, and its shift in metres east/north."""

    job: PairJob
    outcome: PairOutcome
    info: dict[str, Any]
    measured: PairShift

    @property
    def applied_m(self) -> tuple[float, float]:
        """The shift its cached result had removed (none when its correction was skipped)."""
        return self.measured.shift if self.measured.shift is not None else (0.0, 0.0)


def _member(job: PairJob, outcome: PairOutcome, info: dict[str, Any]) -> _Member | None:
    """The pair as the network sees it (:func:`measured_shift`), in metres east/north; None when it takes no
    part."""
    pair = job.pair
    measured = measured_shift(pair.pair_id, pair.reference.scene_id, pair.secondary.scene_id,
                              info.get("tracker_parameters", {}))
    if measured is None:
        return None
    pixel_m = float(job.tracking_grid.pixel_size_m[0])
    shift_m = None
    if measured.shift is not None:
        east, north = job.tracking_grid.pixel_to_map_displacement(*(np.asarray(v) for v in measured.shift))
        shift_m = (float(east), float(north))
    return _Member(job, outcome, info, attrs.evolve(measured, shift=shift_m, sigma=measured.sigma * pixel_m))


def _pixels(grid: Grid, east_m: float, north_m: float) -> list[float]:
    """A map displacement as (columns, rows) of ``grid``: the inverse of its linear part."""
    t = grid.transform
    dx, dy = np.linalg.solve(np.array([[t.a, t.b], [t.d, t.e]]), np.array([east_m, north_m]))
    return [round(float(dx), 6), round(float(dy), 6)]


def _digest(members: Sequence[_Member]) -> str:
    payload = [__version__, NETWORK_TOLERANCE_PX, sorted((m.job.pair.pair_id, m.job.key) for m in members)]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:12]


def _write_adjusted(member: _Member, network: NetworkShifts, target: Path) -> None:
    pair_id = member.job.pair.pair_id
    shift = network.pair_shifts[pair_id]
    assert shift is not None
    delta = (member.applied_m[0] - shift[0], member.applied_m[1] - shift[1])
    bands, grid, _ = read_bands(member.outcome.path, tuple(PAIR_RESULT_UNITS))  # type: ignore[arg-type]
    dt_days = float(member.info["dt_days"])
    bands["vx"] = (bands["vx"] + np.float32(delta[0] / dt_days)).astype(np.float32)
    bands["vy"] = (bands["vy"] + np.float32(delta[1] / dt_days)).astype(np.float32)
    residual = network.residuals.get(pair_id)
    tracking = member.job.tracking_grid
    note = {
        "method": "date network (per-scene offsets, weighted least squares)",
        "pairs": len(network.pair_shifts), "redundancy": network.redundancy,
        "shift_m": [round(v, 6) for v in shift],  # east, north
        "shift_px": _pixels(tracking, *shift),  # columns, rows of the tracking grid, as the tracker's dx, dy
        "own_shift_m": [round(v, 6) for v in member.applied_m],
        "own_decision": member.info["tracker_parameters"].get("stable_shift_decision"),
        "residual_px": None if residual is None else _pixels(tracking, *residual),
        "outvoted": pair_id in network.dropped,
        "tolerance_px": NETWORK_TOLERANCE_PX,
    }
    write_bands(target, bands, grid, units=PAIR_RESULT_UNITS,
                tags={"gvfuse_pair": {**member.info, "stable_network": note}}, cog=False, overwrite=True)


def _outvoted(member: _Member, network: NetworkShifts) -> str:
    """The run's problem line for a pair whose own shift the network outvoted, else ""."""
    pair_id = member.job.pair.pair_id
    if pair_id not in network.dropped:
        return ""
    tracking = member.job.tracking_grid
    own = _pixels(tracking, *member.applied_m)
    given = _pixels(tracking, *network.pair_shifts[pair_id])  # type: ignore[misc]
    return (f"its stable-ground shift ({own[0]:+.2f}, {own[1]:+.2f}) px disagrees with the other pairs' "
            f"(date network: {given[0]:+.2f}, {given[1]:+.2f} px) by more than {NETWORK_TOLERANCE_PX} px; "
            "the network's is used (fresh snow, haze or a changed surface can bias a pair's own estimate)")


def network_outcomes(jobs: Sequence[PairJob], outcomes: Sequence[PairOutcome],
                     modes: Mapping[str, str]) -> list[PairOutcome]:
    """``outcomes`` with the pairs of each sensor whose ``modes[sensor]`` is "network" adjusted.

    A pair takes part when its tracker corrected a constant shift or skipped
    the correction; a pair whose two scenes are not tied by measured pairs
    keeps its own correction (its outcome is returned unchanged).
    """
    by_id = {j.pair.pair_id: j for j in jobs}
    sensors: dict[str, list[_Member]] = {}
    replaced: dict[tuple[str, str], PairOutcome] = {}
    for outcome in outcomes:
        job = by_id.get(outcome.pair_id)
        if outcome.path is None or job is None or modes.get(outcome.sensor, "network") != "network":
            continue
        try:
            member = _member(job, outcome, read_pair_info(outcome.path))
        except (OSError, ValueError, KeyError, GvfuseError) as exc:  # damaged since it was tracked: say so, go on
            replaced[(outcome.sensor, outcome.pair_id)] = attrs.evolve(
                outcome, warning=f"its tags could not be read for the date network ({exc}); its own correction stays")
            continue
        if member is not None:
            sensors.setdefault(outcome.sensor, []).append(member)
    for members in sensors.values():
        if len(members) < 2:
            continue
        # the finest pixel of the sensor's pairs (one resolution per sensor, as a run configures it)
        pixel_m = min(float(m.job.tracking_grid.pixel_size_m[0]) for m in members)
        network = solve_date_offsets([m.measured for m in members], tolerance=NETWORK_TOLERANCE_PX * pixel_m)
        digest = _digest(members)
        for member in members:
            key = (member.outcome.sensor, member.outcome.pair_id)
            given = network.pair_shifts[member.job.pair.pair_id]
            if given is None or max(abs(a - b) for a, b in zip(member.applied_m, given, strict=True)) < 1e-9:
                continue  # untied, or its own shift is the network's (a pair no other path checks)
            source = member.outcome.path
            assert source is not None
            target = source.with_name(f"{source.stem}.network-{digest}.tif")
            try:
                if not (target.exists() and readable_pair_result(target)):
                    _write_adjusted(member, network, target)
                    for stale in source.parent.glob(f"{glob.escape(source.stem)}.network-*.tif"):
                        if stale != target:  # an earlier network's copy of this pair
                            stale.unlink(missing_ok=True)
            except (OSError, GvfuseError) as exc:
                replaced[key] = attrs.evolve(member.outcome, warning=f"the date network's correction could not be "
                                                                     f"written ({exc}); its own correction stays")
                continue
            replaced[key] = attrs.evolve(member.outcome, adjusted=target, warning=_outvoted(member, network))
    return [replaced.get((o.sensor, o.pair_id), o) for o in outcomes]
