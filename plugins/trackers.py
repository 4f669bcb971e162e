"""Bundled tracker plugins: thin classes around :mod:`gvfuse.tracking`.

``fft-phase`` follows the reference product's optical method (Leprince et al.
2007, COSI-Corr's frequency-domain correlation); ``ncc`` is spatial normalized
cross-correlation computed densely (SNAP-style offset tracking for SAR, and a
fast optical tracker); ``template`` is ImGRAFT-style template matching (NCC or
orientation correlation) for UAV orthomosaics. All three share
:func:`gvfuse.tracking.driver.track_images` (tiling, pre-filter, thresholds,
normalized median test, stable-ground correction).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import cv2
import numpy as np
from affine import Affine

from gvfuse.hookspecs import hookimpl
from gvfuse.interfaces import Tracker
from gvfuse.model import Grid, Image, OffsetField
from gvfuse.tracking.dense_ncc import DenseNccMatcher
from gvfuse.tracking.driver import TrackingSettings, fallback_window, track_images
from gvfuse.tracking.matching import Matcher, chance_level
from gvfuse.tracking.phase_correlation import PhaseCorrelationMatcher
from gvfuse.tracking.template_match import METHODS, template_match

#: Matching parameters of the template tracker (the rest go to the driver).
_TEMPLATE_MATCHER_KEYS: tuple[str, ...] = ("method", "max_nan_fraction", "min_std_fraction", "refine_iterations")

_DRIVER_KEYS = (
    "window_px", "step_px", "prefilter", "min_peak_correlation", "min_snr", "median_test_threshold",
    "median_test_epsilon_px", "stable_slowest_fraction", "stable_model", "correct_stable_ground",
    "coarse_to_fine", "fine_search_radius_px", "max_forward_backward_px", "bright_change_nmad", "observed_centre",
    "fallback_window_px",
)


#: ``min_peak_correlation="auto"`` = ``16 / window_px``: the chance level of the peak between unrelated
#: textures, which falls like 1/window (see :class:`NccTracker` and :class:`FftPhaseTracker`).
CHANCE_CORRELATION_PX = 16.0


#: Driver settings every tracker starts from: normalized median test at 2 (epsilon 0.1 px),
#: stable-ground correction (constant) on the slowest 25 % when no mask is given, coarse-to-fine off,
#: forward-backward consistency within 0.5 px (the acceptance rule of docs/tracking.md, calibrated by
#: temporal closure on real Sentinel-2 crops), a larger-window pass for the cells without a match
#: (``"auto"``: :func:`gvfuse.tracking.driver.fallback_window`).
_SHARED_DRIVER_DEFAULTS: Mapping[str, Any] = {
    "chance_correlation_px": CHANCE_CORRELATION_PX,
    "max_forward_backward_px": 0.5,
    "bright_change_nmad": 8.0,
    "observed_centre": True,
    "fallback_window_px": "auto",
    "median_test_threshold": 2.0,
    "median_test_epsilon_px": 0.1,
    "stable_slowest_fraction": 0.25,
    "stable_model": "constant",
    "correct_stable_ground": True,
    "coarse_to_fine": 1,
    "fine_search_radius_px": 3,
    "backward_refine_iterations": 1,
}


class _DrivenTracker(Tracker):
    """A tracker = a matcher + driver settings taken from its parameters."""

    #: Smallest search radius the matcher can work with (rounded-up requests below it are raised to it).
    min_search_radius_px: ClassVar[int] = 0
    #: Numbers that ``false`` switches off: the forward-backward check (and its second pass), the cloud
    #: detection in the pair, the larger-window fallback.
    switchable: ClassVar[frozenset[str]] = frozenset({"max_forward_backward_px", "bright_change_nmad",
                                                            "fallback_window_px"})

    def __init__(self, **parameters: Any) -> None:
        super().__init__(**parameters)
        for key in ("window_px", "step_px"):  # whole pixels, not "32" or 32.5
            value = self.parameters[key]
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"tracker {self.name!r}: {key} must be an integer, got {value!r}")
        if self.parameters["fallback_window_px"] == "auto":  # recorded as the window it stands for
            self.parameters["fallback_window_px"] = fallback_window(
                "auto", window_px=self.parameters["window_px"], step_px=self.parameters["step_px"])
        per_px = self.parameters["chance_correlation_px"]
        if isinstance(per_px, bool) or not isinstance(per_px, int | float) or not 0 < per_px < math.inf:
            raise ValueError(f"tracker {self.name!r}: chance_correlation_px must be a number > 0, got {per_px!r}")
        iterations = self.parameters["backward_refine_iterations"]
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
            raise ValueError(f"tracker {self.name!r}: backward_refine_iterations must be a whole number >= 0, "
                             f"got {iterations!r}")
        way_back = self.parameters.get("backward_matcher", "same")
        if way_back not in ("ncc", "same"):
            raise ValueError(f"tracker {self.name!r}: backward_matcher must be \"ncc\" or \"same\", got {way_back!r}")
        try:  # the driver's settings check the rest (window >= 4 px, step >= 1 px, known pre-filter, ...)
            TrackingSettings(search_radius_px=0, **self.driver_parameters())
        except (TypeError, ValueError) as exc:  # attrs' validators put the message first in args
            message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
            raise ValueError(f"tracker {self.name!r}: {message}") from None

    def _matcher(self) -> Matcher:
        raise NotImplementedError

    def _backward_matcher(self) -> Matcher | None:
        """The matcher of the forward-backward check's way back (None: :meth:`_matcher`'s).

        ``backward_matcher="ncc"`` (trackers that have the parameter): the dense NCC on the same valid-data
        share, which judges "comes home within 0.5 px" as well as a costlier matcher does.
        """
        if self.parameters.get("backward_matcher", "same") == "same":
            return None
        return self._dense_ncc_way_back()

    def _dense_ncc_way_back(self) -> Matcher:
        """The dense NCC on the forward pass's valid-data share, with ``backward_refine_iterations``."""
        p = self.parameters
        share = p.get("min_valid_fraction", 1.0 - float(p.get("max_nan_fraction", 0.6)))
        return DenseNccMatcher(min_valid_fraction=share, refine_iterations=p["backward_refine_iterations"])

    def warm_up(self) -> None:
        """Track a small synthetic pair with these settings (a shifted texture with a gap, so the masked
        path, the refinement, the median test and the forward-backward check all run): numba then has every
        compiled kernel of the real call loaded. Whatever goes wrong is left to the real call to report."""
        step, window = int(self.parameters["step_px"]), int(self.parameters["window_px"])
        size = window + 6 * step + 16  # a few windows a side: enough for every path, cheap for the slowest matcher
        rng = np.random.default_rng(0)
        texture = cv2.GaussianBlur(rng.standard_normal((size + 2, size + 2)).astype(np.float32), (0, 0), 1.5)
        reference, secondary = texture[1:-1, 1:-1].copy(), texture[:-2, 2:].copy()  # 1 px each way
        secondary[: size // 4, : size // 4] = np.nan
        grid = Grid(3857, Affine(10.0, 0.0, 0.0, 0.0, -10.0, 0.0), (size, size))
        try:
            self.track(Image(reference, grid, "warm-up reference"), Image(secondary, grid, "warm-up secondary"),
                       search_radius_px=max(3, self.min_search_radius_px))
        except Exception:  # only a head start: the real call meets and reports any problem
            return

    def driver_parameters(self) -> dict[str, Any]:
        """The driver settings from this tracker's parameters (``min_peak_correlation="auto"`` resolved)."""
        params = {k: self.parameters[k] for k in _DRIVER_KEYS}
        if params["min_peak_correlation"] == "auto":
            per_px = float(self.parameters["chance_correlation_px"])
            params["min_peak_correlation"] = chance_level(params["window_px"], per_px)
            if isinstance(params["fallback_window_px"], int) and not isinstance(params["fallback_window_px"], bool):
                params["fallback_min_peak_correlation"] = chance_level(params["fallback_window_px"], per_px)
        for key in self.switchable:
            if params[key] is False:
                params[key] = None
            elif params[key] is True:
                raise ValueError(f"{key} must be a number, or false (off); got true")
        return params

    def track(
        self,
        reference: Image,
        secondary: Image,
        *,
        search_radius_px: float,
        stable_mask: np.ndarray | None = None,
    ) -> OffsetField:
        if not (search_radius_px >= 0 and math.isfinite(search_radius_px)):
            raise ValueError(f"search_radius_px must be finite and >= 0, got {search_radius_px}")
        settings = TrackingSettings(
            search_radius_px=max(self.min_search_radius_px, math.ceil(search_radius_px)),
            **self.driver_parameters(),
        )
        extra = {k: v for k, v in self.parameters.items() if k not in _DRIVER_KEYS}
        return track_images(reference, secondary, self._matcher(), settings, stable_mask=stable_mask,
                            tracker_name=self.name, extra_parameters=extra,
                            backward_matcher=self._backward_matcher())


class FftPhaseTracker(_DrivenTracker):
    """Frequency-domain correlation with a masked sub-pixel phase-plane fit (Leprince et al. 2007).

    Defaults, chosen by temporal closure on real Sentinel-2 glacier texture
    (issue 15; ``benchmarks/bench_real.py``, the Rhone crops, stable-ground
    correction off; docs/tracking.md) and checked on unrelated scenes
    (``tests/tracking/test_blunders.py``):

    - ``window_px=128``, ``step_px=3``, ``min_valid_fraction=0.4``: as for
      ``ncc``, the window decides coverage on real snow and ice (first Rhone
      triplet: 13.1 % of the glacier valid in all three fields at the
      reference method's 32 px, 53.6 % at 96 px, 62.0 % at 128 px with the
      coherence alone at 16 / window). The price is spatial detail (a 1.28 km
      window at 10 m) and time (each window's two FFTs grow with its area).
      The reference product's settings are COSI-Corr's 32 x 32 window with a
      2 px step (Landsat band 8) or 3 px (Sentinel-2), 60 % valid data and the
      coherence at 16 / window: the ``landsat`` and ``sentinel-2`` sensors of a
      run keep them (``gvfuse.config.REFERENCE_PHASE_PARAMETERS``).
    - ``min_peak_correlation="auto"`` = ``chance_correlation_px / window_px``
      with ``chance_correlation_px=12`` (0.094 at 128 px): the chance level of
      the phase coherence (see :mod:`gvfuse.tracking.phase_correlation`), and
      ``ncc_gate=True``: the integer search's NCC peak must reach the same
      chance level, as in ``ncc``. At 128 px the phase coherence alone does not
      separate unrelated textures (16 / window let 16 % of two unrelated
      synthetic scenes through as one coherent false match, 22 / window 0.3 %
      and the Rhone coverage fell to ~50 %); with the gate nothing passes, and
      with the way back below the first Rhone triplet has 60.0 % (closure
      median 0.170 px, RMS 0.228 px; 59.997 % with the stable-ground rule),
      16 of the 20 triplets meet issue 15's targets (median 74.2 %), before
      the fallback below.
      The reference's "correlation threshold 0.95" is ``min_peak_correlation=0.95``:
      on real Sentinel-2 glacier texture it keeps almost nothing (0 % of the
      Rhone glacier on one triplet at 32 px).
    - ``backward_matcher="ncc"``: the forward-backward check tracks the way
      back with the dense NCC (``"same"``: with the phase correlation). The
      check asks whether an answer comes home within 0.5 px, which the NCC
      judges as well at a fraction of the cost of two more FFTs per window:
      first Rhone triplet 60.0 % (closure 0.170 / 0.228 px) against 58.8 %
      (0.168 / 0.232), 16 of 20 triplets against 15, nothing passing on
      unrelated scenes either way.
    - ``prefilter="high-pass"`` (Gaussian high-pass, sigma 3 px): the phase-plane
      fit weights frequencies by the cross-spectrum magnitude, so without a
      pre-filter the strong low frequencies of the illumination change between
      dates (which does not move with the ice) dominate the fit and pull
      low-contrast ice towards zero. Measured on ``gvfuse.testing.make_pair``
      optical pairs (15 m, 10 % clouds, 32 px): RMSE on clear ice 0.18 px unfiltered,
      0.03-0.06 px high-passed, and phase coherence >= 0.95 on 85 % vs 100 % of
      the ice windows (see ``tests/tracking/test_accuracy.py``).
    - ``mask_factor=0.9``, ``taper_fraction=0.5``: frequency mask and raised-cosine roll-off.
    - ``fallback_window_px="auto"`` (176 px at 128 px: the smallest window of at least 1.375 times the
      base one whose difference from it is a multiple of ``2 * step_px``): the cells the base window left
      empty for want of a match (reasons 2-5) get a second pass with the larger window. Over the 20 Rhone
      triplets (same script, correction off) median coverage 74.2 -> 84.9 % and 16 -> 17 triplets
      meeting issue 15's targets; first triplet 60.0 -> 70.4 %, at almost the same closure; it costs
      1.5-2.2x the time on those crops, nothing where every cell matches. ``false`` switches it off.
    - normalized median test at 2 (epsilon 0.1 px), forward-backward check within
      0.5 px, stable-ground correction on the slowest 25 %.
    """

    name: ClassVar[str] = "fft-phase"
    description: ClassVar[str] = (
        "Phase correlation with masked phase-plane fit (Leprince et al. 2007; COSI-Corr's method)"
    )
    defaults: ClassVar[Mapping[str, Any]] = {
        "window_px": 128,
        "step_px": 3,
        "prefilter": "high-pass",
        "min_peak_correlation": "auto",
        "min_snr": 0.0,
        **_SHARED_DRIVER_DEFAULTS,
        "chance_correlation_px": 12.0,
        "ncc_gate": True,
        "backward_matcher": "ncc",
        "min_valid_fraction": 0.4,
        "mask_factor": 0.9,
        "taper_fraction": 0.5,
        "refine_iterations": 2,
    }

    def _matcher(self) -> Matcher:
        p = self.parameters
        gate_px = float(p["chance_correlation_px"]) if p["ncc_gate"] else 0.0
        return PhaseCorrelationMatcher(min_valid_fraction=p["min_valid_fraction"], mask_factor=p["mask_factor"],
                                       taper_fraction=p["taper_fraction"], refine_iterations=p["refine_iterations"],
                                       ncc_gate_px=gate_px)


class NccTracker(_DrivenTracker):
    """Dense masked normalized cross-correlation (shared box sums; Padfield 2012 masking).

    Defaults, chosen by temporal closure on real Sentinel-2 glacier texture
    (issue 15; ``benchmarks/bench_real.py``, the Rhone crops, all 20 triplets
    of six summer dates, stable-ground correction off; docs/tracking.md):

    - ``window_px=128``: SNAP's offset-tracking window, which the reference
      product used on Sentinel-1. On real snow and ice at 10 m the window
      decides coverage: at the previous acceptance (16 / window, SNR 1.5) 64 px
      covered a median 38 % of the glacier over the triplets, 128 px with the
      high-pass pre-filter and 40 % valid data 67 %, at better closure. The price is spatial detail:
      a 1.28 km window averages across a narrow glacier's shear margins
      (closure cannot see this smoothing). Use 32-64 px where texture is rich
      (15 m Landsat, drone images) or the glacier narrow.
    - ``step_px=3``: 30 m output spacing at 10 m pixels (the reference's 30 m grid).
    - ``prefilter="high-pass"`` (Gaussian high-pass, sigma 3 px): on real
      texture it closes better than the Wallis filter (autoRIFT's choice),
      which amplifies the noise of featureless snow: median closure 0.20 vs
      0.30 px at 64 px. For SAR amplitude use ``"wallis"`` or ``"log-wallis"``
      (the ``sentinel-1`` sensor's run settings keep Wallis, see docs/configuration.md).
    - ``min_peak_correlation="auto"`` = ``chance_correlation_px / window_px`` with
      ``chance_correlation_px=12`` (0.094 at 128 px, 0.375 at 32), ``min_snr=0``:
      on hazy and partly decorrelated real images true peaks fall below the
      best NCC between *unrelated* textures (16 / window, its 99.9th
      percentile on synthetic scenes), and the forward-backward check (0.5 px)
      rejects what chance lets through. Measured on the Rhone triplet
      06-26/06-29/07-11 (06-29 hazy): 51 % of the glacier valid at 16 / window
      and 70 % at 8 (forward-backward within 0.3 px), 61 % at 12 (within 0.5 px),
      closure median 0.17-0.19 px throughout; but on two
      unrelated synthetic scenes 8 / window let 30 % of the cells through as a
      coherent false match (12: 0.8 %, 16: none; ``tests/tracking/test_blunders.py``).
    - ``min_valid_fraction=0.4``: a window is matched on its valid pixels when at
      least 40 % remain (the glacier outline, masked clouds).
    - ``fallback_window_px="auto"`` (176 px at 128 px: the smallest window of at least 1.375 times the
      base one whose difference from it is a multiple of ``2 * step_px``): the cells the base window left
      empty for want of a match (reasons 2-5) get a second pass with the larger window. Over the 20 Rhone
      triplets (same script, correction off) median coverage 74.4 -> 90.6 % (17 triplets meeting issue 15's targets, as
      without); first triplet 60.9 -> 68.8 %, at almost the same closure; it costs
      1.5-2.2x the time on those crops, nothing where every cell matches. ``false`` switches it off.
    - normalized median test at 2 (epsilon 0.1 px), forward-backward check within
      0.5 px, stable-ground correction on the slowest 25 %.
    - ``backward_refine_iterations=1`` (every tracker whose way back is the dense NCC): the way back is
      refined by one warp-and-gradient pass, not three; it only has to tell whether an answer comes home
      within 0.5 px. Over the 20 Rhone triplets median coverage 90.1 % (three passes: 90.6 %), 18 of 20
      meeting issue 15's targets (17); docs/tracking.md.

    Measured without the fallback (same script, correction off): 06-26/06-29/07-11 60.9 % of the
    glacier valid in all three fields, closure median 0.172 px, RMS 0.240 px
    (the defaults before issue 15: 24.6 %, 0.307, 0.418); over all 20 triplets
    median coverage 74 %, 17 of 20 with >= 60 % and closure <= 0.3 / 0.6 px
    (the three others pair the haze of 06-29 and 07-11 or the fresh snow of
    08-23). On synthetic optical pairs at 32 px the high-pass default is more
    accurate than the Wallis one (RMSE 0.062 / 0.019 / 0.025 px against 0.094 /
    0.026 / 0.030 on the accuracy tests' 256 px and two 768 px pairs).
    """

    name: ClassVar[str] = "ncc"
    description: ClassVar[str] = "Dense masked normalized cross-correlation with gradient sub-pixel refinement"
    defaults: ClassVar[Mapping[str, Any]] = {
        "window_px": 128,
        "step_px": 3,
        "prefilter": "high-pass",
        "min_peak_correlation": "auto",
        "min_snr": 0.0,
        **_SHARED_DRIVER_DEFAULTS,
        "chance_correlation_px": 12.0,
        "min_valid_fraction": 0.4,
        "refine_iterations": 3,
    }

    def _matcher(self) -> Matcher:
        p = self.parameters
        return DenseNccMatcher(min_valid_fraction=p["min_valid_fraction"], refine_iterations=p["refine_iterations"])

    def _backward_matcher(self) -> Matcher | None:
        return self._dense_ncc_way_back()


class TemplateTracker(_DrivenTracker):
    """Per-window template matching after ImGRAFT, with NCC or orientation correlation.

    Defaults, chosen by temporal closure on real Sentinel-2 glacier texture
    (issue 15; ``benchmarks/bench_real.py``, the Rhone crops, stable-ground
    correction off; docs/tracking.md), as for ``ncc`` and ``fft-phase``:

    - ``window_px=128``, ``step_px=3``: on real snow and ice at 10 m the
      window decides coverage (the drone defaults below, 32 px with
      orientation correlation, kept 6.4 % of the first Rhone triplet's glacier;
      128 px with NCC 61.8 %). Each window's sub-pixel refinement resamples the
      secondary at nine lags per pass, so the cost grows with the window's area:
      about 19x ``ncc``'s time on the Rhone crops (113 s against 6 s for a triplet).
    - ``method="ncc"`` (masked NCC, Padfield 2012: the integer search by the
      dense NCC, then the refinement) with ``prefilter="high-pass"`` (Gaussian,
      sigma 3 px), as ``ncc``. ``"oc"`` is orientation correlation (Fitch et al.
      2002; Heid & Kääb 2012), which only sees edge directions and so ignores
      illumination changes.
    - ``min_peak_correlation="auto"`` = ``chance_correlation_px / window_px``
      with ``chance_correlation_px=12`` (0.094 at 128 px) and ``min_snr=0``: the
      chance level of unrelated textures, as ``ncc`` (the SNR, the peak over the
      mean absolute correlation of the search surface, grows with the search
      radius and says little at the few-pixel radii of short real pairs).
    - ``max_nan_fraction=0.6``: templates (and candidate lags) with up to 60 %
      no data are matched (``ncc``'s 40 % valid data: the glacier outline, masked clouds).
    - ``backward_matcher="ncc"``: the forward-backward check tracks the way
      back with the dense NCC (``ncc``'s matcher on the same pre-filtered
      images), about half the time of the template matcher both ways, and an
      independent matcher rejects more of the template's consistent blunders.
      Over the 20 Rhone triplets, with the larger-window fallback and the
      run's stable-ground correction over the date network: 17 meet issue 15's
      targets, against 13 with ``"same"`` (whose misses are by closure RMS,
      0.58-1.15 px); median coverage 73.5 % against 83.8 %. Corrected pair by
      pair instead (``gvfuse track``), the stable-ground rule's per-pair
      corrections do not add up on this all-ice crop (5 of 20 meet the
      targets; 7 with ``"same"``; docs/tracking.md).
    - ``min_std_fraction=1e-3``: templates flatter than this fraction of the
      image's std are textureless (NaN).
    - ``refine_iterations=2``: resample-and-refit passes after the quadratic peak fit.
    - ``fallback_window_px="auto"`` (176 px at 128 px), as ``ncc`` and ``fft-phase``: over the 20 Rhone
      triplets 10 -> 13 meet issue 15's targets, median coverage 69.9 -> 84.0 %, first triplet 61.8 -> 73.5 %
      (closure 0.205 / 0.451 px); it costs about 1.8x the time (~33 -> ~60 s a pair on those crops).
    - normalized median test at 2 (epsilon 0.1 px), forward-backward check
      within 0.5 px, stable-ground correction on the slowest 25 % (the shared defaults).

    The ``uav`` sensor of a run keeps the drone settings
    (``gvfuse.config.UAV_TEMPLATE_PARAMETERS``): a 32 px template at step 4
    (ImGRAFT users pick roughly 10-50 px), orientation correlation without a
    pre-filter (surveys flown at different times of day differ in illumination
    and shadow), ``min_peak_correlation=0.2`` with ``min_snr=2`` and 40 % no
    data at most.

    The search radius is at least ``min_search_radius_px`` (2) px.
    """

    name: ClassVar[str] = "template"
    #: The matcher needs an interior integer peak; a ±1 px search has only one interior lag.
    min_search_radius_px: ClassVar[int] = 2
    description: ClassVar[str] = (
        "ImGRAFT-style template matching: NCC or orientation correlation, sub-pixel, edge peaks rejected"
    )
    defaults: ClassVar[Mapping[str, Any]] = {
        "window_px": 128,
        "step_px": 3,
        "method": "ncc",
        "prefilter": "high-pass",
        "min_peak_correlation": "auto",
        "min_snr": 0.0,
        "max_nan_fraction": 0.6,
        "min_std_fraction": 1e-3,
        "refine_iterations": 2,
        **_SHARED_DRIVER_DEFAULTS,
        "chance_correlation_px": 12.0,
        "backward_matcher": "ncc",
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

    def _matcher(self) -> Matcher:
        """The matcher with this tracker's matching parameters bound (protocol of :mod:`gvfuse.tracking.matching`)."""
        return functools.partial(template_match, **{k: self.parameters[k] for k in _TEMPLATE_MATCHER_KEYS})


#: The tracker classes this module registers; append new trackers here.
TRACKERS: list[type[Tracker]] = [FftPhaseTracker, NccTracker, TemplateTracker]


@hookimpl
def gvfuse_register_trackers() -> list[type[Tracker]]:
    """The bundled tracker classes."""
    return list(TRACKERS)
