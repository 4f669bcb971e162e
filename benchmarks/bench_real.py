"""Coverage and temporal closure of the bundled trackers on real Sentinel-2 glacier crops (a script, not a test).

    python benchmarks/bench_real.py                        # Rhone, 2017-06-26 / 06-29 / 07-11, all trackers
    python benchmarks/bench_real.py --trackers ncc --thresholds default 0.5 0.3
    python benchmarks/bench_real.py --forward-backward none     # without the forward-backward check
    python benchmarks/bench_real.py --all-triplets --trackers ncc  # every triplet of the six dates
    python benchmarks/bench_real.py --trackers fft-phase --thresholds default \
        --param window_px=128 --param step_px=3 --param min_valid_fraction=0.4 --dates 20170626 20170719 20170815

The crops (``../shared/data/real-s2-rhone``, see its SOURCE.md) hold only the
glacier (0 outside the outline, no stable ground): there is no truth, so
each tracker is scored by how much of the glacier has a value in all three
fields A->B, B->C, A->C and by the closure error ``d_AC - d_AB - d_BC``
(:mod:`gvfuse.testing.closure`; median and RMS of its magnitude, pixels).

Each tracker runs at its defaults except ``min_peak_correlation`` (the
acceptance threshold: ``default``, or a value) and, with
``--forward-backward``, ``max_forward_backward_px`` (px, or ``none``), with the stable-ground
correction switched off in the tracker; the three corrections are then
compared on the same offsets:

- ``none``: no correction (closure cannot see per-date geolocation shifts:
  they cancel in the sum);
- ``rule``: the correction as the driver applies it now
  (:func:`gvfuse.tracking.stable_ground.estimate_stable_shift`: the slowest
  25 % only when they look still);
- ``slowest25``: the unconditional slowest-25 % fit gvfuse applied before
  issue 15 (ITS_LIVE's rule), to show what the old default did.

With ``--all-triplets`` every pair of the six dates is tracked once and each
triplet is scored with ``none``, ``rule`` and ``network``: the pairs' own
shifts solved over the date network of all 15 pairs, as a run corrects a
sensor's pairs (:mod:`gvfuse.pipeline.stable_network`). The network's
corrections add up around every loop, so its closure equals ``none``'s; the
column shows what the run's correction does to coverage and that it adds no
closure error, where ``rule`` (each pair alone) does.

The peer runs beside them (``opencv-loop``): the per-window OpenCV loop of
``bench_tracking.py`` (autoRIFT's core: Wallis pre-filter,
``TM_CCOEFF_NORMED``, parabolic peak; window 32, step 3), which has no
acceptance test but a peak off the search edge.

The band (``--band``, default 1 = red) is read with the fill 0 as no data;
the search radius comes from ``--max-speed`` (m/day, default 1: about three
times the Rhone's fastest flow) and each pair's baseline.
"""

from __future__ import annotations

import argparse
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from bench_tracking import opencv_loop

from gvfuse.errors import TrackingError
from gvfuse.model import Image
from gvfuse.testing.closure import ClosureFigures, cells_inside, closure, read_crop
from gvfuse.tracking.date_network import NETWORK_TOLERANCE_PX, measured_shift, solve_date_offsets
from gvfuse.tracking.prefilter import wallis_filter
from gvfuse.tracking.search import search_radius_px
from gvfuse.tracking.stable_ground import SLOWEST_FRACTION_ITERATIONS, estimate_stable_shift, stable_points
from gvfuse_plugins.trackers import FftPhaseTracker, NccTracker, TemplateTracker

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-s2-rhone"
GLACIER = "RGI50-11.B4312n-1"
TRIPLET = ("20170626", "20170629", "20170711")
TRACKERS = {"fft-phase": FftPhaseTracker, "ncc": NccTracker, "template": TemplateTracker}
#: The peer, side by side: a per-window OpenCV loop (window 32, step 3: Sentinel-2's settings in the product).
OPENCV_LOOP = "opencv-loop"
OPENCV_WINDOW_STEP = (32, 3)
CORRECTIONS = ("none", "rule", "slowest25")


