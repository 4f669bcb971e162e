"""The contract between the tracking driver and a matcher.

A matcher measures, for every window of a regular grid, the offset of the
secondary image relative to the reference. The driver (tiling, pre-filters,
outlier rejection, stable-ground correction) is shared by every tracker; a
matcher only matches.
"""

from __future__ import annotations

from typing import Protocol

import attrs
import numpy as np


@attrs.frozen(eq=False)
class MatchResult:
    """Per-window offsets on the window-centre grid of the arrays that were matched.

    Window ``(i, j)`` covers reference pixels
    ``[i*step : i*step + window, j*step : j*step + window]``; its offsets
    ``dx_px`` (along columns) and ``dy_px`` (along rows) say where that patch is
    found in the secondary. NaN where no trustworthy match exists.
    ``peak_correlation`` is the matcher's similarity at the peak (NCC in
    [-1, 1], or the phase-correlation equivalent); ``snr`` the peak's
    prominence over the rest of the correlation surface. ``reason``
    (optional): why a window has no offset, as the driver's codes
    (:data:`gvfuse.tracking.driver.REASONS`: 1 no data, 2 no match, 3 refused
    by the matcher's own acceptance test), for a matcher whose
    ``peak_correlation`` cannot tell (it is NaN wherever the matcher stopped
    early); without it, the driver reads a NaN ``peak_correlation`` as no
    data and a finite one as no match.
    """

    dx_px: np.ndarray
    dy_px: np.ndarray
    peak_correlation: np.ndarray
    snr: np.ndarray
    reason: np.ndarray | None = None

    def __attrs_post_init__(self) -> None:
        arrays = (self.dx_px, self.dy_px, self.peak_correlation, self.snr)
        shapes = {a.shape for a in (*arrays, *(() if self.reason is None else (self.reason,)))}
        if len(shapes) != 1:
            raise ValueError(f"MatchResult arrays differ in shape: {shapes}")


def chance_level(window_px: int, correlation_px: float) -> float:
    """The chance level of a peak correlation for a window: ``correlation_px / window_px``, at most 0.9.

    The best correlation between unrelated textures falls like 1 / window (its number of independent
    samples grows like the window's area); trackers use it as ``min_peak_correlation="auto"``.
    """
    return min(0.9, correlation_px / float(window_px))


class Matcher(Protocol):
    """``match(reference, secondary, window_px=..., step_px=..., search_radius_px=...)``.

    ``reference`` and ``secondary`` are float32 arrays of the same shape, already
    pre-filtered, NaN where there is no data. The secondary extends at least
    ``search_radius_px`` beyond every window the driver asks about (it pads with
    NaN at image borders), so window ``(i, j)`` of the result refers to
    reference pixels ``[r + i*step, r + i*step + window)`` with
    ``r = search_radius_px`` on both axes: the driver passes arrays whose outer
    ``search_radius_px`` ring is margin only.
    """

    def __call__(
        self,
        reference: np.ndarray,
        secondary: np.ndarray,
        *,
        window_px: int,
        step_px: int,
        search_radius_px: int,
    ) -> MatchResult: ...
