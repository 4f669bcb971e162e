"""``gvfuse validate``: quality figures and plots of one velocity map.

A thin layer over :mod:`gvfuse.quality` and :mod:`gvfuse.masks`:
:func:`validate_files` computes the figures, :func:`write_plots` draws them,
:data:`validate_command` is the click command (wired into ``gvfuse`` by
``main.add_command(validate_command)``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import click
import numpy as np

from gvfuse.errors import GridError, GvfuseError, InputError
from gvfuse.masks import load_mask
from gvfuse.model import Grid
from gvfuse.quality import compare_to_reference, stable_ground_statistics, strain_rate_metric
from gvfuse.raster import read_bands, read_single_band

PathLike = str | os.PathLike[str]


def read_velocity(
    product: PathLike | None = None, vx: PathLike | None = None, vy: PathLike | None = None
) -> tuple[np.ndarray, np.ndarray, Grid]:
    """vx, vy (m/day, NaN no data) and their grid, from one raster with bands described
    ``vx`` and ``vy``, or from two single-band rasters on the same grid."""
    if product is not None:
        if vx is not None or vy is not None:
            raise InputError("give either PRODUCT or --vx and --vy, not both", source="command line")
        bands, grid, _tags = read_bands(product, ("vx", "vy"))
        return bands["vx"], bands["vy"], grid
    if vx is None or vy is None:
        raise InputError("give PRODUCT (bands vx, vy) or both --vx and --vy", source="command line")
    vx_arr, grid = read_single_band(vx)
    vy_arr, grid_y = read_single_band(vy)
    if grid_y != grid:
        raise GridError(f"not on the grid of {vx}", source=vy)
    return vx_arr, vy_arr, grid


def _figures(compute: Any, source: object) -> dict[str, Any]:
    try:
        return compute().to_dict()
    except ValueError as exc:
        raise InputError(str(exc), source=source) from exc


def validate_arrays(
    vx: np.ndarray,
    vy: np.ndarray,
    grid: Grid,
    *,
    stable_mask: np.ndarray | None = None,
    on_ice_mask: np.ndarray | None = None,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
    sources: dict[str, object] | None = None,
) -> dict[str, dict[str, Any] | None]:
    """The figures under keys ``stable_ground``, ``uav``, ``strain_rate`` (None when not asked for)."""
    sources = sources or {}
    out: dict[str, dict[str, Any] | None] = {"stable_ground": None, "uav": None, "strain_rate": None}
    if stable_mask is not None:
        out["stable_ground"] = _figures(lambda: stable_ground_statistics(vx, vy, stable_mask),
                                        sources.get("stable_mask", "stable mask"))
    if reference is not None:
        out["uav"] = _figures(lambda: compare_to_reference(vx, vy, *reference), sources.get("reference", "reference"))
    if on_ice_mask is not None:
        out["strain_rate"] = _figures(lambda: strain_rate_metric(vx, vy, grid, on_ice_mask),
                                      sources.get("on_ice_mask", "on-ice mask"))
    return out


def read_reference(path: PathLike, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """A reference (UAV) velocity with bands ``vx`` and ``vy`` on ``grid``."""
    bands, ref_grid, _tags = read_bands(path, ("vx", "vy"))
    if ref_grid != grid:
        raise GridError(f"reference is on grid {ref_grid.shape} {tuple(ref_grid.transform)[:6]}, the map on "
                        f"{grid.shape} {tuple(grid.transform)[:6]}; resample it onto the map's grid", source=path)
    return bands["vx"], bands["vy"]


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def format_summary(figures: dict[str, dict[str, Any] | None]) -> str:
    """A readable summary of :func:`validate_arrays`' figures."""
    lines: list[str] = []
    sg = figures.get("stable_ground")
    if sg:
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
    if uav:
        lines += [f"UAV reference: {uav['count']} common cells", "            bias      std       RMSE      NMAD     (m/day)"]
        for c in ("vx", "vy", "speed"):
            lines.append(f"  {c:<6}" + "".join(f"{uav[f'{c}_{k}_m_per_day']:>+10.4f}" for k in ("bias", "std", "rmse", "nmad")))
    sr = figures.get("strain_rate")
    if sr:
        lines += [
            f"strain rate on ice: {sr['valid_count']} of {sr['cell_count']} cells",
            f"  GLAFT metric 2: dx'x' = {sr['delta_xx_per_day']:.3e}, dx'y' = {sr['delta_xy_per_day']:.3e} 1/day "
            f"(GLAFT's unnormalised-Sobel convention: {sr['delta_xx_glaft_per_day']:.3e}, "
            f"{sr['delta_xy_glaft_per_day']:.3e})",
        ]
    return "\n".join(lines) if lines else "no figures: give --stable-mask, --on-ice-mask and/or --reference"


