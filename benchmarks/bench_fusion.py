"""Fusion over time on the Gangrigab product grid: time and peak memory per stage, against the reference method.

Usage::

    python benchmarks/bench_fusion.py                        # a quarter of the rows and columns, 400 pairs
    python benchmarks/bench_fusion.py --fraction 1           # the full grid (1892 x 2198 cells): see below
    python benchmarks/bench_fusion.py --rows 512 --cols 512 --pairs 120
    python benchmarks/bench_fusion.py --workdir /big/disk    # where the pair files go (deleted at the end)
    python benchmarks/bench_fusion.py --methods month-inputs  # see "month_inputs" below

What it measures. A year of pair results is written on the Gangrigab product
grid (``catalog/gangrigab_2023.toml``, loaded with :func:`gvfuse.product.load_product`):
the pair network is the one the Gangrigab run configuration's rules
(``catalog/gangrigab_2023_run.toml``, :class:`gvfuse.pipeline.pairing.NetworkRules`)
choose among synthetic acquisition schedules (Landsat 8/9 every 8 days,
Sentinel-2A/B every 5, Sentinel-1A every 12 on two relative orbits, optical
scenes cloudy as in the demo), thinned evenly to ``--pairs`` when it has
more. Each pair is the mean velocity of a seasonal synthetic glacier field
(:class:`gvfuse.testing.timeseries.Landscape`, eight valley glaciers) over the
pair's own interval, plus white tracking noise, the scenes' residual
geolocation errors, a speed under-reading for Sentinel-1, a few blunders and
NaN gaps (the union of both scenes' clouds for optical pairs, layover and
decorrelation for Sentinel-1), written with :func:`gvfuse.io.raster.write_bands`
exactly as :func:`gvfuse.pipeline.pair.process_pair` caches a pair (bands
``vx``, ``vy``, ``error_m_per_day``, ``count``; tiled deflate GeoTIFF). UAV
surveys of one terminus give the reference method its fits.

Then, each in a fresh (spawned) process, so that its peak is that method's own:

* ``time-series`` (the bundled fusion over time, :class:`gvfuse_plugins.fusions.TimeSeriesFusion`
  with the run configuration's parameters, i.e. :func:`gvfuse.inversion.invert_period`):
  reading the calibration samples, calibration (cross-validation, three-cornered
  hat, speed scales, smoothing choice, posterior inflation), the block inversion
  (dask threads, ``--workers``), assembling the months, and the plugin's packaging;
* ``wls-uav`` (the reference method, month by month as the pipeline does it):
  each sensor's monthly map from its pairs of the month (:func:`gvfuse.pipeline.month.sensor_month`),
  the UAV fits (:func:`gvfuse.pipeline.month.fit_months`) and the weighted mean
  (:func:`gvfuse.pipeline.month.fuse_month`, fits lent to months without one).
  Months are read one at a time here; see ``month_inputs`` below.

Preparing the inputs is timed but not counted. Memory is sampled (psutil,
installed with dask.distributed) every 0.2 s per stage; "peak MB" is the
process's own high-water mark (``VmHWM``, :func:`_memory.own_peak_mb`), not
its ``ru_maxrss``, which Linux carries over from the parent across the spawn:
the parent's making of the inputs (printed beside it) would show through
wherever it peaked higher than the method. The RMSE columns are a sanity
check against the synthetic truth (vector RMSE on ice, median over the
months), not a validation: docs/fusion.md has that.

``month_inputs``: the pipeline's :func:`gvfuse.pipeline.run.month_inputs`
reads every pair of every month into memory before it combines any
(4 float32 bands per pair). ``--methods month-inputs`` runs it as it is, in a
fresh process, and reports its peak; on the full grid it would need about
pairs x 67 MB (the script prints the estimate and refuses when that does not
fit in the machine's memory).

Why the default is a quarter of the rows and columns (1/16 of the cells): on
the 2-core machine the full grid with 400 pairs takes well over 30 minutes
(docs/benchmarks.md has the measured extrapolation, which the script prints
for any smaller run: the calibration samples are a fixed cost, the blocks and
the months grow with the cells). ``--fraction 1`` runs it anyway.

The pair files take about 30 MB each on the full grid (measured on the first
pairs before the rest are written; the run stops if the disk cannot hold them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.resources
import math
import multiprocessing as mp
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _memory import max_rss_mb, own_peak_mb

UTC = dt.timezone.utc
FIRST_SCENE, LAST_SCENE = dt.date(2022, 12, 1), dt.date(2024, 1, 31)  # a month either side of 2023, as the demo
UAV_SURVEYS = (dt.date(2023, 2, 18), dt.date(2023, 5, 14), dt.date(2023, 7, 9), dt.date(2023, 9, 3),
               dt.date(2023, 11, 19))
#: Stages whose cost does not grow with the grid (fixed samples); the rest is extrapolated in proportion to the cells.
FIXED_STAGES = ("read calibration samples", "calibration")
CLOUD_COARSENING = 8  # clouds are drawn on a grid this many times coarser, then repeated (blobs of km anyway)


# --------------------------------------------------------------------------- the synthetic year


@dataclass(frozen=True)
class SensorModel:
    """How a sensor's synthetic pairs err: tracking noise, residual geolocation, speed reading, gaps."""

    pixel_m: float
    noise_px: float  # white 1-sigma of an offset component
    geolocation_px: float  # 1-sigma of a scene's residual shift after the stable-ground correction
    speed_scale: float  # the sensor's reading of the true speed (window smearing of the shear)
    dropout: float  # share of cells where tracking failed, besides clouds and layover


