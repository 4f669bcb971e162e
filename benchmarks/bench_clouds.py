"""Clouds without a mask: how much of the clear moving ice each optical tracker answers on, and how well.

A script, not a test::

    python benchmarks/bench_clouds.py [--seeds 1 2] [--size 256] [--trackers NAME ...]

Synthetic optical pairs (15 m, 16 days, up to 1.5 m/day, 10 % cloud on the
secondary, geolocation offset 0.3/-0.2 px), the clouds either *painted* as the
raw sensor sees them (opaque cores, semi-transparent fringes; no mask given)
or given as a mask (NaN). "Clear moving ice": the cells whose centre pixel is
ice outside any cloud (down to the faintest fringe) and moves more than 0.2 px;
coverage is the share of them with a value, RMSE their error against the
window-mean truth (px); "in cloud" the share of cells centred in a cloud that
have a value. Rows: before the pair's own cloud detection and the centre rule
(both off), the defaults, the defaults with ``min_valid_fraction = 0.4``, and
the clouds as a mask at the defaults (docs/tracking.md, "Clouds without a mask").
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from gvfuse.config import REFERENCE_PHASE_PARAMETERS
from gvfuse.model import Image
from gvfuse.testing import make_pair
from gvfuse.tracking.search import search_radius_px
from gvfuse_plugins.trackers import FftPhaseTracker, NccTracker, TemplateTracker


def _template(**kw: Any) -> TemplateTracker:
    """template, its share of no data given as the others' share of valid data."""
    if "min_valid_fraction" in kw:
        kw["max_nan_fraction"] = 1.0 - kw.pop("min_valid_fraction")
    return TemplateTracker(**kw)


TRACKERS = {"fft-phase": lambda **kw: FftPhaseTracker(**kw),
            "fft-phase 32 px (reference)": lambda **kw: FftPhaseTracker(**{**REFERENCE_PHASE_PARAMETERS, **kw}),
            "ncc": lambda **kw: NccTracker(**kw),
            "ncc 32 px": lambda **kw: NccTracker(window_px=32, **kw),
            "template": _template}
CASES: dict[str, tuple[bool, dict[str, Any]]] = {  # name: (clouds painted, tracker parameters)
    "painted, before (detector and centre rule off)": (True, {"bright_change_nmad": False, "observed_centre": False}),
    "painted, defaults": (True, {}),
    "painted, min_valid_fraction 0.4": (True, {"min_valid_fraction": 0.4}),
    "given as a mask, defaults": (False, {}),
}


def figures(pair: Any, tracker: Any) -> tuple[float, float, float]:
    """(coverage, RMSE px, share of cloud-centred cells with a value) on the clear moving ice."""
    field = tracker.track(Image(pair.reference, pair.grid), Image(pair.secondary, pair.grid),
                          search_radius_px=search_radius_px(2.0, pair.dt_days, pair.pixel_size_m))
    window, step = tracker.parameters["window_px"], tracker.parameters["step_px"]
    rows = np.arange(field.grid.shape[0]) * step + window // 2
    cols = np.arange(field.grid.shape[1]) * step + window // 2
    tx, ty = pair.true_displacement_on(field.grid, window_px=window)
    ice, cloud = pair.ice_mask[np.ix_(rows, cols)], pair.cloud_mask[np.ix_(rows, cols)]
    clear_moving = ice & ~cloud & (np.hypot(tx, ty) > 0.2)
    valued = np.isfinite(field.dx_px)
    err = np.hypot(field.dx_px - tx, field.dy_px - ty)[clear_moving & valued]
    return (float(valued[clear_moving].mean()), float(np.sqrt(np.mean(err**2))),
            float(valued[cloud & ice].mean()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--trackers", nargs="+", choices=sorted(TRACKERS),
                        default=["fft-phase", "fft-phase 32 px (reference)", "ncc 32 px"],
                        help="the trackers at their defaults (128 px windows: fft-phase, ncc, template) need "
                             "--size 768 or more")
    args = parser.parse_args()
    print("| case | tracker | " + " | ".join(f"seed {s}: coverage / RMSE / in cloud" for s in args.seeds) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in args.seeds) + " |")
    for case, (paint, parameters) in CASES.items():
        pairs = [make_pair("optical", (args.size, args.size), pixel_size_m=15.0, dt_days=16.0,
                           max_speed_m_per_day=1.5, cloud_fraction=0.1, geolocation_shift_px=(0.3, -0.2),
                           seed=seed, clouds_as_nan=not paint) for seed in args.seeds]
        for name in args.trackers:
            make = TRACKERS[name]
            cells = [figures(pair, make(**parameters)) for pair in pairs]
            print(f"| {case} | {name} | " + " | ".join(f"{c:.1%} / {r:.3f} px / {i:.0%}" for c, r, i in cells)
                  + " |", flush=True)


if __name__ == "__main__":
    main()
