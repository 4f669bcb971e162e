"""``gvfuse track``: one image pair to one velocity GeoTIFF.

A thin layer over the readers and trackers: :func:`load_pair` opens both
scenes with the registered readers (``gvfuse.scan.choose_reader``; plain
GeoTIFFs without a date in their name are read as they are), loads the
secondary onto the reference grid, :func:`time_baseline_days` settles the
time baseline, :func:`track_pair` tracks and converts to m/day, and
:func:`write_velocity` writes the COG through :func:`gvfuse.raster.write_bands`
(atomic: an error never leaves a file behind). :data:`track_command` is the
click command (wired into ``gvfuse`` with ``main.add_command(track_command)``).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from pathlib import Path
from typing import Any

import attrs
import click
import numpy as np

from gvfuse.errors import GridError, GvfuseError, InputError, MetadataError, OutputExistsError
from gvfuse.interfaces import Image, OffsetField
from gvfuse.model import Grid
from gvfuse.raster import write_bands

PathLike = str | os.PathLike[str]

#: Relative disagreement between the scenes' dates and ``--dt`` above which a warning is printed.
DT_TOLERANCE = 0.01


@attrs.frozen
class LoadedScene:
    """A scene's tracking band and what is known of it."""

    image: Image
    path: Path
    reader: str
    acquired_at: dt.datetime | None


def _open_scene(path: Path) -> tuple[Any, Any]:
    """(reader instance, scene) from the registered readers, or (None, None) for a plain raster."""
    from gvfuse.scan import choose_reader, registered_readers

    if not path.exists():
        raise InputError("does not exist", source=path)
    cls = choose_reader(path, registered_readers())
    if cls is None:
        return None, None
    reader = cls()
    try:
        return reader, reader.open(path)
    except MetadataError:
        if cls.name == "geotiff":  # the fallback reader only lacks a date: read the raster as it is
            return None, None
        raise


def load_scene(path: PathLike, grid: Grid | None = None) -> LoadedScene:
    """The tracking band of the scene at ``path`` (on ``grid`` when given) and its acquisition time if known."""
    from gvfuse.formats.loading import load_band

    path = Path(path)
    reader, scene = _open_scene(path)
    if reader is None:
        image = load_band(str(path), grid, source=str(path))
        return LoadedScene(image, path, "raster", None)
    image = reader.load(scene, grid)
    return LoadedScene(image, path, reader.name, scene.acquired_at)


def load_pair(reference: PathLike, secondary: PathLike) -> tuple[LoadedScene, LoadedScene]:
    """Both scenes, the secondary warped onto the reference grid; an error names a pair that does not overlap."""
    ref = load_scene(reference)
    sec = load_scene(secondary, ref.image.grid)
    if not np.isfinite(sec.image.pixels).any():
        raise GridError("does not overlap the reference (no valid pixel on its grid)", source=secondary)
    return ref, sec


def time_baseline_days(ref: LoadedScene, sec: LoadedScene, dt_days: float | None) -> tuple[float, str, str | None]:
    """``(dt_days, source, warning)``: from the scenes' dates when both are known, else ``--dt``.

    Raises :class:`InputError` when neither is available or the baseline is not positive.
    """
    dated = ref.acquired_at is not None and sec.acquired_at is not None
    from_dates = (sec.acquired_at - ref.acquired_at).total_seconds() / 86400.0 if dated else None
    if dt_days is not None and not (math.isfinite(dt_days) and dt_days > 0):
        raise InputError(f"the time baseline must be positive, got {dt_days} days", source="--dt")
    if from_dates is not None:
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


def make_tracker(name: str, parameters: dict[str, Any]) -> Any:
    """An instance of the registered tracker ``name`` (unknown names and bad parameters are InputErrors)."""
    from gvfuse.errors import UnknownComponentError
    from gvfuse.plugins import get_plugins

    try:
        cls = get_plugins().get("trackers", name).cls
    except UnknownComponentError as exc:
        raise InputError(str(exc), source="--tracker") from exc
    try:
        return cls(**parameters)
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc), source=f"tracker {name!r}") from exc


def track_pair(
    ref: LoadedScene,
    sec: LoadedScene,
    *,
    tracker: str = "fft-phase",
    dt_days: float,
    max_speed_m_per_day: float,
    parameters: dict[str, Any] | None = None,
    stable_mask: np.ndarray | None = None,
) -> tuple[OffsetField, int]:
    """Offsets of ``sec`` against ``ref`` and the search radius used (from the speed and the baseline)."""
    from gvfuse.tracking.search import search_radius_px

    if not (math.isfinite(max_speed_m_per_day) and max_speed_m_per_day >= 0):
        raise InputError(f"must be >= 0 m/day, got {max_speed_m_per_day}", source="--max-speed")
    instance = make_tracker(tracker, dict(parameters or {}))
    grid = ref.image.grid
    window = int(instance.parameters["window_px"])
    if window > min(grid.shape):
        raise InputError(f"the {window} px window is larger than the {grid.rows} x {grid.cols} image",
                         source=ref.path, field="--window")
    radius = search_radius_px(max_speed_m_per_day, dt_days, grid.pixel_size_m[0])
    try:
        field = instance.track(ref.image, sec.image, search_radius_px=radius, stable_mask=stable_mask)
    except ValueError as exc:  # settings validators (e.g. a window below 4 px)
        raise InputError(str(exc), source=f"tracker {tracker!r}") from exc
    return field, radius


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


