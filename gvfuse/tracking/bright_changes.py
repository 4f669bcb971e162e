"""Clouds and fresh snow found in the pair itself, for scenes that come without a mask.

A cloud (or fresh snow) over ground that the other date sees clear is a large,
smooth *brightening* of one date against the other. Multi-temporal cloud
detection looks for exactly that against a clear date (Hagolle et al. 2010,
"A multi-temporal method for cloud detection, applied to FORMOSAT-2, VENuS,
LANDSAT and SENTINEL-2 images", Remote Sens. Environ. 114(8):1747-1755; Zhu &
Woodcock 2014, Tmask, Remote Sens. Environ. 152:217-234). Here, with one band
and no calibrated reflectance:

1. each image is standardised by its median and NMAD over the pixels both
   images have (so a gain or offset between the dates changes nothing);
2. both are smoothed (Gaussian, NaN-aware) so that the motion of a few pixels,
   noise and texture do not count, only areas that brightened;
3. the difference secondary - reference, above ``threshold_nmad`` NMADs of
   itself over the scene and above :data:`MIN_BRIGHTENING` NMADs of the
   scenes' brightness, marks the secondary; below the negatives of both, the
   reference (the brighter date is the cloudy one);
4. a mark that holds at least :data:`MIN_CLOUD_PX` pixels above the threshold
   grows over the connected pixels brightened by at least :data:`FRINGE_NMAD`
   NMADs of the difference (hysteresis, as in Canny 1986, IEEE TPAMI
   8(6):679), and then by ``dilation_px`` (none by default), so that a cloud's
   semi-transparent fringe goes too: it still shows the ground, but brightened
   and with less contrast. A smoothing of 1.5 px without dilation kept more of
   the clear ice next to painted clouds than 3 px with a 2 px dilation (the
   mask reached past the cloud and took clear cells with it); measured figures
   in docs/tracking.md, "Clouds without a mask".

A plateau of saturated pixels (the image's largest value on at least
``SATURATED_SHARE`` of its pixels) is marked as well: it has no texture to match.

The marked pixels become no-data before matching, so a window next to a cloud
is matched on its clear part (masked correlation) instead of being lost to a
bright patch it cannot explain. Darkening is not marked: snow melting to ice
and a changed sun angle darken large areas of real glaciers that still track.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from gvfuse.stats import nmad

#: Share of an image's valid pixels at its largest value above which those pixels are a saturated plateau
#: (a few bright pixels at the maximum are texture, not saturation).
SATURATED_SHARE = 0.001

#: Smoothing (Gaussian sigma, px) before the dates are compared.
SMOOTHING_PX = 1.5

#: Least brightening of a cloud, in NMADs of the scenes' own brightness: where the two dates differ
#: little (the same ground, the same light), ``threshold_nmad`` NMADs of their difference is a small
#: change, and a changed sun angle alone reached it (up to 1.0 on cloudless synthetic pairs with a
#: +-10 % illumination change, 12 % of a scene masked without this floor).
MIN_BRIGHTENING = 2.0

#: Brightening (NMADs) down to which a detected cloud's connected fringe is masked with it.
FRINGE_NMAD = 2.0

#: Fewest strongly brightened pixels that make a cloud: a single bright pixel is texture that moved.
MIN_CLOUD_PX = 25

#: Medians and NMADs are taken on every this-many-th valid pixel (a regular sample: the same answer to a
#: few thousandths, a quarter of the time).
STATISTICS_STRIDE = 4
#: ... and on at most about this many: a full-area scene (37 million pixels) is sampled more sparsely, its
#: medians from two million values (a median's standard error is then 0.1 % of the spread).
MAX_STATISTICS_SAMPLES = 2_000_000

#: Fewest pixels valid in both images for the comparison to mean anything.
MIN_COMMON_PIXELS = 256


def _nan_gaussian(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian smoothing of the valid pixels (normalized convolution); NaN where little is valid."""
    valid = np.isfinite(image)

    def blur(values: np.ndarray) -> np.ndarray:  # OpenCV's: 5x faster than scipy.ndimage's here
        return cv2.GaussianBlur(values, (0, 0), sigmaX=sigma_px, borderType=cv2.BORDER_REFLECT)

    total = blur(np.where(valid, image, 0.0).astype(np.float32, copy=False))
    weight = blur(valid.astype(np.float32))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0.2, total / weight, np.nan).astype(np.float32, copy=False)


