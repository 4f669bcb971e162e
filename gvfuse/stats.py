"""Robust statistics shared by tracking and validation.

The tracking driver fits and reports the stable-ground shift with them, and
:mod:`gvfuse.quality` reports the error figures of a map with them; both must
use one definition so that a residual NMAD from tracking and a stable-ground
NMAD from validation are the same figure.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NMAD_FACTOR", "nmad"]

#: MAD → standard deviation for normally distributed data (1 / Φ⁻¹(3/4)).
NMAD_FACTOR = 1.4826


def nmad(values: np.ndarray) -> float:
    """Normalised median absolute deviation, 1.4826 · median(|v − median(v)|) (Höhle & Höhle 2009).

    Höhle & Höhle (2009), "Accuracy assessment of digital elevation models by
    means of robust statistical methods", ISPRS J. Photogramm. Remote Sens.
    64(4):398-406: an estimate of the standard deviation that outliers and
    heavy tails barely move. Non-finite values are ignored; NaN when none is left.
    """
    values = np.asarray(values, dtype="float64")
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan")
    return float(NMAD_FACTOR * np.median(np.abs(values - np.median(values))))
