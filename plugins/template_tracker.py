"""The ``template`` tracker: ImGRAFT-style template matching (NCC or orientation correlation).

A thin class around :func:`gvfuse.tracking.template_match.template_match`
(Messerli & Grinsted 2015, Geosci. Instrum. Method. Data Syst. 4: 23-34, for
the method; Fitch et al. 2002 and Heid & Kääb 2012, Remote Sens. Environ. 118,
for orientation correlation), driven by the shared tracking driver
:func:`gvfuse.tracking.driver.track_images` (tiling, pre-filter, thresholds,
normalized median test, stable-ground correction). The reference product
tracked its UAV orthomosaics with ImGRAFT; this is the tracker for that role.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pluggy

from gvfuse.interfaces import Image, OffsetField, Tracker
from gvfuse.tracking.driver import TrackingSettings, track_images
from gvfuse.tracking.matching import Matcher
from gvfuse.tracking.template_match import METHODS, template_match

hookimpl = pluggy.HookimplMarker("gvfuse")

#: Parameters that go to the driver's :class:`TrackingSettings`; the rest go to the matcher.
_DRIVER_KEYS: tuple[str, ...] = (
    "window_px", "step_px", "prefilter", "min_peak_correlation", "min_snr", "median_test_threshold",
    "median_test_epsilon_px", "stable_slowest_fraction", "stable_model", "correct_stable_ground",
)
_MATCHER_KEYS: tuple[str, ...] = ("method", "max_nan_fraction", "min_std_fraction", "refine_iterations")

#: The matcher needs an interior integer peak; a ±1 px search has only one interior lag.
MIN_SEARCH_RADIUS_PX = 2


class TemplateTracker(Tracker):
    """Per-window template matching after ImGRAFT, with NCC or orientation correlation.

    Defaults:

    - ``window_px=32``, ``step_px=4``: a 32 px template (ImGRAFT users pick
      roughly 10-50 px); step 4 keeps UAV pairs resampled to a few thousand
      pixels quick while still oversampling the window.
    - ``method="oc"``: orientation correlation, because UAV surveys flown at
      different times of day differ in illumination and shadow; OC only sees
      edge directions (Heid & Kääb 2012). ``"ncc"`` is OpenCV's
      ``TM_CCOEFF_NORMED`` and is the more precise of the two on clean pairs
      (~0.001 px vs ~0.01 px on synthetic textures).
    - ``prefilter="none"``: OC is already contrast-invariant and NCC removes
      gain and offset per window; use ``"wallis"`` with NCC on unevenly lit scenes.
    - ``min_peak_correlation=0.2``, ``min_snr=2.0``: the SNR is the peak over
      the mean absolute correlation of the search surface, so it grows with the
      search radius; 2 rejects flat, ambiguous surfaces at typical radii.
    - ``max_nan_fraction=0.4``: templates (and candidate lags) with more than
      40 % no data are not matched.
    - ``min_std_fraction=1e-3``: templates flatter than this fraction of the
      image's std are textureless (NaN).
    - ``refine_iterations=2``: resample-and-refit passes after the quadratic peak fit.
    - normalized median test at 2 (epsilon 0.1 px), stable-ground correction on
      the slowest 25 % (the driver's defaults).

    The search radius is at least :data:`MIN_SEARCH_RADIUS_PX` px (rounded up).
    """

    name: ClassVar[str] = "template"
    description: ClassVar[str] = (
        "ImGRAFT-style template matching: NCC or orientation correlation, sub-pixel, edge peaks rejected"
    )
    defaults: ClassVar[Mapping[str, Any]] = {
        "window_px": 32,
        "step_px": 4,
        "method": "oc",
        "prefilter": "none",
        "min_peak_correlation": 0.2,
        "min_snr": 2.0,
        "max_nan_fraction": 0.4,
        "min_std_fraction": 1e-3,
        "refine_iterations": 2,
        "median_test_threshold": 2.0,
        "median_test_epsilon_px": 0.1,
        "stable_slowest_fraction": 0.25,
        "stable_model": "constant",
        "correct_stable_ground": True,
    }

    def __init__(self, **parameters: Any) -> None:
        super().__init__(**parameters)
        method = self.parameters["method"]
        if method not in METHODS:
            raise ValueError(f"tracker {self.name!r}: method must be one of {METHODS}, got {method!r}")
        if not 0.0 <= float(self.parameters["max_nan_fraction"]) < 1.0:
            raise ValueError(f"tracker {self.name!r}: max_nan_fraction must be in [0, 1)")
        if int(self.parameters["refine_iterations"]) < 0:
            raise ValueError(f"tracker {self.name!r}: refine_iterations must be >= 0")

    def matcher(self) -> Matcher:
        """The matcher with this tracker's matching parameters bound (protocol of :mod:`gvfuse.tracking.matching`)."""
        return functools.partial(template_match, **{k: self.parameters[k] for k in _MATCHER_KEYS})

    def track(
        self,
        reference: Image,
        secondary: Image,
        *,
        search_radius_px: float,
        stable_mask: np.ndarray | None = None,
    ) -> OffsetField:
        """Offsets of ``secondary`` relative to ``reference``; quality bands ``peak_correlation``, ``snr``, ``valid``."""
        if not (math.isfinite(search_radius_px) and search_radius_px >= 0):
            raise ValueError(f"search_radius_px must be finite and >= 0, got {search_radius_px}")
        radius = max(MIN_SEARCH_RADIUS_PX, int(math.ceil(search_radius_px)))
        settings = TrackingSettings(search_radius_px=radius, **{k: self.parameters[k] for k in _DRIVER_KEYS})
        extra = {k: self.parameters[k] for k in _MATCHER_KEYS}
        return track_images(reference, secondary, self.matcher(), settings, stable_mask=stable_mask,
                            tracker_name=self.name, extra_parameters=extra)


@hookimpl
def gvfuse_register_trackers() -> list[type[Tracker]]:
    """The ``template`` tracker."""
    return [TemplateTracker]
