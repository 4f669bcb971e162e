"""Every figure gvfuse draws: a month's quick-look and thumbnail, and the validation plots of a map.

Rendered with matplotlib's Agg backend on explicit ``Figure`` objects (no
pyplot state, safe in threads and on headless machines). The PNG ``Software``
text chunk is dropped and no date is written, so the bytes depend only on the
data and the matplotlib/Agg version: publishing twice gives identical files.

* :func:`render_quicklook_png`, :func:`render_thumbnail_png`: a month's speed
  map with colour bar and flow arrows, and a small speed image (PNG bytes).
* :func:`validation_plots`: the velocity map with flow arrows, the
  stable-ground residual histograms with the fitted normal, and the scatter
  against a reference (``gvfuse validate --plots``, the demo's plots).
"""

from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gvfuse.io.atomic import write_bytes_atomic
from gvfuse.model import Grid, MonthlyProduct
from gvfuse.stats import nmad

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: No ``Software`` chunk (it names the matplotlib version); matplotlib writes no date by default.
_PNG_METADATA: dict[str, str | None] = {"Software": None}
COLORMAP = "viridis"
THUMBNAIL_MAX_PX = 256


def speed_limit_m_per_day(speed: np.ndarray) -> float:
    """Upper end of the colour scale: the 99th percentile of finite speeds (1 when there are none)."""
    finite = speed[np.isfinite(speed)]
    top = float(np.percentile(finite, 99)) if finite.size else 0.0
    return top if top > 0 else 1.0


def _arrow_step(shape: tuple[int, int], arrows_across: int = 25) -> int:
    return max(1, round(max(shape) / arrows_across))


