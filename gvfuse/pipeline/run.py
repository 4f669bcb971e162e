"""A whole run: scan, plan pairs, track them (on dask), then build, validate and publish each month.

Pairs are the unit of work: each is a dask task (:func:`gvfuse.pipeline.pair.process_pair`)
whose result is cached on disk under a key of its inputs, so a run that is
killed and started again redoes only the pairs that had not finished, and gives
identical results. Months are cheap (arrays on the 30 m grid) and run in the
calling process once their pairs are done.

Problems with single inputs (unreadable scenes, duplicates, pairs that cannot
be tracked) are collected and reported at the end; the run goes on with the
rest. It fails only when a requested month could not be produced.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from gvfuse import __version__
from gvfuse.config import RunConfig, check_components, check_window_and_step
from gvfuse.errors import ConfigError, GvfuseError, InputError
from gvfuse.interfaces import Fusion, Publisher
from gvfuse.io.atomic import InterruptedAfterCommit, write_text_atomic
from gvfuse.io.masks import load_mask
from gvfuse.model import FusionResult, Grid, Month, MonthlyProduct, PairObservation, Provenance, Scene, VelocityField
from gvfuse.pipeline.month import (
    ConfiguredWeighting,
    MonthFit,
    calibrate_on_stable_ground,
    fit_for,
    fit_months,
    fuse_month,
    monthly_product,
    sensor_month,
)
from gvfuse.pipeline.pair import (
    PairJob,
    PairOutcome,
    effective_parameters,
    mask_fingerprint,
    process_pair,
    read_pair_info,
    read_pair_result,
    tracking_grid,
    tracking_halo_m,
)
from gvfuse.pipeline.pairing import MonthPlan, plan
from gvfuse.pipeline.scan import SKIP_UNRECOGNISED, scan
from gvfuse.pipeline.stable_network import network_outcomes
from gvfuse.pipeline.validate import ValidationContext, run_validators
from gvfuse.plugins import PluginSet, Registration, plugin_errors
from gvfuse.product import ProductDefinition

log = logging.getLogger("gvfuse.run")

#: Where gvfuse before 2026-12-03 kept the pair cache and the publishing state: inside the publication.
LEGACY_CACHE = ".cache"

#: How long to wait for a ``--scheduler`` before saying it cannot be reached.
SCHEDULER_TIMEOUT_S = 10


@attrs.frozen
class RunPlan:
    """What a run will do: the scenes per sensor, the pairs per sensor and month, and the jobs."""

    config: RunConfig
    product_grid: Grid
    scenes: dict[str, list[Scene]]
    months: list[MonthPlan]
    jobs: list[PairJob]
    problems: list[str]

    def tracking_grid_of(self, pair_id: str) -> Grid | None:
        """The grid the pair will be tracked on (None: no job for it)."""
        return self._tracking_grids.get(pair_id)

    @functools.cached_property
    def _tracking_grids(self) -> dict[str, Grid]:
        return {job.pair.pair_id: job.tracking_grid for job in self.jobs}

    def describe(self) -> str:
        """A readable plan: one line per sensor and month, pairs indented (with their tracking grid's size)."""
        lines = [f"product {self.config.product.id}: grid {self.product_grid.shape[0]} x {self.product_grid.shape[1]}"
                 f" cells of {self.config.product.resolution_m:g} m ({self.config.product.crs})"]
        for sensor, scenes in sorted(self.scenes.items()):
            lines.append(f"{sensor}: {len(scenes)} scene(s)")
        for mp in self.months:
            head = f"{mp.month} {mp.sensor:<11} {len(mp.pairs)} pair(s)"
            notes = [mp.note] if mp.note else []
            if mp.month not in self.config.months:
                notes.append("not published: its pairs inform the fusion of the months around it")
            lines.append(head + (f"  ({'; '.join(notes)})" if notes else ""))
            for p in mp.pairs:
                grid = self.tracking_grid_of(p.pair_id)
                size = f", {grid.shape[0]} x {grid.shape[1]} px of {grid.pixel_size_m[0]:g} m" if grid else ""
                lines.append(f"    {p.reference.acquired_at:%Y-%m-%d} -> {p.secondary.acquired_at:%Y-%m-%d} "
                             f"({p.dt_days:.0f} d{size})  {p.pair_id}")
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

    month: Month
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
        out += [f"pair {o.pair_id} ({o.sensor}): {o.error or o.warning}" for o in self.pairs if o.error or o.warning]
        out += [f"month {m.month}: {m.error}" for m in self.months if m.error]
        return out

    @property
    def failed_months(self) -> list[Month]:
        return [m.month for m in self.months if m.error]


# --------------------------------------------------------------------------- plan


def build_plan(config: RunConfig, plugins: PluginSet) -> RunPlan:
    """Scan the input folder and choose every sensor's pairs for every month.

    Every reader, tracker, weighting, validator and publisher the
    configuration names must be registered and take its parameters
    (:func:`gvfuse.config.check_components`: a :class:`~gvfuse.errors.ConfigError`
    otherwise, before anything is read or tracked).
    """
    check_components(config, plugins)
    readers = {name: plugins.get("readers", s.reader) for name, s in config.sensors.items()}
    trackers = {name: plugins.get("trackers", s.tracker) for name, s in config.sensors.items()}
    product_grid = config.product.grid()
    if not config.input_dir.is_dir():
        raise ConfigError(f"{config.input_dir} {'is not a folder' if config.input_dir.exists() else 'does not exist'}",
                          source=config.source, field="input_dir")
    report = scan(config.input_dir, plugins.classes("readers"), config.product)
    problems = [f"{s.path}: {s.reason}" + (f" - {s.message}" if s.message else "") for s in report.skipped
                if s.reason != SKIP_UNRECOGNISED]  # notes, READMEs: not scenes, not problems
    sensor_of_reader = {s.reader: name for name, s in config.sensors.items()}
    scenes: dict[str, list[Scene]] = defaultdict(list)
    for found in report.scenes:  # one scene per acquisition: scan left the other copies out, as duplicates
        sensor = sensor_of_reader.get(found.reader)
        if sensor is None:
            problems.append(f"{found.path}: left out - sensor {found.sensor!r} is not configured (no [sensors.*] "
                            f"section reads it with reader {found.reader!r})")
        elif found.scene is not None:
            scenes[sensor].append(found.scene)
    # A fusion over time uses every pair that overlaps a requested month, also those whose mid-time falls in a
    # month between or next to them: those months are planned too (tracked, not published).
    planned = config.months
    if config.fusion is not None:
        planned = Month.span(min(config.months).shifted(-1), max(config.months).shifted(1))
    months = plan(scenes, planned, {n: s.rules for n, s in config.sensors.items()})
    jobs: dict[str, PairJob] = {}
    for mp in months:
        sensor_config = config.sensors[mp.sensor]
        for pair in mp.pairs:
            if pair.pair_id in jobs:
                continue
            try:
                resolution = sensor_config.resolution_m or _native_resolution(pair.reference)
                halo = tracking_halo_m(effective_parameters(trackers[mp.sensor], sensor_config.tracker_parameters),
                                       sensor_config.max_speed_m_per_day, pair.dt_days, resolution)
                grid = tracking_grid(product_grid, (pair.reference, pair.secondary), resolution, halo_m=halo)
            except GvfuseError as exc:
                problems.append(f"pair {pair.pair_id}: {exc}")
                continue
            _check_window_fits_product(config, mp.sensor, trackers[mp.sensor], product_grid, resolution)
            jobs[pair.pair_id] = PairJob(
                sensor=mp.sensor, pair=pair, reader=readers[mp.sensor], tracker=trackers[mp.sensor],
                tracker_parameters=dict(sensor_config.tracker_parameters),
                max_speed_m_per_day=sensor_config.max_speed_m_per_day,
                tracking_grid=grid, product_grid=product_grid, cache_dir=config.cache_dir,
                stable_mask=config.stable_mask, band=sensor_config.band, glacier_mask=config.glacier_mask,
            )
    legacy = config.output_dir / LEGACY_CACHE
    if legacy.is_dir():
        problems.append(f"{legacy}: the pair cache of an earlier gvfuse, no longer read (pairs are cached in "
                        f"{config.cache_dir}, outside the publication); delete it")
    return RunPlan(config, product_grid, dict(scenes), months, list(jobs.values()), problems)


def _check_window_fits_product(config: RunConfig, sensor: str, tracker: Registration, product_grid: Grid,
                               resolution_m: float) -> None:
    """A window or step larger than the whole product area at the tracking resolution is a configuration error.

    Found here, before any pair is tracked (a smaller pair grid, where two scenes overlap little, is that
    pair's own one-line problem in :func:`~gvfuse.pipeline.pair.track_pair`).
    """
    parameters = effective_parameters(tracker, config.sensors[sensor].tracker_parameters)
    if "window_px" not in parameters or "step_px" not in parameters:
        return
    pixel_x_m, pixel_y_m = product_grid.pixel_size_m
    check_window_and_step(int(product_grid.rows * pixel_y_m // resolution_m),
                          int(product_grid.cols * pixel_x_m // resolution_m), int(parameters["window_px"]),
                          int(parameters["step_px"]), source=config.source,
                          field=f"sensors.{sensor}.tracker_parameters")


def _native_resolution(scene: Scene) -> float:
    if scene.metadata.get("resolution_m"):
        return float(scene.metadata["resolution_m"])
    if scene.grid is not None:
        return scene.grid.pixel_size_m[0]
    raise GvfuseError(f"{scene.path}: no resolution known; set resolution_m for this sensor in the configuration")


# --------------------------------------------------------------------------- track (dask)


def default_workers() -> int:
    """Dask worker processes for a local cluster: one per core."""
    return max(1, os.cpu_count() or 1)


def probe_scheduler(address: str, timeout_s: float | None = None) -> None:
    """Refuse ``address`` unless a dask scheduler answers dask's handshake there within ``timeout_s``.

    A TCP service that is not a dask scheduler accepts the connection and never answers the handshake;
    dask.distributed's client then waits for ever (its own timeout covers the connection, not the
    handshake). Here the whole exchange is cancelled at the deadline.
    """
    import asyncio

    from distributed.comm import connect

    limit = SCHEDULER_TIMEOUT_S if timeout_s is None else timeout_s

    async def handshake() -> None:
        comm = await asyncio.wait_for(connect(address, timeout=limit), limit)
        await comm.close()

    try:
        asyncio.run(handshake())
    except TimeoutError:
        raise InputError(f"{address}: no dask scheduler answered within {limit:g} s (is it a dask scheduler's "
                         "address, e.g. tcp://host:8786?)", source="--scheduler") from None
    except Exception as exc:  # refused, unreachable, not an address, garbage for a handshake
        raise InputError(f"cannot reach the dask scheduler: {type(exc).__name__}: {exc}".split("\n")[0][:300],
                         source="--scheduler") from None


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A dask.distributed client: of an existing cluster at ``scheduler``, else of a local cluster.

    ``workers == 0`` tracks in this process without a cluster (yields ``None``; a fusion over time then
    computes on dask's threads, :func:`execute`). Every computation of a run names its client
    (:func:`track_pairs`, :func:`execute`); the local cluster's client is not made dask's global default,
    and a client that fails to connect does not leave ``scheduler="dask.distributed"`` behind: either
    would break dask computations later in the same process ("no Client active").
    """
    if scheduler is None and workers == 0:
        yield None
        return
    import dask
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        probe_scheduler(scheduler)
        previous = dask.config.get("scheduler", None)
        try:
            # set as dask's default while it lives: a client built with set_as_default=False that fails to
            # connect waits 2 x its timeout in its finaliser (distributed 2026.8)
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:  # unreachable, refused, not an address
            dask.config.set(scheduler=previous)  # the failed client set "dask.distributed" and cannot unset it
            raise InputError(f"cannot reach the dask scheduler: {type(exc).__name__}: {exc}".split("\n")[0],
                             source="--scheduler") from None
        with client:
            yield client
        return

    # dask sets MALLOC_TRIM_THRESHOLD_=65536 in its workers to hand memory back to the system sooner; the
    # trackers allocate and free large arrays per tile, and with it they ran 2x slower (measured:
    # 21.6 s against 9.8 s for one 1200 px pair). Workers keep glibc's default instead.
    # A worker is given its next task when it has finished one (dask's default gives each 1.1 x its threads,
    # i.e. two tasks to a one-thread worker): long tasks of very different lengths (the demo's four scene
    # series, pairs of several sensors) then balance over the workers instead of queueing two by two.
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                          "distributed.scheduler.worker-saturation": 1.0}):
        with _sigint_ignored():  # inherited by the worker processes: Ctrl-C is this process's to handle
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        with cluster, Client(cluster, set_as_default=False) as client:
            yield client


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while the block starts processes, which keep ignoring it (an ignored signal stays ignored
    across ``exec``, and Python then installs no ``KeyboardInterrupt`` for it).

    Ctrl-C in a terminal goes to every process of the command: a local cluster's workers and nannies would
    each print a ``KeyboardInterrupt`` traceback while this process stops and closes the cluster (and
    prints its one line). A Ctrl-C during the few seconds the cluster starts is lost.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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
    for future in as_completed(futures, loop=client.loop):
        outcomes.append(future.result())
        if progress:
            progress(outcomes[-1], len(outcomes), total)
    order = {j.pair.pair_id: i for i, j in enumerate(jobs)}
    return sorted(outcomes, key=lambda o: order[o.pair_id])


# --------------------------------------------------------------------------- months


@attrs.frozen(eq=False)
class MonthInputs:
    """A month's per-sensor maps, its reference map (or None), and the provenance of every pair used."""

    sensors: dict[str, VelocityField]
    reference: VelocityField | None
    pairs: list[dict[str, Any]]


def month_inputs(plan_: RunPlan, outcomes: Iterable[PairOutcome]) -> dict[Month, MonthInputs]:
    """For each month of the run, its sensors' monthly maps from the cached pair results."""
    done = {o.pair_id: o for o in outcomes if o.path is not None}
    per_month: dict[Month, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
    for mp in plan_.months:
        for pair in mp.pairs:
            found = done.get(pair.pair_id)
            if found is not None and found.result_path is not None:
                per_month[mp.month][mp.sensor][pair.pair_id] = read_pair_result(found.result_path)
    reference_sensor = plan_.config.reference_sensor
    out: dict[Month, MonthInputs] = {}
    for month in plan_.config.months:
        maps: dict[str, VelocityField] = {}
        reference = None
        provenance: list[dict[str, Any]] = []
        for sensor, pairs in sorted(per_month.get(month, {}).items()):
            combined = sensor_month({pid: field for pid, (field, _) in pairs.items()})
            provenance += [info for _, info in pairs.values()]
            if sensor == reference_sensor:
                reference = combined
            else:
                maps[sensor] = combined
        out[month] = MonthInputs(maps, reference, provenance)
    return out


def _fuse_by_month(plugins: PluginSet, config: RunConfig,
                   inputs: dict[Month, MonthInputs]) -> dict[Month, FusionResult | str]:
    """The weighting's fusion of each month's sensor maps: its fits, lent to months without one."""
    weighting = ConfiguredWeighting.create(plugins, config.weighting, config.weighting_parameters)
    fits = fit_months(weighting, {m: i.sensors for m, i in inputs.items()}, {m: i.reference for m, i in inputs.items()})
    fused: dict[Month, FusionResult | str] = {}
    for month in config.months:
        own = fits.get(month, MonthFit())
        if not inputs[month].sensors:
            fused[month] = "no sensor produced a velocity map for this month"
        elif own.error:
            fused[month] = own.error
        else:
            try:
                fused[month] = fuse_month(weighting, inputs[month].sensors, fit_for(month, fits), own.reason)
            except GvfuseError as exc:
                fused[month] = str(exc)
    return fused


def _fuse_over_time(plugins: PluginSet, plan_: RunPlan,
                    outcomes: Sequence[PairOutcome]) -> dict[Month, FusionResult | str]:
    """The configured fusion over time, given every tracked pair of the period at once."""
    config = plan_.config
    assert config.fusion is not None
    registration = plugins.get("fusions", config.fusion)
    done = {o.pair_id: o.result_path for o in outcomes if o.result_path is not None}
    windows = {}
    for job in plan_.jobs:
        window = effective_parameters(job.tracker, job.tracker_parameters).get("window_px")
        windows[job.pair.pair_id] = (float(window) * job.tracking_grid.pixel_size_m[0]
                                     if isinstance(window, (int, float)) else None)
    seen: set[str] = set()
    observations: list[PairObservation] = []
    references: dict[Month, list[PairObservation]] = defaultdict(list)
    for mp in plan_.months:
        for pair in mp.pairs:
            path = done.get(pair.pair_id)
            if path is None:
                continue
            observation = PairObservation(mp.sensor, pair.pair_id, pair.reference.acquired_at,
                                          pair.secondary.acquired_at, path, windows.get(pair.pair_id))
            if mp.sensor == config.reference_sensor:
                references[mp.month].append(observation)  # the month's reference, as month_inputs has it
            elif pair.pair_id not in seen:
                seen.add(pair.pair_id)
                observations.append(observation)
    fused: dict[Month, FusionResult | str] = {}
    if not observations:
        return {month: "no pair of a fused sensor was tracked" for month in config.months}
    # passed only when configured, so that a fusion written before the mask existed still runs without it
    extra = {} if config.glacier_mask is None else {
        "glacier_mask": load_mask(config.glacier_mask, plan_.product_grid, what="glacier mask")}
    with plugin_errors(registration.plugin.name, f"fusion {config.fusion!r}"):
        fusion = registration.cls(**config.fusion_parameters)
        assert isinstance(fusion, Fusion)
        results = fusion.fuse_period(observations, config.months, plan_.product_grid, references=dict(references),
                                     **extra)
    for month in config.months:
        result = results.get(month)
        fused[month] = result if result is not None else "the fusion over time made no map for this month"
    return fused


def build_months(plan_: RunPlan, outcomes: Sequence[PairOutcome], *, plugins: PluginSet,
                 publish_to: Path | None = None, force: bool = False) -> list[MonthOutcome]:
    """Fuse, validate and (when ``publish_to`` is given) publish every month of the plan.

    With a weighting, each month fuses its sensors' monthly maps (a month
    without a fit of its own borrows the nearest month's,
    :func:`gvfuse.pipeline.month.fit_for`); with a fusion over time, every
    pair of the period is fused at once. Either way each sensor's monthly map
    is made too, for the validators that compare sensors and for reports.
    """
    import numpy as np

    config = plan_.config
    inputs = month_inputs(plan_, outcomes)
    if config.fusion is not None:
        fused = _fuse_over_time(plugins, plan_, outcomes)
    else:
        fused = _fuse_by_month(plugins, config, inputs)
    context = ValidationContext(config.context_entries(), config.base_dir, glacier_mask=config.glacier_mask)
    results = []
    for month in config.months:
        month_in = inputs[month]
        result = fused[month]
        if isinstance(result, str):
            results.append(MonthOutcome(month, error=result))
            continue
        if not np.isfinite(result.field.vx_m_per_day).any():  # never an empty product with exit 0
            results.append(MonthOutcome(month, error="the fused month has no cell with a velocity on the product "
                                                     "grid; nothing to publish (see the pairs' problems, if any)"))
            continue
        try:
            stable = context.mask("stable_mask", result.field.grid)
            if stable is not None:
                result = calibrate_on_stable_ground(result, stable)
            figures = run_validators(plugins, config.validators, result.field, month_in.sensors, context,
                                     month_in.reference, fused_over_reference=result.over_reference)
            pairs = _month_pairs(plan_, outcomes, inputs, month) if config.fusion is not None else month_in.pairs
            product = monthly_product(month, result, month_in.sensors, config.fused_sensors, figures,
                                      _provenance(plugins, config, pairs))
            paths: tuple[Path, ...] = ()
            if publish_to is not None:
                paths = tuple(publish_once(plugins, config, product, publish_to, key=_month_key(plan_, month, outcomes),
                                           force=force))
            maps = dict(month_in.sensors)
            if month_in.reference is not None and config.reference_sensor:
                maps[config.reference_sensor] = month_in.reference
            results.append(MonthOutcome(month, paths, figures=figures, product=product, sensors=maps))
        except GvfuseError as exc:
            results.append(MonthOutcome(month, error=str(exc)))
    return results


def _month_pairs(plan_: RunPlan, outcomes: Sequence[PairOutcome], inputs: dict[Month, MonthInputs],
                 month: Month) -> list[dict[str, Any]]:
    """The provenance of the pairs a fusion over time used for a month: every fused pair overlapping it,
    and the month's reference pairs."""
    every = {info["pair_id"]: info for month_in in inputs.values() for info in month_in.pairs}
    for outcome in outcomes:
        if outcome.result_path is not None and outcome.pair_id not in every:
            every[outcome.pair_id] = read_pair_info(outcome.result_path)
    reference = plan_.config.reference_sensor
    out = []
    for info in every.values():
        start, end = (dt.datetime.fromisoformat(info[side]["datetime"]) for side in ("reference", "secondary"))
        if info["sensor"] == reference:
            if any(info is i for i in inputs[month].pairs):
                out.append(info)
        elif start < month.end and end > month.start:
            out.append(info)
    return out


def _provenance(plugins: PluginSet, config: RunConfig, pairs: list[dict[str, Any]]) -> Provenance:
    inputs = sorted({p["reference"]["id"] for p in pairs} | {p["secondary"]["id"] for p in pairs})
    # how long a pair took is the run's business, not the product's: with it, two runs of the same
    # inputs published different bytes
    pairs = [{k: v for k, v in p.items() if k != "seconds"} for p in pairs]
    # where the tracking corrected and the validation measured the still ground (file names)
    masks = {name: path.name for name, path in (("stable_mask", config.stable_mask),
                                                ("glacier_mask", config.glacier_mask)) if path is not None}
    return Provenance(
        software="gvfuse", software_version=__version__,
        plugins={p.name: f"{p.distribution} {p.version}" for p in plugins.loaded},
        inputs=tuple(inputs),
        parameters={"pairs": sorted(pairs, key=lambda p: p["pair_id"]),
                    **({"fusion": config.fusion, "fusion_parameters": dict(config.fusion_parameters)}
                       if config.fusion is not None else
                       {"weighting": config.weighting, "weighting_parameters": dict(config.weighting_parameters)}),
                    # the run file's name, not its path: the same inputs publish the same bytes wherever the
                    # project folder is
                    "configuration": Path(config.source).name if config.source else "",
                    **({"masks": masks} if masks else {})},
    )


# --------------------------------------------------------------------------- publish, once


def publish(plugins: PluginSet, publishers: Sequence[str], definition: ProductDefinition, product: MonthlyProduct,
            destination: Path, *, force: bool) -> list[Path]:
    """Write ``product`` with every publisher named, then tell the plugins (``gvfuse_product_published``).

    Each publisher is constructed as ``cls(definition=..., plugins=...)``
    (the contract of :class:`gvfuse.interfaces.Publisher`).
    """
    paths: list[Path] = []
    for name in publishers:
        reg = plugins.get("publishers", name)
        assert issubclass(reg.cls, Publisher)  # checked when the plugin registered it
        with plugin_errors(reg.plugin.name, f"publisher {name!r}"):
            publisher = reg.cls(definition=definition, plugins=plugins)
            paths += publisher.publish(product, destination, force=force)
    plugins.notify("gvfuse_product_published", product=product, paths=list(paths))
    return paths


def _month_key(plan_: RunPlan, month: Month, outcomes: Sequence[PairOutcome] = ()) -> str:
    """A digest of everything a month's product depends on: its pairs' keys, the date networks that corrected
    them (the adjusted pairs' names hold a digest of every pair of their sensor's network) and the run's
    settings."""
    if plan_.config.fusion is not None:  # a fusion over time: every pair of the period informs every month
        jobs = list(plan_.jobs)
    else:
        jobs = [j for j in plan_.jobs for mp in plan_.months if mp.month == month and j.pair in mp.pairs]
    keys = sorted(j.key for j in jobs)
    ids = {j.pair.pair_id for j in jobs}
    networks = sorted(o.adjusted.name for o in outcomes if o.adjusted is not None and o.pair_id in ids)
    c = plan_.config
    method = ([c.weighting, sorted(c.weighting_parameters.items())] if c.fusion is None else
              [c.fusion, sorted((k, str(v)) for k, v in c.fusion_parameters.items())])
    payload = [__version__, keys, *method, list(c.validators),
               [mask_fingerprint(p) for p in (c.stable_mask, c.on_ice_mask)], list(c.publishers)]
    if c.glacier_mask is not None:  # appended only when set, so that runs without one keep their keys
        payload.append(mask_fingerprint(c.glacier_mask))
    if c.validation_context:
        payload.append(sorted((k, str(v)) for k, v in c.validation_context.items()))
    if networks:  # appended only when some pair was adjusted, so that runs with "per-pair" keep their keys
        payload.append(networks)
    return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()[:24]


def publish_once(plugins: PluginSet, config: RunConfig, product: MonthlyProduct, destination: Path, *, key: str,
                 force: bool) -> list[Path]:
    """Publish a month unless it is already published from the same inputs.

    A state file per month (in the publication's ``.gvfuse-state``) records the
    inputs' key. Same key and finished: nothing to do. Same key but interrupted
    while publishing: publish again over the partial files (same inputs give
    identical files). A month published from other inputs is refused unless
    ``force``. A publication made before the state moved keeps its state in
    ``OUTPUT/.cache/months``, which is read when the new one is absent.
    """
    state_file = config.state_dir / "months" / f"{product.month}.json"
    state = _read_state(state_file) if state_file.exists() else \
        _read_state(config.output_dir / LEGACY_CACHE / "months" / f"{product.month}.json")
    same_inputs = state.get("key") == key
    if same_inputs and state.get("state") == "done" and all(Path(p).exists() for p in state.get("paths", [])):
        return [Path(p) for p in state["paths"]]
    state_file.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(state_file, json.dumps({"key": key, "state": "publishing"}), overwrite=True)
    try:
        paths = publish(plugins, config.publishers, config.product, product, destination,
                        force=force or same_inputs)
    except InterruptedAfterCommit:
        # Ctrl-C held until a publisher had moved the month into place: it is there, from these inputs, so its
        # "publishing" state stays, as after a kill: the next run publishes it again (the same bytes) and
        # finishes what the interrupt stopped (another publisher, the gvfuse_product_published event)
        raise
    except BaseException:
        # refused, or failed (a raising hook, a full disk, Ctrl-C): publishing a month is all or nothing, so
        # it stays what it was, and so does its state; else the next run would take these inputs for an
        # interrupted publication of its own and replace the month without --force
        if state:
            write_text_atomic(state_file, json.dumps(state), overwrite=True)
        else:
            state_file.unlink(missing_ok=True)
        raise
    write_text_atomic(state_file, json.dumps({"key": key, "state": "done", "paths": [str(p) for p in paths]}),
                      overwrite=True)
    return paths


def _read_state(path: Path) -> dict[str, Any]:
    """A month's publication state; an unreadable or corrupt one (a kill while it was written by an older
    version, a truncated disk) counts as none: the month is then published again, or refused if it exists."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def execute(config: RunConfig, *, plugins: PluginSet, client: Any = None, publish_results: bool = True,
            force: bool = False, progress: Callable[[PairOutcome, int, int], None] | None = None) -> RunResult:
    """Plan, track every pair, then build (and publish) every month."""
    import dask

    plan_ = build_plan(config, plugins)
    if publish_results:
        from gvfuse.publish.month import remove_leftovers

        remove_leftovers(config.output_dir)  # even when no month is published this time
    outcomes = track_pairs(plan_.jobs, client=client, progress=progress)
    outcomes = network_outcomes(plan_.jobs, outcomes, {name: s.stable_shift for name, s in config.sensors.items()})
    # A fusion over time computes with dask: on the run's client, else on threads here. Named, not left to
    # dask's global default, which is any distributed client still registered in this process (a closed
    # one from an earlier run: the computation then waits for ever).
    with dask.config.set(scheduler=client if client is not None else "threads"):
        months = build_months(plan_, outcomes, plugins=plugins,
                              publish_to=config.output_dir if publish_results else None, force=force)
    return RunResult(plan_, outcomes, months)
