"""Analytic surface displacement fields in image pixels.

Every model maps continuous pixel positions to displacements, so the same
field can be evaluated exactly on the sensor grid, on an oversampled grid for
warping, or at a tracker's window centres. Positions are ``(row, col)`` with
pixel ``i`` spanning ``[i, i + 1)`` (its centre at ``i + 0.5``); ``dx_px`` is
along columns (+ = right/east on north-up grids) and ``dy_px`` along rows
(+ = down/south). A surface point at ``p`` in the reference is found at
``p + d(p)`` in the secondary.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs
import numpy as np
from scipy import ndimage


@runtime_checkable
class MotionModel(Protocol):
    """A displacement field and the region that moves (the ice)."""

    def evaluate(self, row: np.ndarray, col: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(dx_px, dy_px, ice)`` at continuous pixel positions (broadcast together).

        ``dx_px``/``dy_px`` are float64, ``ice`` is boolean: True where the
        surface is ice (for whole-scene motions, everywhere). The displacement
        must be zero wherever ``ice`` is False: off-ice ground is stable by
        definition, and scene builders rely on it to skip evaluating there.
        """
        ...


def pixel_centres(shape: tuple[int, int], oversample: int = 1, offset_px: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Continuous (row, col) coordinates of the centres of a grid ``oversample`` times finer than ``shape``.

    Fine pixel ``I`` has its centre at ``(I + 0.5) / oversample + offset_px`` sensor pixels.
    Returned as broadcastable column/row vectors.
    """
    rows = (np.arange(shape[0] * oversample) + 0.5) / oversample + offset_px
    cols = (np.arange(shape[1] * oversample) + 0.5) / oversample + offset_px
    return rows[:, None], cols[None, :]


def sample_motion(
    model: MotionModel, shape: tuple[int, int], oversample: int = 1, offset_px: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dx_px, dy_px, ice_mask)`` at every pixel centre of ``shape`` (float32, float32, bool)."""
    row, col = pixel_centres(shape, oversample, offset_px)
    dx, dy, ice = model.evaluate(*np.broadcast_arrays(row, col))
    return dx.astype(np.float32), dy.astype(np.float32), np.asarray(ice, dtype=bool)


def max_displacement_gradient(dx_px: np.ndarray, dy_px: np.ndarray) -> float:
    """Largest spectral norm of the displacement gradient (px/px) over a sampled field.

    Below 1 the motion never folds the surface over itself and the warp's
    fixed-point inversion converges (faster the smaller it is). Central
    differences, so a kink (the no-slip margin) counts about half its jump.
    """
    rows = dx_px.shape[0]
    largest = 0.0
    # Strips of rows (with a row of overlap each side, so the central differences
    # match the whole-array ones) keep the float64 temporaries small.
    for top in range(0, rows, 256):
        lo, hi = max(0, top - 1), min(rows, top + 257)
        d_dx_row, d_dx_col = np.gradient(dx_px[lo:hi].astype(np.float64))
        d_dy_row, d_dy_col = np.gradient(dy_px[lo:hi].astype(np.float64))
        keep = slice(top - lo, top - lo + min(256, rows - top))
        # numpy's stubs type np.gradient of an N-d array as `1-d array | Any`, so its parts look like scalars.
        frobenius2 = (d_dx_row**2 + d_dx_col**2 + d_dy_row**2 + d_dy_col**2)[keep]  # type: ignore[index]
        det = (d_dx_col * d_dy_row - d_dx_row * d_dy_col)[keep]  # type: ignore[index]
        # Largest singular value of a 2 x 2 matrix from its Frobenius norm and determinant.
        sigma2 = 0.5 * (frobenius2 + np.sqrt(np.maximum(frobenius2**2 - 4 * det**2, 0.0)))
        largest = max(largest, float(sigma2.max(initial=0.0)))
    return float(np.sqrt(largest))


def stable_ground_mask(ice_mask: np.ndarray, margin_px: float) -> np.ndarray:
    """Ice-free ground farther than ``margin_px`` pixels from any ice pixel centre (Euclidean distance)."""
    reach = int(np.floor(margin_px))
    offsets = np.arange(-reach, reach + 1)
    # Dilating by a disc is the distance test "within margin_px of ice", and
    # several times faster than a full distance transform for small margins.
    disc = offsets[:, None] ** 2 + offsets[None, :] ** 2 <= margin_px**2
    return ~ndimage.binary_dilation(ice_mask, structure=disc)


def _with_ice_everywhere(dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dx, dy = np.broadcast_arrays(np.asarray(dx, dtype=np.float64), np.asarray(dy, dtype=np.float64))
    return dx, dy, np.ones(dx.shape, dtype=bool)


@attrs.frozen
class Translation:
    """The whole scene moves by one vector: the simplest known answer for a tracker."""

    dx_px: float
    dy_px: float

    def evaluate(self, row: np.ndarray, col: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        shape = np.broadcast_shapes(np.shape(row), np.shape(col))
        return _with_ice_everywhere(np.full(shape, self.dx_px), np.full(shape, self.dy_px))


@attrs.frozen
class SimpleShear:
    """Simple shear: ``dx = shear * (row - origin_row_px)``, ``dy = 0`` (rows slide past each other)."""

    shear: float
    origin_row_px: float = 0.0

    def evaluate(self, row: np.ndarray, col: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        row, col = np.broadcast_arrays(np.asarray(row, dtype=np.float64), col)
        return _with_ice_everywhere(self.shear * (row - self.origin_row_px), np.zeros(row.shape))


@attrs.frozen
class Rotation:
    """Rigid rotation by ``angle_deg`` counter-clockwise as seen on a north-up map, about a pixel position."""

    angle_deg: float
    centre_row_px: float
    centre_col_px: float

    def evaluate(self, row: np.ndarray, col: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        theta = np.deg2rad(self.angle_deg)
        c, s = np.cos(theta), np.sin(theta)
        x = np.asarray(col, dtype=np.float64) - self.centre_col_px
        y = np.asarray(row, dtype=np.float64) - self.centre_row_px
        # Rows grow downward, so a map-counter-clockwise turn has the opposite
        # sign of sin in the (col, row) frame from the textbook (x, y-up) one.
        x_new = c * x + s * y
        y_new = -s * x + c * y
        return _with_ice_everywhere(x_new - x, y_new - y)
