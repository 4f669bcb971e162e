"""``gvfuse demo``: a synthetic Gangrigab 2023 processed end to end, compared with its known truth.

The demo makes a year of Landsat 8/9, Sentinel-2, Sentinel-1 and UAV scenes
of a small part of the Gangrigab area, in the providers' real folder layouts
(:mod:`gvfuse.testing.provider_layouts`), of a landscape whose glaciers flow
faster in summer (:mod:`gvfuse.testing.timeseries`), with clouds, speckle and
geolocation errors. It then runs the real pipeline on them — scan, pairs,
tracking, regridding, weighting, fusion, validation, publishing — and ends
with a table comparing each month's fused error, and each single sensor's,
with the known truth.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from gvfuse.config import CACHE_FOLDER, load_config
from gvfuse.io.raster import write_bands
from gvfuse.model import Grid, Month, VelocityField
from gvfuse.plugins import PluginSet
from gvfuse.product import Area, load_product

UTC = dt.timezone.utc
PRODUCT_ID = "gangrigab-2023-demo"


def _months(values: Iterable[Month | str]) -> tuple[Month, ...]:
    return tuple(Month.parse(m) for m in values)


@attrs.frozen
class DemoSize:
    """How much the demo makes: its area, months and acquisition schedules."""

    area: Area
    months: tuple[Month, ...] = attrs.field(converter=_months)
    landsat_revisit_days: int
    sentinel2_revisit_days: int
    sentinel1_revisit_days: int
    uav_survey_dates: tuple[dt.date, ...]
    uav_extent_m: tuple[float, float, float, float]  # x0, y0 from the area's top-left corner, width, height
    uav_pixel_size_m: float
    #: The pair network's budget: how many pairs each scene is the reference of.
    landsat_pairs_per_scene: int = 2
    sentinel2_pairs_per_scene: int = 2
    sentinel1_pairs_per_scene: int = 2
    #: How far the scenes reach beyond the product area on every side. A real scene covers far more than a
    #: glacier's product area; scenes cut at its edge would leave the cells within half a tracking window
    #: (plus the search) of the edge untrackable — glacier that no real sensor would miss. 420 m holds
    #: Sentinel-1's 640 m window and 36 days at the demo's highest speed, and is whole pixels of every sensor.
    scene_margin_m: float = 420.0


FULL = DemoSize(
    area=Area(west_deg=96.62, south_deg=29.205, east_deg=96.655, north_deg=29.24),
    months=Month.span("2023-01", "2023-12"),
    landsat_revisit_days=8, sentinel2_revisit_days=10, sentinel1_revisit_days=12,
    uav_survey_dates=(dt.date(2023, 2, 18), dt.date(2023, 5, 14), dt.date(2023, 7, 9), dt.date(2023, 9, 3),
                      dt.date(2023, 11, 19)),
    uav_extent_m=(2400.0, 2400.0, 1200.0, 1200.0), uav_pixel_size_m=5.0,
)

SMALL = DemoSize(
    area=Area(west_deg=96.62, south_deg=29.21, east_deg=96.655, north_deg=29.24),
    months=("2023-06", "2023-07"),
    landsat_revisit_days=8, sentinel2_revisit_days=10, sentinel1_revisit_days=12,
    uav_survey_dates=(dt.date(2023, 5, 30), dt.date(2023, 7, 3), dt.date(2023, 8, 4)),
    uav_extent_m=(1200.0, 1200.0, 1000.0, 1000.0), uav_pixel_size_m=5.0,
)

SIZES = {"full": FULL, "small": SMALL}


def product_toml(size: DemoSize) -> str:
    """The demo's product definition: Gangrigab 2023's grid and licence on a small area."""
    a = size.area
    return f'''# A small part of the Gangrigab area, for the synthetic demo (made by `gvfuse demo`).
id = "{PRODUCT_ID}"
title = "Synthetic demo: monthly glacier surface velocity, Gangrigab area, 2023"
description = "Synthetic Landsat 8/9, Sentinel-2, Sentinel-1 and UAV scenes of a part of the Gangrigab area \
with a known, seasonally varying glacier flow, processed by gvfuse."
license = "CC-BY-4.0"
keywords = ["glacier", "surface velocity", "synthetic", "demo"]

[area]
west_deg = {a.west_deg}
south_deg = {a.south_deg}
east_deg = {a.east_deg}
north_deg = {a.north_deg}

[grid]
crs = "EPSG:32647"
resolution_m = 30.0

[time]
first_month = "{size.months[0]}"
last_month = "{size.months[-1]}"

[[providers]]
name = "gvfuse"
roles = ["producer", "processor"]

# The product's sensor legend (sensor_flag bit i = the i-th sensor: landsat = 1, sentinel-1 = 2,
# sentinel-2 = 4, uav = 8), the same in every month, and what the STAC items say of the inputs.
[[sensors]]
name = "landsat"
platforms = ["landsat-8", "landsat-9"]
instruments = ["oli", "oli-2"]
constellation = "landsat"

[[sensors]]
name = "sentinel-1"
platforms = ["sentinel-1a"]
instruments = ["c-sar"]
constellation = "sentinel-1"

[[sensors]]
name = "sentinel-2"
platforms = ["sentinel-2a"]
instruments = ["msi"]
constellation = "sentinel-2"

[[sensors]]
name = "uav"
platforms = ["uav"]
instruments = ["camera"]

[display]
# Upper end of the quick-looks' speed colour scale (m/d), the same for every month (the demo's
# fastest ice is about 0.6 m/d).
speed_max_m_per_day = 0.6
'''


def run_toml(size: DemoSize) -> str:
    """The demo's run configuration: the reference method's trackers, a redundant pair network, fusion over time.

    Two windows depart from the reference's, both measured (docs/fusion.md section 6): Sentinel-1's is
    64 px (128), for speed, and Sentinel-2's 16 px (32): the time series averages the smaller window's
    noise away, but not the larger window's smear across the glaciers' edges.
    The reference method's per-month weighting (``wls-uav``) is one line away:
    replace the ``[fusion]`` section by ``[weighting] name = "wls-uav"``; the
    demo's summary compares the two month by month.
    """
    months = ", ".join(f'"{m}"' for m in size.months)
    return f'''# Run configuration of the synthetic demo (made by `gvfuse demo`): the reference method's settings but
# for two windows: Sentinel-2 16 px, not 32 (less smear at the glaciers' edges; the time series averages its
# noise), Sentinel-1 64 px, not 128 (speed). Its trackers accept matches as the reference does
# (fft-phase: peak correlation >= 0.95, no forward-backward check); gvfuse's own defaults ("auto", the check:
# docs/tracking.md) answer on more of a real glacier.
product = "product.toml"
input_dir = "scenes"
output_dir = "products"
months = [{months}]

[sensors.landsat]
tracker = "fft-phase"
tracker_parameters = {{ window_px = 32, step_px = 2, min_peak_correlation = 0.95, max_forward_backward_px = false }}
max_speed_m_per_day = 1.5
pairing = "network"
pair_rules = {{ min_dt_days = 8, max_dt_days = 48, max_pairs_per_scene = {size.landsat_pairs_per_scene} }}

[sensors.sentinel-2]
tracker = "fft-phase"
tracker_parameters = {{ window_px = 16, step_px = 3, min_peak_correlation = 0.95, max_forward_backward_px = false }}
max_speed_m_per_day = 1.5
pairing = "network"
pair_rules = {{ min_dt_days = 10, max_dt_days = 40, max_pairs_per_scene = {size.sentinel2_pairs_per_scene} }}

[sensors.sentinel-1]
tracker = "ncc"
tracker_parameters = {{ window_px = 64, step_px = 3, prefilter = "log-wallis", max_forward_backward_px = false }}
max_speed_m_per_day = 1.5
pairing = "network"
pair_rules = {{ baselines_days = [12, 24, 36], max_pairs_per_scene = {size.sentinel1_pairs_per_scene} }}

[sensors.uav]
role = "reference"
tracker = "template"
tracker_parameters = {{ max_forward_backward_px = false }}
resolution_m = {size.uav_pixel_size_m}
max_speed_m_per_day = 1.5

[fusion]
name = "time-series"
glacier_mask = "masks/glaciers.tif"  # the glaciers' outline: the error model measures the smear at their edges

[validation]
validators = ["stable-ground", "uav", "strain-rate"]
stable_mask = "masks/stable_ground.tif"
on_ice_mask = "masks/on_ice.tif"
'''


# --- the synthetic inputs ------------------------------------------------------------------------


def acquisition_dates(first: dt.date, last: dt.date, every_days: int, hour: int,
                      minute: int) -> list[dt.datetime]:
    """A satellite's acquisition instants (UTC): every ``every_days`` from ``first`` to ``last``, at hour:minute."""
    out, day = [], first
    while day <= last:
        out.append(dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC))
        day += dt.timedelta(days=every_days)
    return out