def write_velocity(path: PathLike, field: OffsetField, dt_days: float, tags: dict[str, Any], *,
                   force: bool = False) -> Path:
    """The velocity COG on the window-centre grid (atomic; refuses to overwrite without ``force``)."""
    bands, units = velocity_bands(field, dt_days)
    return write_bands(path, bands, field.grid, units=units, tags=tags, cog=True, overwrite=force)


def _parameters_tag(field: OffsetField) -> dict[str, Any]:
    return {k: v for k, v in field.parameters.items() if not k.startswith("stable_shift_")}


def _stable_tag(field: OffsetField) -> dict[str, Any]:
    return {k[len("stable_shift_"):]: v for k, v in field.parameters.items() if k.startswith("stable_shift_")}


def run_track(
    reference: PathLike,
    secondary: PathLike,
    output: PathLike,
    *,
    tracker: str = "fft-phase",
    window_px: int | None = None,
    step_px: int | None = None,
    max_speed_m_per_day: float = 5.0,
    dt_days: float | None = None,
    stable_mask: PathLike | None = None,
    force: bool = False,
) -> tuple[Path, list[str]]:
    """Everything ``gvfuse track`` does; returns the written path and the warnings to show."""
    output = Path(output)
    if output.exists() and not force:
        raise OutputExistsError(f"{output} exists; refusing to overwrite it (use --force)")
    for value, option in ((window_px, "--window"), (step_px, "--step")):
        if value is not None and value < 1:
            raise InputError(f"must be >= 1, got {value}", source=option)
    warnings: list[str] = []
    ref, sec = load_pair(reference, secondary)
    baseline, baseline_source, warning = time_baseline_days(ref, sec, dt_days)
    if warning:
        warnings.append(warning)
    mask = None
    if stable_mask is not None:
        from gvfuse.masks import load_mask

        mask = load_mask(stable_mask, ref.image.grid, what="stable-ground mask")
    parameters: dict[str, Any] = {}
    if window_px is not None:
        parameters["window_px"] = int(window_px)
    if step_px is not None:
        parameters["step_px"] = int(step_px)
    field, radius = track_pair(ref, sec, tracker=tracker, dt_days=baseline, max_speed_m_per_day=max_speed_m_per_day,
                               parameters=parameters, stable_mask=mask)
    tags = {
        "gvfuse_command": "track",
        "tracker": tracker,
        "parameters": {**_parameters_tag(field), "search_radius_px": radius, "max_speed_m_per_day": max_speed_m_per_day},
        "dt_days": baseline,
        "dt_source": baseline_source,
        "reference": str(ref.path),
        "secondary": str(sec.path),
        "reference_reader": ref.reader,
        "secondary_reader": sec.reader,
        "reference_time": ref.acquired_at.isoformat() if ref.acquired_at else None,
        "secondary_time": sec.acquired_at.isoformat() if sec.acquired_at else None,
        "stable_mask": str(stable_mask) if stable_mask is not None else None,
        "stable_ground_correction": _stable_tag(field),
    }
    return write_velocity(output, field, baseline, tags, force=force), warnings


@click.command("track")
@click.argument("reference", type=click.Path(path_type=Path))
@click.argument("secondary", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output velocity GeoTIFF (COG).")
@click.option("--tracker", default="fft-phase", show_default=True, help="Tracker plugin (fft-phase, ncc, template, ...).")
@click.option("--window", "window_px", type=int, help="Window size in pixels (tracker default if omitted).")
@click.option("--step", "step_px", type=int, help="Output spacing in pixels (tracker default if omitted).")
@click.option("--max-speed", "max_speed", type=float, default=5.0, show_default=True,
              help="Expected maximum speed (m/day): with the baseline it sets the search radius.")
@click.option("--dt", "dt_days", type=float, help="Time baseline in days, when the scenes' dates are unknown.")
@click.option("--stable-mask", type=click.Path(path_type=Path),
              help="Ice-free ground: raster (non-zero = stable) or polygons; default: the slowest 25 %.")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@click.pass_context
def track_command(
    ctx: click.Context,
    reference: Path,
    secondary: Path,
    output: Path,
    tracker: str,
    window_px: int | None,
    step_px: int | None,
    max_speed: float,
    dt_days: float | None,
    stable_mask: Path | None,
    force: bool,
) -> None:
    """Track SECONDARY against REFERENCE and write velocities (m/day) to OUTPUT.

    REFERENCE and SECONDARY are any scenes a reader understands (Landsat,
    Sentinel-1/2, UAV, dated GeoTIFFs) or plain GeoTIFFs (then give --dt).
    The secondary is resampled onto the reference grid. OUTPUT has bands vx,
    vy (east, north), v, and the tracker's quality bands on the window-centre
    grid, NaN where no trustworthy match exists.
    """
    try:
        path, warnings = run_track(reference, secondary, output, tracker=tracker, window_px=window_px,
                                   step_px=step_px, max_speed_m_per_day=max_speed, dt_days=dt_days,
                                   stable_mask=stable_mask, force=force)
    except GvfuseError as exc:
        click.echo(f"gvfuse: error: {exc}", err=True)
        ctx.exit(1)
        return
    for warning in warnings:
        click.echo(f"gvfuse: warning: {warning}", err=True)
    click.echo(f"wrote {path}")


__all__ = ["track_command", "run_track", "load_pair", "load_scene", "time_baseline_days", "track_pair",
           "velocity_bands", "write_velocity"]