SENSORS = {
    "landsat": SensorModel(pixel_m=15.0, noise_px=0.10, geolocation_px=0.10, speed_scale=0.985, dropout=0.01),
    "sentinel-2": SensorModel(pixel_m=10.0, noise_px=0.10, geolocation_px=0.10, speed_scale=1.0, dropout=0.01),
    "sentinel-1": SensorModel(pixel_m=10.0, noise_px=0.15, geolocation_px=0.05, speed_scale=0.92, dropout=0.03),
}


@dataclass(frozen=True)
class PairSpec:
    """Everything a worker needs to write one pair result."""

    sensor: str
    pair_id: str
    reference_id: str
    secondary_id: str
    start: dt.datetime
    end: dt.datetime
    path: Path
    speed_factor: float  # mean seasonal factor over the interval (Landscape.motion_days / dt)
    shift_m: tuple[float, float]  # secondary minus reference residual geolocation shift, metres (east, north)
    clouds: tuple[tuple[int, float], ...]  # (scene seed, cloud fraction) of both scenes (optical)
    seed: int
    window_m: float | None = None

    @property
    def dt_days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400.0


@dataclass
class Inputs:
    """The written year: the pair files per sensor and month, the truth and what it cost to make."""

    folder: Path
    rows: int
    cols: int
    pairs: list[PairSpec]
    uav: list[PairSpec]
    month_plans: list[Any]  # gvfuse.pipeline.pairing.MonthPlan, the UAV's included
    network_pairs: int
    bytes_on_disk: int
    seconds: float
    month_factors: dict[str, float]  # month -> mean seasonal factor (truth = shape x factor)


def _scenes(rng: np.random.Generator) -> dict[str, list[Any]]:
    """A year of acquisitions: Landsat 8/9 (8 d), Sentinel-2A/B (5 d), Sentinel-1A two orbits (12 d), UAV."""
    from gvfuse.demo import acquisition_dates
    from gvfuse.model import Scene

    def clouds(n: int) -> np.ndarray:  # as the demo: 30 % heavily clouded scenes, the rest fairly clear
        heavy = rng.random(n) < 0.3
        return np.where(heavy, rng.uniform(65.0, 95.0, n), rng.uniform(0.0, 20.0, n))

    out: dict[str, list[Scene]] = {}
    when = acquisition_dates(FIRST_SCENE, LAST_SCENE, 8, 4, 21)
    out["landsat"] = [Scene("landsat", "LANDSAT_8" if i % 2 == 0 else "LANDSAT_9", f"LC0{8 + i % 2}_{t:%Y%m%d}", t,
                            Path(f"landsat/{i}"), cloud_cover_percent=float(c),
                            metadata={"wrs_path": 135, "wrs_row": 40})
                      for i, (t, c) in enumerate(zip(when, clouds(len(when))))]
    when = acquisition_dates(FIRST_SCENE + dt.timedelta(days=3), LAST_SCENE, 5, 4, 35)
    out["sentinel-2"] = [Scene("sentinel-2", "Sentinel-2A" if i % 2 == 0 else "Sentinel-2B", f"S2_{t:%Y%m%d}", t,
                               Path(f"sentinel-2/{i}"), cloud_cover_percent=float(c), metadata={"mgrs_tile": "47RQQ"})
                         for i, (t, c) in enumerate(zip(when, clouds(len(when))))]
    s1 = []
    for orbit, offset, hour in ((99, 1, 23), (33, 7, 11)):
        when = acquisition_dates(FIRST_SCENE + dt.timedelta(days=offset), LAST_SCENE, 12, hour, 47)
        s1 += [Scene("sentinel-1", "S1A", f"S1A_{orbit}_{t:%Y%m%d}", t, Path(f"sentinel-1/{orbit}/{i}"),
                     metadata={"relative_orbit": orbit}) for i, t in enumerate(when)]
    out["sentinel-1"] = s1
    out["uav"] = [Scene("uav", "M300", f"UAV_{d:%Y%m%d}", dt.datetime.combine(d, dt.time(5, 30), tzinfo=UTC),
                        Path(f"uav/{d:%Y%m%d}"), metadata={"site": "terminus"}) for d in UAV_SURVEYS]
    return out


