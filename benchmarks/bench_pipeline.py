"""Pipeline speed on the full Gangrigab area: time and peak memory per pair, by stage, and dask scaling.

Usage::

    python benchmarks/bench_pipeline.py                 # full area: Landsat 15 m pair ~3800 x 4400 px
    python benchmarks/bench_pipeline.py --scale 0.25    # a quarter of the area's width and height
    python benchmarks/bench_pipeline.py --sensor sentinel-2   # 10 m pair ~5700 x 6600 px (slow to make)
    python benchmarks/bench_pipeline.py --sensor sentinel-1   # 10 m terrain-corrected pair, window 128
    python benchmarks/bench_pipeline.py --copies 0      # the one pair per stage only, no dask runs
    python benchmarks/bench_pipeline.py --copies 0 --param backward_matcher='"ncc"'  # and with a change, beside
    python benchmarks/bench_pipeline.py --copies 0 --tracker ncc   # and with another tracker, beside

It renders one synthetic pair of the sensor over the Gangrigab product area
(`gvfuse.testing.make_pair`), writes it in the provider's layout, and runs
`gvfuse.pipeline.pair.process_pair` on it exactly as `gvfuse run` does —
reading both scenes onto the tracking grid, tracking with the reference
method's tracker, regridding to the 30 m product grid and writing the cached
result — in a fresh process each time, so peak memory is that of one pair:
the child's own high-water mark (``VmHWM``, see :func:`_memory.own_peak_mb`), not its
``ru_maxrss``, which Linux carries over from the parent across the spawn (until
2026-12-04 the parent's making of the full-area Sentinel-1 pair, about 10 GB,
was reported as the pair's peak). Then it runs N copies of the job on a dask
LocalCluster with one and with two worker processes and prints the throughput
of each, beside the serial time per pair: dask against a plain loop, in one
run (``--copies 0`` skips them). The load average is printed at the start and the end: on a shared
machine it says how much of the two cores the run had.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import shutil
import tempfile
import time
import tomllib
from pathlib import Path

import attrs
from _memory import max_rss_mb, own_peak_mb

UTC = dt.timezone.utc


def _make_inputs(folder: Path, sensor: str, scale: float) -> tuple[list, object]:
    from gvfuse.model import Grid
    from gvfuse.pipeline.pairing import OpticalRules, SarRules, plan_month
    from gvfuse.pipeline.scan import scan
    from gvfuse.plugins import get_plugins
    from gvfuse.product import load_product
    from gvfuse.testing import make_pair
    from gvfuse.testing import provider_layouts as layouts

    product = load_product("gangrigab-2023")
    full = product.grid()
    rows, cols = int(full.rows * scale), int(full.cols * scale)
    product_grid = Grid(full.crs, full.transform, (rows, cols))
    pixel = 15.0 if sensor == "landsat" else 10.0
    shape = (int(rows * 30 / pixel), int(cols * 30 / pixel))
    left, top = product_grid.transform.c, product_grid.transform.f
    t0 = time.perf_counter()
    if sensor == "sentinel-1":
        # a 24-day pair (the SAR rules' first baseline), terrain-corrected on the 10 m grid as SNAP writes it
        pair = make_pair("sar", shape, pixel_size_m=pixel, dt_days=24.0, max_speed_m_per_day=1.0, glacier_count=3,
                         origin=(left, top), seed=1)
        print(f"made a {shape[0]} x {shape[1]} px {sensor} pair in {time.perf_counter() - t0:.0f} s")
        for image, at in ((pair.reference, dt.datetime(2023, 7, 2, 23, 50, tzinfo=UTC)),
                          (pair.secondary, dt.datetime(2023, 7, 26, 23, 50, tzinfo=UTC))):
            layouts.write_sentinel1_rtc(folder, pixels_amplitude=image, grid=pair.grid, acquired_at=at,
                                        platform="S1A", relative_orbit=99,
                                        absolute_orbit=layouts.sentinel1_absolute_orbit("S1A", 99, at),
                                        pass_direction="ASCENDING")
        scenes = [f.scene for f in scan(folder, get_plugins().classes("readers")).scenes]
        return list(plan_month(sensor, scenes, "2023-07", SarRules()).pairs), product_grid
    pair = make_pair("optical", shape, pixel_size_m=pixel, dt_days=16.0, max_speed_m_per_day=1.0, glacier_count=3,
                     cloud_fraction=0.1, geolocation_shift_px=(0.3, -0.2), origin=(left, top), seed=1)
    print(f"made a {shape[0]} x {shape[1]} px {sensor} pair in {time.perf_counter() - t0:.0f} s")
    when = (dt.datetime(2023, 7, 1, 4, 20, tzinfo=UTC), dt.datetime(2023, 7, 17, 4, 20, tzinfo=UTC))
    for image, clouds, at in ((pair.reference, pair.reference_cloud_mask, when[0]),
                              (pair.secondary, pair.cloud_mask, when[1])):
        if sensor == "landsat":
            layouts.write_landsat_scene(folder, pixels_b8=image, grid=pair.grid, acquired_at=at, wrs_path=135,
                                        wrs_row=40, cloud_cover_percent=100.0 * float(clouds.mean()),
                                        cloud_mask=clouds)
        else:
            layouts.write_sentinel2_scene(folder, pixels_b08=image * 2.0e-5 - 0.1, grid=pair.grid, acquired_at=at,
                                          mgrs_tile="47RQQ", relative_orbit=133, level="L2A",
                                          cloud_cover_percent=100.0 * float(clouds.mean()), cloud_mask=clouds)
    scenes = [f.scene for f in scan(folder, get_plugins().classes("readers")).scenes]
    plan = plan_month(sensor, scenes, "2023-07", OpticalRules(edge_window_days=20))
    return list(plan.pairs), product_grid


def _job(pair, product_grid, sensor: str, cache: Path, overrides: dict | None = None, tracker: str | None = None):
    from gvfuse.config import SENSOR_DEFAULTS
    from gvfuse.pipeline.pair import PairJob, tracking_grid
    from gvfuse.plugins import get_plugins

    d = SENSOR_DEFAULTS[sensor]
    pixel = 15.0 if sensor == "landsat" else 10.0
    plugins = get_plugins()
    parameters = dict(d["tracker_parameters"])
    if tracker and tracker != d["tracker"]:
        # as a run's configuration does: another tracker keeps only the sensor's window and step
        parameters = {k: v for k, v in parameters.items() if k in ("window_px", "step_px")}
    return PairJob(sensor=sensor, pair=pair, reader=plugins.get("readers", d["reader"]),
                   tracker=plugins.get("trackers", tracker or d["tracker"]),
                   tracker_parameters={**parameters, **(overrides or {})},
                   max_speed_m_per_day=d["max_speed_m_per_day"],
                   tracking_grid=tracking_grid(product_grid, (pair.reference, pair.secondary), pixel),
                   product_grid=product_grid, cache_dir=cache)


def _one_pair(job, queue) -> None:
    from gvfuse.pipeline.pair import process_pair

    t0 = time.perf_counter()
    outcome = process_pair(job)
    queue.put((time.perf_counter() - t0, dict(outcome.seconds), outcome.error, own_peak_mb(), max_rss_mb()))


def _dask_throughput(jobs, workers: int) -> float:
    from gvfuse.pipeline.run import dask_client, track_pairs

    with dask_client(None, workers) as client:
        t0 = time.perf_counter()
        outcomes = track_pairs(jobs, client=client)
        seconds = time.perf_counter() - t0
    failed = [o.error for o in outcomes if o.error]
    if failed:
        raise SystemExit(f"dask run failed: {failed[0]}")
    per_pair = ", ".join(f"{o.seconds.get('track', float('nan')):.0f}" for o in outcomes)
    print(f"dask, {workers} worker(s): {len(jobs)} pairs in {seconds:.0f} s (tracking s per pair: {per_pair})")
    return len(jobs) / seconds * 60.0


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensor", choices=["landsat", "sentinel-2", "sentinel-1"], default="landsat")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the area's rows and columns")
    parser.add_argument("--copies", type=int, default=4, help="pair jobs for the dask throughput runs (0: none)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="a tracker parameter changed from the sensor's settings (VALUE read as TOML): the pair "
                             "is then also run with the changes, beside the settings, and both are printed")
    parser.add_argument("--tracker", default=None,
                        help="another tracker for the variant run beside the settings (with the sensor's window and "
                             "step, its own defaults otherwise, and the --param changes)")
    args = parser.parse_args()
    overrides = {}
    for item in args.param:
        key, _, text = item.partition("=")
        overrides[key] = tomllib.loads(f"v = {text}")["v"]
    print(f"load average at start: {_load()}")
    work = Path(tempfile.mkdtemp(prefix="gvfuse-bench-"))
    try:
        pairs, product_grid = _make_inputs(work / "scenes", args.sensor, args.scale)
        if not pairs:
            raise SystemExit("no pair planned")
        variants = [("the sensor's settings", {}, None)]
        if overrides or args.tracker:
            variants.append((f"with {args.tracker or 'its tracker'} {overrides}", overrides, args.tracker))
        for n, (label, changes, tracker) in enumerate(variants):
            job = _job(pairs[0], product_grid, args.sensor, work / f"variant-{n}", changes, tracker)
            queue: mp.Queue = mp.get_context("spawn").Queue()
            proc = mp.get_context("spawn").Process(target=_one_pair, args=(job, queue))
            proc.start()
            total, stages, error, peak_mb, child_maxrss_mb = queue.get()
            proc.join()
            if error:
                raise SystemExit(f"pair failed: {error}")
            g = job.tracking_grid
            print(f"\n{args.sensor} pair, {label}: tracking grid {g.rows} x {g.cols} px, product grid "
                  f"{product_grid.rows} x {product_grid.cols} cells, tracker {job.tracker} "
                  f"{dict(job.tracker_parameters)}")
            print("| stage | seconds | share |\n|---|---|---|")
            for name, sec in stages.items():
                print(f"| {name} | {sec:.1f} | {100 * sec / total:.0f} % |")
            print(f"| total (one process) | {total:.1f} | peak memory {peak_mb:.0f} MB |")
            print(f"(not counted: making the pair peaked at {max_rss_mb():.0f} MB in this process; the pair's "
                  f"process's ru_maxrss, which carries that over, says {child_maxrss_mb:.0f} MB)")
            print(f"load average: {_load()}", flush=True)
        if args.copies <= 0:
            return
        jobs = [attrs.evolve(job, cache_dir=work / f"cache-{i}") for i in range(args.copies)]
        one = _dask_throughput(jobs, 1)
        jobs = [attrs.evolve(job, cache_dir=work / f"cache2-{i}") for i in range(args.copies)]
        two = _dask_throughput(jobs, 2)
        print(f"\n| execution | pairs per minute |\n|---|---|\n| plain loop (1 process) | {60.0 / total:.2f} |"
              f"\n| dask, 1 worker | {one:.2f} |\n| dask, 2 workers | {two:.2f} ({two / one:.2f} x) |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
