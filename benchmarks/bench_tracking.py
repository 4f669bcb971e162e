"""Speed, memory and accuracy of dense trackers on one synthetic pair (a script, not a test).

    python benchmarks/bench_tracking.py --size 2048 --window 32 --step 2 --radius 6
    python benchmarks/bench_tracking.py --memory-size 4096     # peak memory of our trackers only

Tracks the same pair with gvfuse's ``ncc`` and ``fft-phase`` matchers (through
the shared driver), the ``template`` tracker (its plugin at its defaults, NCC,
forward pass only like the others, on a ``--template-size`` crop when it is too
slow for the whole pair),
a per-window ``cv2.matchTemplate`` loop (the core of
autoRIFT: TM_CCOEFF_NORMED on Wallis-filtered images; sub-pixel by the
3-point parabola through the peak on each axis, the cheapest common choice;
autoRIFT itself oversamples the correlation surface around the peak, which is
slower still) and OpenPIV's ``extended_search_area_piv`` (OpenPIV is not a
gvfuse dependency; it is imported here only). Each method runs in its own
forked process; "peak MB" is the highest RSS sampled while the method runs
(the pair already in memory), "+MB" the rise above the RSS before it started. Accuracy is measured
against the known displacement at the window centres: RMSE and the share of
errors above 1 px over matched points, and coverage (share matched).
Set ``--size`` within what the machine allows; OpenPIV at step 2 is memory
hungry and is run on a ``--piv-size`` crop (its windows/s is for that crop).

OpenPIV's conventions are checked at run time on a pure translation before
its errors are trusted (see :func:`openpiv_v_sign`): with OpenPIV 0.26,
``extended_search_area_piv`` returns ``v`` along image rows (downwards, not
"up"), and ``get_coordinates`` gives the search-area centres in pixel-edge
units (centre of pixel index ``k`` is ``k + 0.5``).

Then, unless ``--no-process``, the whole-process comparison: the pair is
written as two GeoTIFFs and ``gvfuse track --tracker ncc`` (the CLI, imports,
reading, writing and all) is timed against a process that reads the same
files and runs the OpenCV loop (``--loop-process``), each as a subprocess,
``--process-repeat`` times (default 3) one after the other, the fastest run
of each counting (warm: Python writes its bytecode, numba has its kernels
cached). And the integer search alone, in this process on one thread
(``--stack-size``): the compiled stack the matchers use
(:func:`gvfuse.tracking.dense_ncc.dense_ncc_stack`, numba) against the same
stack from OpenCV whole-image primitives
(:func:`gvfuse.tracking.correlation.ncc_score_stack`: a product image, an
``INTER_AREA`` block mean and a box filter per shift), CPU seconds.

``--memory-size N`` tracks an ``N x N`` pair (a cheap float32 texture and a
constant shift, no truth) with our trackers only and prints the peak RSS,
the RSS before tracking (the pair itself) and the difference; two sizes give
the per-pixel slope for an extrapolation (the driver tiles the output grid,
so the matchers' working set does not grow with the image).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
from typing import Any

import cv2
import numpy as np
from affine import Affine
from scipy import ndimage

from gvfuse.model import Grid, Image
from gvfuse.tracking.dense_ncc import DenseNccMatcher
from gvfuse.tracking.driver import TrackingSettings, track_images
from gvfuse.tracking.phase_correlation import PhaseCorrelationMatcher
from gvfuse.tracking.prefilter import wallis_filter


def make_scene(size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Smooth random texture and a glacier-like band moving up to 1.8 px east, plus a 0.3 px shift."""
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.standard_normal((size, size)), 1.5)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    centre = size / 2 + 0.15 * size * np.sin(2 * np.pi * xx / size)
    band = np.exp(-(((yy - centre) / (0.15 * size)) ** 2))
    dx = 0.3 + 1.5 * band
    dy = -0.2 + 0.4 * band * np.cos(2 * np.pi * xx / size)
    # content at p in the reference is found at p + d in the secondary: sec(q) ~ ref(q - d(q))
    sec = ndimage.map_coordinates(base, [yy - dy, xx - dx], order=3, mode="mirror")
    noise = 0.05 * base.std()
    return {
        "ref": (base + noise * rng.standard_normal(base.shape)).astype(np.float32),
        "sec": (sec + noise * rng.standard_normal(base.shape)).astype(np.float32),
        "dx": dx.astype(np.float32),
        "dy": dy.astype(np.float32),
    }


