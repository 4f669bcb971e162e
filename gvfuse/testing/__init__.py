"""Synthetic scenes with a known surface displacement, for testing tracking and fusion.

The high-level entry point is :func:`make_pair`; the ingredients (texture,
motion models, warping, clouds, optical and SAR rendering) are importable from
their modules for finer control. :mod:`gvfuse.testing.products` makes a small
synthetic monthly product; :func:`render_series` renders a year of acquisitions
per sensor over one seasonal :class:`Landscape`.
"""

from gvfuse.testing.clouds import CloudCover, cloud_cover
from gvfuse.testing.glacier import GlacierFlow, ValleyGlacier, default_glaciers
from gvfuse.testing.motion import (
    MotionModel,
    Rotation,
    SimpleShear,
    Translation,
    max_displacement_gradient,
    pixel_centres,
    sample_motion,
    stable_ground_mask,
)
from gvfuse.testing.pair import SyntheticPair
from gvfuse.testing.scene import PRESETS, make_pair
from gvfuse.testing.texture import block_mean, fractal_noise, terrain_texture
from gvfuse.testing.timeseries import Landscape, RenderedScene, render_series
from gvfuse.testing.warping import sample_bilinear, warp

__all__ = [
    "PRESETS",
    "CloudCover",
    "GlacierFlow",
    "Landscape",
    "MotionModel",
    "RenderedScene",
    "Rotation",
    "SimpleShear",
    "SyntheticPair",
    "Translation",
    "ValleyGlacier",
    "block_mean",
    "cloud_cover",
    "default_glaciers",
    "fractal_noise",
    "make_pair",
    "max_displacement_gradient",
    "pixel_centres",
    "render_series",
    "sample_bilinear",
    "sample_motion",
    "stable_ground_mask",
    "terrain_texture",
    "warp",
]