def saturated_plateau(image: np.ndarray) -> np.ndarray:
    """Pixels at the image's largest value, when that value covers at least :data:`SATURATED_SHARE`."""
    valid = np.isfinite(image)
    if not valid.any():
        return np.zeros(image.shape, dtype=bool)
    top = np.nanmax(image)
    plateau = valid & (image >= top)
    return plateau if plateau.sum() >= SATURATED_SHARE * valid.sum() else np.zeros(image.shape, dtype=bool)


def brightening(reference: np.ndarray, secondary: np.ndarray,
                smoothing_px: float = SMOOTHING_PX) -> tuple[np.ndarray, float] | None:
    """How much brighter the secondary is than the reference at each pixel, and that difference's spread.

    The difference is in units of the scenes' own spread (each image standardised by its median and
    NMAD), smoothed and centred on its median; the spread is its NMAD over the scene. ``None`` when the
    images share fewer than :data:`MIN_COMMON_PIXELS` valid pixels or have no spread.
    """
    valid = np.isfinite(reference) & np.isfinite(secondary)
    common = int(valid.sum())
    if common < MIN_COMMON_PIXELS:
        return None
    stride = max(STATISTICS_STRIDE, common // MAX_STATISTICS_SAMPLES)
    smooth = []
    for image in (reference, secondary):
        values = image[valid][::stride]
        spread = nmad(values)
        if not spread > 0:
            return None
        standard = np.where(valid, (image - np.float32(np.median(values))) / np.float32(spread), np.nan)
        smooth.append(_nan_gaussian(standard.astype(np.float32, copy=False), smoothing_px))
    difference = smooth[1] - smooth[0]
    sample = difference[valid & np.isfinite(difference)][::stride]
    spread = nmad(sample)
    if not spread > 0:
        return None
    return (difference - np.float32(np.median(sample))).astype(np.float32, copy=False), spread


def _hysteresis(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """The connected regions of ``values > low`` that hold at least :data:`MIN_CLOUD_PX` pixels above ``high``."""
    with np.errstate(invalid="ignore"):
        above_low, above_high = values > low, values > high
    if above_high.sum() < MIN_CLOUD_PX:
        return np.zeros(values.shape, dtype=bool)
    labels, _ = ndimage.label(above_low)
    seeds = np.flatnonzero(np.bincount(labels[above_high], minlength=labels.max() + 1) >= MIN_CLOUD_PX)
    return np.isin(labels, seeds[seeds > 0])


def bright_change_masks(reference: np.ndarray, secondary: np.ndarray, *, threshold_nmad: float,
                        dilation_px: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of (reference, secondary) to treat as no-data: the brighter date's clouds, and saturation."""
    masks = [saturated_plateau(reference), saturated_plateau(secondary)]
    found = brightening(reference, secondary)
    if found is not None:
        difference, spread = found
        high = max(threshold_nmad * spread, MIN_BRIGHTENING)
        low = min(FRINGE_NMAD * spread, high)
        masks[0] |= _hysteresis(-difference, low, high)
        masks[1] |= _hysteresis(difference, low, high)
    if dilation_px > 0:
        grow = np.ones((2 * dilation_px + 1, 2 * dilation_px + 1), dtype=bool)
        masks = [ndimage.binary_dilation(m, structure=grow) if m.any() else m for m in masks]
    return masks[0], masks[1]