def _thin(pairs: list[Any], keep: int) -> list[Any]:
    """``keep`` of the pairs, evenly spread over the list (sorted by time): every sensor keeps its share."""
    if keep >= len(pairs):
        return pairs
    index = np.unique(np.linspace(0, len(pairs) - 1, keep).round().astype(int))
    return [pairs[i] for i in index]


def _landscape(grid: Any, seed: int) -> Any:
    """Eight valley glaciers across the product grid, 35 % faster at the mid-July peak."""
    from gvfuse.testing.glacier import default_glaciers
    from gvfuse.testing.timeseries import Landscape

    left, bottom, right, top = grid.bounds
    glaciers = default_glaciers(grid.shape, grid.pixel_size_m[0], rng=np.random.default_rng(seed),
                                max_speed_m_per_day=1.0, count=8)
    return Landscape(glaciers=glaciers, size_m=(right - left, top - bottom), origin_m=(left, top),
                     crs=str(grid.crs), seed=seed, seasonal_amplitude=0.35, epoch=dt.datetime(2023, 7, 2, 12))


def _grid(rows: int | None, cols: int | None, fraction: float) -> tuple[Any, Any]:
    """The full Gangrigab product grid and the top-left part of it the benchmark runs on."""
    from gvfuse.model import Grid
    from gvfuse.product import load_product

    full = load_product("gangrigab-2023").grid()
    r = rows or max(16, round(full.rows * fraction))
    c = cols or max(16, round(full.cols * fraction))
    return full, Grid(full.crs, full.transform, (min(r, full.rows), min(c, full.cols)))


def _coarse_clouds(seed: int, fraction: float, rows: int, cols: int) -> np.ndarray:
    from gvfuse.testing.clouds import cloud_cover

    coarse = (math.ceil(rows / CLOUD_COARSENING), math.ceil(cols / CLOUD_COARSENING))
    if fraction <= 0:
        return np.zeros((rows, cols), bool)
    mask = cloud_cover(coarse, fraction, rng=np.random.default_rng(seed), scale_px=max(coarse) / 6.0).mask
    return np.repeat(np.repeat(mask, CLOUD_COARSENING, 0), CLOUD_COARSENING, 1)[:rows, :cols]


def _write_pair(spec: PairSpec, truth_file: Path, grid: Any) -> int:
    """Write one pair result as the pipeline caches it; returns its size in bytes."""
    from gvfuse import __version__
    from gvfuse.io.raster import write_bands
    from gvfuse.model import ERROR_BAND

    truth = np.load(truth_file)
    shape_x, shape_y, ice, layover = truth["vx"], truth["vy"], truth["ice"], truth["layover"]
    rng = np.random.default_rng(spec.seed)
    rows, cols = grid.shape
    if spec.sensor == "uav":
        model, stated = None, 0.003
        vx = shape_x * spec.speed_factor + rng.normal(0.0, stated, grid.shape)
        vy = shape_y * spec.speed_factor + rng.normal(0.0, stated, grid.shape)
        valid = truth["uav"]
    else:
        model = SENSORS[spec.sensor]
        noise = model.noise_px * model.pixel_m / spec.dt_days
        sigma = np.where(ice, 1.5 * noise, noise)  # tracking on ice decorrelates more than on rock
        k = spec.speed_factor * model.speed_scale
        vx = shape_x * k + spec.shift_m[0] / spec.dt_days + rng.normal(0.0, 1.0, grid.shape) * sigma
        vy = shape_y * k + spec.shift_m[1] / spec.dt_days + rng.normal(0.0, 1.0, grid.shape) * sigma
        blunder = rng.random(grid.shape) < 0.002
        vx = np.where(blunder, rng.uniform(-1.5, 1.5, grid.shape), vx)
        valid = rng.random(grid.shape) >= model.dropout
        for scene_seed, fraction in spec.clouds:
            valid &= ~_coarse_clouds(scene_seed, fraction, rows, cols)
        if spec.sensor == "sentinel-1":
            valid &= ~layover
        # the pair's stated error: its stable-ground spread (noise and geolocation), as the pipeline measures it
        stated = math.hypot(noise, math.hypot(*spec.shift_m) / spec.dt_days / math.sqrt(2.0)) * rng.uniform(0.8, 1.2)
    nan = np.float32(np.nan)
    bands = {"vx": np.where(valid, vx, nan).astype("float32"), "vy": np.where(valid, vy, nan).astype("float32"),
             ERROR_BAND: np.where(valid, stated, nan).astype("float32"),
             "count": valid.astype("float32")}  # one tracking point per 30 m cell (15 m step 2, 10 m step 3)
    tags = {"gvfuse_version": __version__, "sensor": spec.sensor, "dt_days": spec.dt_days,
            "reference": {"id": spec.reference_id, "acquired_at": spec.start.isoformat()},
            "secondary": {"id": spec.secondary_id, "acquired_at": spec.end.isoformat()},
            "error_m_per_day": stated, "error_source": "synthetic", "benchmark": "bench_fusion"}
    write_bands(spec.path, bands, grid, units={"vx": "m/d", "vy": "m/d", ERROR_BAND: "m/d", "count": "1"},
                tags={"gvfuse_pair": tags}, cog=False, overwrite=True)
    return spec.path.stat().st_size