def _schedule_span(size: DemoSize) -> tuple[dt.date, dt.date]:
    """From a month before the first month to a month after the last: pairs may reach over the edges."""
    start, end = size.months[0].start, size.months[-1].end
    return (start - dt.timedelta(days=31)).date(), (end + dt.timedelta(days=31)).date()


def landscape_for(product_grid: Grid, size: DemoSize, seed: int) -> Any:
    """Two valley glaciers flowing south-east across the demo area, faster in summer.

    Their heads lie beyond the area's northern edge: ice that starts moving
    abruptly inside the images would tear the synthetic surface apart. The
    landscape (and every satellite scene of it) reaches ``size.scene_margin_m``
    beyond the product area on every side; the glaciers are placed relative to
    the product area.
    """
    from gvfuse.testing.glacier import ValleyGlacier
    from gvfuse.testing.timeseries import Landscape

    left, bottom, right, top = product_grid.bounds
    width, height = right - left, top - bottom
    margin = size.scene_margin_m
    first, last = _schedule_span(size)
    epoch = dt.datetime.combine(first + (last - first) / 2, dt.time(12))
    glaciers = (
        ValleyGlacier(head_m=(margin + 0.12 * width, margin - 0.4 * height),
                      terminus_m=(margin + 0.62 * width, margin + 0.68 * height),
                      half_width_m=0.09 * min(width, height) + 150, max_speed_m_per_day=0.5,
                      meander_amplitude_m=0.04 * width, meander_wavelength_m=1.6 * width),
        ValleyGlacier(head_m=(margin + 0.80 * width, margin - 0.4 * height),
                      terminus_m=(margin + 0.88 * width, margin + 0.55 * height),
                      half_width_m=0.06 * min(width, height) + 100, max_speed_m_per_day=0.3),
    )
    return Landscape(glaciers=glaciers, size_m=(width + 2 * margin, height + 2 * margin),
                     origin_m=(left - margin, top + margin), crs=str(product_grid.crs),
                     seed=seed, seasonal_amplitude=0.35, epoch=epoch)