def truth_at(scene: dict[str, np.ndarray], rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True offsets at pixel-index coordinates (bilinear)."""
    return (ndimage.map_coordinates(scene["dx"], [rows, cols], order=1),
            ndimage.map_coordinates(scene["dy"], [rows, cols], order=1))


def run_gvfuse(scene, matcher_name: str, w: int, s: int, r: int) -> dict[str, Any]:
    g = Grid(32647, Affine(15, 0, 0, 0, -15, 0), scene["ref"].shape)
    matcher = DenseNccMatcher() if matcher_name == "ncc" else PhaseCorrelationMatcher()
    settings = TrackingSettings(window_px=w, step_px=s, search_radius_px=r,
                                prefilter="wallis" if matcher_name == "ncc" else "none",
                                min_peak_correlation=0.0, correct_stable_ground=False)
    # a first call on a small crop loads the compiled kernels (numba's cache; about a second, once per
    # process, measured by the whole-process comparison), so the timed call measures tracking
    n = max(96, w + 2 * r + 2 * s)  # a few windows of any size
    crop = Grid(32647, Affine(15, 0, 0, 0, -15, 0), (n, n))
    track_images(Image(scene["ref"][:n, :n], crop, "ref"), Image(scene["sec"][:n, :n], crop, "sec"), matcher,
                 settings)
    t = time.perf_counter()
    field = track_images(Image(scene["ref"], g, "ref"), Image(scene["sec"], g, "sec"), matcher, settings)
    elapsed = time.perf_counter() - t
    rows, cols = field.grid.shape
    ci = np.arange(rows) * s + (w - 1) / 2
    cj = np.arange(cols) * s + (w - 1) / 2
    cr, cc = np.meshgrid(ci, cj, indexing="ij")
    return {"dx": field.dx_px, "dy": field.dy_px, "rows": cr, "cols": cc, "seconds": elapsed}


def run_template(scene, w: int, s: int, r: int) -> dict[str, Any]:
    from gvfuse_plugins.trackers import TemplateTracker

    g = Grid(32647, Affine(15, 0, 0, 0, -15, 0), scene["ref"].shape)
    tracker = TemplateTracker(window_px=w, step_px=s, min_peak_correlation=0.0, correct_stable_ground=False,
                              max_forward_backward_px=False)
    t = time.perf_counter()
    field = tracker.track(Image(scene["ref"], g, "ref"), Image(scene["sec"], g, "sec"), search_radius_px=r)
    elapsed = time.perf_counter() - t
    rows, cols = field.grid.shape
    cr, cc = np.meshgrid(np.arange(rows) * s + (w - 1) / 2, np.arange(cols) * s + (w - 1) / 2, indexing="ij")
    return {"dx": field.dx_px, "dy": field.dy_px, "rows": cr, "cols": cc, "seconds": elapsed}


def opencv_loop(ref: np.ndarray, sec: np.ndarray, w: int, s: int, r: int,
                max_nan_fraction: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """The per-window ``cv2.matchTemplate`` loop on already filtered images: ``(dx, dy)`` on the window grid.

    Windows start ``r`` px in and every ``s`` px; NaN pixels count as 0 (the filtered mean), and a window
    whose template or search area is more than ``max_nan_fraction`` NaN has no value (real crops only: the
    synthetic benchmark scenes have none).
    """
    ys = np.arange(r, ref.shape[0] - w - r + 1, s)
    xs = np.arange(r, ref.shape[1] - w - r + 1, s)
    dx = np.full((ys.size, xs.size), np.nan, np.float32)
    dy = np.full_like(dx, np.nan)
    ref_nan, sec_nan = np.isnan(ref), np.isnan(sec)
    ref, sec = np.nan_to_num(ref).astype(np.float32), np.nan_to_num(sec).astype(np.float32)
    for a, y in enumerate(ys):
        for b, x in enumerate(xs):
            if (ref_nan[y : y + w, x : x + w].mean() > max_nan_fraction
                    or sec_nan[y - r : y + w + r, x - r : x + w + r].mean() > max_nan_fraction):
                continue
            tpl = ref[y : y + w, x : x + w]
            area = sec[y - r : y + w + r, x - r : x + w + r]
            c = cv2.matchTemplate(area, tpl, cv2.TM_CCOEFF_NORMED)
            _, _, _, (px, py) = cv2.minMaxLoc(c)
            if 0 < px < 2 * r and 0 < py < 2 * r:
                def vertex(lft, mid, rgt):
                    den = lft - 2 * mid + rgt
                    return 0.5 * (lft - rgt) / den if den < 0 else 0.0
                dx[a, b] = px - r + vertex(c[py, px - 1], c[py, px], c[py, px + 1])
                dy[a, b] = py - r + vertex(c[py - 1, px], c[py, px], c[py + 1, px])
    return dx, dy


def run_opencv_loop(scene, w: int, s: int, r: int) -> dict[str, Any]:
    t = time.perf_counter()
    dx, dy = opencv_loop(wallis_filter(scene["ref"]), wallis_filter(scene["sec"]), w, s, r)
    elapsed = time.perf_counter() - t
    n = scene["ref"].shape[0]
    starts = np.arange(r, n - w - r + 1, s)
    centres = starts + (w - 1) / 2
    cr, cc = np.meshgrid(centres, centres, indexing="ij")
    return {"dx": dx, "dy": dy, "rows": cr, "cols": cc, "seconds": elapsed}


def openpiv_v_sign() -> float:
    """+1 if OpenPIV's ``v`` points along image rows (down), -1 if up: measured on a pure translation."""
    from openpiv import pyprocess

    rng = np.random.default_rng(1)
    base = ndimage.gaussian_filter(rng.standard_normal((160, 160)), 1.5)
    ref = base[16:144, 16:144]
    sec = ndimage.shift(base, (2.0, 1.0), order=3)[16:144, 16:144]  # content moves +1 px in x, +2 px down
    u, v, _ = pyprocess.extended_search_area_piv(ref, sec, window_size=32, overlap=28, search_area_size=40,
                                                 correlation_method="circular", subpixel_method="gaussian")
    mu, mv = float(np.nanmedian(u)), float(np.nanmedian(v))
    if abs(mu - 1.0) > 0.1 or abs(abs(mv) - 2.0) > 0.1:
        raise RuntimeError(f"OpenPIV convention check failed: u={mu:.3f} (want 1), |v|={abs(mv):.3f} (want 2)")
    return float(np.sign(mv))


def run_openpiv(scene, w: int, s: int, r: int, crop: int) -> dict[str, Any]:
    from openpiv import pyprocess

    sign = openpiv_v_sign()
    ref, sec = scene["ref"][:crop, :crop], scene["sec"][:crop, :crop]
    area = w + 2 * r
    t = time.perf_counter()
    u, v, _ = pyprocess.extended_search_area_piv(ref.astype(np.float64), sec.astype(np.float64), window_size=w,
                                                 overlap=area - s, search_area_size=area,
                                                 correlation_method="circular", subpixel_method="gaussian",
                                                 sig2noise_method="peak2mean")
    elapsed = time.perf_counter() - t
    x, y = pyprocess.get_coordinates(ref.shape, search_area_size=area, overlap=area - s)
    # u along columns; v along rows with the sign measured above; centres in pixel-edge units
    return {"dx": u.astype(np.float32), "dy": (sign * v).astype(np.float32), "rows": y - 0.5, "cols": x - 0.5,
            "seconds": elapsed}


def memory_pair(size: int, shift: tuple[float, float] = (0.6, -0.3)) -> tuple[np.ndarray, np.ndarray]:
    """A float32 texture and its copy shifted by ``shift`` (x, y) px, built without float64 temporaries."""
    rng = np.random.default_rng(0)
    ref = cv2.GaussianBlur(rng.standard_normal((size, size), dtype=np.float32), (0, 0), 1.5)
    m = np.float32([[1, 0, -shift[0]], [0, 1, -shift[1]]])  # sec(p) = ref(p - d)
    sec = cv2.warpAffine(ref, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return ref, sec


def _memory_worker(args) -> dict[str, Any]:
    name, size, w, s, r = args
    ref, sec = memory_pair(size)
    g = Grid(32647, Affine(15, 0, 0, 0, -15, 0), ref.shape)
    matcher = DenseNccMatcher() if name == "ncc" else PhaseCorrelationMatcher()
    settings = TrackingSettings(window_px=w, step_px=s, search_radius_px=r,
                                prefilter="wallis" if name == "ncc" else "none",
                                min_peak_correlation=0.0, correct_stable_ground=False)
    with PeakRss() as mem:
        t = time.perf_counter()
        field = track_images(Image(ref, g, "ref"), Image(sec, g, "sec"), matcher, settings)
        elapsed = time.perf_counter() - t
    return {"method": name, "size": size, "seconds": elapsed, "before_mb": mem.start_mb, "peak_mb": mem.peak_mb,
            "windows_per_s": field.dx_px.size / elapsed}


def _rss_mb() -> float:
    """Current resident set size of this process (Linux ``/proc``), MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class PeakRss:
    """Highest RSS while the ``with`` block runs, sampled every few milliseconds in a thread.

    ``ru_maxrss`` cannot be reset, so it would report the building of the
    synthetic scene (float64 temporaries) rather than the tracking.
    """

    def __enter__(self) -> PeakRss:
        import threading

        self.start_mb = self.peak_mb = _rss_mb()
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.wait(0.005):
                self.peak_mb = max(self.peak_mb, _rss_mb())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, _rss_mb())


def _worker(args) -> dict[str, Any]:
    name, size, w, s, r, piv, template_size = args
    scene = make_scene(size)
    if name == "template":
        piv = template_size
    if name == "openpiv":
        scene = {k: np.ascontiguousarray(v[:piv, :piv]) for k, v in scene.items()}
    if name == "template":
        scene = {k: np.ascontiguousarray(v[:piv, :piv]) for k, v in scene.items()}
    with PeakRss() as mem:
        if name in ("ncc", "fft-phase"):
            res = run_gvfuse(scene, name, w, s, r)
        elif name == "template":
            res = run_template(scene, w, s, r)
        elif name == "opencv-loop":
            res = run_opencv_loop(scene, w, s, r)
        else:
            res = run_openpiv(scene, w, s, r, piv)
    tx, ty = truth_at(scene, res["rows"], res["cols"])
    ok = np.isfinite(res["dx"]) & np.isfinite(res["dy"])
    err = np.hypot(res["dx"] - tx, res["dy"] - ty)[ok]
    return {
        "method": name, "windows": int(res["dx"].size), "seconds": res["seconds"],
        "windows_per_s": res["dx"].size / res["seconds"],
        "peak_mem_mb": mem.peak_mb, "tracking_mem_mb": mem.peak_mb - mem.start_mb,
        "rmse_px": float(np.sqrt(np.mean(err**2))) if err.size else float("nan"),
        "gt1px_percent": float(100 * np.mean(err > 1)) if err.size else float("nan"),
        "coverage_percent": float(100 * ok.mean()),
    }


def write_pair(folder, size: int) -> tuple[str, str]:
    """The benchmark pair as two 15 m GeoTIFFs (EPSG:32647) for the whole-process comparison."""
    import rasterio

    scene = make_scene(size)
    paths = []
    for key in ("ref", "sec"):
        path = f"{folder}/{key}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=1, dtype="float32",
                           crs="EPSG:32647", transform=Affine(15, 0, 400000, 0, -15, 3300000)) as dst:
            dst.write(scene[key], 1)
        paths.append(path)
    return paths[0], paths[1]


def loop_process(ref_path: str, sec_path: str, out_path: str, w: int, s: int, r: int) -> None:
    """What a user of the OpenCV loop runs: read both files, filter, match every window, save the offsets."""
    import rasterio

    with rasterio.open(ref_path) as a, rasterio.open(sec_path) as b:
        ref, sec = a.read(1), b.read(1)
    dx, dy = opencv_loop(wallis_filter(ref), wallis_filter(sec), w, s, r)
    np.save(out_path, np.stack([dx, dy]))


def whole_process(size: int, w: int, s: int, r: int, repeat: int = 1) -> list[tuple[str, float]]:
    """Wall seconds of ``gvfuse track --tracker ncc`` and of the OpenCV loop as processes, on the same files.

    Each command runs ``repeat`` times, one after the other, and the fastest run counts (the same rule for
    both: on a machine shared with other jobs one run's wall time moves by 10-20 %). Warm processes, as a
    user's are after the first run: Python may write its bytecode (``PYTHONDONTWRITEBYTECODE`` is dropped
    from the commands' environment), numba loads its cached kernels.
    """
    import os
    import subprocess
    import sys
    import tempfile

    # the search radius gvfuse derives, ceil(v * dt / 15 m + 2) + 1, equals r at this speed and dt = 16 d
    speed = (r - 3.5) * 15.0 / 16.0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ref, sec = write_pair(tmp, size)
        commands = {
            "gvfuse track --tracker ncc": ["gvfuse", "track", ref, sec, "-o", f"{tmp}/v.tif", "--tracker", "ncc",
                                           "--window", str(w), "--step", str(s), "--max-speed", f"{speed:.4f}",
                                           "--dt", "16", "--no-stable-correction", "--json"],
            "opencv-loop process": [sys.executable, __file__, "--loop-process", ref, sec, f"{tmp}/loop.npy",
                                    "--window", str(w), "--step", str(s), "--radius", str(r)],
        }
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        for label, cmd in commands.items():
            runs = []
            for _ in range(max(1, repeat)):
                t = time.perf_counter()
                done = subprocess.run(cmd + (["--force"] if label.startswith("gvfuse") and runs else []),
                                      capture_output=True, text=True, env=env)
                runs.append(time.perf_counter() - t)
                if done.returncode != 0:
                    raise RuntimeError(f"{label} failed: {done.stderr.strip()[-500:]}")
                if label.startswith("gvfuse"):
                    import json

                    radius = (json.loads(done.stdout).get("parameters") or {}).get("search_radius_px")
                    if radius is not None and int(radius) != r:
                        raise RuntimeError(f"gvfuse track searched ±{radius} px, not ±{r}")
            print(f"  {label}: " + ", ".join(f"{x:.1f}" for x in runs) + " s", flush=True)
            rows.append((label, min(runs)))
    return rows


def stack_comparison(size: int, w: int, s: int, r: int) -> list[tuple[str, float]]:
    """CPU seconds (this thread, OpenCV on one thread) of the integer-search stack: compiled against OpenCV."""
    from gvfuse.tracking.correlation import ncc_score_stack
    from gvfuse.tracking.dense_ncc import dense_ncc_stack

    cv2.setNumThreads(1)
    scene = make_scene(size)
    ref, sec = wallis_filter(scene["ref"]), wallis_filter(scene["sec"])
    kw = {"window_px": w, "step_px": s, "search_radius_px": r}
    dense_ncc_stack(ref[:128, :128], sec[:128, :128], **kw)  # compile (or load the cache) outside the timing
    rows = []
    for label, fn in (("numba (dense_ncc_stack)", dense_ncc_stack), ("OpenCV primitives (ncc_score_stack)",
                                                                    ncc_score_stack)):
        best = np.inf
        for _ in range(2):
            t = time.thread_time()
            stack = fn(ref, sec, **kw)
            best = min(best, time.thread_time() - t)
        rows.append((label, best, stack.shape[2] * stack.shape[3] / best))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--step", type=int, default=2)
    ap.add_argument("--radius", type=int, default=6)
    ap.add_argument("--piv-size", type=int, default=512, help="OpenPIV runs on this crop (memory)")
    ap.add_argument("--methods", default="ncc,fft-phase,template,opencv-loop")
    ap.add_argument("--template-size", type=int, default=256, help="the template tracker runs on this crop")
    ap.add_argument("--no-process", action="store_true", help="skip the whole-process comparison")
    ap.add_argument("--stack-size", type=int, default=1024, help="pair size of the integer-search comparison (0: skip)")
    ap.add_argument("--loop-process", nargs=3, metavar=("REF", "SEC", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=1, help="runs per method; the fastest is reported")
    ap.add_argument("--process-repeat", type=int, default=3,
                    help="runs of each whole process (gvfuse track, the loop's); the fastest is reported")
    ap.add_argument("--memory-size", type=int, default=0,
                    help="instead: peak memory of our trackers (ncc, fft-phase) on an N x N pair")
    a = ap.parse_args()
    if a.loop_process:
        loop_process(*a.loop_process, a.window, a.step, a.radius)
        return
    ctx = mp.get_context("fork")
    with open("/proc/loadavg") as f:
        print(f"load average at start: {' '.join(f.read().split()[:3])}")
    print(f"{mp.cpu_count()} cores, OpenCV threads {cv2.getNumThreads()}")
    if a.memory_size:
        print(f"pair {a.memory_size} x {a.memory_size}, window {a.window}, step {a.step}, search ±{a.radius} px")
        print(f"{'method':<12} {'s':>8} {'windows/s':>10} {'pair MB':>8} {'peak MB':>8} {'tracking MB':>11}")
        for name in [m for m in a.methods.split(",") if m in ("ncc", "fft-phase")] or ["ncc", "fft-phase"]:
            with ctx.Pool(1) as pool:
                row = pool.map(_memory_worker, [(name, a.memory_size, a.window, a.step, a.radius)])[0]
            print(f"{name:<12} {row['seconds']:>8.1f} {row['windows_per_s']:>10.0f} {row['before_mb']:>8.0f} "
                  f"{row['peak_mb']:>8.0f} {row['peak_mb'] - row['before_mb']:>11.0f}", flush=True)
        return
    print(f"pair {a.size} x {a.size}, window {a.window}, step {a.step}, search ±{a.radius} px")
    print(f"{'method':<12} {'windows':>9} {'s':>8} {'windows/s':>10} {'peak MB':>8} {'+MB':>6} {'RMSE px':>8} "
          f"{'>1px %':>7} {'cover %':>8}")
    speeds: dict[str, float] = {}
    for name in a.methods.split(","):
        rows = []
        for _ in range(max(1, a.repeat)):
            with ctx.Pool(1) as pool:
                rows.append(pool.map(_worker, [(name, a.size, a.window, a.step, a.radius, a.piv_size,
                                                a.template_size)])[0])
        row = min(rows, key=lambda x: x["seconds"])
        label = {"openpiv": f"openpiv@{a.piv_size}", "template": f"template@{a.template_size}"}.get(name, name)
        print(f"{label:<12} {row['windows']:>9} {row['seconds']:>8.2f} {row['windows_per_s']:>10.0f} "
              f"{row['peak_mem_mb']:>8.0f} {row['tracking_mem_mb']:>6.0f} {row['rmse_px']:>8.3f} "
              f"{row['gt1px_percent']:>7.2f} {row['coverage_percent']:>8.1f}", flush=True)
        speeds[name] = row["windows_per_s"]
    if "opencv-loop" in speeds:
        print("windows/s against the OpenCV loop: " + ", ".join(
            f"{k} {v / speeds['opencv-loop']:.1f}x" for k, v in speeds.items() if k != "opencv-loop"))
    if not a.no_process:
        print(f"whole processes on the same {a.size} x {a.size} GeoTIFF pair (fastest of {a.process_repeat}):")
        times = whole_process(a.size, a.window, a.step, a.radius, a.process_repeat)
        for label, seconds in times:
            print(f"  {label:<28} {seconds:>7.1f} s")
        print(f"  ratio (loop / gvfuse track): {times[1][1] / times[0][1]:.1f}x")
    if a.stack_size:
        print(f"integer search only ({a.stack_size} x {a.stack_size}, one thread, CPU s, best of 2):")
        for label, seconds, wps in stack_comparison(a.stack_size, a.window, a.step, a.radius):
            print(f"  {label:<36} {seconds:>7.2f} s {wps:>10.0f} windows/s")
    with open("/proc/loadavg") as f:
        print(f"load average at end: {' '.join(f.read().split()[:3])}")


if __name__ == "__main__":
    main()