def _write_pairs(specs: Sequence[PairSpec], truth_file: Path, grid: Any, workers: int) -> int:
    """Write pair files on ``workers`` processes; the total size in bytes."""
    if workers <= 1 or len(specs) < 2:
        return sum(_write_pair(s, truth_file, grid) for s in specs)
    with mp.get_context("spawn").Pool(workers) as pool:
        return sum(pool.starmap(_write_pair, [(s, truth_file, grid) for s in specs], chunksize=1))


def make_inputs(folder: Path, grid: Any, full: Any, pairs_wanted: int, workers: int, seed: int) -> Inputs:
    """The pair network of the Gangrigab run rules over a synthetic year, written on ``grid``."""
    from gvfuse.config import load_config
    from gvfuse.model import Month, Pair
    from gvfuse.pipeline.pairing import MonthPlan, plan
    from gvfuse.plugins import get_plugins

    t0 = time.perf_counter()
    config = load_config(importlib.resources.files("gvfuse_catalog") / "gangrigab_2023_run.toml", get_plugins())
    rng = np.random.default_rng(seed)
    scenes = _scenes(rng)
    # as the pipeline plans a fusion over time: the requested months and one either side
    planned = Month.span(min(config.months).shifted(-1), max(config.months).shifted(1))
    month_plans = plan(scenes, planned, {n: s.rules for n, s in config.sensors.items()})
    network: list[tuple[str, Pair]] = []
    seen: set[str] = set()
    for p in month_plans:
        for pair in p.pairs:
            if p.sensor != "uav" and pair.pair_id not in seen:
                seen.add(pair.pair_id)
                network.append((p.sensor, pair))
    network.sort(key=lambda sp: (sp[1].reference.acquired_at, sp[0]))
    chosen = _thin(network, pairs_wanted)
    kept = {pair.pair_id for _, pair in chosen}
    uav_ids = {pair.pair_id for p in month_plans if p.sensor == "uav" for pair in p.pairs}
    month_plans = [MonthPlan(p.sensor, p.month, tuple(x for x in p.pairs if x.pair_id in kept | uav_ids), p.note)
                   for p in month_plans]

    landscape = _landscape(full, seed)
    ref_time = dt.datetime(2023, 7, 2, 12)
    east, north = landscape.velocity_m_per_day(grid, ref_time)
    factor0 = landscape.speed_factor(ref_time)
    ice = landscape.ice_mask(grid)
    layover = _coarse_clouds(seed + 7, 0.05, *grid.shape)  # Sentinel-1 layover and shadow: fixed, 5 %
    uav = np.zeros(grid.shape, bool)
    x, y = landscape.glaciers[0].terminus_m
    r, c = int(y / grid.pixel_size_m[0]), int(x / grid.pixel_size_m[0])
    uav[max(r - 30, 0): r + 10, max(c - 20, 0): c + 20] = True  # 1.2 x 1.2 km around the first terminus
    truth_file = folder / "truth.npz"
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(truth_file, vx=east / factor0, vy=north / factor0, ice=ice, layover=layover, uav=uav)

    shifts = {s.scene_id: rng.normal(0.0, 1.0, 2) for group in scenes.values() for s in group}
    scene_seed = {s.scene_id: seed * 1000 + i for i, s in enumerate(scenes["landsat"] + scenes["sentinel-2"])}
    windows = {name: float(config.sensors[name].tracker_parameters["window_px"]) * SENSORS[name].pixel_m
               for name in SENSORS}

    def spec(sensor: str, pair: Pair, index: int) -> PairSpec:
        a, b = pair.reference, pair.secondary
        geo = (SENSORS[sensor].geolocation_px * SENSORS[sensor].pixel_m) if sensor in SENSORS else 0.0
        shift = (shifts[b.scene_id] - shifts[a.scene_id]) * geo
        clouds = tuple((scene_seed[s.scene_id], (s.cloud_cover_percent or 0.0) / 100.0) for s in (a, b)
                       if s.scene_id in scene_seed)
        return PairSpec(sensor, pair.pair_id, a.scene_id, b.scene_id, a.acquired_at, b.acquired_at,
                        folder / sensor / f"{pair.pair_id}.tif",
                        landscape.motion_days(a.acquired_at, b.acquired_at) / pair.dt_days,
                        (float(shift[0]), float(shift[1])), clouds, seed + 10 + index, windows.get(sensor))

    specs = [spec(sensor, pair, i) for i, (sensor, pair) in enumerate(chosen)]
    uav_pairs = {pair.pair_id: pair for p in month_plans if p.sensor == "uav" for pair in p.pairs}
    uav_specs = [spec("uav", pair, 5000 + i) for i, pair in enumerate(uav_pairs.values())]
    # measure the real size of a few pairs before writing the rest
    probe = specs[: max(2, workers)]
    size = _write_pairs(probe, truth_file, grid, workers)
    per_pair = size / len(probe)
    need = per_pair * (len(specs) - len(probe)) * 1.05
    free = shutil.disk_usage(folder).free
    print(f"pair files: {per_pair / 1e6:.1f} MB each (measured on {len(probe)}); {len(specs)} pairs need "
          f"{per_pair * len(specs) / 1e9:.1f} GB, {free / 1e9:.1f} GB free")
    if need > free - 2e9:
        raise SystemExit(f"not enough disk for {len(specs)} pairs of {grid.rows} x {grid.cols} cells: "
                         f"{need / 1e9:.1f} GB needed; use --fraction, --pairs or --workdir")
    size += _write_pairs(specs[len(probe):] + uav_specs, truth_file, grid, workers)
    month_factors = {str(m): landscape.motion_days(m.start.replace(tzinfo=None), m.end.replace(tzinfo=None))
                     / m.days for m in config.months}
    return Inputs(folder, grid.rows, grid.cols, specs, uav_specs, month_plans, len(network), size,
                  time.perf_counter() - t0, month_factors)


