"""A synthetic image pair and its truth: what a tracker should find, where, and in which units."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from gvfuse.io.raster import write_bands
from gvfuse.model import Grid
from gvfuse.testing.motion import MotionModel, pixel_centres
from gvfuse.testing.warping import sample_bilinear


@attrs.frozen(eq=False)
class SyntheticPair:
    """A reference and a secondary image of a known motion, with the truth.

    ``dx_px``/``dy_px`` are the true *surface* displacement at each reference
    pixel centre (columns/rows, sensor pixels); ``geolocation_shift_px =
    (dx, dy)`` is the extra constant shift of the whole secondary (a
    geolocation error), so a tracker measures ``d + shift`` and a stable-ground
    correction should recover ``shift``. ``stable_mask`` is ice-free ground
    beyond a margin; ``cloud_mask`` marks the secondary's clouds,
    ``reference_cloud_mask`` the reference's. ``motion`` is the analytic field
    (exact at any position), ``coherence`` the SAR speckle correlation per
    pixel (None for optical). Arrays are read-only.
    """

    kind: str
    reference: np.ndarray
    secondary: np.ndarray
    grid: Grid
    dx_px: np.ndarray
    dy_px: np.ndarray
    geolocation_shift_px: tuple[float, float]
    ice_mask: np.ndarray
    stable_mask: np.ndarray
    cloud_mask: np.ndarray
    reference_cloud_mask: np.ndarray
    dt_days: float
    motion: MotionModel
    band_name: str
    units: str
    seed: int
    coherence: np.ndarray | None = None

    @property
    def pixel_size_m(self) -> float:
        return self.grid.pixel_size_m[0]

    def true_velocity_m_per_day(self) -> tuple[np.ndarray, np.ndarray]:
        """True surface velocity east and north (m/day) at every pixel; the geolocation error is not motion."""
        east, north = self.grid.pixel_to_map_displacement(self.dx_px, self.dy_px)
        return (east / self.dt_days).astype(np.float32), (north / self.dt_days).astype(np.float32)

    def true_displacement_at(
        self, row_px: np.ndarray, col_px: np.ndarray, *, exact: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """True displacement (px) at continuous pixel positions (pixel ``i`` spans ``[i, i + 1)``).

        ``exact`` evaluates the analytic field; otherwise the per-pixel truth
        is sampled bilinearly. NaN outside the image.
        """
        row_px, col_px = np.broadcast_arrays(np.asarray(row_px, dtype=np.float64), np.asarray(col_px, dtype=np.float64))
        if not exact:
            return sample_bilinear(self.dx_px, row_px, col_px), sample_bilinear(self.dy_px, row_px, col_px)
        dx, dy, _ = self.motion.evaluate(row_px, col_px)
        outside = (row_px < 0) | (row_px > self.grid.rows) | (col_px < 0) | (col_px > self.grid.cols)
        dx, dy = dx.astype(np.float32), dy.astype(np.float32)
        dx[outside] = dy[outside] = np.nan
        return dx, dy

    def true_displacement_on(self, grid: Grid, *, window_px: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """True displacement (px of this image) at the cell centres of another grid, e.g. a tracker's
        :meth:`Grid.window_centre_grid`.

        With ``window_px`` the result is the mean of the per-pixel truth over
        the ``window_px x window_px`` window centred there (what an ideal
        window matcher measures where the motion varies within the window);
        the windows must then start on whole pixels. NaN where the centre or
        window leaves the image.
        """
        if grid.crs != self.grid.crs:
            raise ValueError(f"grid CRS {grid.crs} differs from the pair's {self.grid.crs}")
        row_px, col_px = self._cell_centres_in_pixels(grid)
        if window_px is None:
            return self.true_displacement_at(row_px, col_px)
        return self._window_mean(self.dx_px, row_px, col_px, window_px), self._window_mean(
            self.dy_px, row_px, col_px, window_px
        )

    def true_velocity_on(self, grid: Grid, *, window_px: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`true_displacement_on` as east/north velocity in m/day, comparable to a tracker's output."""
        dx, dy = self.true_displacement_on(grid, window_px=window_px)
        east, north = self.grid.pixel_to_map_displacement(dx, dy)
        return (east / self.dt_days).astype(np.float32), (north / self.dt_days).astype(np.float32)

    def _cell_centres_in_pixels(self, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        rows, cols = pixel_centres(grid.shape)
        rows, cols = np.broadcast_arrays(rows, cols)
        x, y = grid.transform * (cols, rows)  # type: ignore[operator]  # affine's stubs take no arrays
        col_px, row_px = ~self.grid.transform * (x, y)
        return np.asarray(row_px), np.asarray(col_px)

    @staticmethod
    def _window_mean(field: np.ndarray, row_px: np.ndarray, col_px: np.ndarray, window_px: int) -> np.ndarray:
        top, left = row_px - window_px / 2.0, col_px - window_px / 2.0
        top_i, left_i = np.rint(top).astype(np.intp), np.rint(left).astype(np.intp)
        if np.abs(top - top_i).max(initial=0) > 1e-6 or np.abs(left - left_i).max(initial=0) > 1e-6:
            raise ValueError("windows do not start on whole pixels of this image")
        # Summed-area table: any window sum from four lookups.
        table = np.zeros((field.shape[0] + 1, field.shape[1] + 1))
        table[1:, 1:] = field.astype(np.float64).cumsum(0).cumsum(1)
        rows, cols = field.shape
        valid = (top_i >= 0) & (left_i >= 0) & (top_i + window_px <= rows) & (left_i + window_px <= cols)
        top_i, left_i = np.where(valid, top_i, 0), np.where(valid, left_i, 0)
        bottom_i, right_i = top_i + window_px, left_i + window_px
        total = table[bottom_i, right_i] - table[top_i, right_i] - table[bottom_i, left_i] + table[top_i, left_i]
        return np.where(valid, total / window_px**2, np.nan).astype(np.float32)

    def write_geotiffs(
        self, folder: str | os.PathLike[str], *, stem: str = "synthetic", truth: bool = False, overwrite: bool = False
    ) -> dict[str, Path]:
        """Write ``{stem}_reference.tif`` and ``{stem}_secondary.tif`` (and ``{stem}_truth.tif``) into ``folder``.

        One float32 band each, described by :attr:`band_name`, NaN for no data,
        with the pair's facts as dataset tags. The truth file holds ``dx_px``,
        ``dy_px``, ``vx``/``vy`` (east/north, m/day) and the ``ice_mask`` and
        ``stable_mask`` as 0/1. Returns the paths by role.
        """
        folder = Path(folder)
        tags: dict[str, Any] = {
            "synthetic": "gvfuse.testing", "kind": self.kind, "seed": self.seed, "dt_days": self.dt_days,
            "geolocation_shift_px": list(self.geolocation_shift_px),
        }
        units = {self.band_name: self.units}
        paths = {
            role: write_bands(
                folder / f"{stem}_{role}.tif", {self.band_name: image}, self.grid, units=units,
                tags={**tags, "role": role}, cog=False, overwrite=overwrite,
            )
            for role, image in (("reference", self.reference), ("secondary", self.secondary))
        }
        if truth:
            vx, vy = self.true_velocity_m_per_day()
            bands = {
                "dx_px": self.dx_px, "dy_px": self.dy_px, "vx": vx, "vy": vy,
                "ice_mask": self.ice_mask.astype(np.float32), "stable_mask": self.stable_mask.astype(np.float32),
            }
            truth_units = {"dx_px": "px", "dy_px": "px", "vx": "m/day", "vy": "m/day"}
            paths["truth"] = write_bands(
                folder / f"{stem}_truth.tif", bands, self.grid, units=truth_units,
                tags={**tags, "role": "truth"}, cog=False, overwrite=overwrite,
            )
        return paths
