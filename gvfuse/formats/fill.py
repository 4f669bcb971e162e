"""A plain raster's fill value when its no-data tag does not say it.

GeoTIFFs cut to an outline or an orthomosaic's footprint are often filled with
0 (or the data type's largest value) around the data, while their no-data tag
is missing or names another value: a Sentinel-2 glacier crop tagged 65535 but
filled with 0, a drone orthomosaic exported with black corners and no tag.
Read as data, the fill is a flat area that matches itself perfectly: trackers
report zero motion there and the stable-ground correction takes it for still
rock (measured on the Rhone crops: 41 % of the valid cells off the glacier).

The rule (what a person would call an *obvious* fill): a candidate value
(0, and the data type's extremes) that every band holds at the same pixels, on
a region connected to the raster's edge covering at least
:data:`MIN_FILL_SHARE` of it. It is looked for only when the tag is missing or
never occurs in the data (a tag in use is believed), and never when the file
carries its own mask (an alpha band or an internal mask). The search reads the
whole raster decimated to about :data:`SAMPLE_SIDE_PX` pixels a side, so the
decision is the same for every window of the file.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
import rasterio
from rasterio.enums import MaskFlags, Resampling
from scipy import ndimage

#: Smallest share of the raster the edge-connected fill must cover to be taken as fill.
MIN_FILL_SHARE = 0.01

#: Longest side (px) of the decimated read the search looks at.
SAMPLE_SIDE_PX = 1024


@attrs.frozen
class Fill:
    """A fill value found in the data, with the evidence for it."""

    value: float
    share: float  # of the raster, edge-connected, in every band
    tag: float | None  # the file's own no-data tag, which did not say it

    def describe(self) -> str:
        told = "no no-data tag" if self.tag is None else f"its no-data tag {self.tag:g} never occurs"
        return (f"{told}; the value {self.value:g} in every band around the data ({100 * self.share:.0f} % of "
                "the raster, reaching its edge) is read as no data")


def candidate_values(dtype: str) -> tuple[float, ...]:
    """0 and the extremes that exporters fill with, for a raster data type."""
    kind = np.dtype(dtype)
    if kind.kind in "ui":
        info = np.iinfo(kind)
        return tuple(dict.fromkeys((0.0, float(info.max), float(info.min))))
    return (0.0, float(np.finfo(kind).min), -9999.0)


def find_fill(src: rasterio.DatasetReader) -> Fill | None:
    """The fill of an open raster that its tag does not declare, or None (see the module's rule)."""
    flags = {flag for per_band in src.mask_flag_enums for flag in per_band}
    if MaskFlags.alpha in flags or MaskFlags.per_dataset in flags:
        return None
    scale = max(1, math.ceil(max(src.height, src.width) / SAMPLE_SIDE_PX))
    shape = (src.count, math.ceil(src.height / scale), math.ceil(src.width / scale))
    sample = src.read(out_shape=shape, resampling=Resampling.nearest)
    tag = src.nodata
    if tag is not None and not math.isnan(tag) and bool((sample == tag).any()):
        return None
    best: Fill | None = None
    for value in candidate_values(src.dtypes[0]):
        if value == tag:
            continue
        share = _edge_connected_share((sample == value).all(axis=0))
        if share >= MIN_FILL_SHARE and (best is None or share > best.share):
            best = Fill(value=value, share=share, tag=tag)
    return best


def _edge_connected_share(candidate: np.ndarray) -> float:
    """Share of the raster covered by the regions of ``candidate`` that reach its edge."""
    if not candidate.any():
        return 0.0
    labels, _count = ndimage.label(candidate)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    touching = np.unique(edge[edge > 0])
    return float(np.isin(labels, touching).sum() / candidate.size) if touching.size else 0.0