# --------------------------------------------------------------------------- measuring a method


@dataclass
class Stages:
    """Wall seconds and sampled peak RSS (MB) per stage of one method, in a fresh process."""

    seconds: dict[str, float] = field(default_factory=dict)
    peak_mb: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    current: str = ""

    def sample_forever(self, stop: threading.Event) -> None:
        import psutil

        process = psutil.Process()
        while not stop.wait(0.2):
            mb = process.memory_info().rss / 2**20
            if self.current:
                self.peak_mb[self.current] = max(self.peak_mb.get(self.current, 0.0), mb)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        previous, self.current = self.current, name
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
            self.current = previous


def _rmse_on_ice(fields: dict[str, tuple[np.ndarray, np.ndarray]], truth_file: Path,
                 month_factors: dict[str, float]) -> tuple[float, float]:
    """Median over months of the vector RMSE on ice (m/day), and the mean share of ice cells published."""
    truth = np.load(truth_file)
    ice = truth["ice"]
    rmse, cover = [], []
    for month, (vx, vy) in fields.items():
        k = month_factors[month]
        ok = ice & np.isfinite(vx) & np.isfinite(vy)
        cover.append(ok.sum() / max(ice.sum(), 1))
        if ok.any():
            rmse.append(math.sqrt(float(np.mean((vx[ok] - truth["vx"][ok] * k) ** 2 + (vy[ok] - truth["vy"][ok] * k)
                                                ** 2))))
    return (float(np.median(rmse)) if rmse else math.nan), (float(np.mean(cover)) if cover else 0.0)


def _observations(inputs: Inputs) -> list[Any]:
    from gvfuse.model import PairObservation

    return [PairObservation(s.sensor, s.pair_id, s.start, s.end, s.path, s.window_m) for s in inputs.pairs]


