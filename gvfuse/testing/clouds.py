"""Clouds and shadows: smooth random blobs covering a requested fraction of the scene.

A smooth random field (``1/f^4`` spectrum, so its level sets are rounded
blobs) is thresholded at its own quantile, which makes the covered fraction
exact up to one pixel rather than right only on average. Above the threshold
the opacity ramps from 0 (thin cloud edge) to 1 (opaque core) over
``edge_softness`` standard deviations of the field, so cloud edges are
semi-transparent as in real scenes.
"""

from __future__ import annotations

import attrs
import numpy as np

from gvfuse.testing.texture import fractal_noise


@attrs.frozen(eq=False)
class CloudCover:
    """Cloud opacity in [0, 1] and its mask (opacity > 0) on an image grid."""

    opacity: np.ndarray
    mask: np.ndarray

    @property
    def fraction(self) -> float:
        return float(self.mask.mean())


def smooth_field(shape: tuple[int, int], *, rng: np.random.Generator, scale_px: float) -> np.ndarray:
    """Standardized smooth random field (``1/f^4`` spectrum) with structures of ~``scale_px`` pixels."""
    return fractal_noise(shape, rng=rng, beta=4.0, outer_scale_px=scale_px)


def cloud_cover(
    shape: tuple[int, int],
    fraction: float,
    *,
    rng: np.random.Generator,
    scale_px: float | None = None,
    edge_softness: float = 0.4,
) -> CloudCover:
    """Clouds covering ``fraction`` of ``shape`` (exact to one pixel), blobs of ~``scale_px`` pixels.

    ``scale_px`` defaults to a quarter of the larger image side.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"cloud fraction must be within 0..1, got {fraction}")
    size = shape[0] * shape[1]
    covered = round(fraction * size)
    if covered == 0:
        zeros = np.zeros(shape, dtype=np.float32)
        return CloudCover(zeros, zeros.astype(bool))
    field = smooth_field(shape, rng=rng, scale_px=scale_px or max(shape) / 4.0)
    flat = field.ravel()
    # The value with exactly `covered` values above it (a continuous field has no ties).
    threshold = np.partition(flat, size - covered - 1)[size - covered - 1] if covered < size else -np.inf
    opacity = np.clip((field - threshold) / edge_softness, 0.0, 1.0).astype(np.float32)
    return CloudCover(opacity, field > threshold)


def shadow_factor(
    shape: tuple[int, int], fraction: float, *, rng: np.random.Generator, darkening: float = 0.6
) -> np.ndarray:
    """Multiplicative illumination factor with smooth shadows covering ``fraction`` of the scene.

    1 in the sun, down to ``1 - darkening`` in full shadow, with soft edges.
    """
    if fraction <= 0.0:
        return np.ones(shape, dtype=np.float32)
    cover = cloud_cover(shape, fraction, rng=rng, scale_px=max(shape) / 8.0, edge_softness=0.3)
    return (1.0 - darkening * cover.opacity).astype(np.float32)
