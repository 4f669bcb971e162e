"""Benchmark: gvfuse's GLAFT metrics against the ``glaft`` package on GLAFT's Kaskawulsh demo.

A script, not a test::

    /work/venv/bin/python benchmarks/bench_validation.py [DEMO_DIR]

``glaft`` is not a gvfuse dependency; install it into the environment only for
this comparison (``pip install glaft``). Without it, the table compares with
GLAFT's published figures only. Times include reading the rasters and the
polygons, for both.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "glaft-kaskawulsh-demo"
VX, VY = "20180304-20180405_velo-raw_vx.tif", "20180304-20180405_velo-raw_vy.tif"
STABLE, ON_ICE = "bedrock_V2.shp", "glacier_V1_Kaskawulsh_s_inwardBuffer600m.shp"
PUBLISHED = {"delta_x (m/d)": 0.1501, "delta_y (m/d)": 0.1598, "wrong matches (%)": 7.1,
             "delta_x'x' (1/d)": 0.001755, "delta_x'y' (1/d)": 0.001646}


def run_gvfuse(demo: Path) -> tuple[dict[str, float], float, float]:
    from gvfuse.io.masks import load_mask
    from gvfuse.io.raster import read_single_band
    from gvfuse.quality import stable_ground_statistics, strain_rate_metric

    start = time.perf_counter()
    vx, grid = read_single_band(demo / VX)
    vy, _ = read_single_band(demo / VY)
    stable = stable_ground_statistics(vx, vy, load_mask(demo / STABLE, grid))
    middle = time.perf_counter()
    strain = strain_rate_metric(vx, vy, grid, load_mask(demo / ON_ICE, grid)).to_dict()
    end = time.perf_counter()
    figures = {"delta_x (m/d)": stable.kde.delta_x, "delta_y (m/d)": stable.kde.delta_y,
               "wrong matches (%)": stable.kde.outside_percent,
               "delta_x'x' (1/d)": strain["delta_xx_glaft_per_day"],
               "delta_x'y' (1/d)": strain["delta_xy_glaft_per_day"]}
    return figures, middle - start, end - middle


def run_glaft(demo: Path) -> tuple[dict[str, float], float, float] | None:
    try:
        import glaft
    except ImportError:
        return None
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # glaft prints every step
        velocity = glaft.Velocity(vxfile=str(demo / VX), vyfile=str(demo / VY), static_area=str(demo / STABLE),
                                  on_ice_area=str(demo / ON_ICE))
        velocity.static_terrain_analysis()
        middle = time.perf_counter()
        figures = {"delta_x (m/d)": velocity.metric_static_terrain_x, "delta_y (m/d)": velocity.metric_static_terrain_y,
                   "wrong matches (%)": 100 * velocity.outlier_percent}
        velocity.longitudinal_shear_analysis()
        end = time.perf_counter()
    figures.update({"delta_x'x' (1/d)": velocity.metric_alongflow_normal,
                    "delta_x'y' (1/d)": velocity.metric_alongflow_shear})
    return figures, middle - start, end - middle


def main() -> int:
    demo = Path(sys.argv[1]) if len(sys.argv) > 1 else DEMO
    if not demo.is_dir():
        print(f"demo data not found at {demo}", file=sys.stderr)
        return 1
    ours, ours_m1, ours_m2 = run_gvfuse(demo)
    theirs = run_glaft(demo)
    header = f"{'figure':<20}{'published':>12}{'gvfuse':>12}{'vs publ.':>10}"
    header += f"{'glaft pkg':>12}{'vs pkg':>10}" if theirs else ""
    print(header)
    print("-" * len(header))
    for key, published in PUBLISHED.items():
        line = f"{key:<20}{published:>12.6g}{ours[key]:>12.6g}{100 * (ours[key] / published - 1):>+9.2f}%"
        if theirs:
            line += f"{theirs[0][key]:>12.6g}{100 * (ours[key] / theirs[0][key] - 1):>+9.2f}%"
        print(line)
    print()
    print(f"{'seconds':<20}{'gvfuse':>12}{'glaft pkg':>12}{'speed-up':>10}")
    rows = [("metric 1", ours_m1, theirs[1] if theirs else None), ("metric 2", ours_m2, theirs[2] if theirs else None)]
    rows.append(("total", ours_m1 + ours_m2, theirs[1] + theirs[2] if theirs else None))
    for name, mine, other in rows:
        print(f"{name:<20}{mine:>12.3f}" + (f"{other:>12.3f}{other / mine:>9.1f}x" if other else f"{'n/a':>12}"))
    if not theirs:
        print("\nthe glaft package is not installed: compared with GLAFT's published figures only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