def run_time_series(inputs: Inputs, grid: Any, workers: int) -> Stages:
    """The bundled ``time-series`` fusion through its plugin class, timed per stage of :func:`invert_period`.

    The stages are found by wrapping :mod:`gvfuse.inversion`'s ``calibrate``,
    ``invert_block`` and ``read_blocks`` (looked up by name at call time by
    ``invert_period``), and the plugin module's ``invert_period``, with
    timers; nothing else is changed.
    """
    import dask

    import gvfuse.inversion as inversion
    from gvfuse.config import load_config
    from gvfuse.plugins import get_plugins

    stages = Stages()
    stop = threading.Event()
    threading.Thread(target=stages.sample_forever, args=(stop,), daemon=True).start()
    plugins = get_plugins()
    config = load_config(importlib.resources.files("gvfuse_catalog") / "gangrigab_2023_run.toml", plugins)
    fusion = plugins.get("fusions", "time-series").cls(**config.fusion_parameters)
    observations = _observations(inputs)
    lock = threading.Lock()
    marks: dict[str, float] = {}
    block_spans: list[tuple[float, float]] = []
    busy = {"read": 0.0, "block": 0.0}
    local = threading.local()
    plugin_module = importlib.import_module(type(fusion).__module__)
    originals = {name: getattr(inversion, name, None) for name in ("calibrate", "invert_block", "read_blocks")}
    originals["invert_period"] = plugin_module.invert_period

    def calibrate(*args: Any, **kwargs: Any) -> Any:
        marks["calibrate_start"] = time.perf_counter()
        stages.current = "calibration"
        try:
            return originals["calibrate"](*args, **kwargs)  # type: ignore[misc]
        finally:
            marks["calibrate_end"] = time.perf_counter()
            stages.current = "block inversion"

    def invert_block(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        local.in_block = True
        try:
            return originals["invert_block"](*args, **kwargs)  # type: ignore[misc]
        finally:
            local.in_block = False
            t1 = time.perf_counter()
            with lock:
                block_spans.append((t0, t1))
                busy["block"] += t1 - t0

    def read_blocks(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return originals["read_blocks"](*args, **kwargs)  # type: ignore[misc]
        finally:
            if getattr(local, "in_block", False):
                with lock:
                    busy["read"] += time.perf_counter() - t0

    def invert_period(*args: Any, **kwargs: Any) -> Any:
        result = originals["invert_period"](*args, **kwargs)  # type: ignore[misc]
        marks["inverted"] = time.perf_counter()
        stages.current = "plugin packaging"
        return result

    wrappers = {"calibrate": calibrate, "invert_block": invert_block, "read_blocks": read_blocks}
    for name, wrapper in wrappers.items():
        if originals[name] is not None:
            setattr(inversion, name, wrapper)
    plugin_module.invert_period = invert_period  # the plugin imported it by name
    try:
        with dask.config.set(scheduler="threads", num_workers=workers), stages.stage("total"):
            stages.current = "read calibration samples"
            t0 = time.perf_counter()
            results = fusion.fuse_period(observations, config.months, grid)
            t_end = time.perf_counter()
    finally:
        for name, original in originals.items():
            if original is not None and name != "invert_period":
                setattr(inversion, name, original)
        plugin_module.invert_period = originals["invert_period"]
        stop.set()
    s = stages.seconds
    if "calibrate_start" in marks and block_spans:
        last_block = max(b for _, b in block_spans)
        s["read calibration samples"] = marks["calibrate_start"] - t0
        s["calibration"] = marks["calibrate_end"] - marks["calibrate_start"]
        s["block inversion"] = last_block - marks["calibrate_end"]
        s["assemble months"] = marks["inverted"] - last_block
        s["plugin packaging"] = t_end - marks["inverted"]
        stages.notes["blocks"] = len(block_spans)
        stages.notes["block thread-seconds"] = busy["block"]
        stages.notes["of which reading"] = busy["read"]
    # the sampler labels "assemble months" as part of the block phase
    if "block inversion" in stages.peak_mb:
        stages.peak_mb["assemble months"] = stages.peak_mb["block inversion"]
    stages.peak_mb["total"] = own_peak_mb()
    stages.notes["ru_maxrss"] = max_rss_mb()
    first = next(iter(results.values()), None)
    if first is not None:
        stages.notes["calibration"] = {k: first.details.get(k) for k in
                                       ("smoothing_weight", "error_factors", "scale_factors", "scale_reference",
                                        "posterior_inflation")}
    fields = {str(m): (r.field.vx_m_per_day, r.field.vy_m_per_day) for m, r in results.items()}
    stages.notes["rmse"], stages.notes["ice_coverage"] = _rmse_on_ice(fields, inputs.folder / "truth.npz",
                                                                      inputs.month_factors)
    stages.notes["pairs read"] = len(observations)
    return stages


def run_wls_uav(inputs: Inputs, grid: Any) -> Stages:
    """The reference method month by month: each sensor's month from its pairs, UAV fits, the weighted mean.

    The same public functions :func:`gvfuse.pipeline.run.month_inputs` and
    ``_fuse_by_month`` call, but one month's pairs in memory at a time.
    """
    from gvfuse.config import load_config
    from gvfuse.pipeline.month import ConfiguredWeighting, fit_for, fit_months, fuse_month, sensor_month
    from gvfuse.pipeline.pair import read_pair_result
    from gvfuse.plugins import get_plugins

    stages = Stages()
    stop = threading.Event()
    threading.Thread(target=stages.sample_forever, args=(stop,), daemon=True).start()
    plugins = get_plugins()
    config = load_config(importlib.resources.files("gvfuse_catalog") / "gangrigab_2023_run.toml", plugins)
    path = {s.pair_id: s.path for s in inputs.pairs + inputs.uav}
    pairs_read = 0
    try:
        with stages.stage("total"):
            weighting = ConfiguredWeighting.create(plugins, "wls-uav", {"fallback": "inverse-variance"})
            maps: dict[Any, dict[str, Any]] = {}
            references: dict[Any, Any] = {}
            with stages.stage("sensor months (read + robust mean)"):
                for month in config.months:
                    maps[month] = {}
                    for p in inputs.month_plans:
                        if p.month != month or not p.pairs:
                            continue
                        fields = {pair.pair_id: read_pair_result(path[pair.pair_id])[0] for pair in p.pairs}
                        pairs_read += len(fields) if p.sensor != "uav" else 0
                        combined = sensor_month(fields)
                        del fields
                        if p.sensor == "uav":
                            references[month] = combined
                        else:
                            maps[month][p.sensor] = combined
            with stages.stage("UAV fits"):
                fits = fit_months(weighting, {m: v for m, v in maps.items() if v}, references)
            fused = {}
            with stages.stage("weighted mean"):
                for month in config.months:
                    if maps[month]:
                        own = fits.get(month)
                        fused[month] = fuse_month(weighting, maps[month], fit_for(month, fits),
                                                  own.reason if own else "")
    finally:
        stop.set()
    stages.peak_mb["total"] = own_peak_mb()
    stages.notes["ru_maxrss"] = max_rss_mb()
    fields = {str(m): (r.field.vx_m_per_day, r.field.vy_m_per_day) for m, r in fused.items()}
    stages.notes["rmse"], stages.notes["ice_coverage"] = _rmse_on_ice(fields, inputs.folder / "truth.npz",
                                                                      inputs.month_factors)
    stages.notes["pairs read"] = pairs_read
    stages.notes["fitted months"] = sum(1 for f in fits.values() if f.fit is not None)
    return stages


def run_month_inputs(inputs: Inputs, grid: Any) -> Stages:
    """The pipeline's :func:`gvfuse.pipeline.run.month_inputs` as it is (every month's pairs read first)."""
    from gvfuse.config import load_config
    from gvfuse.pipeline.pair import PairOutcome
    from gvfuse.pipeline.run import RunPlan, month_inputs
    from gvfuse.plugins import get_plugins

    stages = Stages()
    stop = threading.Event()
    threading.Thread(target=stages.sample_forever, args=(stop,), daemon=True).start()
    config = load_config(importlib.resources.files("gvfuse_catalog") / "gangrigab_2023_run.toml", get_plugins())
    outcomes = [PairOutcome(s.sensor, s.pair_id, s.path) for s in inputs.pairs + inputs.uav]
    run_plan = RunPlan(config, grid, {}, inputs.month_plans, [], [])
    try:
        with stages.stage("total"):
            month_inputs(run_plan, outcomes)
    finally:
        stop.set()
    stages.peak_mb["total"] = own_peak_mb()
    stages.notes["ru_maxrss"] = max_rss_mb()
    return stages


def _in_fresh_process(target: Callable[..., Stages], *args: Any) -> Stages:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, target, args))
    process.start()
    result = queue.get()
    process.join()
    if isinstance(result, BaseException):
        raise result
    return result


