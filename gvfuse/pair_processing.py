"""One pair, from scenes to a velocity field on the product grid, cached on disk.

:func:`process_pair` is a pure function of its :class:`PairJob`: it loads both
scenes onto the pair's tracking grid, tracks, converts offsets to velocity,
regrids onto the product grid and writes the result under a key of all its
inputs and parameters. A second call with the same job finds the file and
returns at once, so a killed run redoes only unfinished pairs, and a dask
worker can run any job in any order.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from rasterio.warp import transform_bounds

from gvfuse import __version__
from gvfuse.errors import GridError, GvfuseError
from gvfuse.model import Grid, Pair, Provenance, Scene, VelocityField
from gvfuse.plugins import get_plugins, plugin_errors
from gvfuse.raster import read_bands, write_bands
from gvfuse.regrid import ERROR_BAND, regrid_field
from gvfuse.tracking.search import search_radius_px

#: Used when a pair has too few stable-ground points to measure its own error (pixels).
ASSUMED_ERROR_PX = 0.2
#: Floor of a measured error: a residual spread below this is not believed (pixels).
MIN_ERROR_PX = 0.05


@attrs.frozen
class PairJob:
    """Everything needed to turn one pair into a cached velocity field on the product grid."""

    sensor: str
    pair: Pair
    reader: str
    tracker: str
    tracker_parameters: Mapping[str, Any]
    max_speed_m_per_day: float
    tracking_grid: Grid
    product_grid: Grid
    cache_dir: Path
    stable_mask: Path | None = None

    @property
    def key(self) -> str:
        """A digest of every input and parameter that can change the result."""
        def scene_fingerprint(s: Scene) -> list[Any]:
            path = Path(s.path)
            size = path.stat().st_size if path.is_file() else sum(
                p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else -1
            return [s.scene_id, s.acquired_at.isoformat(), size]

        def grid_fingerprint(g: Grid) -> list[Any]:
            return [g.crs.to_wkt(), list(g.transform)[:6], list(g.shape)]

        mask = None
        if self.stable_mask is not None and self.stable_mask.exists():
            mask = hashlib.sha256(self.stable_mask.read_bytes()).hexdigest()
        payload = [__version__, self.sensor, self.reader, self.tracker, sorted(self.tracker_parameters.items()),
                   self.max_speed_m_per_day, scene_fingerprint(self.pair.reference),
                   scene_fingerprint(self.pair.secondary), grid_fingerprint(self.tracking_grid),
                   grid_fingerprint(self.product_grid), mask]
        return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()[:24]

    @property
    def cache_path(self) -> Path:
        return self.cache_dir / self.sensor / f"{self.pair.pair_id}.{self.key}.tif"


@attrs.frozen
class PairOutcome:
    """What became of one job: the cached file, or the error that stopped it."""

    sensor: str
    pair_id: str
    path: Path | None
    error: str = ""
    cached: bool = False
    seconds: Mapping[str, float] = attrs.field(factory=dict)


def tracking_grid(product_grid: Grid, scenes: tuple[Scene, ...], resolution_m: float) -> Grid:
    """The grid a pair is tracked on: the product area covered by both scenes, at ``resolution_m``.

    Snapped to the product grid's cell edges, so that regridding averages whole
    tracking cells into product cells. Scenes without a known grid are taken
    to cover the whole area.
    """
    left, bottom, right, top = product_grid.bounds
    for scene in scenes:
        if scene.grid is None:
            continue
        sl, sb, sr, st = transform_bounds(scene.grid.crs, product_grid.crs, *scene.grid.bounds, densify_pts=21)
        left, bottom, right, top = max(left, sl), max(bottom, sb), min(right, sr), min(top, st)
    if left >= right or bottom >= top:
        raise GridError("the scenes do not overlap each other inside the product area",
                        source=" / ".join(s.scene_id for s in scenes))
    cell = product_grid.pixel_size_m[0]
    x0, y0 = product_grid.transform.c, product_grid.transform.f
    left = x0 + math.floor((left - x0) / cell) * cell
    right = x0 + math.ceil((right - x0) / cell) * cell
    top = y0 - math.floor((y0 - top) / cell) * cell
    bottom = y0 - math.ceil((y0 - bottom) / cell) * cell
    cols = int(round((right - left) / resolution_m))
    rows = int(round((top - bottom) / resolution_m))
    from affine import Affine

    return Grid(product_grid.crs, Affine(resolution_m, 0.0, left, 0.0, -resolution_m, top), (rows, cols))


def _pair_tags(job: PairJob, parameters: Mapping[str, Any], error_m_per_day: float, error_source: str,
               seconds: Mapping[str, float]) -> dict[str, Any]:
    p = job.pair
    return {
        "gvfuse_version": __version__,
        "sensor": job.sensor,
        "pair_id": p.pair_id,
        "reference": {"id": p.reference.scene_id, "sensor": p.reference.sensor,
                      "datetime": p.reference.acquired_at.isoformat()},
        "secondary": {"id": p.secondary.scene_id, "sensor": p.secondary.sensor,
                      "datetime": p.secondary.acquired_at.isoformat()},
        "dt_days": p.dt_days,
        "reader": job.reader,
        "tracker": job.tracker,
        "tracker_parameters": dict(parameters),
        "error_m_per_day": error_m_per_day,
        "error_source": error_source,
        "seconds": dict(seconds),
    }


def pair_error_m_per_day(parameters: Mapping[str, Any], pixel_size_m: float, dt_days: float) -> tuple[float, str]:
    """The pair's 1-sigma velocity error from its stable-ground residual spread.

    RMS of the residual NMADs of the two offset components after the
    stable-ground correction, floored at :data:`MIN_ERROR_PX`; when the
    tracker found too few stable points, :data:`ASSUMED_ERROR_PX` (and says so).
    """
    nx, ny = parameters.get("stable_shift_residual_nmad_dx_px"), parameters.get("stable_shift_residual_nmad_dy_px")
    count = parameters.get("stable_shift_count", 0) or 0
    if count >= 30 and nx is not None and ny is not None and math.isfinite(nx) and math.isfinite(ny):
        px, source = max(math.sqrt((nx**2 + ny**2) / 2), MIN_ERROR_PX), f"stable ground ({count} points)"
    else:
        px, source = ASSUMED_ERROR_PX, f"assumed {ASSUMED_ERROR_PX} px (only {count} stable points)"
    return px * pixel_size_m / dt_days, source


def process_pair(job: PairJob) -> PairOutcome:
    """Track one pair and cache its velocity on the product grid; errors are returned, not raised."""
    pair_id = job.pair.pair_id
    target = job.cache_path
    if target.exists():
        return PairOutcome(job.sensor, pair_id, target, cached=True)
    seconds: dict[str, float] = {}
    try:
        plugins = get_plugins()
        reader_reg = plugins.get("readers", job.reader)
        tracker_reg = plugins.get("trackers", job.tracker)
        t0 = time.perf_counter()
        with plugin_errors(reader_reg.plugin.name, f"reader {job.reader!r}"):
            reader = reader_reg.cls()
            reference = reader.load(job.pair.reference, job.tracking_grid)
            secondary = reader.load(job.pair.secondary, job.tracking_grid)
        stable = None
        if job.stable_mask is not None:
            from gvfuse.masks import load_mask

            stable = load_mask(job.stable_mask, job.tracking_grid, what="stable-ground mask")
        seconds["read"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        pixel_m = job.tracking_grid.pixel_size_m[0]
        radius = search_radius_px(job.max_speed_m_per_day, job.pair.dt_days, pixel_m)
        with plugin_errors(tracker_reg.plugin.name, f"tracker {job.tracker!r}"):
            offsets = tracker_reg.cls(**job.tracker_parameters).track(
                reference, secondary, search_radius_px=radius, stable_mask=stable)
        seconds["track"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        error, error_source = pair_error_m_per_day(offsets.parameters, pixel_m, job.pair.dt_days)
        velocity = offsets.to_velocity(job.pair.dt_days)
        velocity = VelocityField(velocity.vx_m_per_day, velocity.vy_m_per_day, velocity.grid, velocity.dt_days,
                                 quality={ERROR_BAND: np.full(velocity.grid.shape, error, "float32")})
        on_product = regrid_field(velocity, job.product_grid)
        seconds["regrid"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        tags = _pair_tags(job, {**offsets.parameters, "search_radius_px": radius}, error, error_source, seconds)
        write_bands(target, {"vx": on_product.vx_m_per_day, "vy": on_product.vy_m_per_day,
                             ERROR_BAND: on_product.quality[ERROR_BAND], "count": on_product.quality["count"]},
                    job.product_grid, units={"vx": "m/d", "vy": "m/d", ERROR_BAND: "m/d", "count": "1"},
                    tags={"gvfuse_pair": tags}, cog=False, overwrite=True)
        seconds["write"] = time.perf_counter() - t0
        return PairOutcome(job.sensor, pair_id, target, seconds=seconds)
    except GvfuseError as exc:
        return PairOutcome(job.sensor, pair_id, None, error=str(exc), seconds=seconds)


def read_pair_result(path: Path) -> tuple[VelocityField, dict[str, Any]]:
    """A cached pair result: its field on the product grid and its provenance tags."""
    bands, grid, tags = read_bands(path, ("vx", "vy", ERROR_BAND, "count"))
    info = json.loads(tags["gvfuse_pair"])
    field = VelocityField(bands["vx"], bands["vy"], grid, dt_days=float(info["dt_days"]),
                          quality={ERROR_BAND: bands[ERROR_BAND], "count": np.nan_to_num(bands["count"])},
                          provenance=Provenance(software_version=info["gvfuse_version"],
                                                inputs=(info["reference"]["id"], info["secondary"]["id"]),
                                                parameters=info))
    return field, info