def write_plots(
    directory: PathLike,
    vx: np.ndarray,
    vy: np.ndarray,
    grid: Grid,
    *,
    stable_mask: np.ndarray | None = None,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
    arrows: int = 30,
) -> list[Path]:
    """PNG plots: the velocity map with flow arrows, the stable-ground residual histograms with
    the fitted normal, and the scatter against the reference. Returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    left, bottom, right, top = grid.bounds
    speed = np.hypot(vx, vy)

    fig, ax = plt.subplots(figsize=(8, 8 * grid.rows / grid.cols + 0.5))
    finite = speed[np.isfinite(speed)]
    vmax = float(np.percentile(finite, 99)) if finite.size else 1.0
    image = ax.imshow(speed, extent=(left, right, bottom, top), cmap="viridis", vmin=0, vmax=vmax)
    step = max(1, max(grid.shape) // arrows)
    rows, cols = np.mgrid[step // 2:grid.rows:step, step // 2:grid.cols:step]
    t = grid.transform
    xs, ys = t.c + t.a * (cols + 0.5) + t.b * (rows + 0.5), t.f + t.d * (cols + 0.5) + t.e * (rows + 0.5)
    u, v = vx[rows, cols], vy[rows, cols]
    shrink = np.minimum(1.0, vmax / np.maximum(np.hypot(u, v), 1e-12))  # outliers get capped arrows
    u, v = u * shrink, v * shrink
    ax.quiver(xs, ys, u, v, color="white", angles="uv", pivot="middle", scale_units="inches",
              scale=max(vmax, 1e-9) * 3, width=0.002)
    if stable_mask is not None:
        ax.contour(np.flipud(stable_mask.astype(float)), levels=[0.5], colors="orange", linewidths=0.6,
                   extent=(left, right, bottom, top))
    fig.colorbar(image, ax=ax, label="speed (m/day)", shrink=0.8)
    ax.set_title("velocity: speed and flow direction")
    ax.set_xlabel(f"easting ({grid.crs.to_string()})")
    ax.set_ylabel("northing")
    written.append(directory / "velocity_map.png")
    fig.savefig(written[-1], dpi=120, bbox_inches="tight")
    plt.close(fig)

    if stable_mask is not None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, name, values in zip(axes, ("vx", "vy"), (vx, vy)):
            resid = values[stable_mask & np.isfinite(vx) & np.isfinite(vy)].astype("float64")
            if resid.size == 0:
                continue
            centre, spread = float(np.median(resid)), float(1.4826 * np.median(np.abs(resid - np.median(resid))))
            lo, hi = centre - 6 * max(spread, 1e-9), centre + 6 * max(spread, 1e-9)
            ax.hist(resid, bins=48, range=(lo, hi), density=True, color="0.6", label=f"{name} on stable ground")
            mu, sd = resid.mean(), resid.std(ddof=1)
            grid_x = np.linspace(lo, hi, 400)
            ax.plot(grid_x, np.exp(-0.5 * ((grid_x - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi)),
                    "r-", label=f"normal fit: mean {mu:+.3f}, std {sd:.3f}")
            robust_sd = max(spread, 1e-9)
            ax.plot(grid_x, np.exp(-0.5 * ((grid_x - centre) / robust_sd) ** 2) / (robust_sd * math.sqrt(2 * math.pi)),
                    "b--", label=f"robust normal: median {centre:+.3f}, NMAD {spread:.3f}")
            ax.set_xlabel(f"{name} residual (m/day)")
            ax.set_ylabel("density")
            ax.legend(fontsize=8)
        fig.suptitle("stable-ground residuals")
        written.append(directory / "stable_ground_histogram.png")
        fig.savefig(written[-1], dpi=120, bbox_inches="tight")
        plt.close(fig)

    if reference is not None:
        rvx, rvy = reference
        both = np.isfinite(vx) & np.isfinite(vy) & np.isfinite(rvx) & np.isfinite(rvy)
        fig, axes = plt.subplots(1, 3, figsize=(14, 4.5))
        for ax, name, ours, ref in zip(axes, ("vx", "vy", "speed"), (vx, vy, speed), (rvx, rvy, np.hypot(rvx, rvy))):
            a, b = ref[both], ours[both]
            ax.scatter(a, b, s=2, alpha=0.4)
            if a.size:
                lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
                ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
            ax.set_xlabel(f"UAV {name} (m/day)")
            ax.set_ylabel(f"map {name} (m/day)")
            ax.set_aspect("equal", adjustable="datalim")
        fig.suptitle("map against UAV reference")
        written.append(directory / "uav_scatter.png")
        fig.savefig(written[-1], dpi=120, bbox_inches="tight")
        plt.close(fig)
    return written


@click.command("validate")
@click.argument("product", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--vx", "vx_path", type=click.Path(dir_okay=False, path_type=Path), help="Single-band vx raster (m/day).")
@click.option("--vy", "vy_path", type=click.Path(dir_okay=False, path_type=Path), help="Single-band vy raster (m/day).")
@click.option("--stable-mask", type=click.Path(path_type=Path),
              help="Ice-free ground: raster (non-zero = stable) or polygons (shapefile, GeoPackage, GeoJSON).")
@click.option("--on-ice-mask", type=click.Path(path_type=Path), help="On-ice area for strain rates (raster or polygons).")
@click.option("--reference", type=click.Path(dir_okay=False, path_type=Path),
              help="Reference (UAV) velocity GeoTIFF with bands vx, vy on the same grid.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--plots", type=click.Path(file_okay=False, path_type=Path), help="Write PNG plots into this folder.")
@click.pass_context
def validate_command(
    ctx: click.Context,
    product: Path | None,
    vx_path: Path | None,
    vy_path: Path | None,
    stable_mask: Path | None,
    on_ice_mask: Path | None,
    reference: Path | None,
    as_json: bool,
    plots: Path | None,
) -> None:
    """Quality of a velocity map PRODUCT.tif (bands vx, vy in m/day; or --vx/--vy).

    Stable ground (--stable-mask): mean, median, std, NMAD, normality test and
    GLAFT metric 1 (Zheng et al. 2023). On ice (--on-ice-mask): GLAFT metric 2,
    along-flow strain rates. UAV (--reference): bias, std, RMSE, NMAD.
    Mask polygons select the cells whose centre lies inside them.
    """
    try:
        vx, vy, grid = read_velocity(product, vx_path, vy_path)
        stable = load_mask(stable_mask, grid, what="stable-ground mask") if stable_mask else None
        on_ice = load_mask(on_ice_mask, grid, what="on-ice mask") if on_ice_mask else None
        ref = read_reference(reference, grid) if reference else None
        figures = validate_arrays(vx, vy, grid, stable_mask=stable, on_ice_mask=on_ice, reference=ref,
                                  sources={"stable_mask": stable_mask, "on_ice_mask": on_ice_mask,
                                           "reference": reference})
        written = write_plots(plots, vx, vy, grid, stable_mask=stable, reference=ref) if plots else []
    except GvfuseError as exc:
        click.echo(f"gvfuse: error: {exc}", err=True)
        ctx.exit(1)
    if as_json:
        click.echo(json.dumps(_json_safe(figures), indent=2))
    else:
        click.echo(format_summary(figures))
        for path in written:
            click.echo(f"wrote {path}")