def _child(queue: Any, target: Callable[..., Stages], args: tuple[Any, ...]) -> None:
    try:
        queue.put(target(*args))
    except BaseException as exc:  # reported by the parent
        queue.put(RuntimeError(f"{target.__name__} failed: {type(exc).__name__}: {exc}"))


# --------------------------------------------------------------------------- report


def _table(name: str, stages: Stages, order: Sequence[str]) -> list[str]:
    """Rows ``| method | stage | seconds | share | peak RSS MB |`` of one method."""
    total = stages.seconds["total"]
    rows = []
    for stage in order:
        if stage in stages.seconds:
            sec, peak = stages.seconds[stage], stages.peak_mb.get(stage)
            rows.append(f"| {name} | {stage} | {sec:.1f} | {100 * sec / total:.0f} % | "
                        f"{'' if peak is None else f'{peak:.0f}'} |")
    rows.append(f"| {name} | **total** | **{total:.1f}** | 100 % | **{stages.peak_mb['total']:.0f}** |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=400, help="pairs (the network is thinned evenly to this)")
    parser.add_argument("--fraction", type=float, default=0.25,
                        help="share of the grid's rows and of its columns (1: the full grid; see the docstring)")
    parser.add_argument("--rows", type=int, help="rows of the grid (top-left part), instead of --fraction")
    parser.add_argument("--cols", type=int, help="columns of the grid (top-left part), instead of --fraction")
    parser.add_argument("--workers", type=int, default=2, help="dask threads for the block inversion")
    parser.add_argument("--workdir", type=Path, default=None, help="folder for the pair files (default: $TMPDIR)")
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--methods", default="time-series,wls-uav",
                        help="comma-separated: time-series, wls-uav, month-inputs (the pipeline's month_inputs)")
    args = parser.parse_args()
    full, grid = _grid(args.rows, args.cols, args.fraction)
    work = Path(tempfile.mkdtemp(prefix="gvfuse-bench-fusion-", dir=args.workdir))
    print(f"grid {grid.rows} x {grid.cols} cells of {grid.pixel_size_m[0]:g} m ({grid.crs}); "
          f"full Gangrigab grid {full.rows} x {full.cols}; pair files in {work}")
    print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}, "
          f"{os.cpu_count()} cores")
    try:
        inputs = make_inputs(work, grid, full, args.pairs, args.workers, args.seed)
        by_sensor = Counter(s.sensor for s in inputs.pairs)
        dts = {k: (min(s.dt_days for s in inputs.pairs if s.sensor == k),
                   max(s.dt_days for s in inputs.pairs if s.sensor == k)) for k in by_sensor}
        print(f"made {len(inputs.pairs)} pairs (network of the run rules: {inputs.network_pairs}) "
              f"{dict(by_sensor)}, dt {', '.join(f'{k} {a:.0f}-{b:.0f} d' for k, (a, b) in dts.items())}; "
              f"{len(inputs.uav)} UAV pairs; {inputs.bytes_on_disk / 1e9:.1f} GB in {inputs.seconds:.0f} s "
              "(not counted)")
        cells = grid.rows * grid.cols
        results: list[tuple[str, Stages, list[str], int]] = []
        methods = {m.strip() for m in args.methods.split(",")}
        if "time-series" in methods:
            ts = _in_fresh_process(run_time_series, inputs, grid, args.workers)
            print(f"time-series done in {ts.seconds['total']:.0f} s; load {os.getloadavg()[0]:.2f}")
            results.append(("gvfuse time-series", ts, ["read calibration samples", "calibration", "block inversion",
                                                       "assemble months", "plugin packaging"], len(inputs.pairs)))
        if "wls-uav" in methods:
            ref = _in_fresh_process(run_wls_uav, inputs, grid)
            print(f"wls-uav done in {ref.seconds['total']:.0f} s; load {os.getloadavg()[0]:.2f}")
            results.append(("wls-uav per month", ref, ["sensor months (read + robust mean)", "UAV fits",
                                                       "weighted mean"], int(ref.notes["pairs read"])))
        print(f"\ngrid {grid.rows} x {grid.cols} = {cells:,} cells, {len(inputs.pairs)} pairs, "
              f"{args.workers} dask threads, {os.cpu_count()} cores; load average now "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
        print("| method | stage | seconds | share | peak RSS MB |\n|---|---|---:|---:|---:|")
        for name, stages, order, _ in results:
            print("\n".join(_table(name, stages, order)))
        print("\n| method | pairs read | total s | cells/s | pairs x cells/s | peak MB | RMSE on ice m/d "
              "| ice published |\n|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, stages, _, pairs in results:
            total = stages.seconds["total"]
            print(f"| {name} | {pairs} | {total:.1f} | {cells / total:,.0f} | {pairs * cells / total:,.0f} | "
                  f"{stages.peak_mb['total']:.0f} | {stages.notes['rmse']:.4f} | "
                  f"{100 * stages.notes['ice_coverage']:.0f} % |")
        if results and cells < full.rows * full.cols:
            scale = full.rows * full.cols / cells
            print(f"\nextrapolated to the full grid ({full.rows} x {full.cols}, {scale:.1f} x the cells; blocks and "
                  "months scale with the cells, the calibration samples do not):")
            for name, stages, _, _ in results:
                fixed = sum(stages.seconds.get(k, 0.0) for k in FIXED_STAGES)
                estimate = fixed + (stages.seconds["total"] - fixed) * scale
                print(f"  {name}: about {estimate:.0f} s ({estimate / 60:.0f} min)"
                      + (" - more than 30 minutes" if estimate > 1800 else ""))
        if len(results) == 2:
            print(f"\ntime-series / wls-uav wall time: {ts.seconds['total'] / results[1][1].seconds['total']:.1f} x")
        if "time-series" in methods and "blocks" in ts.notes:
            print(f"time-series: {ts.notes['blocks']} blocks, {ts.notes['block thread-seconds']:.0f} thread-s in "
                  f"blocks, of which {ts.notes['of which reading']:.0f} reading the pair windows; "
                  f"calibration: {ts.notes.get('calibration')}")
        if "month-inputs" in methods:
            estimate = sum(len(p.pairs) for p in inputs.month_plans if p.month.year == 2023) * cells * 16 / 2**20
            import psutil

            available = psutil.virtual_memory().available / 2**20
            if estimate > 0.8 * available:
                print(f"\nmonth_inputs not run: it would hold about {estimate:,.0f} MB of pairs, "
                      f"{available:,.0f} MB available")
            else:
                mi = _in_fresh_process(run_month_inputs, inputs, grid)
                print(f"\nmonth_inputs (pipeline, all months' pairs read first): {mi.seconds['total']:.1f} s, "
                      f"peak {mi.peak_mb['total']:.0f} MB (pairs alone: about {estimate:,.0f} MB)")
                results.append(("month_inputs", mi, [], 0))
        if results:
            print(f"\n(not counted: making the inputs peaked at {max_rss_mb():.0f} MB in this process; each "
                  "method's process's ru_maxrss, which carries that over: "
                  + ", ".join(f"{name} {stages.notes['ru_maxrss']:.0f} MB" for name, stages, _, _ in results) + ")")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
