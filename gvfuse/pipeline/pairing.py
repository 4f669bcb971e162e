"""Choosing image pairs per sensor and month, as the reference product did.

* **Optical** (Landsat, Sentinel-2): a reference near the start and a secondary
  near the end of the month, both clear enough; when clouds leave no usable
  pair, the search window is widened step by step beyond the month's edges.
* **SAR** (Sentinel-1): pairs of the same relative orbit on a 24- or 36-day
  baseline (12-day repeat), whose mid-time falls in the month.
* **UAV**: consecutive surveys of the same site, for every month their
  interval overlaps.
* **Network** (for fusion over time, any sensor): every pair of usable scenes
  on an allowed baseline, a few per scene, each in the month of its mid-time.

Scenes pair only with scenes of the same footprint (WRS path/row, MGRS tile,
relative orbit, UAV site). A month without a usable pair is reported with the
reason, never invented.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from gvfuse.model import Month, Pair, Scene, parse_month

#: Scene metadata keys that identify a footprint, in the order they are tried.
FOOTPRINT_KEYS = (("wrs_path", "wrs_row"), ("mgrs_tile",), ("relative_orbit",), ("site",))


def _number(low: float, high: float | None = None, *, integer: bool = False) -> Callable[[Any, Any, Any], None]:
    """An attrs validator: a number (an integer when asked; never a bool or a string) within ``[low, high]``."""
    kind = "an integer" if integer else "a number"

    def check(instance: Any, attribute: Any, value: Any) -> None:
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if not ok or isinstance(value, bool) or not math.isfinite(value) or value < low or (
                high is not None and value > high):
            bounds = f">= {low:g}" if high is None else f"within {low:g}..{high:g}"
            raise ValueError(f"{attribute.name} must be {kind} {bounds}, got {value!r}")
    return check


def _days_list(instance: Any, attribute: Any, value: Any) -> None:
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in value):
        raise ValueError(f"{attribute.name} must be a list of positive numbers of days, got {list(value)!r}")


def _baselines(value: Any) -> tuple[Any, ...]:
    """A list of baselines as a tuple; a single value or a string is refused (by :func:`_days_list`)."""
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _ordered(low: str, high: str) -> Callable[[Any], None]:
    def check(rules: Any) -> None:
        if getattr(rules, low) > getattr(rules, high):
            raise ValueError(f"{low} ({getattr(rules, low):g}) is above {high} ({getattr(rules, high):g})")
    return check


@attrs.frozen
class OpticalRules:
    """Pair rules for optical sensors. Days are calendar days."""

    max_cloud_cover_percent: float = attrs.field(default=60.0, validator=_number(0, 100))
    #: How far from the month's first/last day a reference/secondary may be, before any widening.
    edge_window_days: float = attrs.field(default=10.0, validator=_number(0))
    #: Widening step and limit when clouds leave no pair.
    widen_step_days: float = attrs.field(default=8.0, validator=_number(0.001))
    max_widen_days: float = attrs.field(default=32.0, validator=_number(0))
    min_dt_days: float = attrs.field(default=8.0, validator=_number(0))
    max_dt_days: float = attrs.field(default=64.0, validator=_number(0))
    max_pairs_per_month: int = attrs.field(default=2, validator=_number(1, integer=True))

    def __attrs_post_init__(self) -> None:
        _ordered("min_dt_days", "max_dt_days")(self)


@attrs.frozen
class SarRules:
    """Pair rules for Sentinel-1: baselines (days) and the tolerance on them."""

    baselines_days: tuple[float, ...] = attrs.field(default=(24.0, 36.0), converter=_baselines,
                                                   validator=_days_list)
    tolerance_days: float = attrs.field(default=1.0, validator=_number(0))
    max_pairs_per_month: int = attrs.field(default=3, validator=_number(1, integer=True))


@attrs.frozen
class UavRules:
    """Pair rules for UAV surveys."""

    min_dt_days: float = attrs.field(default=1.0, validator=_number(0))
    max_dt_days: float = attrs.field(default=120.0, validator=_number(0))

    def __attrs_post_init__(self) -> None:
        _ordered("min_dt_days", "max_dt_days")(self)


@attrs.frozen
class NetworkRules:
    """A redundant pair network over the whole period, for fusion over time.

    Every pair of usable scenes of one footprint whose baseline is allowed —
    between ``min_dt_days`` and ``max_dt_days``, or, when ``baselines_days``
    is given (SAR: 12, 24, 36), within ``tolerance_days`` of one of them. Each
    scene is the reference of at most ``max_pairs_per_scene`` pairs, the
    shortest baselines first (they decorrelate least). A pair belongs to the
    month that holds its mid-time; pairs that span a month's edges inform both
    months in a fusion over time. Scenes cloudier than
    ``max_cloud_cover_percent`` (when known) are not used.
    """

    min_dt_days: float = attrs.field(default=8.0, validator=_number(0))
    max_dt_days: float = attrs.field(default=48.0, validator=_number(0))
    baselines_days: tuple[float, ...] = attrs.field(default=(), converter=_baselines, validator=_days_list)
    tolerance_days: float = attrs.field(default=1.0, validator=_number(0))
    max_cloud_cover_percent: float = attrs.field(default=60.0, validator=_number(0, 100))
    max_pairs_per_scene: int = attrs.field(default=4, validator=_number(1, integer=True))

    def __attrs_post_init__(self) -> None:
        _ordered("min_dt_days", "max_dt_days")(self)

    def allows(self, dt_days: float) -> bool:
        """Whether a baseline of ``dt_days`` is one this network uses."""
        if self.baselines_days:
            return any(abs(dt_days - b) <= self.tolerance_days for b in self.baselines_days)
        return self.min_dt_days <= dt_days <= self.max_dt_days


Rules = OpticalRules | SarRules | UavRules | NetworkRules


@attrs.frozen
class MonthPlan:
    """The pairs chosen for one sensor and month, or why there are none."""

    sensor: str
    month: Month = attrs.field(converter=parse_month)
    pairs: tuple[Pair, ...] = attrs.field(converter=tuple[Pair, ...])
    note: str = ""


def footprint(scene: Scene) -> str:
    """The footprint key of a scene (``""`` when its metadata has none: pairs with any)."""
    for keys in FOOTPRINT_KEYS:
        values = [scene.metadata.get(k) for k in keys]
        if all(v not in (None, "") for v in values):
            return ",".join(f"{k}={v}" for k, v in zip(keys, values))
    return ""


def _midpoint(pair: Pair) -> dt.datetime:
    return pair.reference.acquired_at + (pair.secondary.acquired_at - pair.reference.acquired_at) / 2


def _by_footprint(scenes: Iterable[Scene]) -> dict[str, list[Scene]]:
    groups: dict[str, list[Scene]] = defaultdict(list)
    for scene in sorted(scenes, key=lambda s: (s.acquired_at, s.scene_id)):
        groups[footprint(scene)].append(scene)
    return groups


#: Scene metadata key a reader sets to rank copies of one acquisition: the highest is kept (absent = 0).
#: The Landsat reader ranks the collection tiers T1 (2) > T2 (1) > RT (0).
PREFERENCE_KEY = "preference"
#: Scene metadata key of the date a product was processed (ISO text); among copies of one acquisition of equal
#: preference, the latest processed is kept.
PROCESSED_KEY = "processed_on"
#: Scenes of one sensor and footprint acquired less than this far apart (seconds) are copies of one acquisition.
DUPLICATE_SECONDS = 1.0


@attrs.frozen
class Duplicate:
    """A scene left out because another copy of the same acquisition was kept, and why that one."""

    dropped: Scene
    kept: Scene
    reason: str


def _preference(scene: Scene) -> tuple[float, str, str, str]:
    """The order of copies of one acquisition: preference, then processing date, then product id, then path."""
    rank = scene.metadata.get(PREFERENCE_KEY, 0)
    rank = float(rank) if isinstance(rank, (int, float)) and not isinstance(rank, bool) else 0.0
    return rank, str(scene.metadata.get(PROCESSED_KEY) or ""), scene.scene_id, str(scene.path)


def _why(kept: Scene, dropped: Scene) -> str:
    if kept.scene_id == dropped.scene_id:
        return f"a second copy of {kept.scene_id}; {kept.path} is used"
    k, d = _preference(kept), _preference(dropped)
    if k[0] != d[0]:
        rule = f"higher {PREFERENCE_KEY} ({k[0]:g} > {d[0]:g})"
    elif k[1] != d[1]:
        rule = f"processed later ({k[1]} > {d[1] or 'unknown'})"
    else:
        rule = "the last product id of the copies"
    return f"same acquisition as {kept.scene_id}, which is kept: {rule}"


def deduplicate(scenes: Iterable[Scene]) -> tuple[list[Scene], list[Duplicate]]:
    """One scene per acquisition, and the copies left out with the reason.

    Copies are scenes of one sensor and footprint acquired within
    :data:`DUPLICATE_SECONDS` of each other: the same file twice, or one
    acquisition processed twice (a Landsat RT and T1 product, a reprocessed
    Sentinel product). The kept one is the best by, in turn: the reader's
    ``preference`` (metadata; Landsat T1 > T2 > RT), the latest ``processed_on``,
    the lexicographically last scene id, the last path. The result does not
    depend on the order of ``scenes``; kept scenes come in time order.
    """
    ordered = sorted(scenes, key=lambda s: (s.sensor, footprint(s), s.acquired_at, _preference(s)))
    kept: list[Scene] = []
    dropped: list[Duplicate] = []
    group: list[Scene] = []

    def close(group: list[Scene]) -> None:
        if group:
            best = max(range(len(group)), key=lambda i: _preference(group[i]))
            kept.append(group[best])
            dropped.extend(Duplicate(s, group[best], _why(group[best], s)) for i, s in enumerate(group) if i != best)

    for scene in ordered:
        if group and (scene.sensor, footprint(scene)) == (group[0].sensor, footprint(group[0])) and (
                (scene.acquired_at - group[0].acquired_at).total_seconds() < DUPLICATE_SECONDS):
            group.append(scene)
            continue
        close(group)
        group = [scene]
    close(group)
    return sorted(kept, key=lambda s: (s.acquired_at, s.scene_id)), dropped


def optical_pairs(scenes: Sequence[Scene], month: Month, rules: OpticalRules) -> tuple[list[Pair], str]:
    """Start-of-month / end-of-month pairs, widening the window when clouds leave none."""
    start, end = month.start, month.end
    usable = [s for s in scenes
              if s.cloud_cover_percent is None or s.cloud_cover_percent <= rules.max_cloud_cover_percent]
    if not usable:
        return [], f"no scene with cloud cover <= {rules.max_cloud_cover_percent} %"
    widen = 0.0
    while widen <= rules.max_widen_days:
        reach = dt.timedelta(days=rules.edge_window_days + widen)
        candidates = []
        for group in _by_footprint(usable).values():
            for i, ref in enumerate(group):
                if abs(ref.acquired_at - start) > reach:
                    continue
                for sec in group[i + 1:]:
                    if sec.acquired_at <= ref.acquired_at or abs(sec.acquired_at - end) > reach:
                        continue
                    pair = Pair(ref, sec)
                    if rules.min_dt_days <= pair.dt_days <= rules.max_dt_days and start <= _midpoint(pair) < end:
                        candidates.append(pair)
        if candidates:
            # Best first: the pair whose ends are closest to the month's edges, then clearest.
            def score(p: Pair) -> tuple[float, float]:
                edges = abs((p.reference.acquired_at - start).total_seconds()) + abs(
                    (p.secondary.acquired_at - end).total_seconds())
                clouds = (p.reference.cloud_cover_percent or 0) + (p.secondary.cloud_cover_percent or 0)
                return (edges, clouds)

            chosen = sorted(candidates, key=score)[: rules.max_pairs_per_month]
            note = f"window widened by {widen:g} days" if widen else ""
            return chosen, note
        widen += rules.widen_step_days
    return [], (f"no pair of clear scenes near the month's start and end, even with the window "
                f"widened by {rules.max_widen_days:g} days")


def sar_pairs(scenes: Sequence[Scene], month: Month, rules: SarRules) -> tuple[list[Pair], str]:
    """Same-orbit pairs on the allowed baselines whose mid-time falls in the month."""
    start, end = month.start, month.end
    candidates = []
    for group in _by_footprint(scenes).values():
        for i, ref in enumerate(group):
            for sec in group[i + 1:]:
                if sec.acquired_at <= ref.acquired_at:
                    continue
                pair = Pair(ref, sec)
                if any(abs(pair.dt_days - b) <= rules.tolerance_days for b in rules.baselines_days) and (
                        start <= _midpoint(pair) < end):
                    candidates.append(pair)
    if not candidates:
        return [], f"no same-orbit pair on a {'/'.join(f'{b:g}' for b in rules.baselines_days)}-day baseline"
    mid = start + (end - start) / 2
    chosen = sorted(candidates, key=lambda p: (p.dt_days, abs((_midpoint(p) - mid).total_seconds())))
    return chosen[: rules.max_pairs_per_month], ""


def uav_pairs(scenes: Sequence[Scene], month: Month, rules: UavRules) -> tuple[list[Pair], str]:
    """Per site, the pair of consecutive surveys whose interval covers most of the month."""
    start, end = month.start, month.end
    chosen = []
    for group in _by_footprint(scenes).values():
        best: tuple[dt.timedelta, Pair] | None = None
        for ref, sec in itertools.pairwise(group):
            if ref.acquired_at == sec.acquired_at:
                continue
            pair = Pair(ref, sec)
            covered = min(sec.acquired_at, end) - max(ref.acquired_at, start)
            if rules.min_dt_days <= pair.dt_days <= rules.max_dt_days and covered > dt.timedelta(0) and (
                    best is None or covered > best[0]):
                best = (covered, pair)
        if best:
            chosen.append(best[1])
    return chosen, "" if chosen else "no two surveys of one site around this month"


def network_pairs(scenes: Sequence[Scene], month: Month, rules: NetworkRules) -> tuple[list[Pair], str]:
    """The network's pairs whose mid-time falls in the month (the network itself does not depend on the month)."""
    start, end = month.start, month.end
    usable = [s for s in scenes
              if s.cloud_cover_percent is None or s.cloud_cover_percent <= rules.max_cloud_cover_percent]
    chosen = []
    for group in _by_footprint(usable).values():
        for i, ref in enumerate(group):
            candidates = [Pair(ref, sec) for sec in group[i + 1:] if sec.acquired_at > ref.acquired_at]
            allowed = sorted((p for p in candidates if rules.allows(p.dt_days)), key=lambda p: p.dt_days)
            chosen += [p for p in allowed[: rules.max_pairs_per_scene] if start <= _midpoint(p) < end]
    if not chosen:
        return [], "no usable pair of the network has its mid-time in this month"
    return sorted(chosen, key=lambda p: (p.reference.acquired_at, p.dt_days, p.pair_id)), ""


def plan_month(sensor: str, scenes: Sequence[Scene], month: Month | str, rules: Rules) -> MonthPlan:
    """The pairs of one sensor for one month under its rules."""
    month = Month.parse(month)
    if isinstance(rules, OpticalRules):
        pairs, note = optical_pairs(scenes, month, rules)
    elif isinstance(rules, SarRules):
        pairs, note = sar_pairs(scenes, month, rules)
    elif isinstance(rules, NetworkRules):
        pairs, note = network_pairs(scenes, month, rules)
    else:
        pairs, note = uav_pairs(scenes, month, rules)
    return MonthPlan(sensor, month, tuple(pairs), note)


def plan(scenes_by_sensor: Mapping[str, Sequence[Scene]], months: Sequence[Month],
         rules_by_sensor: Mapping[str, Rules]) -> list[MonthPlan]:
    """Every sensor's plan for every month (sensors in sorted order)."""
    return [plan_month(sensor, scenes_by_sensor.get(sensor, ()), month, rules_by_sensor[sensor])
            for month in months for sensor in sorted(rules_by_sensor)]
