"""Forward-backward consistency of an offset field: track the pair both ways and require the negated answer.

A window of the reference found at ``p + d`` in the secondary must, tracked
back from the secondary, come home: the backward field ``b`` (secondary ->
reference, on the same window-centre grid) at ``p + d`` should be ``-d``. The
size of ``d(p) + b(p + d(p))`` is the forward-backward error (Kalal, Mikolajczyk
& Matas 2010, "Forward-backward error: automatic detection of tracking
failures", ICPR, 2756). It needs no threshold tuned to a texture: a correct
match is consistent whatever its peak value, while a match that locked on
noise, an ambiguous repeat or a changed surface (snow line, melt) usually is
not. It does not replace a chance-level peak threshold: between unrelated
textures the best pairing is nearly symmetric, so a third to a half of pure
chance matches are consistent too (``docs/tracking.md``).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def forward_backward_error(
    forward: tuple[np.ndarray, np.ndarray], backward: tuple[np.ndarray, np.ndarray], *, step_px: int
) -> np.ndarray:
    """``|d(p) + b(p + d(p))|`` in pixels for every cell; NaN where either field has no value there.

    ``forward`` and ``backward`` are ``(dx_px, dy_px)`` on one window-centre
    grid with spacing ``step_px`` pixels; the backward field is interpolated
    bilinearly at the moved position (NaN if any of its four neighbours is NaN).
    A cell moved off the grid by up to one cell is checked against the edge
    cell's answer (off by at most the field's change over one step); further
    out it cannot be checked (NaN).
    """
    fx, fy = (np.asarray(a, np.float64) for a in forward)
    rows, cols = np.indices(fx.shape, dtype=np.float64)
    at_r, at_c = rows + fy / step_px, cols + fx / step_px
    with np.errstate(invalid="ignore"):
        moved = (at_r >= -1) & (at_r <= fx.shape[0]) & (at_c >= -1) & (at_c <= fx.shape[1])
    at_r = np.clip(at_r, 0, fx.shape[0] - 1)
    at_c = np.clip(at_c, 0, fx.shape[1] - 1)
    error = np.full(fx.shape, np.nan)
    if not moved.any():
        return error
    back = []
    for band in backward:
        # NaN spreads to every interpolated point that touches it, as wanted: no half-known answer.
        back.append(ndimage.map_coordinates(np.asarray(band, np.float64), [at_r[moved], at_c[moved]], order=1,
                                            mode="constant", cval=np.nan))
    error[moved] = np.hypot(fx[moved] + back[0], fy[moved] + back[1])
    return error