def _uav_extent(landscape: Any, size: DemoSize) -> tuple[float, float, float, float]:
    """The UAV survey area: around the first glacier's terminus, inside the product area."""
    x, y = landscape.glaciers[0].terminus_m
    w, h = size.uav_extent_m[2], size.uav_extent_m[3]
    margin = size.scene_margin_m
    x0 = min(max(x - w / 2, margin), landscape.size_m[0] - margin - w)
    y0 = min(max(y - h / 2 - 0.15 * h, margin), landscape.size_m[1] - margin - h)
    return (x0, y0, w, h)


@attrs.frozen
class DemoInputs:
    """What :func:`build_inputs` made: the folder, the landscape (the truth) and the scene count."""

    folder: Path
    landscape: Any
    scene_count: int
    seconds: float


#: The demo's record of its folder: the size it was made for and the SHA-256 of the definitions it wrote.
FOLDER_RECORD = ".gvfuse-demo.json"
#: Files the demo writes at the top of its folder; another file of these names is the user's.
OWN_FILES = ("product.toml", "run.toml", "summary.md", "summary.json")
#: Folders the demo makes (its scenes, masks, publication and cache, plots): replaced when the size changes.
OWN_FOLDERS = ("scenes", "masks", "products", "plots", CACHE_FOLDER)
_HEADERS = {"product.toml": "# A small part of the Gangrigab area, for the synthetic demo (made by `gvfuse demo`)",
            "run.toml": "# Run configuration of the synthetic demo (made by `gvfuse demo`)",
            "summary.md": "# gvfuse demo:"}


def _digest(text: str | bytes) -> str:
    import hashlib

    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def _size_keys(size: DemoSize) -> set[str]:
    """What a demo folder's record may say of ``size``: the size itself (area, months, schedule), and the
    digests of the product definitions earlier gvfuse versions wrote for it (before the size was recorded
    as such, and before the definition named its sensors) — a folder of the same size is never refused
    because the demo's own text changed."""
    text = product_toml(size)
    legacy = text.split("\n# The product's sensor legend", 1)[0]
    return {_size_key(size), _digest(text), _digest(legacy)}


def _size_key(size: DemoSize) -> str:
    """The record of a demo folder's size: a digest of the size itself."""
    return _digest(json.dumps(attrs.asdict(size), default=str, sort_keys=True))


