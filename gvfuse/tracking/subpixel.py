"""Sub-pixel location of a correlation peak from its 3x3 neighbourhood."""

from __future__ import annotations

import numpy as np

# Design matrix of f(x, y) = c0 + c1 x + c2 y + c3 x^2 + c4 x y + c5 y^2 on the 3x3
# grid x, y in {-1, 0, 1}, rows ordered as neighbourhood[a + 1, b + 1] with y = a, x = b.
_YS, _XS = np.meshgrid([-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0], indexing="ij")
_DESIGN = np.stack(
    [np.ones(9), _XS.ravel(), _YS.ravel(), _XS.ravel() ** 2, (_XS * _YS).ravel(), _YS.ravel() ** 2], axis=1
)
_PINV = np.linalg.pinv(_DESIGN).astype(np.float64)  # (6, 9)


def parabola_peak_1d(left: np.ndarray, centre: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Vertex offset of the parabola through (-1, left), (0, centre), (1, right), clipped to [-0.5, 0.5].

    The classic 3-point estimator; biased towards whole pixels ("pixel locking").
    """
    den = left - 2.0 * centre + right
    with np.errstate(invalid="ignore", divide="ignore"):
        off = np.where(den < 0, 0.5 * (left - right) / den, 0.0)
    return np.clip(np.nan_to_num(off), -0.5, 0.5)


def quadratic_peak_2d(neighbourhood: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel peak offsets (dx, dy) from 3x3 neighbourhoods, shape ``(3, 3, ...)``.

    Least-squares fit of a 2-D quadratic to the nine values and the location of
    its stationary point (e.g. Nobach & Honkanen 2005, Exp. Fluids 38, compare
    such estimators); less pixel-locking than independent 1-D fits when the
    peak is elongated or oblique. Where the fit is not a maximum or its vertex
    falls more than one pixel away, the 1-D parabolic estimates are used.
    """
    nb = np.asarray(neighbourhood)
    if nb.dtype != np.float32:
        nb = nb.astype(np.float64)
    flat = nb.reshape(9, -1)
    # float32 is enough here (correlations in [-1, 1], a 9-term weighted sum) and halves the traffic
    c = _PINV.astype(nb.dtype) @ flat  # (6, N)
    _, c1, c2, c3, c4, c5 = c
    a11, a12, a22 = 2.0 * c3, c4, 2.0 * c5
    det = a11 * a22 - a12 * a12
    with np.errstate(invalid="ignore", divide="ignore"):
        dx = (-c1 * a22 + c2 * a12) / det
        dy = (-c2 * a11 + c1 * a12) / det
    ok = (a11 < 0) & (det > 0) & (np.abs(dx) <= 1.0) & (np.abs(dy) <= 1.0)
    fx = parabola_peak_1d(nb[1, 0].ravel(), nb[1, 1].ravel(), nb[1, 2].ravel())
    fy = parabola_peak_1d(nb[0, 1].ravel(), nb[1, 1].ravel(), nb[2, 1].ravel())
    dx = np.where(ok, dx, fx)
    dy = np.where(ok, dy, fy)
    shape = nb.shape[2:]
    return dx.reshape(shape), dy.reshape(shape)
