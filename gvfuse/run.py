"""A whole run: scan, plan pairs, track them (on dask), then build, validate and publish each month.

Pairs are the unit of work: each is a dask task (:func:`gvfuse.pair_processing.process_pair`)
whose result is cached on disk under a key of its inputs, so a run that is
killed and started again redoes only the pairs that had not finished, and gives
identical results. Months are cheap (arrays on the 30 m grid) and run in the
calling process once their pairs are done.

Problems with single inputs (unreadable scenes, duplicates, pairs that cannot
be tracked) are collected and reported at the end; the run goes on with the
rest. It fails only when a requested month could not be produced.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from gvfuse import __version__
from gvfuse.config import RunConfig
from gvfuse.errors import GvfuseError
from gvfuse.fusion import FusionResult
from gvfuse.model import Grid, MonthlyProduct, Provenance, Scene, VelocityField
from gvfuse.monthly import fuse_month, monthly_product, sensor_month, validate_month
from gvfuse.pair_processing import PairJob, PairOutcome, process_pair, read_pair_result, tracking_grid
from gvfuse.pairing import MonthPlan, deduplicate, plan
from gvfuse.plugins import PluginSet, get_plugins, plugin_errors
from gvfuse.scan import scan

log = logging.getLogger("gvfuse.run")


@attrs.frozen
class RunPlan:
    """What a run will do: the scenes per sensor, the pairs per sensor and month, and the jobs."""

    config: RunConfig
    product_grid: Grid
    scenes: dict[str, list[Scene]]
    months: list[MonthPlan]
    jobs: list[PairJob]
    problems: list[str]

    def describe(self) -> str:
        """A readable plan: one line per sensor and month, pairs indented."""
        lines = [f"product {self.config.product.id}: grid {self.product_grid.shape[0]} x {self.product_grid.shape[1]}"
                 f" cells of {self.config.product.resolution_m:g} m ({self.config.product.crs})"]
        for sensor, scenes in sorted(self.scenes.items()):
            lines.append(f"{sensor}: {len(scenes)} scene(s)")
        for mp in self.months:
            head = f"{mp.month} {mp.sensor:<11} {len(mp.pairs)} pair(s)"
            lines.append(head + (f"  ({mp.note})" if mp.note else ""))
            for p in mp.pairs:
                lines.append(f"    {p.reference.acquired_at:%Y-%m-%d} -> {p.secondary.acquired_at:%Y-%m-%d} "
                             f"({p.dt_days:.0f} d)  {p.pair_id}")
        lines.append(f"{len(self.jobs)} distinct pair(s) to track")
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


@attrs.frozen(eq=False)
class MonthOutcome:
    """One month: the paths published, or why it could not be produced.

    ``product`` and ``sensors`` (the per-sensor monthly maps, and the reference
    under its sensor name) are kept in memory for reports such as the demo's.
    """

    month: str
    paths: tuple[Path, ...] = ()
    error: str = ""
    figures: dict[str, Any] = attrs.field(factory=dict)
    product: MonthlyProduct | None = None
    sensors: dict[str, VelocityField] = attrs.field(factory=dict)


@attrs.frozen
class RunResult:
    """Everything a run did."""

    plan: RunPlan
    pairs: list[PairOutcome]
    months: list[MonthOutcome]

    @property
    def problems(self) -> list[str]:
        out = list(self.plan.problems)
        out += [f"pair {o.pair_id} ({o.sensor}): {o.error}" for o in self.pairs if o.error]
        out += [f"month {m.month}: {m.error}" for m in self.months if m.error]
        return out

    @property
    def failed_months(self) -> list[str]:
        return [m.month for m in self.months if m.error]


def build_plan(config: RunConfig, plugins: PluginSet | None = None) -> RunPlan:
    """Scan the input folder and choose every sensor's pairs for every month."""
    plugins = plugins or get_plugins()
    product_grid = config.product.grid()
    readers = [r.cls for r in plugins.registry["readers"].values()]
    report = scan(config.input_dir, readers, config.product)
    problems = [f"{s.path}: {s.reason}" + (f" - {s.message}" if s.message else "") for s in report.skipped
                if s.reason != "not recognised"]
    sensor_of_reader = {s.reader: name for name, s in config.sensors.items()}
    scenes: dict[str, list[Scene]] = defaultdict(list)
    for found in report.scenes:
        sensor = sensor_of_reader.get(found.reader)
        if sensor is not None and found.scene is not None:
            scenes[sensor].append(found.scene)
    for sensor in list(scenes):
        scenes[sensor], dropped = deduplicate(scenes[sensor])
        problems += [f"{d.path}: duplicate of scene {d.scene_id}, ignored" for d in dropped]
    months = plan(scenes, config.months, {n: s.rules for n, s in config.sensors.items()})
    jobs: dict[str, PairJob] = {}
    for mp in months:
        sensor = config.sensors[mp.sensor]
        for pair in mp.pairs:
            if pair.pair_id in jobs:
                continue
            try:
                resolution = sensor.resolution_m or _native_resolution(pair.reference)
                grid = tracking_grid(product_grid, (pair.reference, pair.secondary), resolution)
            except GvfuseError as exc:
                problems.append(f"pair {pair.pair_id}: {exc}")
                continue
            jobs[pair.pair_id] = PairJob(
                sensor=mp.sensor, pair=pair, reader=sensor.reader, tracker=sensor.tracker,
                tracker_parameters=dict(sensor.tracker_parameters), max_speed_m_per_day=sensor.max_speed_m_per_day,
                tracking_grid=grid, product_grid=product_grid, cache_dir=config.cache_dir,
                stable_mask=config.stable_mask,
            )
    return RunPlan(config, product_grid, dict(scenes), months, list(jobs.values()), problems)