def _size_name(size_key: str) -> str:
    return next((name for name, s in SIZES.items() if size_key in _size_keys(s)), "another")


def prepare_folder(folder: Path, size: DemoSize, *, force: bool = False) -> None:
    """Make ``folder`` the demo's of ``size``: refuse to overwrite what is not the demo's, never mix two sizes.

    A file of :data:`OWN_FILES` is the demo's own when it is what the demo
    wrote (its digest in :data:`FOLDER_RECORD`; for a folder made before the
    record existed, its first line is the demo's). Anything else is the
    user's: an :class:`~gvfuse.errors.OutputExistsError` unless ``force``. A
    folder holding a demo of another size (another area or months) is refused
    too, and with ``force`` rebuilt: its :data:`OWN_FOLDERS` and summaries are
    removed first, so scenes and products of two grids never mix.
    """
    import shutil

    from gvfuse.errors import OutputExistsError
    from gvfuse.io.atomic import write_text_atomic

    folder.mkdir(parents=True, exist_ok=True)
    record_file = folder / FOLDER_RECORD
    try:
        record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    except (ValueError, UnicodeDecodeError):
        record = {}
    record = record if isinstance(record, dict) else {}
    written: dict[str, Any] = record["files"] if isinstance(record.get("files"), dict) else {}
    wanted = _size_key(size)
    made_for = record.get("size")
    if made_for is None and (folder / "product.toml").is_file():  # a folder from before the record
        on_disk = _digest((folder / "product.toml").read_bytes())
        made_for = on_disk if any(on_disk in _size_keys(s) for s in (*SIZES.values(), size)) else None
    if made_for is None and (folder / "scenes" / ".complete").exists():
        made_for = "unknown"
    if made_for is not None and made_for not in _size_keys(size):
        if not force:
            name = _size_name(made_for)
            what = (f"a demo of {name} size" if name != "another"
                    else "a demo of another size, or one made by an earlier gvfuse (its scenes differ)")
            raise OutputExistsError(f"{folder} holds {what}, whose scenes and products would mix with this "
                                    "one's: use another folder, or --force to rebuild it")
        for name in OWN_FOLDERS:
            shutil.rmtree(folder / name, ignore_errors=True)
        for name in ("summary.md", "summary.json", FOLDER_RECORD):
            (folder / name).unlink(missing_ok=True)
        written = {}

    def own(name: str) -> bool:
        path = folder / name
        if name in written:
            return _digest(path.read_bytes()) == written[name]
        if name == "summary.json":  # written with summary.md
            return (folder / "summary.md").is_file() and own("summary.md")
        if name != "summary.md" and written:  # a recorded definition is the demo's while unchanged
            return False
        with path.open(encoding="utf-8", errors="replace") as stream:
            return stream.readline().startswith(_HEADERS[name])

    theirs = [name for name in OWN_FILES if (folder / name).is_file() and not own(name)]
    if theirs and not force:
        raise OutputExistsError(f"{folder}: {', '.join(theirs)} not written by gvfuse demo; refusing to overwrite "
                                "(use another folder, or --force)")
    texts = {"product.toml": product_toml(size), "run.toml": run_toml(size)}
    for name, text in texts.items():
        write_text_atomic(folder / name, text, overwrite=True)
    record = {"size": wanted, "files": {name: _digest(text) for name, text in texts.items()}}
    write_text_atomic(record_file, json.dumps(record, indent=2) + "\n", overwrite=True)


