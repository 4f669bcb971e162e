"""``gvfuse validate MAP``: quality figures and plots of one velocity map, by every registered validator."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gvfuse.cli.common import Command, echo_json, plugin_set

if TYPE_CHECKING:
    from gvfuse.plugins import PluginSet

def _context_entry(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    entries = {}
    for value in values:
        key, sep, given = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", ctx=ctx, param=param)
        entries[key.strip()] = given
    return entries


def format_summary(figures: Mapping[str, Mapping[str, Any]], plugins: PluginSet) -> str:
    """A readable summary: each validator's own layout of its figures, then the ones skipped and why."""
    from gvfuse.interfaces import Validator

    lines: list[str] = []
    for name, result in figures.items():
        if "skipped" not in result:
            cls = plugins.get("validators", name).cls
            assert issubclass(cls, Validator)  # checked when the plugin registered it
            lines += cls.summarise(result)
    lines += [f"{name}: skipped ({result['skipped']})" for name, result in figures.items() if "skipped" in result]
    return "\n".join(lines) if lines else "no figures: no validator is registered"


@click.command("validate", cls=Command)
@click.argument("product", required=False, type=click.Path(path_type=Path))
@click.option("--vx", "vx_path", type=click.Path(path_type=Path), help="Single-band vx raster (m/day).")
@click.option("--vy", "vy_path", type=click.Path(path_type=Path), help="Single-band vy raster (m/day).")
@click.option("--stable-mask", type=click.Path(path_type=Path),
              help="Ice-free ground: raster (non-zero = stable) or polygons (shapefile, GeoPackage, GeoJSON).")
@click.option("--glacier-mask", type=click.Path(path_type=Path),
              help="The glaciers (raster, non-zero = ice, or polygons such as RGI outlines): without "
                   "--stable-mask, the stable ground is every cell outside them.")
@click.option("--on-ice-mask", type=click.Path(path_type=Path),
              help="On-ice area for strain rates (raster or polygons).")
@click.option("--reference", type=click.Path(path_type=Path),
              help="Reference (UAV) velocity GeoTIFF with bands vx, vy on the same grid.")
@click.option("--context", "context", multiple=True, metavar="KEY=VALUE", callback=_context_entry,
              help="A further context entry a validator needs (a mask or other path, or a value); repeatable.")
@click.option("--validator", "validators", multiple=True, metavar="NAME",
              help="Run only this validator (repeatable; default: every registered validator).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--plots", type=click.Path(path_type=Path), help="Write PNG plots into this folder.")
def validate_command(
    product: Path | None,
    vx_path: Path | None,
    vy_path: Path | None,
    stable_mask: Path | None,
    glacier_mask: Path | None,
    on_ice_mask: Path | None,
    reference: Path | None,
    context: dict[str, str],
    validators: tuple[str, ...],
    as_json: bool,
    plots: Path | None,
) -> None:
    """Quality of a velocity map PRODUCT.tif (bands vx, vy in m/day; or --vx/--vy).

    Every registered validator runs whose context is given. Bundled: on
    stable ground (--stable-mask, or outside --glacier-mask) mean, median, std, NMAD, normality test and
    GLAFT metric 1 (Zheng et al. 2023); on ice (--on-ice-mask) GLAFT metric
    2, along-flow strain rates; against a UAV map (--reference) bias, std,
    RMSE, NMAD. Mask polygons select the cells whose centre lies inside them.
    """
    from gvfuse.io.masks import stable_ground
    from gvfuse.pipeline.validate import read_reference, read_velocity, validate_map
    from gvfuse.plots import validation_plots

    field = read_velocity(product, vx_path, vy_path)
    entries: dict[str, Any] = dict(context)
    if stable_mask is not None:
        entries["stable_mask"] = stable_mask
    if on_ice_mask is not None:
        entries["on_ice_mask"] = on_ice_mask
    ref = read_reference(reference, field.grid) if reference else None
    plugins = plugin_set()
    figures = validate_map(plugins, field, names=validators or None, entries=entries, reference=ref,
                           glacier_mask=glacier_mask)
    written: list[Path] = []
    if plots:
        stable = stable_ground(field.grid, stable_mask=stable_mask, glacier_mask=glacier_mask)
        written = validation_plots(plots, field.vx_m_per_day, field.vy_m_per_day, field.grid, stable_mask=stable,
                                   reference=(ref.vx_m_per_day, ref.vy_m_per_day) if ref else None)
    if as_json:
        echo_json(figures)
        return
    click.echo(format_summary(figures, plugins))
    for path in written:
        click.echo(f"wrote {path}")
