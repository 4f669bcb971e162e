"""One pair: the one way gvfuse tracks two images into velocities, for `gvfuse run` and `gvfuse track`.

* :func:`track_pair` is the shared step: it builds the tracker from its
  registration and parameters, sets the search radius from the expected
  speed and the baseline, and tracks. Bad parameters and images are
  :class:`~gvfuse.errors.InputError`; anything else a tracker raises is a
  :class:`~gvfuse.errors.PluginError` naming it.
* :func:`process_pair` is a pair of a run: a pure function of its
  :class:`PairJob`. It loads both scenes onto the pair's tracking grid, tracks,
  converts offsets to velocity, regrids onto the product grid and writes the
  result under a key of all its inputs (by content: :func:`file_fingerprint`)
  and parameters. A second call with the same job finds the file and returns
  at once (a cached file that does not read whole is tracked again), so a
  killed run redoes only unfinished pairs, and a dask worker can run any job in any order. The job
  carries the reader and tracker registrations, so a worker needs no plugin
  manager.
* :func:`track_files` is ``gvfuse track``: two scene files (any registered
  reader, or plain GeoTIFFs), the secondary loaded onto the reference grid,
  the baseline from the scenes' dates or given, and a velocity COG on the
  window-centre grid.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
import os
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from affine import Affine
from rasterio.warp import transform_bounds

from gvfuse import __version__
from gvfuse.config import DEFAULT_TRACKER, check_window_and_step
from gvfuse.errors import GridError, GvfuseError, InputError, MetadataError, OutputExistsError, PluginError
from gvfuse.interfaces import Reader, Tracker
from gvfuse.io.masks import mask_files, stable_ground
from gvfuse.io.raster import read_bands, write_bands
from gvfuse.model import ERROR_BAND, SECONDS_PER_DAY, Grid, Image, OffsetField, Pair, Provenance, Scene, VelocityField
from gvfuse.pipeline.regrid import regrid_field
from gvfuse.pipeline.scan import COMPANION_SUFFIXES, choose_reader, is_regular
from gvfuse.plugins import PluginSet, Registration, plugin_errors
from gvfuse.tracking.search import search_radius_px

PathLike = str | os.PathLike[str]

#: Used when a pair has too few stable-ground points to measure its own error (pixels).
ASSUMED_ERROR_PX = 0.2
#: Floor of a measured error: a residual spread below this is not believed (pixels).
MIN_ERROR_PX = 0.05
#: Relative disagreement between the scenes' dates and a given baseline above which a warning is given.
DT_TOLERANCE = 0.01
#: Windows whose whole search a tracker holds at once, at the least: the bundled trackers score every
#: offset of a 16 x 16-cell tile together (float32), so one search radius costs ``256 * 4 * (2r + 1)^2`` bytes.
SEARCH_WINDOWS_AT_ONCE = 16 * 16


# --------------------------------------------------------------------------- the shared step


def make_tracker(registration: Registration, parameters: Mapping[str, Any]) -> Tracker:
    """An instance of a registered tracker; parameters it rejects are an :class:`InputError` naming it."""
    assert issubclass(registration.cls, Tracker)  # checked when the plugin registered it
    try:
        tracker = registration.cls(**parameters)
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc), source=f"tracker {registration.name!r}") from exc
    except GvfuseError:
        raise
    except Exception as exc:
        raise PluginError(f"tracker {registration.name!r} failed: {type(exc).__name__}: {exc}",
                          plugin=registration.plugin.name) from exc
    return tracker


def track_pair(
    reference: Image,
    secondary: Image,
    *,
    tracker: Registration,
    parameters: Mapping[str, Any],
    dt_days: float,
    max_speed_m_per_day: float,
    stable_mask: np.ndarray | None = None,
    speed_source: str = "maximum speed",
) -> tuple[OffsetField, int]:
    """Offsets of ``secondary`` against ``reference`` (same grid), and the search radius used.

    The radius covers ``max_speed_m_per_day`` over the baseline
    (:func:`gvfuse.tracking.search.search_radius_px`) and must fit the image and this machine's memory
    (:func:`check_search_radius`); ``speed_source`` names where the speed came from in its errors
    (``--max-speed``, a sensor's ``max_speed_m_per_day``).
    """
    if not (math.isfinite(max_speed_m_per_day) and max_speed_m_per_day >= 0):
        raise InputError(f"must be >= 0 m/day, got {max_speed_m_per_day}", source=speed_source)
    instance = make_tracker(tracker, parameters)
    grid = reference.grid
    window = int(instance.parameters.get("window_px", 0))
    if window > min(grid.shape):
        raise InputError(f"the {window} px window is larger than the {grid.rows} x {grid.cols} image",
                         source=reference.source or "reference", field="window_px")
    check_window_and_step(grid.rows, grid.cols, window, int(instance.parameters.get("step_px", 1)),
                          source=reference.source or "reference", field="step_px")
    radius = check_search_radius(max_speed_m_per_day, dt_days, grid, source=speed_source)
    with plugin_errors(tracker.plugin.name, f"tracker {tracker.name!r}"):
        try:
            field = instance.track(reference, secondary, search_radius_px=radius, stable_mask=stable_mask)
        except ValueError as exc:  # settings the tracker rejects (e.g. a window below 4 px)
            raise InputError(str(exc), source=f"tracker {tracker.name!r}") from exc
    return field, radius


def check_search_radius(max_speed_m_per_day: float, dt_days: float, grid: Grid, *, source: str) -> int:
    """The search radius (px) ``max_speed_m_per_day`` implies over ``dt_days`` on ``grid``'s pixels, when it
    is usable; else an :class:`InputError` from ``source`` saying the speed, the radius and the largest speed
    accepted.

    Usable: no larger than the image's longer side (a surface that moved further than the image is wide
    cannot be matched in it), and the scores of its offsets for :data:`SEARCH_WINDOWS_AT_ONCE` windows
    (float32) fit in this machine's memory. Refused before anything is tracked, not later as numpy's
    ``array is too big`` or a process killed for its memory (``--max-speed 1e9``).
    """
    from gvfuse.product import memory_shortfall, physical_memory_bytes

    pixel_m = grid.pixel_size_m[0]
    radius = search_radius_px(max_speed_m_per_day, dt_days, pixel_m)
    image_limit = max(grid.rows, grid.cols)
    memory = physical_memory_bytes()
    # the largest radius whose scores fit: SEARCH_WINDOWS_AT_ONCE * 4 * (2r + 1)^2 <= memory
    memory_limit = image_limit if memory is None else (math.isqrt(memory // (SEARCH_WINDOWS_AT_ONCE * 4)) - 1) // 2
    if radius <= min(image_limit, memory_limit):
        return radius
    if radius > image_limit:
        why = f"larger than the {grid.rows} x {grid.cols} px image"
    else:
        why = memory_shortfall(SEARCH_WINDOWS_AT_ONCE * 4 * (2 * radius + 1) ** 2,
                               f"searching it for {SEARCH_WINDOWS_AT_ONCE} windows at once",
                               "of scores") or "more than this machine's memory"
    # the radius grows by one pixel per pixel of motion over its fixed margin (the radius of a speed of 0)
    margin = search_radius_px(0.0, dt_days, pixel_m)
    largest = max(0.0, (min(image_limit, memory_limit) - margin) * pixel_m / dt_days)
    raise InputError(f"{max_speed_m_per_day:g} m/day over {dt_days:g} days at {pixel_m:g} m a pixel is a search "
                     f"radius of {radius} px; {why}: at most {math.floor(largest * 100) / 100:g} m/day can be "
                     "searched here", source=source)


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


# --------------------------------------------------------------------------- a pair of a run


#: Bytes hashed at each of the start, middle and end of an input file for its fingerprint.
SAMPLE_BYTES = 1 << 20


def file_fingerprint(path: Path) -> list[Any]:
    """One input file's identity in pair cache keys: ``[size, BLAKE2b]`` of a file up to 3 MiB, hashed whole
    (its content alone: rewritten with the same bytes, a mask keeps its pairs), else ``[size, mtime_ns,
    BLAKE2b of sampled blocks]``.

    A larger file is hashed by its first, middle and last MiB, so a band of
    hundreds of MB costs 3 MiB of reading while any rewrite shows in its size,
    its modification time or its sampled bytes (a copy that keeps size and
    time, ``cp -p``, and changes bytes only outside the samples is the one
    change it misses). The digest is computed once per file version and process.
    """
    st = path.stat()
    digest = _sampled_digest(str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if st.st_size <= 3 * SAMPLE_BYTES:
        return [st.st_size, digest]
    return [st.st_size, st.st_mtime_ns, digest]


@functools.lru_cache(maxsize=4096)
def _sampled_digest(path: str, size: int, mtime_ns: int, ctime_ns: int, inode: int) -> str:
    """BLAKE2b of the whole file or of its first, middle and last :data:`SAMPLE_BYTES` (the stat is the cache key)."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        if size <= 3 * SAMPLE_BYTES:
            digest.update(f.read())
        else:
            for offset in (0, (size - SAMPLE_BYTES) // 2, size - SAMPLE_BYTES):
                f.seek(offset)
                digest.update(f.read(SAMPLE_BYTES))
    return digest.hexdigest()


def scene_files(scene: Scene) -> list[Path]:
    """The files a scene is made of: every regular file of a scene folder (links are not followed), or the
    scene file and the files beside it whose names start with its scene id (bands beside a Landsat MTL, a UAV
    sidecar)."""
    path = Path(scene.path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    if not path.is_file():
        return []
    companions = [p for p in path.parent.iterdir()
                  if p.name.startswith(scene.scene_id) and p != path and p.is_file() and not p.is_symlink()]
    return [path, *sorted(companions)]


def mask_fingerprint(path: Path | None) -> list[Any] | None:
    """A mask file's identity in cache keys, by content (:func:`file_fingerprint`), with a shapefile's
    ``.prj``, ``.dbf``, ... (they are the mask too); never its path, so a moved project keeps its keys."""
    if path is None or not path.is_file():
        return None
    return [*file_fingerprint(path), *([p.name, *file_fingerprint(p)] for p in mask_files(path)[1:])]


def scene_fingerprint(scene: Scene) -> list[Any]:
    """A scene's identity in pair cache keys: its id and time, and every file of it by content."""
    root = Path(scene.path) if Path(scene.path).is_dir() else Path(scene.path).parent
    return [scene.scene_id, scene.acquired_at.isoformat(),
            [[p.relative_to(root).as_posix(), *file_fingerprint(p)] for p in scene_files(scene)]]


@attrs.frozen
class PairJob:
    """Everything needed to turn one pair into a cached velocity field on the product grid."""

    sensor: str
    pair: Pair
    reader: Registration
    tracker: Registration
    tracker_parameters: Mapping[str, Any]
    max_speed_m_per_day: float
    tracking_grid: Grid
    product_grid: Grid
    cache_dir: Path
    stable_mask: Path | None = None
    band: int | None = None  # of plain or drone rasters (``sensors.<name>.band``); None: the reader's choice
    #: The glaciers (``[fusion] glacier_mask``): the stable-ground correction measures outside them
    #: (:func:`gvfuse.io.masks.stable_ground`).
    glacier_mask: Path | None = None

    @property
    def key(self) -> str:
        """A digest of every input and parameter that can change the result.

        The inputs enter by content (:func:`scene_fingerprint`, :func:`file_fingerprint`), so a band replaced
        by another of the same size is tracked again; the tracker's parameters with its defaults, the reader's
        and tracker's plugin versions and gvfuse's version enter too.
        """
        def grid_fingerprint(g: Grid) -> list[Any]:
            return [g.crs.to_wkt(), list(g.transform)[:6], list(g.shape)]

        parameters = effective_parameters(self.tracker, self.tracker_parameters)
        mask = mask_fingerprint(self.stable_mask)
        payload = [__version__, self.sensor, self.reader.name, self.reader.plugin.version, self.tracker.name,
                   self.tracker.plugin.version, sorted(parameters.items()), self.max_speed_m_per_day,
                   scene_fingerprint(self.pair.reference), scene_fingerprint(self.pair.secondary),
                   grid_fingerprint(self.tracking_grid), grid_fingerprint(self.product_grid), mask]
        if self.band is not None:  # only then: the keys of pairs cached before bands could be chosen stay valid
            payload.append(["band", self.band])
        if self.glacier_mask is not None:  # likewise for runs without a glacier mask
            payload.append(["glacier_mask", mask_fingerprint(self.glacier_mask)])
        return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()[:24]

    @property
    def cache_path(self) -> Path:
        return self.cache_dir / self.sensor / f"{self.pair.pair_id}.{self.key}.tif"


#: The bands of a cached pair result on the product grid, and their units.
PAIR_RESULT_UNITS: Mapping[str, str] = {"vx": "m/d", "vy": "m/d", ERROR_BAND: "m/d", "count": "1"}


@attrs.frozen
class PairOutcome:
    """What became of one job: the cached file, or the error that stopped it."""

    sensor: str
    pair_id: str
    path: Path | None
    error: str = ""
    cached: bool = False
    seconds: Mapping[str, float] = attrs.field(factory=dict)
    #: The pair with its run's network stable-ground correction (:mod:`gvfuse.pipeline.stable_network`),
    #: when one was made; ``path`` stays the cached pair as tracked.
    adjusted: Path | None = None
    #: What the run found wrong with the pair beyond an error (its stable-ground shift outvoted by the network).
    warning: str = ""

    @property
    def result_path(self) -> Path | None:
        """The pair result the months use: the adjusted one when made, else the cached one."""
        return self.adjusted if self.adjusted is not None else self.path


def _lonlat_box(value: Any) -> tuple[float, float, float, float] | None:
    """``(west, south, east, north)`` degrees when ``value`` is such a box, else None (a malformed or
    non-finite footprint is no footprint: the scene then counts as covering the whole area)."""
    try:
        west, south, east, north = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    ok = -180.0 <= west < east <= 180.0 and -90.0 <= south < north <= 90.0  # False for NaN too
    return (west, south, east, north) if ok else None


def effective_parameters(tracker: Registration, configured: Mapping[str, Any]) -> dict[str, Any]:
    """A tracker's parameters as it will track: its defaults, overridden by the configured ones."""
    return {**dict(getattr(tracker.cls, "defaults", {})), **dict(configured)}


def tracking_halo_m(parameters: Mapping[str, Any], max_speed_m_per_day: float, dt_days: float,
                    resolution_m: float) -> float:
    """How far beyond the product area a pair's scenes are read (m): half the largest window plus the search
    radius, so that a cell at the area's edge is matched on whole windows, like any other, when the scenes
    reach beyond the area (a satellite scene nearly always does). A tracker without ``window_px`` reads
    only the search radius beyond."""
    window = int(parameters.get("window_px") or 0)
    if window and parameters.get("fallback_window_px") not in (None, False):
        from gvfuse.tracking.driver import fallback_window

        step = int(parameters.get("step_px") or 1)
        window = max(window, int(fallback_window(parameters["fallback_window_px"], window_px=window, step_px=step)
                                 or 0))
    return (window // 2 + search_radius_px(max_speed_m_per_day, dt_days, resolution_m)) * resolution_m


def tracking_grid(product_grid: Grid, scenes: tuple[Scene, ...], resolution_m: float, *,
                  halo_m: float = 0.0) -> Grid:
    """The grid a pair is tracked on: the product area widened by ``halo_m`` on every side
    (:func:`tracking_halo_m`), where both scenes cover it, at ``resolution_m``.

    Snapped outwards to the product grid's cell edges, so that regridding averages whole
    tracking cells into product cells (the cells beyond the product area are dropped
    there). A scene without a grid before it is
    loaded (a Sentinel-1 GRD in radar geometry) is bounded by its footprint,
    ``metadata["footprint_lonlat_bounds"]`` (the manifest's, from its GCPs);
    only a scene with neither is taken to cover the whole product area and nothing
    beyond it — before this, a GRD of a 6 km area was tracked over the whole product area.
    """
    left, bottom, right, top = product_grid.bounds
    left, bottom, right, top = left - halo_m, bottom - halo_m, right + halo_m, top + halo_m
    for scene in scenes:
        footprint = _lonlat_box(scene.metadata.get("footprint_lonlat_bounds"))
        try:
            if scene.grid is not None:
                sl, sb, sr, st = transform_bounds(scene.grid.crs, product_grid.crs, *scene.grid.bounds,
                                                  densify_pts=21)
            elif footprint is not None:
                sl, sb, sr, st = transform_bounds("EPSG:4326", product_grid.crs, *footprint, densify_pts=21)
            else:  # nothing says how far beyond the product area it reaches: none of the halo
                sl, sb, sr, st = product_grid.bounds
        except Exception as exc:  # rasterio's CPLE_* errors: a footprint outside the projection's domain
            raise GridError(f"cannot place the scene in the product's CRS: {exc}".split("\n")[0],
                            source=scene.scene_id) from None
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
    cols = round((right - left) / resolution_m)
    rows = round((top - bottom) / resolution_m)
    return Grid(product_grid.crs, Affine(resolution_m, 0.0, left, 0.0, -resolution_m, top), (rows, cols))


def _pair_tags(job: PairJob, parameters: Mapping[str, Any], error_m_per_day: float,
               error_source: str, reading: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """What the cached pair says about itself: never timings, so that the same pair tracked again gives the
    same bytes (the timings are in the :class:`PairOutcome`). ``reading``: each scene's reader notes."""
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
        "reader": job.reader.name,
        "tracker": job.tracker.name,
        "tracker_parameters": dict(parameters),
        "error_m_per_day": error_m_per_day,
        "error_source": error_source,
        **{f"{role}_reading": list(notes) for role, notes in reading.items() if notes},
    }


def process_pair(job: PairJob) -> PairOutcome:
    """Track one pair and cache its velocity on the product grid; errors are returned, not raised."""
    pair_id = job.pair.pair_id
    target = job.cache_path
    if target.exists():
        if readable_pair_result(target):
            return PairOutcome(job.sensor, pair_id, target, cached=True)
        target.unlink(missing_ok=True)  # a truncated or corrupt cache file is no cache: the pair is tracked again
    seconds: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        with plugin_errors(job.reader.plugin.name, f"reader {job.reader.name!r}"):
            assert issubclass(job.reader.cls, Reader)  # checked when the plugin registered it
            reader = job.reader.cls()
            reference, secondary = (reader.load(with_band(scene, job.band), job.tracking_grid)
                                    for scene in (job.pair.reference, job.pair.secondary))
        stable = stable_ground(job.tracking_grid, stable_mask=job.stable_mask, glacier_mask=job.glacier_mask)
        seconds["read"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        offsets, radius = track_pair(reference, secondary, tracker=job.tracker, parameters=job.tracker_parameters,
                                     dt_days=job.pair.dt_days, max_speed_m_per_day=job.max_speed_m_per_day,
                                     stable_mask=stable, speed_source=f"sensors.{job.sensor}.max_speed_m_per_day")
        seconds["track"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        pixel_m = job.tracking_grid.pixel_size_m[0]
        error, error_source = pair_error_m_per_day(offsets.parameters, pixel_m, job.pair.dt_days)
        velocity = offsets.to_velocity(job.pair.dt_days)
        velocity = VelocityField(velocity.vx_m_per_day, velocity.vy_m_per_day, velocity.grid, velocity.dt_days,
                                 quality={ERROR_BAND: np.full(velocity.grid.shape, error, "float32")})
        on_product = regrid_field(velocity, job.product_grid)
        seconds["regrid"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        tags = _pair_tags(job, {**offsets.parameters, "search_radius_px": radius}, error, error_source,
                          {"reference": reference.notes, "secondary": secondary.notes})
        write_bands(target, {"vx": on_product.vx_m_per_day, "vy": on_product.vy_m_per_day,
                             ERROR_BAND: on_product.quality[ERROR_BAND], "count": on_product.quality["count"]},
                    job.product_grid, units=PAIR_RESULT_UNITS,
                    tags={"gvfuse_pair": tags}, cog=False, overwrite=True)
        seconds["write"] = time.perf_counter() - t0
        return PairOutcome(job.sensor, pair_id, target, seconds=seconds)
    except GvfuseError as exc:
        return PairOutcome(job.sensor, pair_id, None, error=str(exc), seconds=seconds)


def readable_pair_result(path: Path) -> bool:
    """Whether a cached pair result reads whole (every band, its tags): only then is it a cache hit."""
    try:
        with warnings.catch_warnings():  # a broken file's warnings (no geotransform...) are not news: it is redone
            warnings.simplefilter("ignore")
            read_pair_result(path)
    except Exception:  # anything: a truncated TIFF, tags that are not JSON, a missing band
        return False
    return True


def read_pair_info(path: Path) -> dict[str, Any]:
    """A cached pair result's provenance tags only (no pixels)."""
    from gvfuse.io.raster import open_raster

    with open_raster(path) as src:
        info: dict[str, Any] = json.loads(src.tags()["gvfuse_pair"])
    return info


def read_pair_result(path: Path) -> tuple[VelocityField, dict[str, Any]]:
    """A cached pair result: its field on the product grid and its provenance tags."""
    bands, grid, tags = read_bands(path, tuple(PAIR_RESULT_UNITS))
    info = json.loads(tags["gvfuse_pair"])
    field = VelocityField(bands["vx"], bands["vy"], grid, dt_days=float(info["dt_days"]),
                          quality={ERROR_BAND: bands[ERROR_BAND], "count": np.nan_to_num(bands["count"])},
                          provenance=Provenance(software_version=info["gvfuse_version"],
                                                inputs=(info["reference"]["id"], info["secondary"]["id"]),
                                                parameters=info))
    return field, info


# --------------------------------------------------------------------------- two files (gvfuse track)


@attrs.frozen
class LoadedScene:
    """A scene's tracking band and what is known of it."""

    image: Image
    path: Path
    reader: str
    acquired_at: dt.datetime | None


def load_scene(path: PathLike, plugins: PluginSet, grid: Grid | None = None, *, band: int | None = None) -> LoadedScene:
    """The tracking band of the scene at ``path`` (on ``grid`` when given) and its acquisition time if known.

    The registered reader that detects the file reads it; a raster that only a
    catch-all reader detects and cannot date, or that no reader detects, is
    read as it is, without a date. ``band`` (1-based, ``--band``) chooses the
    band of a plain or drone raster; a sensor format refuses it.
    """
    from gvfuse.formats.loading import load_plain_raster

    path = Path(path)
    if not path.exists():
        raise InputError("does not exist", source=path)
    if not is_regular(path):
        raise InputError("is not a regular file or folder (a FIFO, socket or device is never read)", source=path)
    cls = choose_reader(path, plugins.classes("readers"))
    if cls is not None:
        reader = cls()
        try:
            scene = reader.open(path)
        except MetadataError:
            if not cls.catch_all:
                raise
        else:
            if band is not None and not cls.band_selectable:
                raise InputError(f"the {reader.name} reader reads its sensor's own tracking band; --band "
                                 "chooses the band of plain GeoTIFFs and drone orthomosaics", source="--band")
            scene = with_band(scene, band)
            return LoadedScene(reader.load(scene, grid), path, reader.name, scene.acquired_at)
    # the fallback reader only lacks a date: read the raster as it is
    return LoadedScene(load_plain_raster(path, grid, band=band), path, "raster", None)


def with_band(scene: Scene, band: int | None) -> Scene:
    """``scene`` with a user's band choice for its reader (``scene.metadata["band"]``); as it is for None."""
    return scene if band is None else attrs.evolve(scene, metadata={**scene.metadata, "band": band})


def load_pair(reference: PathLike, secondary: PathLike, plugins: PluginSet, *,
              band: int | None = None) -> tuple[LoadedScene, LoadedScene]:
    """Both scenes, the secondary warped onto the reference grid; an error names a pair that does not overlap."""
    ref = load_scene(reference, plugins, band=band)
    sec = load_scene(secondary, plugins, ref.image.grid, band=band)
    if not np.isfinite(sec.image.pixels).any():
        raise GridError("does not overlap the reference (no valid pixel on its grid)", source=secondary)
    return ref, sec


def time_baseline_days(ref: LoadedScene, sec: LoadedScene, dt_days: float | None) -> tuple[float, str, str | None]:
    """``(dt_days, source, warning)``: from the scenes' dates when both are known, else ``dt_days``.

    Raises :class:`InputError` when neither is available or the baseline is not positive.
    """
    if dt_days is not None and not (math.isfinite(dt_days) and dt_days > 0):
        raise InputError(f"the time baseline must be positive, got {dt_days} days", source="--dt")
    if ref.acquired_at is not None and sec.acquired_at is not None:
        from_dates = (sec.acquired_at - ref.acquired_at).total_seconds() / SECONDS_PER_DAY
        if from_dates <= 0:
            raise InputError(
                f"the secondary is not later than the reference ({ref.acquired_at:%Y-%m-%d} -> "
                f"{sec.acquired_at:%Y-%m-%d}): time baseline {from_dates:g} days; swap REF and SEC",
                source=sec.path,
            )
        warning = None
        if dt_days is not None and abs(dt_days - from_dates) > DT_TOLERANCE * from_dates:
            warning = (f"--dt {dt_days:g} days disagrees with the scenes' dates ({from_dates:g} days); "
                       "using the dates")
        return from_dates, "scene dates", warning
    if dt_days is None:
        undated = ref.path if ref.acquired_at is None else sec.path
        raise InputError("no acquisition date known for this scene; give the time baseline with --dt DAYS",
                         source=undated)
    return float(dt_days), "--dt", None


def velocity_bands(field: OffsetField, dt_days: float) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``vx``, ``vy`` (east, north), ``v`` in m/day and the quality bands, float32 with NaN; and their units."""
    velocity = field.to_velocity(dt_days)
    vx, vy = velocity.vx_m_per_day.astype(np.float32), velocity.vy_m_per_day.astype(np.float32)
    bands = {"vx": vx, "vy": vy, "v": np.hypot(vx, vy).astype(np.float32)}
    units = {"vx": "m/d", "vy": "m/d", "v": "m/d"}
    for name, values in field.quality.items():
        bands[name] = np.asarray(values, dtype=np.float32)
        units[name] = "1"
    return bands, units


def _split_stable_parameters(field: OffsetField) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tracker parameters, and the stable-ground correction's figures without their prefix."""
    prefix = "stable_shift_"
    parameters = {k: v for k, v in field.parameters.items() if not k.startswith(prefix)}
    stable = {k[len(prefix):]: v for k, v in field.parameters.items() if k.startswith(prefix)}
    return parameters, stable


#: How many folders above an input file are looked at for the scene folder it lies in (a Sentinel-2 band
#: is five below its ``.SAFE``).
SCENE_FOLDER_DEPTH = 6


def _open_quietly(path: Path, plugins: PluginSet) -> Scene | None:
    """The scene the reader that detects ``path`` opens there, or None (:func:`load_scene` reports the errors)."""
    cls = choose_reader(path, plugins.classes("readers"))
    if cls is None:
        return None
    try:
        return cls().open(path)
    except Exception:
        return None


def input_scene_files(path: PathLike, plugins: PluginSet) -> tuple[list[Path], list[Path]]:
    """``(files, folders)`` the input scene at ``path`` is made of, as far as gvfuse can tell; none may be written.

    Files: ``path`` itself and its companions (``<name>.json``, ``.txt``, ``.aux.xml`` ...: a UAV sidecar,
    GDAL's side files, whether they exist yet or not), and every member its reader records (``container`` and
    the ``*_member`` metadata: an MTL, a band, a QA or SCL mask). Folders: the folder given, the reader's
    container folder (the folder of a Landsat MTL given as a file), or else the nearest folder above a file
    given that a reader reads as a scene (the Landsat product folder of a ``_B8.TIF``, the ``.SAFE`` of a band).
    """
    given = Path(path)
    files: list[Path] = []
    folders: list[Path] = []

    def add(scene: Scene) -> None:
        container = Path(str(scene.metadata.get("container", scene.path)))
        if container.is_dir():
            folders.append(container)
            files.extend(container / value for key, value in scene.metadata.items()
                         if key.endswith("_member") and isinstance(value, str) and value)
        else:
            files.append(container)
        files.append(Path(scene.path))

    if given.is_dir():
        folders.append(given)
    else:
        files.append(given)
        files.extend(given.parent / f"{base}{suffix}" for base in (given.stem, given.name)
                     for suffix in COMPANION_SUFFIXES)
    scene = _open_quietly(given, plugins) if given.exists() else None
    if scene is not None:
        add(scene)
    if not folders:
        for parent in list(given.absolute().parents)[:SCENE_FOLDER_DEPTH]:
            enclosing = _open_quietly(parent, plugins)
            if enclosing is not None:
                add(enclosing)
                break
    return files, folders


def check_output_not_input(output: PathLike, reference: PathLike, secondary: PathLike, *, plugins: PluginSet,
                           stable_mask: PathLike | None = None, glacier_mask: PathLike | None = None) -> None:
    """An :class:`InputError` (one line, naming ``--output``) when writing ``output`` would change an input.

    Refused, even with ``--force``: a file of either scene (:func:`input_scene_files`) or of the
    stable-ground or glacier mask, and anything inside a scene's folder. Compared where the file would land (the
    folder resolved: a link there would be replaced) and where a link there points, and by inode when
    ``output`` exists (a hard link).
    """
    def real(path: Path) -> Path:  # resolved through links; a link loop stays as it is, never an error
        return Path(os.path.realpath(path))

    output = Path(output)
    places = {real(output.parent) / output.name, real(output)}  # where the file lands (a link there is replaced)
    try:
        existing: os.stat_result | None = output.stat()
    except OSError:
        existing = None

    def same(path: Path) -> bool:
        if {real(path.parent) / path.name, real(path)} & places:
            return True
        try:
            return existing is not None and os.path.samestat(existing, path.stat())
        except OSError:
            return False

    def refuse(what: str) -> InputError:
        return InputError(f"{what}; choose another -o", source=output, field="--output")

    for name, given_mask in (("stable-ground mask", stable_mask), ("glacier mask", glacier_mask)):
        if given_mask is None:
            continue
        for member in mask_files(given_mask):  # a shapefile's .dbf, .prj ... too
            if same(member):
                mask = f"the {name} {given_mask}"
                raise refuse(f"would replace {mask if member == Path(given_mask) else f'{member}, a file of {mask}'}")
    for role, given in (("reference", Path(reference)), ("secondary", Path(secondary))):
        scene = f"the {role} scene {given}"
        files, folders = input_scene_files(given, plugins)
        for member in files:
            if same(member):  # the file is named when the output reaches it through a link
                what = scene if member == given else (
                    f"a file of {scene}" if member.absolute() == output.absolute() else f"{member}, a file of {scene}")
                raise refuse(f"would replace {what}")
        for folder in folders:
            root = real(folder)
            inside = any(place.is_relative_to(root) for place in places)
            if not inside and existing is not None:  # a hard link to a file of the folder
                inside = any(same(p) for p in root.rglob("*") if p.is_file())
            if inside:
                where = scene if folder == given else (f"the folder of {scene}" if output.absolute().is_relative_to(
                    folder.absolute()) else f"{folder}, the folder of {scene}")
                raise refuse(f"would be written inside {where}")


def _warm_up(registration: Registration, parameters: Mapping[str, Any]) -> None:
    """:meth:`gvfuse.interfaces.Tracker.warm_up` of the tracker these parameters make; parameters it rejects
    are left to the real call to report."""
    try:
        make_tracker(registration, parameters).warm_up()
    except Exception:  # a plugin's warm-up is a head start only; the real call reports any problem
        return


def track_files(
    reference: PathLike,
    secondary: PathLike,
    output: PathLike,
    *,
    plugins: PluginSet,
    tracker: str = DEFAULT_TRACKER,
    window_px: int | None = None,
    step_px: int | None = None,
    max_speed_m_per_day: float = 5.0,
    dt_days: float | None = None,
    stable_mask: PathLike | None = None,
    glacier_mask: PathLike | None = None,
    tracker_parameters: Mapping[str, Any] | None = None,
    band: int | None = None,
    force: bool = False,
) -> tuple[Path, list[str]]:
    """Everything ``gvfuse track`` does; returns the written path and the warnings to show.

    ``tracker_parameters`` are given to the tracker as they are (``window_px``
    and ``step_px`` override theirs). ``band`` chooses the band of plain and
    drone rasters; what the readers decided for the user (a band among several,
    a fill taken from the data) is warned about and recorded in the tags.
    ``stable_mask`` and ``glacier_mask`` say where the images' relative shift
    is measured (:func:`gvfuse.io.masks.stable_ground`).

    The output is a velocity COG on the window-centre grid (atomic; refused
    when it exists unless ``force``, and never one of the inputs).
    """
    output = Path(output)
    check_output_not_input(output, reference, secondary, plugins=plugins, stable_mask=stable_mask,
                           glacier_mask=glacier_mask)
    if output.exists() and not force:
        raise OutputExistsError(f"{output} exists; refusing to overwrite it (use --force)")
    for value, option in ((window_px, "--window"), (step_px, "--step")):
        if value is not None and value < 1:
            raise InputError(f"must be >= 1, got {value}", source=option)
    try:
        registration = plugins.get("trackers", tracker)
    except GvfuseError as exc:
        raise InputError(str(exc), source="--tracker") from exc
    if not (math.isfinite(max_speed_m_per_day) and max_speed_m_per_day >= 0):
        raise InputError(f"must be >= 0 m/day, got {max_speed_m_per_day}", source="--max-speed")
    warnings: list[str] = []
    parameters: dict[str, Any] = dict(tracker_parameters or {})
    if window_px is not None:
        parameters["window_px"] = int(window_px)
    if step_px is not None:
        parameters["step_px"] = int(step_px)
    # the tracker loads its compiled kernels (about half a second) while the images are read
    warm_up = threading.Thread(target=_warm_up, args=(registration, parameters), name="gvfuse-warm-up", daemon=True)
    warm_up.start()
    try:
        ref, sec = load_pair(reference, secondary, plugins, band=band)
        warnings.extend(f"{scene.path.name}: {note}" for scene in (ref, sec) for note in scene.image.notes)
        baseline, baseline_source, warning = time_baseline_days(ref, sec, dt_days)
        if warning:
            warnings.append(warning)
        mask = stable_ground(ref.image.grid, stable_mask=stable_mask, glacier_mask=glacier_mask)
    finally:  # also when an input is refused: the process never exits with the warm-up still running
        warm_up.join()
    field, radius = track_pair(ref.image, sec.image, tracker=registration, parameters=parameters,
                               dt_days=baseline, max_speed_m_per_day=max_speed_m_per_day, stable_mask=mask,
                               speed_source="--max-speed")
    tracker_parameters, stable = _split_stable_parameters(field)
    tags = {
        "gvfuse_command": "track",
        "tracker": tracker,
        "parameters": {**tracker_parameters, "search_radius_px": radius, "max_speed_m_per_day": max_speed_m_per_day},
        "dt_days": baseline,
        "dt_source": baseline_source,
        "reference": str(ref.path),
        "secondary": str(sec.path),
        "reference_reader": ref.reader,
        "secondary_reader": sec.reader,
        "band": band,
        "reference_reading": list(ref.image.notes),
        "secondary_reading": list(sec.image.notes),
        "reference_time": ref.acquired_at.isoformat() if ref.acquired_at else None,
        "secondary_time": sec.acquired_at.isoformat() if sec.acquired_at else None,
        "stable_mask": str(stable_mask) if stable_mask is not None else None,
        "glacier_mask": str(glacier_mask) if glacier_mask is not None else None,
        "stable_ground_correction": stable,
    }
    bands, units = velocity_bands(field, baseline)
    return write_bands(output, bands, field.grid, units=units, tags=tags, cog=True, overwrite=force), warnings
