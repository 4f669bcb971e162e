"""``gvfuse validate MAP``: quality figures and plots of one velocity map, by every registered validator."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from gvfuse.cli.common import Command, echo_json, plugin_set

#: Validators whose figures the summary lays out as a table; the others are listed key by key.
_LAID_OUT = ("stable-ground", "uav", "strain-rate")


def _context_entry(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    entries = {}
    for value in values:
        key, sep, given = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", ctx=ctx, param=param)
        entries[key.strip()] = given
    return entries


def format_summary(figures: Mapping[str, Mapping[str, Any]]) -> str:
    """A readable summary of each validator's figures (the bundled ones laid out, others as key: value)."""
    lines: list[str] = []
    for name, result in figures.items():
        if "skipped" in result:
            lines.append(f"{name}: skipped ({result['skipped']})")
    sg = figures.get("stable-ground")
    if sg and "skipped" not in sg:
        lines += [
            f"stable ground: {sg['valid_count']} valid of {sg['cell_count']} cells "
            f"({sg['invalid_percent']:.1f} % invalid)",
            "            mean      median    std       NMAD     (m/day)",
        ]
        for c in ("vx", "vy"):
            lines.append(f"  {c}   " + "".join(f"{sg[f'{c}_{k}_m_per_day']:>+10.4f}" for k in ("mean", "median", "std", "nmad")))
        for c in ("vx", "vy"):
            if f"{c}_normality_p_value" in sg:
                verdict = "normal" if sg[f"{c}_normal_at_5_percent"] else "not normal"
                lines.append(f"  {c} D'Agostino-Pearson K2 = {sg[f'{c}_normality_statistic']:.1f}, "
                             f"p = {sg[f'{c}_normality_p_value']:.3g} ({verdict} at 5 %)")
        lines.append(f"  GLAFT metric 1: dx = {sg['delta_x_m_per_day']:.4f}, dy = {sg['delta_y_m_per_day']:.4f} m/day, "
                     f"KDE peak ({sg['kde_peak_vx_m_per_day']:+.4f}, {sg['kde_peak_vy_m_per_day']:+.4f}) m/day, "
                     f"{sg['wrong_match_percent']:.1f} % wrong matches")
    uav = figures.get("uav")
    if uav and "skipped" not in uav:
        lines += [f"UAV reference: {uav['count']} common cells", "            bias      std       RMSE      NMAD     (m/day)"]
        for c in ("vx", "vy", "speed"):
            lines.append(f"  {c:<6}" + "".join(f"{uav[f'{c}_{k}_m_per_day']:>+10.4f}" for k in ("bias", "std", "rmse", "nmad")))
    sr = figures.get("strain-rate")
    if sr and "skipped" not in sr:
        lines += [
            f"strain rate on ice: {sr['valid_count']} of {sr['cell_count']} cells",
            f"  GLAFT metric 2: dx'x' = {sr['delta_xx_per_day']:.3e}, dx'y' = {sr['delta_xy_per_day']:.3e} 1/day "
            f"(GLAFT's unnormalised-Sobel convention: {sr['delta_xx_glaft_per_day']:.3e}, "
            f"{sr['delta_xy_glaft_per_day']:.3e})",
        ]
    for name, result in figures.items():
        if name not in _LAID_OUT and "skipped" not in result:
            lines.append(f"{name}:")
            lines += [f"  {key}: {value}" for key, value in result.items()]
    return "\n".join(lines) if lines else "no figures: no validator is registered"


@click.command("validate", cls=Command)
@click.argument("product", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--vx", "vx_path", type=click.Path(dir_okay=False, path_type=Path), help="Single-band vx raster (m/day).")
@click.option("--vy", "vy_path", type=click.Path(dir_okay=False, path_type=Path), help="Single-band vy raster (m/day).")
@click.option("--stable-mask", type=click.Path(path_type=Path),
              help="Ice-free ground: raster (non-zero = stable) or polygons (shapefile, GeoPackage, GeoJSON).")
@click.option("--on-ice-mask", type=click.Path(path_type=Path), help="On-ice area for strain rates (raster or polygons).")
@click.option("--reference", type=click.Path(dir_okay=False, path_type=Path),
              help="Reference (UAV) velocity GeoTIFF with bands vx, vy on the same grid.")
@click.option("--context", "context", multiple=True, metavar="KEY=VALUE", callback=_context_entry,
              help="A further context entry a validator needs (a mask or other path, or a value); repeatable.")
@click.option("--validator", "validators", multiple=True, metavar="NAME",
              help="Run only this validator (repeatable; default: every registered validator).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--plots", type=click.Path(file_okay=False, path_type=Path), help="Write PNG plots into this folder.")
def validate_command(
    product: Path | None,
    vx_path: Path | None,
    vy_path: Path | None,
    stable_mask: Path | None,
    on_ice_mask: Path | None,
    reference: Path | None,
    context: dict[str, str],
    validators: tuple[str, ...],
    as_json: bool,
    plots: Path | None,
) -> None:
    """Quality of a velocity map PRODUCT.tif (bands vx, vy in m/day; or --vx/--vy).

    Every registered validator runs whose context is given. Bundled: on
    stable ground (--stable-mask) mean, median, std, NMAD, normality test and
    GLAFT metric 1 (Zheng et al. 2023); on ice (--on-ice-mask) GLAFT metric
    2, along-flow strain rates; against a UAV map (--reference) bias, std,
    RMSE, NMAD. Mask polygons select the cells whose centre lies inside them.
    """
    from gvfuse.io.masks import load_mask
    from gvfuse.pipeline.validate import read_reference, read_velocity, validate_map
    from gvfuse.plots import validation_plots

    field = read_velocity(product, vx_path, vy_path)
    entries: dict[str, Any] = dict(context)
    if stable_mask is not None:
        entries["stable_mask"] = stable_mask
    if on_ice_mask is not None:
        entries["on_ice_mask"] = on_ice_mask
    ref = read_reference(reference, field.grid) if reference else None
    figures = validate_map(plugin_set(), field, names=validators or None, entries=entries, reference=ref)
    written: list[Path] = []
    if plots:
        stable = load_mask(stable_mask, field.grid, what="stable-ground mask") if stable_mask else None
        written = validation_plots(plots, field.vx_m_per_day, field.vy_m_per_day, field.grid, stable_mask=stable,
                                   reference=(ref.vx_m_per_day, ref.vy_m_per_day) if ref else None)
    if as_json:
        echo_json(figures)
        return
    click.echo(format_summary(figures))
    for path in written:
        click.echo(f"wrote {path}")