def _native_resolution(scene: Scene) -> float:
    if scene.metadata.get("resolution_m"):
        return float(scene.metadata["resolution_m"])
    if scene.grid is not None:
        return scene.grid.pixel_size_m[0]
    raise GvfuseError(f"{scene.path}: no resolution known; set resolution_m for this sensor in the configuration")


def track_pairs(jobs: Sequence[PairJob], client: Any = None,
                progress: Callable[[PairOutcome, int, int], None] | None = None) -> list[PairOutcome]:
    """Run every job, on a dask.distributed ``client`` when given, else here one after another."""
    outcomes: list[PairOutcome] = []
    total = len(jobs)
    if client is None:
        for job in jobs:
            outcomes.append(process_pair(job))
            if progress:
                progress(outcomes[-1], len(outcomes), total)
        return outcomes
    from dask.distributed import as_completed

    # One dask key per output file: the same pair written to two caches is two tasks.
    futures = client.map(process_pair, list(jobs), key=[f"pair-{j.cache_path}" for j in jobs], pure=False)
    for future in as_completed(futures):
        outcomes.append(future.result())
        if progress:
            progress(outcomes[-1], len(outcomes), total)
    order = {j.pair.pair_id: i for i, j in enumerate(jobs)}
    return sorted(outcomes, key=lambda o: order[o.pair_id])


def _month_fields(plan_: RunPlan, outcomes: Iterable[PairOutcome]) -> dict[str, dict[str, dict[str, Any]]]:
    """For each month and sensor, the cached pair fields and their provenance."""
    done = {o.pair_id: o for o in outcomes if o.path is not None}
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
    for mp in plan_.months:
        for pair in mp.pairs:
            if pair.pair_id in done:
                out[mp.month][mp.sensor][pair.pair_id] = read_pair_result(done[pair.pair_id].path)
    return out


def _context(config: RunConfig, grid: Grid, reference: VelocityField | None) -> dict[str, Any]:
    from gvfuse.masks import load_mask

    context: dict[str, Any] = {"reference": reference}
    context["stable_mask"] = load_mask(config.stable_mask, grid, what="stable-ground mask") \
        if config.stable_mask else None
    context["on_ice_mask"] = load_mask(config.on_ice_mask, grid, what="on-ice mask") if config.on_ice_mask else None
    return context


def build_months(plan_: RunPlan, outcomes: Sequence[PairOutcome], plugins: PluginSet | None = None,
                 publish_to: Path | None = None, force: bool = False) -> list[MonthOutcome]:
    """Combine, fuse, validate and (when ``publish_to`` is given) publish every month of the plan."""
    plugins = plugins or get_plugins()
    config = plan_.config
    ref_name = config.reference_sensor
    legend = tuple(sorted(n for n, s in config.sensors.items() if s.role == "fuse"))
    per_month = _month_fields(plan_, outcomes)
    sensor_maps: dict[str, dict[str, VelocityField]] = {}
    references: dict[str, VelocityField | None] = {}
    provenance_pairs: dict[str, list[dict[str, Any]]] = {}
    for month in config.months:
        maps: dict[str, VelocityField] = {}
        references[month] = None
        provenance_pairs[month] = []
        for sensor, pairs in sorted(per_month.get(month, {}).items()):
            combined = sensor_month({pid: field for pid, (field, _) in pairs.items()})
            provenance_pairs[month] += [info for _, info in pairs.values()]
            if sensor == ref_name:
                references[month] = combined
            else:
                maps[sensor] = combined
        sensor_maps[month] = maps
    # Months with a reference fit their own weights first; the others borrow the nearest fit.
    fits: dict[str, FusionResult] = {}
    results: dict[str, FusionResult | str] = {}
    for month in config.months:
        if sensor_maps[month] and references[month] is not None:
            try:
                result = fuse_month(plugins, config.weighting, config.weighting_parameters,
                                    sensor_maps[month], references[month])
            except GvfuseError as exc:
                results[month] = str(exc)
                continue
            if "fit_not_possible" not in result.details:
                fits[month] = results[month] = result
    from gvfuse.fusion import WeightFit, nearest_month_weights

    fitted = {m: WeightFit(r.weights, 0, 0.0) for m, r in fits.items() if r.weights}
    for month in config.months:
        if month in results:
            continue
        if not sensor_maps[month]:
            results[month] = "no sensor produced a velocity map for this month"
            continue
        nearest = nearest_month_weights(fitted, month)
        weights, source = (dict(nearest[1].weights), f"fitted on {nearest[0]}") if nearest else (None, "")
        try:
            results[month] = fuse_month(plugins, config.weighting, config.weighting_parameters, sensor_maps[month],
                                        references[month], weights=weights, weights_from=source)
        except GvfuseError as exc:
            results[month] = str(exc)
    outcomes_by_month = []
    for month in config.months:
        result = results[month]
        if isinstance(result, str):
            outcomes_by_month.append(MonthOutcome(month, error=result))
            continue
        try:
            context = _context(config, result.field.grid, references[month])
            figures = validate_month(plugins, config.validators, result.field, sensor_maps[month], context)
            provenance = _provenance(plugins, config, provenance_pairs[month])
            product = monthly_product(month, result, sensor_maps[month], legend, figures, provenance)
            paths: tuple[Path, ...] = ()
            if publish_to is not None:
                key = _month_key(plan_, month)
                paths = tuple(publish_once(plugins, config, product, publish_to, key=key, force=force))
            maps = dict(sensor_maps[month])
            if references[month] is not None and ref_name:
                maps[ref_name] = references[month]
            outcomes_by_month.append(MonthOutcome(month, paths, figures=figures, product=product, sensors=maps))
        except GvfuseError as exc:
            outcomes_by_month.append(MonthOutcome(month, error=str(exc)))
    return outcomes_by_month