def write_series(sensor: str, scenes: Path, landscape: Any, dates: Sequence[dt.datetime],
                 options: Mapping[str, Any], seed: int, uav_pixel_size_m: float) -> int:
    """Render one sensor's acquisitions and write them in its provider's layout under ``scenes``; how many."""
    from gvfuse.testing import provider_layouts as layouts
    from gvfuse.testing.timeseries import render_series

    count = 0
    if sensor == "landsat":
        for i, scene in enumerate(render_series(landscape, "optical", 15.0, dates, seed=seed, clouds_as_nan=False,
                                                **options)):
            layouts.write_landsat_scene(
                scenes / "landsat", pixels_b8=scene.pixels, grid=scene.grid, acquired_at=scene.acquired_at,
                spacecraft="LANDSAT_8" if i % 2 == 0 else "LANDSAT_9", wrs_path=135, wrs_row=40,
                cloud_cover_percent=round(100.0 * float(scene.cloud_mask.mean()), 2), cloud_mask=scene.cloud_mask)
            count += 1
    elif sensor == "sentinel-2":
        for scene in render_series(landscape, "optical", 10.0, dates, seed=seed, clouds_as_nan=False, **options):
            # The optical renderer makes Landsat-like DN; Sentinel-2 files hold reflectance (C2 rescaling).
            reflectance = scene.pixels * 2.0e-5 - 0.1
            layouts.write_sentinel2_scene(
                scenes / "sentinel-2", pixels_b08=reflectance, grid=scene.grid, acquired_at=scene.acquired_at,
                spacecraft="Sentinel-2A", mgrs_tile="47RQQ", relative_orbit=133, level="L2A",
                cloud_cover_percent=round(100.0 * float(scene.cloud_mask.mean()), 2), cloud_mask=scene.cloud_mask)
            count += 1
    elif sensor == "sentinel-1":
        for scene in render_series(landscape, "sar", 10.0, dates, seed=seed, **options):
            layouts.write_sentinel1_rtc(
                scenes / "sentinel-1", pixels_amplitude=scene.pixels, grid=scene.grid, acquired_at=scene.acquired_at,
                platform="S1A", relative_orbit=99,
                absolute_orbit=layouts.sentinel1_absolute_orbit("S1A", 99, scene.acquired_at),
                pass_direction="ASCENDING")
            count += 1
    else:
        for scene in render_series(landscape, "uav", uav_pixel_size_m, dates, seed=seed, **options):
            layouts.write_uav_orthomosaic(scenes / "uav", pixels=scene.pixels, grid=scene.grid,
                                          acquired_at=scene.acquired_at, site="gangrigab-terminus")
            count += 1
    return count


def _write_mask(path: Path, name: str, mask: np.ndarray, grid: Grid) -> None:
    """Write a mask unless the file already holds it: a mask file left as it was keeps the pairs cached
    with it (its identity is in their keys)."""
    from gvfuse.errors import GvfuseError
    from gvfuse.io.raster import read_bands

    if path.is_file():
        try:
            bands, on, _ = read_bands(path, (name,))
            if on == grid and np.array_equal(bands[name], mask.astype("float32")):
                return
        except (GvfuseError, OSError, ValueError):  # unreadable or of another layout: written anew
            pass
    write_bands(path, {name: mask.astype("float32")}, grid, cog=False, overwrite=True)


#: The sensors' series from the longest to render to the shortest (measured on the full demo: 40, 27, 14
#: and 1 s).
RENDER_ORDER = ("sentinel-1", "sentinel-2", "landsat", "uav")


