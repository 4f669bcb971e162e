"""A whole run against the sum of its pairs: does `gvfuse run` cost what its pairs cost?

Usage::

    python benchmarks/bench_run.py              # the small demo's scene set: all four sensors, two months
    python benchmarks/bench_run.py --workers 0  # the run in one process (default: gvfuse run's default)

It writes the small demo's scenes (Landsat C2L1, Sentinel-2 L2A SAFE, Sentinel-1 terrain-corrected GeoTIFFs
and UAV orthomosaics in their providers' layouts, two months) once, then in one session:

1. every planned pair alone, one after another in this process, exactly as a run tracks it
   (`gvfuse.pipeline.pair.process_pair`: read, track, regrid, write the cached result), each into an empty
   cache: the sum of their times is what the pairs themselves cost, the plain loop to compare with;
2. the run on the same folder into an empty cache and publication, as `gvfuse run` does it
   (`gvfuse.pipeline.run.execute` on the same dask client: scan, planning, tracking, fusion, validation
   and publishing), timing the tracking (from the start to the last pair's result) and the whole run.

It prints one row per sensor (pairs, seconds of the loop) and the run's times against the loop's sum.
The load average is printed at the start and the end: on a shared machine it says how much of the two
cores the run had.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import attrs


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=None,
                        help="as gvfuse run --workers (0: one process; default: gvfuse run's default)")
    parser.add_argument("--keep", type=Path, default=None, help="write the scenes here and keep them")
    args = parser.parse_args()

    from gvfuse.config import load_config
    from gvfuse.demo import SMALL, build_inputs
    from gvfuse.pipeline.pair import process_pair
    from gvfuse.pipeline.run import build_plan, dask_client, default_workers, execute
    from gvfuse.plugins import get_plugins

    print(f"load average at start: {_load()}")
    work = args.keep or Path(tempfile.mkdtemp(prefix="gvfuse-bench-run-"))
    try:
        t0 = time.perf_counter()
        inputs = build_inputs(work, SMALL)
        print(f"scene set: {inputs.scene_count} scenes in {time.perf_counter() - t0:.0f} s ({work})")
        plugins = get_plugins()
        plan = build_plan(load_config(work / "run.toml", plugins), plugins)
        loop: dict[str, list[float]] = defaultdict(list)
        for i, job in enumerate(plan.jobs):
            cache = Path(tempfile.mkdtemp(prefix=f"pair-{i}-", dir=work))
            start = time.perf_counter()
            outcome = process_pair(attrs.evolve(job, cache_dir=cache))
            loop[job.sensor].append(time.perf_counter() - start)
            if outcome.error:
                raise SystemExit(f"pair {job.pair_id} failed: {outcome.error}")
            shutil.rmtree(cache)
        total_loop = sum(sum(v) for v in loop.values())
        for leftover in (work / ".gvfuse-cache", work / "products", work / ".gvfuse-state"):
            shutil.rmtree(leftover, ignore_errors=True)
        last_pair = [0.0]

        def pair_done(outcome: object, done: int, total: int) -> None:
            last_pair[0] = time.perf_counter()

        workers = default_workers() if args.workers is None else args.workers
        config = load_config(work / "run.toml", plugins)
        with dask_client(None, workers) as client:
            start = time.perf_counter()
            result = execute(config, plugins=plugins, client=client, progress=pair_done)
            run_seconds = time.perf_counter() - start
        if result.failed_months:
            raise SystemExit(f"the run failed months {result.failed_months}: {result.problems}")
        tracking_seconds = last_pair[0] - start
        print("\n| sensor | pairs | loop seconds |\n|---|---:|---:|")
        for sensor, times in loop.items():
            print(f"| {sensor} | {len(times)} | {sum(times):.1f} |")
        print(f"| **all pairs, one after another** | {sum(len(v) for v in loop.values())} | {total_loop:.1f} |")
        print(f"\nthe run, --workers {workers}: tracking {tracking_seconds:.1f} s = "
              f"{tracking_seconds / total_loop:.2f} x the pairs' loop; the whole run {run_seconds:.1f} s "
              f"(fusion, validation and publishing {run_seconds - tracking_seconds:.1f} s)")
        print(f"load average at the end: {_load()}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