def _provenance(plugins: PluginSet, config: RunConfig, pairs: list[dict[str, Any]]) -> Provenance:
    inputs = sorted({p["reference"]["id"] for p in pairs} | {p["secondary"]["id"] for p in pairs})
    return Provenance(
        software="gvfuse", software_version=__version__,
        plugins={p.name: f"{p.distribution} {p.version}" for p in plugins.loaded},
        inputs=tuple(inputs),
        parameters={"pairs": sorted(pairs, key=lambda p: p["pair_id"]), "weighting": config.weighting,
                    "weighting_parameters": dict(config.weighting_parameters),
                    "configuration": str(config.source) if config.source else ""},
    )


def publish(plugins: PluginSet, config: RunConfig, product: Any, destination: Path, *, force: bool) -> list[Path]:
    """Write ``product`` with every configured publisher.

    A publisher class is constructed with ``definition=<ProductDefinition>``
    when its ``__init__`` takes it, else with no arguments.
    """
    paths: list[Path] = []
    for name in config.publishers:
        reg = plugins.get("publishers", name)
        takes_definition = "definition" in inspect.signature(reg.cls.__init__).parameters
        with plugin_errors(reg.plugin.name, f"publisher {name!r}"):
            publisher = reg.cls(definition=config.product) if takes_definition else reg.cls()
            paths += publisher.publish(product, destination, force=force)
    return paths


def _month_key(plan_: RunPlan, month: str) -> str:
    """A digest of everything a month's product depends on: its pairs' keys and the run's settings."""
    keys = sorted(j.key for j in plan_.jobs for mp in plan_.months
                  if mp.month == month and j.pair in mp.pairs)
    c = plan_.config
    payload = [__version__, keys, c.weighting, sorted(c.weighting_parameters.items()), list(c.validators),
               [str(p) for p in (c.stable_mask, c.on_ice_mask)], list(c.publishers)]
    return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()[:24]


def publish_once(plugins: PluginSet, config: RunConfig, product: Any, destination: Path, *, key: str,
                 force: bool) -> list[Path]:
    """Publish a month unless it is already published from the same inputs.

    A state file per month (in the cache) records the inputs' key. Same key and
    finished: nothing to do. Same key but interrupted while publishing: publish
    again over the partial files (same inputs give identical files). A month
    published from other inputs is refused unless ``force``.
    """
    state_file = config.cache_dir / "months" / f"{product.month}.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else None
    same_inputs = state is not None and state.get("key") == key
    if same_inputs and state.get("state") == "done" and all(Path(p).exists() for p in state.get("paths", [])):
        return [Path(p) for p in state["paths"]]
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps({"key": key, "state": "publishing"}))
    paths = publish(plugins, config, product, destination, force=force or same_inputs)
    state_file.write_text(json.dumps({"key": key, "state": "done", "paths": [str(p) for p in paths]}))
    return paths


def default_workers() -> int:
    """Dask worker processes for a local cluster: one per core."""
    return max(1, os.cpu_count() or 1)


def execute(config: RunConfig, *, client: Any = None, plugins: PluginSet | None = None, publish_results: bool = True,
            force: bool = False, progress: Callable[[PairOutcome, int, int], None] | None = None) -> RunResult:
    """Plan, track every pair, then build (and publish) every month."""
    plugins = plugins or get_plugins()
    with plugin_errors("gvfuse", "configuration hooks"):
        plugins.call_event("gvfuse_configure", config={"source": str(config.source), "product": config.product.id})
    plan_ = build_plan(config, plugins)
    outcomes = track_pairs(plan_.jobs, client=client, progress=progress)
    months = build_months(plan_, outcomes, plugins, publish_to=config.output_dir if publish_results else None,
                          force=force)
    return RunResult(plan_, outcomes, months)