def render_quicklook_png(product: MonthlyProduct, title: str = "", vmax_m_per_day: float | None = None) -> bytes:
    """PNG bytes: speed (m/d) with a colour bar, flow arrows of (vx, vy), map axes in km.

    ``vmax_m_per_day`` fixes the colour scale's top (a product's months compare by eye); ``None``: the
    month's 99th percentile.
    """
    from matplotlib.figure import Figure

    speed = product.speed_m_per_day
    vmax = vmax_m_per_day or speed_limit_m_per_day(speed)
    left, bottom, right, top = product.grid.bounds
    north_up = product.grid.transform.b == 0 and product.grid.transform.d == 0
    fig = Figure(figsize=(8, 6), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    if north_up:
        extent = (left / 1000, right / 1000, bottom / 1000, top / 1000)
        ax.set_xlabel("easting (km)")
        ax.set_ylabel("northing (km)")
    else:
        extent = (0, product.grid.cols, product.grid.rows, 0)
        ax.set_xlabel("column")
        ax.set_ylabel("row")
    image = ax.imshow(np.ma.masked_invalid(speed), cmap=COLORMAP, vmin=0.0, vmax=vmax, extent=extent,
                      interpolation="nearest")
    colorbar = fig.colorbar(image, ax=ax, shrink=0.85, extend="max")
    colorbar.set_label("speed (m/d)")

    step = _arrow_step(product.grid.shape)
    rows = np.arange(step // 2, product.grid.rows, step)
    cols = np.arange(step // 2, product.grid.cols, step)
    cc, rr = np.meshgrid(cols, rows)
    u = product.vx_m_per_day[rr, cc]
    v = product.vy_m_per_day[rr, cc]
    ok = np.isfinite(u) & np.isfinite(v)
    if ok.any():
        if north_up:
            t = product.grid.transform
            xs: np.ndarray = (t.c + t.a * (cc + 0.5) + t.b * (rr + 0.5)) / 1000
            ys: np.ndarray = (t.f + t.d * (cc + 0.5) + t.e * (rr + 0.5)) / 1000
            u_plot, v_plot = u, v
        else:
            xs, ys = cc + 0.5, rr + 0.5
            u_plot, v_plot = u, -v
        ax.quiver(xs[ok], ys[ok], u_plot[ok], v_plot[ok], color="white", edgecolor="black", linewidth=0.3,
                  angles="xy", pivot="middle", scale=vmax * 18, width=0.004)
    ax.set_title(title or f"{product.month}: surface speed and flow direction")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata=_PNG_METADATA)
    return buffer.getvalue()


def render_thumbnail_png(product: MonthlyProduct, max_px: int = THUMBNAIL_MAX_PX,
                         vmax_m_per_day: float | None = None) -> bytes:
    """PNG bytes: the speed map alone, block-averaged to at most ``max_px`` pixels on its long side
    (colour scale as :func:`render_quicklook_png`'s)."""
    from matplotlib import colormaps
    from matplotlib.image import imsave

    speed = product.speed_m_per_day.astype("float64")
    factor = max(1, int(np.ceil(max(speed.shape) / max_px)))
    rows, cols = (speed.shape[0] // factor) * factor, (speed.shape[1] // factor) * factor
    if factor > 1 and rows and cols:
        blocks = speed[:rows, :cols].reshape(rows // factor, factor, cols // factor, factor)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks stay NaN
            speed = np.nanmean(blocks, axis=(1, 3))
    vmax = vmax_m_per_day or speed_limit_m_per_day(speed)
    rgba = colormaps[COLORMAP](np.clip(np.nan_to_num(speed, nan=0.0) / vmax, 0.0, 1.0))
    rgba[..., 3] = np.where(np.isfinite(speed), 1.0, 0.0)
    buffer = io.BytesIO()
    # matplotlib's stubs want str values; None is how its PNG writer drops a default key.
    imsave(buffer, rgba, format="png", metadata=_PNG_METADATA)  # type: ignore[arg-type]
    return buffer.getvalue()


def _normal_density(x: np.ndarray, centre: float, spread: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - centre) / spread) ** 2) / (spread * math.sqrt(2 * math.pi))


def _save(fig: Figure, path: Path) -> None:
    """Write a figure as PNG atomically: a reader never sees half a plot, a kill leaves the old one."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight", metadata=_PNG_METADATA)
    write_bytes_atomic(path, buffer.getvalue(), overwrite=True)


def validation_plots(
    directory: str | os.PathLike[str],
    vx: np.ndarray,
    vy: np.ndarray,
    grid: Grid,
    *,
    stable_mask: np.ndarray | None = None,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
    arrows: int = 30,
) -> list[Path]:
    """PNG plots of a velocity map (m/day) into ``directory``; returns the files written.

    ``velocity_map.png``: speed with flow arrows (outliers get capped arrows)
    and the stable-ground outline; ``stable_ground_histogram.png`` (with a
    mask): the vx and vy residuals with the normal fitted by mean/std and the
    robust one by median/NMAD; ``uav_scatter.png`` (with a reference): map
    against reference per component and for the speed.
    """
    from matplotlib.figure import Figure

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    left, bottom, right, top = grid.bounds
    speed = np.hypot(vx, vy)

    fig = Figure(figsize=(8, 8 * grid.rows / grid.cols + 0.5))
    ax = fig.add_subplot()
    finite = speed[np.isfinite(speed)]
    vmax = float(np.percentile(finite, 99)) if finite.size else 1.0
    image = ax.imshow(speed, extent=(left, right, bottom, top), cmap=COLORMAP, vmin=0, vmax=vmax)
    step = max(1, max(grid.shape) // arrows)
    rows, cols = np.mgrid[step // 2:grid.rows:step, step // 2:grid.cols:step]
    t = grid.transform
    xs, ys = t.c + t.a * (cols + 0.5) + t.b * (rows + 0.5), t.f + t.d * (cols + 0.5) + t.e * (rows + 0.5)
    u, v = vx[rows, cols], vy[rows, cols]
    shrink = np.minimum(1.0, vmax / np.maximum(np.hypot(u, v), 1e-12))
    ax.quiver(xs, ys, u * shrink, v * shrink, color="white", angles="uv", pivot="middle", scale_units="inches",
              scale=max(vmax, 1e-9) * 3, width=0.002)
    if stable_mask is not None:
        ax.contour(np.flipud(stable_mask.astype(float)), levels=[0.5], colors="orange", linewidths=0.6,
                   extent=(left, right, bottom, top))
    fig.colorbar(image, ax=ax, label="speed (m/day)", shrink=0.8)
    ax.set_title("velocity: speed and flow direction")
    ax.set_xlabel(f"easting ({grid.crs.to_string()})")
    ax.set_ylabel("northing")
    written.append(directory / "velocity_map.png")
    _save(fig, written[-1])

    if stable_mask is not None:
        fig = Figure(figsize=(10, 4))
        for ax, name, values in zip(fig.subplots(1, 2), ("vx", "vy"), (vx, vy)):
            resid = values[stable_mask & np.isfinite(vx) & np.isfinite(vy)].astype("float64")
            if resid.size == 0:
                continue
            centre, spread = float(np.median(resid)), max(nmad(resid), 1e-9)
            lo, hi = centre - 6 * spread, centre + 6 * spread
            ax.hist(resid, bins=48, range=(lo, hi), density=True, color="0.6", label=f"{name} on stable ground")
            mu, sd = resid.mean(), resid.std(ddof=1)
            grid_x = np.linspace(lo, hi, 400)
            ax.plot(grid_x, _normal_density(grid_x, mu, sd), "r-", label=f"normal fit: mean {mu:+.3f}, std {sd:.3f}")
            ax.plot(grid_x, _normal_density(grid_x, centre, spread), "b--",
                    label=f"robust normal: median {centre:+.3f}, NMAD {spread:.3f}")
            ax.set_xlabel(f"{name} residual (m/day)")
            ax.set_ylabel("density")
            ax.legend(fontsize=8)
        fig.suptitle("stable-ground residuals")
        written.append(directory / "stable_ground_histogram.png")
        _save(fig, written[-1])

    if reference is not None:
        rvx, rvy = reference
        both = np.isfinite(vx) & np.isfinite(vy) & np.isfinite(rvx) & np.isfinite(rvy)
        fig = Figure(figsize=(14, 4.5))
        for ax, name, ours, ref in zip(fig.subplots(1, 3), ("vx", "vy", "speed"), (vx, vy, speed),
                                       (rvx, rvy, np.hypot(rvx, rvy))):
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
        _save(fig, written[-1])
    return written