def build_inputs(folder: Path, size: DemoSize, *, seed: int = 2023, force: bool = False,
                 progress: Callable[[str], None] | None = None, client: Any = None) -> DemoInputs:
    """Write the product and run definitions, the masks and a year of scenes in the providers' layouts.

    The folder is prepared by :func:`prepare_folder` (``force`` as there). With a dask ``client`` the
    sensors' series are rendered at once on its workers (the same scenes).
    """
    t0 = time.perf_counter()
    prepare_folder(folder, size, force=force)
    product = load_product(folder / "product.toml")
    grid = product.grid()
    landscape = landscape_for(grid, size, seed)
    stable = landscape.stable_mask(grid, margin_m=120.0)
    ice = landscape.ice_mask(grid)
    from scipy import ndimage

    on_ice = ndimage.binary_erosion(ice, iterations=2)
    _write_mask(folder / "masks" / "stable_ground.tif", "stable_ground", stable, grid)
    _write_mask(folder / "masks" / "on_ice.tif", "on_ice", on_ice, grid)
    _write_mask(folder / "masks" / "glaciers.tif", "glaciers", ice, grid)
    scenes = folder / "scenes"
    done = scenes / ".complete"
    if done.exists():
        return DemoInputs(folder, landscape, int(done.read_text() or 0), 0.0)
    scenes.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    first, last = _schedule_span(size)

    def clouds(n: int) -> list[float]:
        heavy = rng.random(n) < 0.3
        return list(np.where(heavy, rng.uniform(0.65, 0.95, n), rng.uniform(0.0, 0.2, n)))

    def shifts(n: int, sigma_px: float) -> list[tuple[float, float]]:
        return [(float(x), float(y)) for x, y in rng.normal(0.0, sigma_px, (n, 2))]

    def say(text: str) -> None:
        if progress:
            progress(text)

    # The random draws in a fixed order (the same scenes whoever renders them), then each sensor's series
    # rendered and written as one task: on the demo's dask cluster when it has one, the four at once.
    # Landsat 8 and 9 alternate on an 8-day revisit of WRS-2 path 135, row 40.
    landsat = acquisition_dates(first, last, size.landsat_revisit_days, 4, 21)
    landsat_options: dict[str, Any] = {"cloud_fractions": clouds(len(landsat)),
                                       "geolocation_shifts_px": shifts(len(landsat), 0.25)}
    # Sentinel-2A on a 10-day revisit of tile 47RQQ (L2A: its SCL band marks the clouds).
    sentinel2 = acquisition_dates(first + dt.timedelta(days=3), last, size.sentinel2_revisit_days, 4, 35)
    sentinel2_options: dict[str, Any] = {"cloud_fractions": clouds(len(sentinel2)),
                                         "geolocation_shifts_px": shifts(len(sentinel2), 0.25)}
    # Sentinel-1A, ascending relative orbit 99, every 12 days, terrain-corrected GeoTIFFs.
    sentinel1 = acquisition_dates(first + dt.timedelta(days=1), last, size.sentinel1_revisit_days, 23, 47)
    sentinel1_options: dict[str, Any] = {"geolocation_shifts_px": shifts(len(sentinel1), 0.15)}
    # UAV surveys of the first glacier's terminus (DJI M300 RTK orthomosaics, resampled).
    uav = [dt.datetime.combine(d, dt.time(5, 30), tzinfo=UTC) for d in size.uav_survey_dates]
    uav_options: dict[str, Any] = {"extent_m": _uav_extent(landscape, size)}
    series: list[tuple[str, list[dt.datetime], dict[str, Any], int]] = [
        ("landsat", landsat, landsat_options, seed + 1), ("sentinel-2", sentinel2, sentinel2_options, seed + 2),
        ("sentinel-1", sentinel1, sentinel1_options, seed + 3), ("uav", uav, uav_options, seed + 4)]
    say("rendering scenes: " + ", ".join(f"{len(dates)} {name}" for name, dates, _, _ in series))
    if client is None:
        count = sum(write_series(name, scenes, landscape, dates, options, s, size.uav_pixel_size_m)
                    for name, dates, options, s in series)
    else:
        # the longest series first (Sentinel-1's speckle chain, then Sentinel-2's 10 m scenes): each worker
        # takes the next series when it is free, so the four end about together
        longest_first = sorted(series, key=lambda item: RENDER_ORDER.index(item[0]))
        futures = [client.submit(write_series, name, scenes, landscape, dates, options, s, size.uav_pixel_size_m,
                                 pure=False, priority=-i) for i, (name, dates, options, s) in enumerate(longest_first)]
        count = sum(client.gather(futures))
    done.write_text(str(count))
    return DemoInputs(folder, landscape, count, time.perf_counter() - t0)


# --- the report -----------------------------------------------------------------------------------


def _rmse(field: VelocityField | None, tx: np.ndarray, ty: np.ndarray, where: np.ndarray) -> tuple[float, float]:
    """RMS vector error (m/day) and coverage (share of ``where`` with a value)."""
    if field is None:
        return float("nan"), 0.0
    ok = where & np.isfinite(field.vx_m_per_day) & np.isfinite(field.vy_m_per_day)
    if not ok.any():
        return float("nan"), 0.0
    err2 = (field.vx_m_per_day - tx) ** 2 + (field.vy_m_per_day - ty) ** 2
    return float(np.sqrt(np.mean(err2[ok]))), float(ok.sum() / max(where.sum(), 1))


