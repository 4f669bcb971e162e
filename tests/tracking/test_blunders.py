"""No value rather than a wrong one: unrelated images must not produce a velocity field."""

import numpy as np
import pytest

from gvfuse.config import REFERENCE_PHASE_PARAMETERS
from gvfuse.errors import TrackingError
from gvfuse.model import Image
from gvfuse.testing import make_pair
from gvfuse_plugins.trackers import FftPhaseTracker, NccTracker, TemplateTracker


@pytest.mark.parametrize("tracker", [FftPhaseTracker(), FftPhaseTracker(**REFERENCE_PHASE_PARAMETERS), NccTracker(),
                                     NccTracker(window_px=32), TemplateTracker()],
                         ids=["fft-phase", "fft-phase-32", "ncc", "ncc-32", "template"])
def test_unrelated_scenes_give_no_values(tracker):
    a = make_pair("optical", (256, 256), seed=1, cloud_fraction=0.0)
    b = make_pair("optical", (256, 256), seed=2, cloud_fraction=0.0)
    reference = Image(np.array(a.reference, dtype="f4"), a.grid, "scene a")
    unrelated = Image(np.array(b.secondary, dtype="f4"), a.grid, "scene b")
    try:
        out = tracker.track(reference, unrelated, search_radius_px=6)
    except TrackingError:
        return  # nothing matched at all: the right answer
    assert np.isfinite(out.dx_px).mean() <= 0.01