def days_between(a: str, b: str) -> float:
    from datetime import date

    def d(s: str) -> date:
        return date(int(s[:4]), int(s[4:6]), int(s[6:]))

    return float((d(b) - d(a)).days)


def loop_field(ref: np.ndarray, sec: np.ndarray, window: int, step: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """The peer: the per-window OpenCV loop of ``bench_tracking`` (autoRIFT's core: Wallis, ``TM_CCOEFF_NORMED``,
    parabolic peak, no acceptance test but a peak off the search edge) on the trackers' window-centre grid."""
    pad = ((radius, radius), (radius, radius))
    filtered = (np.pad(wallis_filter(image), pad, constant_values=np.nan) for image in (ref, sec))
    dx, dy = opencv_loop(*filtered, window, step, radius)
    return dx.astype(np.float64), dy.astype(np.float64)


def slowest25_shift(dx: np.ndarray, dy: np.ndarray) -> tuple[float, float]:
    """The unconditional slowest-25 % median shift (re-selected around the estimate), as before issue 15."""
    centre = (0.0, 0.0)
    for _ in range(SLOWEST_FRACTION_ITERATIONS):
        use, _source = stable_points(dx, dy, None, slowest_fraction=0.25, centre_px=centre)
        if use.sum() < 10:
            return (0.0, 0.0)
        centre = (float(np.median(dx[use])), float(np.median(dy[use])))
    return centre


def make_tracker(name: str, threshold: str, **overrides: Any) -> tuple[Any, int, int]:
    """``(tracker or None for the peer loop, window, step)``, the stable-ground correction off."""
    if name == OPENCV_LOOP:
        return None, *OPENCV_WINDOW_STEP
    params: dict[str, Any] = {"correct_stable_ground": False, **overrides}
    if threshold != "default":
        params["min_peak_correlation"] = float(threshold)
    tracker = TRACKERS[name](**params)
    return tracker, int(tracker.parameters["window_px"]), int(tracker.parameters["step_px"])


def pair_field(tracker: Any, window: int, step: int, ref: Image, sec: Image, dt_days: float,
               max_speed_m_per_day: float) -> tuple[np.ndarray, np.ndarray]:
    """One pair's uncorrected ``(dx, dy)`` (px), all NaN when no window passed the threshold."""
    radius = search_radius_px(max_speed_m_per_day, dt_days, ref.grid.pixel_size_m[0])
    if tracker is None:
        return loop_field(ref.pixels, sec.pixels, window, step, radius)
    try:
        field = tracker.track(ref, sec, search_radius_px=radius)
    except TrackingError:
        empty = np.full(ref.grid.window_centre_grid(step, window).shape, np.nan)
        return empty, empty.copy()
    return np.asarray(field.dx_px, np.float64), np.asarray(field.dy_px, np.float64)


def track_triplet(name: str, threshold: str, *, data: Path = DATA, dates: Sequence[str] = TRIPLET, band: int = 1,
                  max_speed_m_per_day: float = 1.0, **overrides: Any) -> dict[str, Any]:
    """The three uncorrected fields of one tracker, the glacier cells, the window/step and each pair's shifts."""
    tracker, window, step = make_tracker(name, threshold, **overrides)
    images = {d: read_crop(data / f"{GLACIER}_{d}.tif", band) for d in dates}
    a, b, c = dates
    fields: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    shifts: dict[str, dict[str, tuple[float, float]]] = {}
    for key, (p, q) in {"ab": (a, b), "bc": (b, c), "ac": (a, c)}.items():
        dx, dy = pair_field(tracker, window, step, images[p][0], images[q][0], days_between(p, q),
                            max_speed_m_per_day)
        fields[key] = (dx, dy)
        rule = estimate_stable_shift(dx, dy, None, lag_cells=-(-window // step))
        shifts[key] = {"none": (0.0, 0.0), "rule": (rule.dx_px, rule.dy_px), "slowest25": slowest25_shift(dx, dy)}
    glacier = cells_inside(images[a][1], fields["ab"][0].shape, window_px=window, step_px=step)
    return {"fields": fields, "shifts": shifts, "glacier": glacier, "step": step}


def figures(run: dict[str, Any], correction: str) -> ClosureFigures:
    """Closure figures of a :func:`track_triplet` result with one of :data:`CORRECTIONS` applied to each pair."""
    corrected = {}
    for key, (dx, dy) in run["fields"].items():
        sx, sy = run["shifts"][key][correction]
        corrected[key] = (dx - sx, dy - sy)
    return closure(corrected["ab"], corrected["bc"], corrected["ac"], run["glacier"], step_px=run["step"])


#: Issue 15's targets: share of the glacier valid in all three fields, closure median and RMS (px).
TARGETS = (0.60, 0.3, 0.6)


def network_shifts(fields: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]],
                   lag_cells: int) -> dict[str, dict[tuple[str, str], tuple[float, float]]]:
    """Each pair's shift (px) under the ``rule`` (each pair alone) and over the date ``network`` (as a run
    corrects a sensor's pairs: :mod:`gvfuse.pipeline.stable_network`)."""
    rule, measured = {}, []
    for (p, q), (dx, dy) in fields.items():
        c = estimate_stable_shift(dx, dy, None, lag_cells=lag_cells)
        rule[p, q] = (c.dx_px, c.dy_px)
        found = measured_shift(f"{p}>{q}", p, q, {f"stable_shift_{k}": v for k, v in c.to_dict().items()})
        assert found is not None  # a constant fitted or skipped: every pair takes part
        measured.append(found)
    solved = solve_date_offsets(measured, tolerance=NETWORK_TOLERANCE_PX)
    network = {}
    for p, q in fields:
        given = solved.pair_shifts[f"{p}>{q}"]
        network[p, q] = given if given is not None else rule[p, q]
    if solved.dropped:
        print(f"network: outvoted {', '.join(solved.dropped)}")
    return {"none": {k: (0.0, 0.0) for k in fields}, "rule": rule, "network": network}


def every_triplet(args: argparse.Namespace, overrides: dict[str, Any]) -> None:
    """Coverage and closure of each tracker on every date triplet, each pair tracked once, with the correction
    off (``none``), each pair's own (``rule``) and the date network's (``network``)."""
    from itertools import combinations

    dates = sorted(p.stem.rsplit("_", 1)[1] for p in args.data.glob(f"{GLACIER}_*.tif"))
    print(f"{GLACIER}: {len(dates)} dates, every triplet; targets >= {100 * TARGETS[0]:.0f} %, "
          f"closure median <= {TARGETS[1]} px, RMS <= {TARGETS[2]} px; closure median / RMS px with the "
          "correction none, rule, network")
    print("| tracker | triplet | glacier valid in all 3 | none | rule | network | meets: none / rule / network |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.trackers:
        tracker, window, step = make_tracker(name, "default", **overrides)
        images = {d: read_crop(args.data / f"{GLACIER}_{d}.tif", args.band) for d in dates}
        glacier = cells_inside(images[dates[0]][1], images[dates[0]][0].grid.window_centre_grid(step, window).shape,
                               window_px=window, step_px=step)
        fields = {(p, q): pair_field(tracker, window, step, images[p][0], images[q][0], days_between(p, q),
                                     args.max_speed) for p, q in combinations(dates, 2)}
        shifts = network_shifts(fields, -(-window // step))
        met, coverages = dict.fromkeys(shifts, 0), []
        for triplet in combinations(dates, 3):
            pairs = {"ab": triplet[:2], "bc": triplet[1:], "ac": triplet[::2]}
            cells, oks = [], []
            for correction, given in shifts.items():
                corrected = {k: (fields[pq][0] - given[pq][0], fields[pq][1] - given[pq][1]) for k, pq in pairs.items()}
                f = closure(corrected["ab"], corrected["bc"], corrected["ac"], glacier, step_px=step)
                ok = f.coverage >= TARGETS[0] and f.median_px <= TARGETS[1] and f.rms_px <= TARGETS[2]
                met[correction] += ok
                cells.append(f"{f.median_px:.3f} / {f.rms_px:.3f}")
                oks.append("yes" if ok else "no")
            coverages.append(f.coverage)
            print(f"| {name} | {'/'.join(d[4:] for d in triplet)} | {100 * f.coverage:.1f} % | {' | '.join(cells)} | "
                  f"{' / '.join(oks)} |", flush=True)
        print(f"| {name} | all {len(coverages)} | median {100 * float(np.median(coverages)):.1f} % | | | | "
              f"{' / '.join(str(v) for v in met.values())} of {len(coverages)} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--dates", nargs=3, default=list(TRIPLET))
    parser.add_argument("--trackers", nargs="+", default=[*TRACKERS, OPENCV_LOOP], choices=[*TRACKERS, OPENCV_LOOP])
    parser.add_argument("--thresholds", nargs="+", default=["default", "0.95", "0.9", "0.8", "0.7"])
    parser.add_argument("--band", type=int, default=1)
    parser.add_argument("--max-speed", type=float, default=1.0)
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="any other tracker parameter, VALUE read as TOML (e.g. --param window_px=128)")
    parser.add_argument("--all-triplets", action="store_true",
                        help="every triplet of the crops' dates, each tracker at its defaults (with --param), "
                             "with the correction off, each pair's own and the date network's: one row per "
                             "triplet and how many meet issue 15's targets")
    parser.add_argument("--forward-backward", default="default",
                        help="max_forward_backward_px: 'default', 'none' (no check) or a value in px")
    args = parser.parse_args()
    overrides: dict[str, Any] = {}
    for item in args.param:
        key, _, text = item.partition("=")
        overrides[key] = tomllib.loads(f"v = {text}")["v"]
    if args.forward_backward != "default":
        overrides["max_forward_backward_px"] = (None if args.forward_backward == "none"
                                                else float(args.forward_backward))
    if not args.data.is_dir():
        raise SystemExit(f"no data at {args.data}")
    if args.all_triplets:
        every_triplet(args, overrides)
        return
    print(f"{GLACIER} {' / '.join(args.dates)}, band {args.band}, max speed {args.max_speed} m/d, "
          f"forward-backward {args.forward_backward}")
    print("| tracker | min_peak_correlation | correction | glacier valid in all 3 | closure median px | "
          "closure RMS px | shifts AB, BC, AC (px) | s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.trackers:
        for threshold in (["default"] if name == OPENCV_LOOP else args.thresholds):
            start = time.perf_counter()
            run = track_triplet(name, threshold, data=args.data, dates=args.dates, band=args.band,
                                max_speed_m_per_day=args.max_speed, **overrides)
            seconds = time.perf_counter() - start
            if name == OPENCV_LOOP:
                label = "none (peak off the search edge)"
            else:
                default = TRACKERS[name].defaults["min_peak_correlation"]
                label = threshold if threshold != "default" else f"default ({default})"
            for correction in CORRECTIONS:
                f = figures(run, correction)
                shifts = ", ".join(f"({x:+.2f}, {y:+.2f})" for x, y in
                                   (run["shifts"][k][correction] for k in ("ab", "bc", "ac")))
                print(f"| {name} | {label} | {correction} | {100 * f.coverage:.1f} % | {f.median_px:.3f} | "
                      f"{f.rms_px:.3f} | {shifts} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