def _errors(field: VelocityField | None, tx: np.ndarray, ty: np.ndarray,
            where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vector error (m/day) and where it is defined, inside ``where``."""
    if field is None:
        return np.full(tx.shape, np.nan), np.zeros(tx.shape, bool)
    ok = where & np.isfinite(field.vx_m_per_day) & np.isfinite(field.vy_m_per_day)
    return np.hypot(field.vx_m_per_day - tx, field.vy_m_per_day - ty), ok


def _rms(values: np.ndarray, cells: np.ndarray) -> float:
    return float(np.sqrt(np.mean(values[cells] ** 2))) if cells.any() else math.nan


def summarise(result: Any, landscape: Any, grid: Grid, sensors: Sequence[str],
              reference_method: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Per month, the fused map and every single sensor against the known truth, compared on common cells.

    Errors are root mean square vector errors on ice against the true mean
    velocity of the calendar month. A single sensor's map is its monthly map
    (the robust mean of its pairs whose mid-time falls in the month, from the
    same pair network). The best single sensor is the one with the smallest
    error on the cells it shares with the fused map; ``ratio_common_cells`` is
    the fused error over that sensor's on exactly those cells, ``ratio_overall``
    the same on each one's own cells. ``error_calibration_ratio`` is the
    fused speed's real error over its published ``v_error`` (root mean squares
    on ice; 1 is honest). ``reference_method_*`` are the figures of the
    reference method's fusion (``wls-uav``, month by month) of the same pairs.
    """
    ice = landscape.ice_mask(grid)
    by_month = {m.month: m for m in reference_method}
    rows = []
    for month in result.months:
        row: dict[str, Any] = {"month": str(month.month)}
        if month.product is None:
            row["error"] = month.error
            rows.append(row)
            continue
        tx, ty = landscape.mean_velocity_m_per_day(grid, month.month.start.replace(tzinfo=None),
                                                   month.month.end.replace(tzinfo=None))
        p = month.product
        fused = VelocityField(p.vx_m_per_day, p.vy_m_per_day, grid, dt_days=month.month.days)
        error, ok = _errors(fused, tx, ty, ice)
        row["fused_rmse_m_per_day"] = _rms(error, ok)
        row["fused_ice_coverage"] = float(ok.sum() / max(ice.sum(), 1))
        row["mean_truth_speed_m_per_day"] = float(np.mean(np.hypot(tx, ty)[ice]))
        speed_error = np.hypot(p.vx_m_per_day, p.vy_m_per_day) - np.hypot(tx, ty)
        row["fused_mean_v_error_m_per_day"] = float(np.mean(p.v_error_m_per_day[ok])) if ok.any() else math.nan
        row["error_calibration_ratio"] = _rms(speed_error, ok) / _rms(p.v_error_m_per_day, ok) if ok.any() else math.nan
        best: tuple[str, float, float, float] | None = None
        for name in sensors:
            own_error, own = _errors(month.sensors.get(name), tx, ty, ice)
            row[f"{name}_rmse_m_per_day"] = _rms(own_error, own)
            row[f"{name}_ice_coverage"] = float(own.sum() / max(ice.sum(), 1))
            common = own & ok
            if name != "uav" and common.sum() >= 30:
                candidate = (name, _rms(own_error, common), _rms(error, common), _rms(own_error, own))
                if best is None or candidate[1] < best[1]:
                    best = candidate
        if best is not None:
            row["best_single_sensor"] = best[0]
            row["best_single_rmse_m_per_day"] = best[3]
            row["ratio_common_cells"] = best[2] / best[1]
            row["ratio_overall"] = row["fused_rmse_m_per_day"] / best[3]
        reference = by_month.get(month.month)
        if reference is not None and reference.product is not None:
            rp = reference.product
            r_error, r_ok = _errors(VelocityField(rp.vx_m_per_day, rp.vy_m_per_day, grid, month.month.days),
                                    tx, ty, ice)
            row["reference_method_rmse_m_per_day"] = _rms(r_error, r_ok)
            row["reference_method_ice_coverage"] = float(r_ok.sum() / max(ice.sum(), 1))
            common = r_ok & ok
            row["ratio_to_reference_method_common_cells"] = (_rms(error, common) / _rms(r_error, common)
                                                             if common.any() else math.nan)
        stable = month.figures.get("stable-ground", {}).get("fused", {})
        row["stable_std_m_per_day"] = math.hypot(stable.get("vx_std_m_per_day", math.nan),
                                                 stable.get("vy_std_m_per_day", math.nan)) / math.sqrt(2)
        uav = month.figures.get("uav", {})
        if "fused" in uav:
            row["uav_speed_bias_fused_m_per_day"] = uav["fused"]["speed_bias_m_per_day"]
            singles = {n: f["speed_bias_m_per_day"] for n, f in uav.items()
                       if n != "fused" and "speed_bias_m_per_day" in f}
            if singles:
                row["uav_speed_bias_best_single_m_per_day"] = min(singles.values(), key=abs)
        rows.append(row)
    return rows


def format_summary(rows: Sequence[dict[str, Any]], sensors: Sequence[str]) -> str:
    """The summary as a Markdown table; the definitions are in :func:`summarise`."""
    head = ["month", "truth speed", "fused RMSE", "ice cov.", "best single", "ratio (common cells)",
            "ratio (overall)", "wls-uav RMSE", "v_error calib.", "stable std", *[f"{s} RMSE (cov.)" for s in sensors]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def f(v: Any, digits: int = 4) -> str:
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"

    for r in rows:
        if "error" in r:
            lines.append(f"| {r['month']} | failed: {r['error']} |" + " |" * (len(head) - 2))
            continue
        cells = [r["month"], f(r["mean_truth_speed_m_per_day"], 3), f(r["fused_rmse_m_per_day"]),
                 f"{100 * r['fused_ice_coverage']:.0f} %", str(r.get("best_single_sensor", "-")),
                 f(r.get("ratio_common_cells"), 2), f(r.get("ratio_overall"), 2),
                 f(r.get("reference_method_rmse_m_per_day")), f(r["error_calibration_ratio"], 2),
                 f(r["stable_std_m_per_day"]),
                 *[f"{f(r[f'{s}_rmse_m_per_day'])} ({100 * r[f'{s}_ice_coverage']:.0f} %)" for s in sensors]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@attrs.frozen
class DemoReport:
    """What the demo did: where, how long, and the summary rows."""

    folder: Path
    rows: list[dict[str, Any]]
    table: str
    seconds: dict[str, float]
    problems: list[str]
    failed_months: list[Month]


def run_demo(folder: Path, size: DemoSize, *, plugins: PluginSet, client: Any = None, force: bool = False,
             seed: int = 2023,
             progress: Callable[[str], None] | None = None,
             pair_progress: Callable[[Any, int, int], None] | None = None) -> DemoReport:
    """Build the inputs (once), run the whole pipeline on them, and compare every month with the truth."""
    from gvfuse.pipeline.run import build_months, execute
    from gvfuse.plots import validation_plots

    t0 = time.perf_counter()
    inputs = build_inputs(folder, size, seed=seed, force=force, progress=progress, client=client)
    t1 = time.perf_counter()
    config = load_config(folder / "run.toml", plugins)
    if progress:
        progress("running the pipeline: scan, pairs, tracking, fusion, validation, publishing")
    result = execute(config, plugins=plugins, client=client, force=force, progress=pair_progress)
    t2 = time.perf_counter()
    grid = config.product.grid()
    sensors = list(config.fused_sensors)
    reference_method = []
    if config.fusion is not None:
        # the reference method on the same pairs, for the comparison (nothing is published)
        monthly = attrs.evolve(config, fusion=None, weighting="wls-uav",
                               weighting_parameters={"fallback": "inverse-variance"})
        reference_method = build_months(attrs.evolve(result.plan, config=monthly), result.pairs, plugins=plugins)
    rows = summarise(result, inputs.landscape, grid, [*sensors, "uav"], reference_method)
    table = format_summary(rows, [*sensors, "uav"])
    stable = inputs.landscape.stable_mask(grid, margin_m=120.0)
    plots = []
    for month in result.months:
        if month.product is not None:
            p = month.product
            reference = month.sensors.get("uav")
            plots.append(((folder / "plots" / p.month.stem, p.vx_m_per_day, p.vy_m_per_day, grid),
                          {"stable_mask": stable,
                           "reference": (reference.vx_m_per_day, reference.vy_m_per_day) if reference else None}))
    if client is None:
        for args, kwargs in plots:
            validation_plots(*args, **kwargs)
    else:  # the months' plots on the cluster's workers, idle by now (matplotlib renders on one core)
        client.gather([client.submit(validation_plots, *args, pure=False, **kwargs) for args, kwargs in plots])
    (folder / "summary.md").write_text(
        "# gvfuse demo: fused monthly velocity against the known truth\n\n"
        "RMSE: root mean square vector error (m/day) on ice against the true mean velocity of the calendar month; "
        "ice cov.: share of ice cells with a value. best single: the sensor whose monthly map (its pairs of the "
        "month, robustly averaged) errs least on the cells it shares with the fused map; ratio (common cells): "
        "fused RMSE over that sensor's on exactly those cells; ratio (overall): each on its own cells. wls-uav "
        "RMSE: the reference method (month by month, weights fitted to the UAV) on the same pairs. v_error "
        "calib.: the fused speed's real error over its published v_error (1 = honest, > 1: errors understated). "
        "stable std: the fused map's spread on ice-free ground (the reference product reports 0.0098 m/d).\n\n"
        + table + "\n")
    (folder / "summary.json").write_text(json.dumps(rows, indent=2, default=float))
    seconds = {"inputs": t1 - t0, "pipeline": t2 - t1, "report": time.perf_counter() - t2}
    return DemoReport(folder, rows, table, seconds, result.problems, result.failed_months)
