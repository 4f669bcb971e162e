"""Quick-look and thumbnail PNGs of a month: speed map, colour bar, flow arrows.

Rendered with matplotlib's Agg backend on an explicit ``Figure`` (no pyplot
state, safe in threads and on headless machines). The PNG ``Software`` text
chunk is dropped and no date is written, so the bytes depend only on the
product and the matplotlib/Agg version: publishing twice gives identical files.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from gvfuse.atomic import write_bytes_atomic
from gvfuse.model import MonthlyProduct

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
    return max(1, int(round(max(shape) / arrows_across)))


def render_quicklook_png(product: MonthlyProduct, title: str = "") -> bytes:
    """PNG bytes: speed (m/d) with a colour bar, flow arrows of (vx, vy), map axes in km."""
    from matplotlib.figure import Figure

    speed = product.speed_m_per_day
    vmax = speed_limit_m_per_day(speed)
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
            xs = (t.c + t.a * (cc + 0.5) + t.b * (rr + 0.5)) / 1000
            ys = (t.f + t.d * (cc + 0.5) + t.e * (rr + 0.5)) / 1000
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


def render_thumbnail_png(product: MonthlyProduct, max_px: int = THUMBNAIL_MAX_PX) -> bytes:
    """PNG bytes: the speed map alone, block-averaged to at most ``max_px`` pixels on its long side."""
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
    vmax = speed_limit_m_per_day(speed)
    rgba = colormaps[COLORMAP](np.clip(np.nan_to_num(speed, nan=0.0) / vmax, 0.0, 1.0))
    rgba[..., 3] = np.where(np.isfinite(speed), 1.0, 0.0)
    buffer = io.BytesIO()
    imsave(buffer, rgba, format="png", metadata=_PNG_METADATA)
    return buffer.getvalue()


def write_quicklooks(
    product: MonthlyProduct, quicklook_path: str | Path, thumbnail_path: str | Path, *,
    force: bool = False, title: str = "",
) -> tuple[Path, Path]:
    """Write the quick-look and the thumbnail atomically; existing files need ``force=True``."""
    quicklook = write_bytes_atomic(quicklook_path, render_quicklook_png(product, title), overwrite=force)
    thumbnail = write_bytes_atomic(thumbnail_path, render_thumbnail_png(product), overwrite=force)
    return quicklook, thumbnail
