"""``gvfuse track REF SEC -o OUT``: one image pair to one velocity GeoTIFF."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gvfuse.cli.common import Command, echo_json, plugin_set, warn


@click.command("track", cls=Command)
@click.argument("reference", type=click.Path(path_type=Path))
@click.argument("secondary", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Output velocity GeoTIFF (COG).")
@click.option("--tracker", help="Tracker plugin (default: the reference method's optical tracker, fft-phase).")
@click.option("--window", "window_px", type=int, help="Window size in pixels (tracker default if omitted).")
@click.option("--step", "step_px", type=int, help="Output spacing in pixels (tracker default if omitted).")
@click.option("--max-speed", "max_speed", type=float, default=5.0, show_default=True,
              help="Expected maximum speed (m/day): with the baseline it sets the search radius.")
@click.option("--dt", "dt_days", type=float, help="Time baseline in days, when the scenes' dates are unknown.")
@click.option("--stable-mask", type=click.Path(path_type=Path),
              help="Ice-free ground: raster (non-zero = stable) or polygons; default: the slowest 25 % when they "
                   "look still beside moving ice, else no correction (with a warning).")
@click.option("--glacier-mask", type=click.Path(path_type=Path),
              help="The glaciers (raster, non-zero = ice, or polygons such as RGI outlines): the relative shift "
                   "is measured outside them (within --stable-mask when given too); an image that is all ice "
                   "then gets no correction, with a warning.")
@click.option("--no-stable-correction", is_flag=True,
              help="Do not correct the images' relative shift on stable ground at all.")
@click.option("--min-correlation", type=float,
              help="Accept matches whose peak correlation reaches this (the tracker's min_peak_correlation; "
                   "default: the tracker's, the chance level 16/window for fft-phase, 12/window for ncc; the "
                   "reference method's is 0.95).")
@click.option("--band", type=click.IntRange(min=1),
              help="Band (1-based) of plain GeoTIFFs and drone orthomosaics to track (default: band 1, green "
                   "for RGB drone images); sensor formats read their own band.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Any other tracker parameter (repeatable), e.g. --param min_valid_fraction=0.3; VALUE is read "
                   "as a TOML value (number, true/false, quoted or bare string).")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@click.option("--json", "as_json", is_flag=True,
              help="Print what was written as JSON (output, tracker, baseline, stable-ground correction, warnings).")
def track_command(
    reference: Path,
    secondary: Path,
    output: Path,
    tracker: str | None,
    window_px: int | None,
    step_px: int | None,
    max_speed: float,
    dt_days: float | None,
    stable_mask: Path | None,
    glacier_mask: Path | None,
    no_stable_correction: bool,
    min_correlation: float | None,
    band: int | None,
    params: tuple[str, ...],
    force: bool,
    as_json: bool,
) -> None:
    """Track SECONDARY against REFERENCE and write velocities (m/day) to OUTPUT.

    REFERENCE and SECONDARY are any scenes a reader understands (Landsat,
    Sentinel-1/2, UAV, dated GeoTIFFs) or plain GeoTIFFs (then give --dt).
    The secondary is resampled onto the reference grid. OUTPUT has bands vx,
    vy (east, north), v, and the tracker's quality bands on the window-centre
    grid, NaN where no trustworthy match exists.
    """
    from gvfuse.config import DEFAULT_TRACKER, check_parameter_types, check_writable_folder
    from gvfuse.errors import InputError
    from gvfuse.pipeline.pair import check_output_not_input, make_tracker, track_files

    if output.is_dir():  # a folder is never replaced, even with --force
        raise InputError("is a folder; give the output file's name", source=output, field="--output")
    plugins = plugin_set()
    # before the write probe below: not even a temporary file goes into an input scene's folder
    check_output_not_input(output, reference, secondary, plugins=plugins, stable_mask=stable_mask,
                           glacier_mask=glacier_mask)
    check_writable_folder(output.parent, source=output, field="--output")
    tracker = tracker or DEFAULT_TRACKER
    parameters = _parameters(params)
    registration = plugins.registry.get("trackers", {}).get(tracker)
    if registration is not None:  # an unknown tracker is track_files' one-line error
        check_parameter_types(getattr(registration.cls, "defaults", {}), parameters, source="--param", where=None,
                              switchable=getattr(registration.cls, "switchable", frozenset()))
    if no_stable_correction:
        parameters["correct_stable_ground"] = False
    if min_correlation is not None:
        parameters["min_peak_correlation"] = min_correlation
    if registration is not None:  # parameters the tracker refuses: one line before any scene is read
        sizes = {k: v for k, v in (("window_px", window_px), ("step_px", step_px)) if v is not None and v >= 1}
        make_tracker(registration, {**parameters, **sizes})
    path, warnings = track_files(reference, secondary, output, plugins=plugins, tracker=tracker,
                                 window_px=window_px, step_px=step_px, max_speed_m_per_day=max_speed,
                                 dt_days=dt_days, stable_mask=stable_mask, glacier_mask=glacier_mask,
                                 tracker_parameters=parameters,
                                 band=band, force=force)
    tags = _tags(path)
    warnings = [*warnings, *_stable_ground_warnings(tags)]
    if as_json:
        echo_json({"output": str(path), "tracker": tags.get("tracker"), "dt_days": float(tags.get("dt_days", "nan")),
                   "dt_source": tags.get("dt_source"), "parameters": _json_tag(tags, "parameters"),
                   "stable_ground_correction": _json_tag(tags, "stable_ground_correction"), "warnings": warnings})
        return
    for warning in warnings:
        warn(warning)
    click.echo(f"wrote {path}")


def _parameters(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` options as tracker parameters, each value read as TOML (a bare word is a string)."""
    import tomllib

    parameters: dict[str, Any] = {}
    for item in pairs:
        key, sep, text = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--param")
        try:
            parameters[key.strip()] = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            parameters[key.strip()] = text.strip()
    return parameters


def _tags(path: Path) -> dict[str, str]:
    """The written GeoTIFF's dataset tags (what was tracked, how, and the stable-ground decision)."""
    import rasterio

    with rasterio.open(path) as src:
        return dict(src.tags())


def _json_tag(tags: dict[str, str], name: str) -> Any:
    import json

    return json.loads(tags.get(name) or "null")


def _stable_ground_warnings(tags: dict[str, str]) -> list[str]:
    """A warning when the written field's stable-ground correction was skipped (its tag says why)."""
    stable = _json_tag(tags, "stable_ground_correction") or {}
    if stable.get("decision") != "skipped":
        return []
    if tags.get("glacier_mask", "null") != "null":  # a given mask: the skip is for want of ground outside it
        where = "outside the glacier mask" + (" and inside the stable mask" if tags.get("stable_mask", "null")
                                              != "null" else "")
        found = "no window lies" if not stable.get("candidate_count") else "too few matched windows lie"
        return [f"stable-ground correction skipped ({stable.get('reason', '')}): {found} on the ground {where} "
                "(at least 90 % of a window; a glacier-only image has none), so the velocities keep any "
                "geolocation shift between the images"]
    return [f"stable-ground correction skipped ({stable.get('reason', '')}); the velocities keep any geolocation "
            "shift between the images: give --stable-mask to correct it"]
