"""A tracker's warm-up loads the compiled kernels its first pair would wait for."""

from __future__ import annotations

import subprocess
import sys

import pytest

KERNELS = '''
import sys
from gvfuse_plugins.trackers import {cls}
from gvfuse.tracking import correlation, dense_ncc, outliers, warping
kernels = [dense_ncc._fast_scores, dense_ncc._masked_scores, dense_ncc._fold_search_row,
           correlation._refinement_kernel, warping._bspline_sample, outliers._residual_kernel]
assert not any(k.signatures for k in kernels), "loaded before the warm-up"
{cls}(window_px=32, step_px=2).warm_up()
missing = [k.__name__ for k in kernels if not k.signatures]
sys.exit(f"not loaded: {{missing}}" if missing else 0)
'''


@pytest.mark.parametrize("cls", ["NccTracker", "FftPhaseTracker"])
def test_warm_up_loads_the_kernels_of_the_dense_trackers(cls):
    # in a fresh interpreter: this one has loaded them for other tests already
    done = subprocess.run([sys.executable, "-c", KERNELS.format(cls=cls)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
