"""The tracking driver shared by every tracker: checks, tiling, pre-filter, matching, cleaning, correction.

Each output tile is a pure function of (tile, inputs, settings, matcher):
:func:`track_tile` reads the pixels it needs (the tile's windows plus a margin
of ``search radius`` and the pre-filter's footprint, and a halo of output cells
for the normalized median test), so tiles can run in any order or as separate
(e.g. dask) tasks; :func:`track_images` runs them in a plain loop and stitches.
Memory stays bounded by the tile size whatever the image size.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from typing import Any

import attrs
import numpy as np

from gvfuse.errors import GridError, InputError, TrackingError
from gvfuse.model import Image, OffsetField
from gvfuse.scheduling import tile_scheduler
from gvfuse.tracking.bright_changes import bright_change_masks
from gvfuse.tracking.consistency import forward_backward_error
from gvfuse.tracking.correlation import n_windows, window_sums
from gvfuse.tracking.matching import Matcher
from gvfuse.tracking.outliers import normalized_median_test, quality_mask
from gvfuse.tracking.prefilter import PREFILTERS, apply_prefilter, prefilter_margin_px
from gvfuse.tracking.stable_ground import estimate_stable_shift, remove_stable_shift

#: Output cells of the normalized-median-test halo around each tile.
HALO_CELLS = 2

#: Codes of the ``reason`` quality band: why a cell has no offset (0: it has one). The first step that
#: dropped the cell wins.
REASONS: dict[int, str] = {
    0: "valid",
    1: "no data (too few valid pixels in the window or its search area, no texture, or the cell's own pixel "
       "unobserved)",
    2: "no match (peak on the search edge or a failed sub-pixel refinement)",
    3: "below the peak-correlation or SNR threshold",
    4: "normalized median test",
    5: "forward-backward check",
}


@attrs.frozen
class TrackingSettings:
    """Everything the driver needs besides the images and the matcher."""

    window_px: int = attrs.field(validator=attrs.validators.ge(4))
    step_px: int = attrs.field(validator=attrs.validators.ge(1))
    search_radius_px: int = attrs.field(validator=attrs.validators.ge(0))
    prefilter: str = attrs.field(default="wallis", validator=attrs.validators.in_(PREFILTERS))
    min_peak_correlation: float = -1.0
    min_snr: float = 0.0
    median_test_threshold: float | None = 2.0  # None: no normalized median test
    median_test_epsilon_px: float = 0.1
    stable_slowest_fraction: float = 0.25
    stable_model: str = attrs.field(default="constant", validator=attrs.validators.in_(("constant", "plane")))
    correct_stable_ground: bool = True
    tile_memory_bytes: int = 256 * 2**20
    #: Downsampling factor of a coarse first pass (1: off). See :func:`coarse_prior`.
    coarse_to_fine: int = attrs.field(default=1, validator=attrs.validators.in_((1, 2, 4, 8)))
    #: Search radius (px) of the fine pass around the coarse prior, when ``coarse_to_fine > 1``.
    fine_search_radius_px: int = attrs.field(default=3, validator=attrs.validators.ge(2))
    #: Forward-backward consistency (None: off): the pair is also tracked secondary -> reference and a
    #: cell is kept only where the two answers add up to within this many pixels
    #: (:func:`gvfuse.tracking.consistency.forward_backward_error`).
    max_forward_backward_px: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.gt(0)))
    #: Clouds and fresh snow found in the pair (None: off): areas one date shows this many NMADs brighter
    #: than the other become no-data before matching (:mod:`gvfuse.tracking.bright_changes`).
    bright_change_nmad: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.gt(0)))
    #: A cell gets an offset only where its own (centre) pixel is observed in both images: a window
    #: that reaches over no-data is matched on what it sees, but its value belongs to a cell with data.
    observed_centre: bool = True
    #: A second pass with this larger window for the cells the first left empty for want of a match
    #: (None: off); ``fallback_window_px - window_px`` must be a multiple of ``2 * step_px`` so that both
    #: passes share the cell centres. See :func:`fill_from_larger_window`.
    fallback_window_px: int | None = None
    #: The second pass's peak threshold (None: ``min_peak_correlation``); a chance-level threshold falls
    #: with the window, so it differs from the first pass's.
    fallback_min_peak_correlation: float | None = None

    def __attrs_post_init__(self) -> None:
        fallback = self.fallback_window_px
        if fallback is None:
            return
        if isinstance(fallback, bool) or not isinstance(fallback, int) or fallback <= self.window_px:
            raise ValueError(f"fallback_window_px must be a whole number of pixels larger than window_px "
                             f"({self.window_px}), or false (off); got {fallback!r}")
        if (fallback - self.window_px) % (2 * self.step_px):
            near = self.window_px + 2 * self.step_px * max(1, round((fallback - self.window_px) / (2 * self.step_px)))
            raise ValueError(f"fallback_window_px - window_px must be a multiple of 2 x step_px = "
                             f"{2 * self.step_px} so both passes share the cell centres; {fallback} is not "
                             f"(try {near})")

    def tile_cells(self) -> int:
        """Output cells per tile side so the matcher's per-cell memory stays within ``tile_memory_bytes``."""
        side = 2 * self.search_radius_px + 1
        per_cell = 4 * side * side + 48 * self.step_px * self.step_px + 200
        return int(np.clip(math.isqrt(self.tile_memory_bytes // per_cell), 16, 1024))


@attrs.frozen
class Tile:
    """A block of output cells ``[row0, row1) x [col0, col1)`` on the window-centre grid."""

    row0: int
    row1: int
    col0: int
    col1: int


def iter_tiles(rows: int, cols: int, side: int) -> Iterator[Tile]:
    """Tiles of at most ``side`` x ``side`` output cells covering a ``rows`` x ``cols`` grid."""
    for r0 in range(0, rows, side):
        for c0 in range(0, cols, side):
            yield Tile(r0, min(r0 + side, rows), c0, min(c0 + side, cols))


def _cut(image: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """``image[y0:y1, x0:x1]`` with NaN where the slice leaves the image."""
    out = np.full((y1 - y0, x1 - x0), np.nan, dtype=np.float32)
    h, w = image.shape
    sy0, sy1, sx0, sx1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    if sy0 < sy1 and sx0 < sx1:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


def track_tile(
    tile: Tile, reference: np.ndarray, secondary: np.ndarray, settings: TrackingSettings, matcher: Matcher
) -> dict[str, np.ndarray]:
    """Offsets and quality of one tile's output cells (a pure function of its arguments).

    Returns ``dx_px``, ``dy_px``, ``peak_correlation``, ``snr`` for the tile's
    cells: matched, thresholded and cleaned by the normalized median test
    (with a halo of neighbouring cells so tile borders are tested like the rest),
    and ``reason`` (:data:`REASONS`: why a cell has no offset).
    """
    w, s, r = settings.window_px, settings.step_px, settings.search_radius_px
    pm = prefilter_margin_px(settings.prefilter)
    h = HALO_CELLS if settings.median_test_threshold is not None else 0
    r0, r1, c0, c1 = tile.row0 - h, tile.row1 + h, tile.col0 - h, tile.col1 + h
    y0, y1 = r0 * s - r, (r1 - 1) * s + w + r
    x0, x1 = c0 * s - r, (c1 - 1) * s + w + r
    ref = apply_prefilter(settings.prefilter, _cut(reference, y0 - pm, y1 + pm, x0 - pm, x1 + pm))
    sec = apply_prefilter(settings.prefilter, _cut(secondary, y0 - pm, y1 + pm, x0 - pm, x1 + pm))
    if pm:
        ref, sec = ref[pm:-pm, pm:-pm], sec[pm:-pm, pm:-pm]
    res = matcher(ref, sec, window_px=w, step_px=s, search_radius_px=r)
    dx, dy = res.dx_px.copy(), res.dy_px.copy()
    matched = np.isfinite(dx) & np.isfinite(dy)
    unmatched = np.where(np.isfinite(res.peak_correlation), 2, 1) if res.reason is None else res.reason
    reason = np.where(matched, 0, unmatched).astype(np.float32)
    keep = quality_mask(res.peak_correlation, res.snr, min_peak_correlation=settings.min_peak_correlation,
                        min_snr=settings.min_snr)
    dx[~keep] = np.nan
    dy[~keep] = np.nan
    reason[matched & ~keep] = 3
    if settings.median_test_threshold is not None:
        bad = normalized_median_test(dx, dy, threshold=settings.median_test_threshold,
                                     epsilon_px=settings.median_test_epsilon_px)
        dx[bad] = np.nan
        dy[bad] = np.nan
        reason[bad] = 4
    crop = (slice(h, h + tile.row1 - tile.row0), slice(h, h + tile.col1 - tile.col0))
    return {"dx_px": dx[crop], "dy_px": dy[crop], "peak_correlation": res.peak_correlation[crop],
            "snr": res.snr[crop], "reason": reason[crop]}


def run_tiles(tiles: list[Tile], reference: np.ndarray, secondary: np.ndarray, settings: TrackingSettings,
              matcher: Matcher, scheduler: str | None = None) -> list[dict[str, np.ndarray]]:
    """:func:`track_tile` for every tile, as dask tasks (see :func:`tile_scheduler`), in tile order."""
    import dask
    import dask.local
    import dask.threaded

    # The arrays ride in the function, not as task arguments, so dask neither hashes nor copies them.
    one = functools.partial(track_tile, reference=reference, secondary=secondary, settings=settings, matcher=matcher)
    tasks = [dask.delayed(one, pure=False)(tile) for tile in tiles]
    chosen = scheduler or tile_scheduler()
    # dask's callables for the two local schedulers: given a name, dask imports dask.distributed (~0.5 s)
    # to look for a client first
    get = {"threads": dask.threaded.get, "sync": dask.local.get_sync}.get(chosen, chosen)
    return list(dask.compute(*tasks, scheduler=get))


def check_inputs(reference: Image, secondary: Image, settings: TrackingSettings) -> None:
    """Raise a clear error naming the input when the pair cannot be tracked."""
    if reference.grid != secondary.grid:
        raise GridError(
            f"the secondary {secondary.source or '(unnamed)'} is not on the reference grid "
            f"(reference {reference.grid.shape} {reference.grid.crs} {tuple(reference.grid.transform)[:6]}, "
            f"secondary {secondary.grid.shape} {secondary.grid.crs} {tuple(secondary.grid.transform)[:6]}); "
            "reproject it onto the reference grid first",
            source=reference.source or None,
        )
    rows, cols = reference.grid.shape
    if settings.window_px > min(rows, cols):
        raise InputError(
            f"the {settings.window_px} px window is larger than the {rows} x {cols} image",
            source=reference.source or None, field="window",
        )
    for image, role in ((reference, "reference"), (secondary, "secondary")):
        pixels = image.pixels
        finite = np.isfinite(pixels)
        name = image.source or f"(unnamed {role})"
        if not finite.any():
            raise TrackingError(f"{name}: the {role} image has no valid pixel (all NaN)")
        # reductions over the valid pixels in place (a full-area scene's valid pixels copied out were 150 MB)
        top = float(np.max(pixels, where=finite, initial=-np.inf))
        if top == float(np.min(pixels, where=finite, initial=np.inf)):
            raise TrackingError(f"{name}: the {role} image is constant ({top}); nothing to track")


def _stable_mask_on_output(stable_mask: np.ndarray | None, image_shape: tuple[int, int],
                           out_shape: tuple[int, int], settings: TrackingSettings) -> np.ndarray | None:
    if stable_mask is None:
        return None
    mask = np.asarray(stable_mask, bool)
    if mask.shape == out_shape:
        return mask
    if mask.shape == image_shape:
        share = window_sums(mask.astype(np.float32), window_px=settings.window_px, step_px=settings.step_px,
                            rows=out_shape[0], cols=out_shape[1]) / float(settings.window_px**2)
        return share >= 0.9
    raise InputError(f"stable mask has shape {mask.shape}; expected the image grid {image_shape} "
                     f"or the output grid {out_shape}", field="stable_mask")


def centre_observed(reference: np.ndarray, secondary: np.ndarray, out_shape: tuple[int, int],
                    settings: TrackingSettings) -> np.ndarray:
    """Cells whose centre pixel (the central 2 x 2 of an even window) is valid in both images."""
    valid = np.isfinite(reference) & np.isfinite(secondary)
    w, s = settings.window_px, settings.step_px
    rows = np.arange(out_shape[0]) * s + (w - 1) // 2
    cols = np.arange(out_shape[1]) * s + (w - 1) // 2
    observed = valid[np.ix_(rows, cols)]
    if w % 2 == 0:  # the centre falls between pixels: all four around it
        for dr, dc in ((0, 1), (1, 0), (1, 1)):
            observed &= valid[np.ix_(rows + dr, cols + dc)]
    return observed


def _block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """``factor x factor`` block means, NaN where a block has fewer than half its pixels valid."""
    rows, cols = image.shape[0] // factor, image.shape[1] // factor
    blocks = image[: rows * factor, : cols * factor].reshape(rows, factor, cols, factor)
    valid = np.isfinite(blocks)
    count = valid.sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid, blocks, 0.0).sum(axis=(1, 3)) / count
    return np.where(count >= factor * factor / 2.0, mean, np.nan).astype(np.float32)


def coarse_prior(
    reference: np.ndarray, secondary: np.ndarray, matcher: Matcher, settings: TrackingSettings
) -> tuple[np.ndarray, np.ndarray] | None:
    """A smooth per-pixel prior offset field from a pass on ``coarse_to_fine``-times downsampled images.

    Coarse-to-fine (pyramid) matching, as in autoRIFT's chip-size pyramid
    (Lei, Gardner & Agram 2021, Remote Sens. 13:749) and Heid & Kääb (2012,
    Remote Sens. Environ. 118:339): at a factor ``f`` a motion of ``D`` px is
    ``D/f`` px, so the coarse search radius and the correlation surface are
    ``f`` times smaller, and the same window sees ``f`` times more ground,
    which makes the coarse match robust. The coarse offsets (NaN filled by the
    nearest valid value; the normalized median test already removed outliers) are scaled by ``f`` and
    interpolated onto every full-resolution pixel. ``None`` when the coarse
    images are too small for the window or no coarse window matched.
    """
    f = settings.coarse_to_fine
    ref_c, sec_c = _block_mean(reference, f), _block_mean(secondary, f)
    # The coarse window covers at most twice the fine window's ground (f x w/f... clipped to 16 coarse
    # px so the coarse correlation still has texture to work with): a window much wider than the fine
    # one would average fast ice with its stable margins and the prior would miss narrow glaciers.
    w = min(settings.window_px, max(16, settings.window_px // f))
    if min(ref_c.shape) < w:
        return None
    step = max(1, w // 4)
    radius = max(2, math.ceil(settings.search_radius_px / f) + 1)
    coarse = attrs.evolve(settings, window_px=w, step_px=step, search_radius_px=radius, coarse_to_fine=1,
                          correct_stable_ground=False, fallback_window_px=None)
    rows = n_windows(ref_c.shape[0], origin_px=0, window_px=w, step_px=step)
    cols = n_windows(ref_c.shape[1], origin_px=0, window_px=w, step_px=step)
    bands = {k: np.full((rows, cols), np.nan, np.float32) for k in ("dx_px", "dy_px")}
    for tile in iter_tiles(rows, cols, coarse.tile_cells()):
        result = track_tile(tile, ref_c, sec_c, coarse, matcher)
        for k, band in bands.items():
            band[tile.row0 : tile.row1, tile.col0 : tile.col1] = result[k]
    if not np.isfinite(bands["dx_px"]).any():
        return None
    from scipy import ndimage

    from gvfuse.tracking.outliers import fill_nearest
    from gvfuse.tracking.warping import field_to_pixels

    prior = []
    for k in ("dx_px", "dy_px"):
        smooth = fill_nearest(bands[k]) * f
        # Coarse pixel i spans full pixels [i*f, (i+1)*f): a coarse position p is full position p*f.
        on_coarse = field_to_pixels(smooth, ref_c.shape, origin_px=0, step_px=step, window_px=w)
        ys = (np.arange(reference.shape[0]) + 0.5) / f - 0.5
        xs = (np.arange(reference.shape[1]) + 0.5) / f - 0.5
        yy, xx = np.meshgrid(ys, xs, indexing="ij")
        prior.append(ndimage.map_coordinates(on_coarse, [yy, xx], order=1, mode="nearest").astype(np.float32))
    return prior[0], prior[1]


def _track_grid(reference: np.ndarray, secondary: np.ndarray, settings: TrackingSettings, matcher: Matcher,
                rows: int, cols: int, only: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The bands of :func:`track_tile` for the whole ``rows`` x ``cols`` output grid, tile by tile
    (with ``only``, just the tiles holding a True cell of it; the others stay NaN)."""
    bands = {k: np.full((rows, cols), np.nan, np.float32)
             for k in ("dx_px", "dy_px", "peak_correlation", "snr", "reason")}
    tiles = [t for t in iter_tiles(rows, cols, settings.tile_cells())
             if only is None or only[t.row0 : t.row1, t.col0 : t.col1].any()]
    for tile, result in zip(tiles, run_tiles(tiles, reference, secondary, settings, matcher)):
        for k, v in result.items():
            bands[k][tile.row0 : tile.row1, tile.col0 : tile.col1] = v
    return bands


def _matched(reference: np.ndarray, secondary: np.ndarray, settings: TrackingSettings, matcher: Matcher,
             rows: int, cols: int, only: np.ndarray | None = None,
             backward_matcher: Matcher | None = None) -> dict[str, np.ndarray]:
    """:func:`_track_grid`, then the forward-backward check when ``max_forward_backward_px`` is set
    (the way back with ``backward_matcher`` when given, else with ``matcher``)."""
    bands = _track_grid(reference, secondary, settings, matcher, rows, cols, only)
    if settings.max_forward_backward_px is not None:
        # The backward pass is raw (no thresholds, no median test): a cell fails the check because its own
        # answer does not come home, not because the way back fell below a threshold. With a coarse prior
        # both passes see the warped secondary, so the check is on the fine remainder.
        raw = attrs.evolve(settings, min_peak_correlation=-np.inf, min_snr=-np.inf, median_test_threshold=None)
        back = _track_grid(secondary, reference, raw, backward_matcher or matcher, rows, cols, only)
        error = forward_backward_error((bands["dx_px"], bands["dy_px"]), (back["dx_px"], back["dy_px"]),
                                       step_px=settings.step_px)
        with np.errstate(invalid="ignore"):
            inconsistent = np.isfinite(bands["dx_px"]) & ~(error <= settings.max_forward_backward_px)
        bands["dx_px"][inconsistent] = np.nan
        bands["dy_px"][inconsistent] = np.nan
        bands["reason"][inconsistent] = 5
        bands["forward_backward_px"] = error.astype(np.float32)
    return bands


#: Reasons (:data:`REASONS`) for which a larger window is tried: the data were there, the match was not.
RETRIED_REASONS = (2, 3, 4, 5)

#: ``fallback_window_px="auto"``: the larger window is at least this many times the base window (176 px for
#: 128 px: on the Rhone crops the fallback then adds a sixth to a third of the glacier at almost the same
#: temporal closure; docs/tracking.md, "A larger window where texture is poor").
FALLBACK_WINDOW_RATIO = 1.375


def fallback_window(value: Any, *, window_px: int, step_px: int) -> int | None:
    """The larger-window fallback's window (px) that ``fallback_window_px = value`` asks for (None: off).

    ``"auto"``: the smallest window of at least :data:`FALLBACK_WINDOW_RATIO` times ``window_px`` whose
    difference from it is a multiple of ``2 * step_px`` (so both passes share the cell centres); ``None``
    or ``False``: off; anything else is returned for :class:`TrackingSettings` to check.
    """
    if value is None or value is False:
        return None
    if value == "auto":
        lattice = 2 * step_px
        return window_px + lattice * max(1, math.ceil((FALLBACK_WINDOW_RATIO - 1.0) * window_px / lattice))
    return value


def fill_from_larger_window(bands: dict[str, np.ndarray], reference: np.ndarray, secondary: np.ndarray,
                            settings: TrackingSettings, matcher: Matcher,
                            backward_matcher: Matcher | None = None) -> None:
    """Fill the cells the first pass left empty for want of a match with a pass at ``fallback_window_px``.

    Multi-scale matching where texture is poor: a larger window holds more texture and matches where the
    base window could not (Debella-Gilo & Kääb 2012, Remote Sens. 4(1):43, locally adaptive template
    sizes; autoRIFT's chip-size fallback, Lei et al. 2021), at the price of more smoothing of the motion.
    The second pass applies the same acceptance (thresholds, median test among its own cells,
    forward-backward check) and runs only on the tiles holding such cells. The ``window_px`` band says
    which window each cell's offset comes from. ``bands`` are changed in place.
    """
    w, fallback = settings.window_px, settings.fallback_window_px
    rows, cols = bands["dx_px"].shape
    bands["window_px"] = np.where(np.isfinite(bands["dx_px"]), np.float32(w), np.float32(np.nan))
    if fallback is None:
        return
    k = (fallback - w) // (2 * settings.step_px)  # cells by which the larger windows' grid is inset
    inner = (slice(k, rows - k), slice(k, cols - k))
    empty = ~np.isfinite(bands["dx_px"]) & np.isin(bands["reason"], RETRIED_REASONS)
    if rows <= 2 * k or cols <= 2 * k or not empty[inner].any():
        return
    second = attrs.evolve(settings, window_px=fallback, fallback_window_px=None,
                          min_peak_correlation=(settings.min_peak_correlation
                                                if settings.fallback_min_peak_correlation is None
                                                else settings.fallback_min_peak_correlation))
    larger = _matched(reference, secondary, second, matcher, rows - 2 * k, cols - 2 * k, only=empty[inner],
                      backward_matcher=backward_matcher)
    took = empty[inner] & np.isfinite(larger["dx_px"])
    for key, band in bands.items():
        if key in larger:
            band[inner][took] = larger[key][took]
    bands["reason"][inner][took] = 0
    bands["window_px"][inner][took] = np.float32(fallback)


def track_images(
    reference: Image,
    secondary: Image,
    matcher: Matcher,
    settings: TrackingSettings,
    *,
    stable_mask: np.ndarray | None = None,
    tracker_name: str = "",
    extra_parameters: dict[str, Any] | None = None,
    backward_matcher: Matcher | None = None,
) -> OffsetField:
    """Track ``secondary`` against ``reference`` with ``matcher``; returns offsets on the window-centre grid.

    ``backward_matcher``: the matcher of the forward-backward check's way back (default ``matcher``); the
    check asks whether an answer comes home within ``max_forward_backward_px``, which a cheaper matcher
    can judge as well.

    Quality bands: ``peak_correlation`` and ``snr`` (as the matcher defines
    them), ``valid`` (1 where an offset was kept), ``reason`` (why a cell is
    empty, codes in :data:`REASONS`, 0 where it has an offset) and, with
    ``max_forward_backward_px`` set, ``forward_backward_px`` (the
    forward-backward error of each cell that passed the thresholds and the
    median test, NaN elsewhere or where the way back found nothing; cells
    above the tolerance or unchecked are NaN in the offsets). ``parameters`` record the
    tracker, settings and the stable-ground correction (``stable_shift_*``:
    the shift, the points used, the candidates' figures and the decision,
    ``stable_shift_decision`` = "applied", "skipped" or "off", with
    ``stable_shift_reason``; see :func:`gvfuse.tracking.stable_ground.estimate_stable_shift`).
    """
    check_inputs(reference, secondary, settings)
    out_grid = reference.grid.window_centre_grid(settings.step_px, settings.window_px)
    rows, cols = out_grid.shape
    ref_pixels = np.asarray(reference.pixels, dtype=np.float32)
    sec_pixels = np.asarray(secondary.pixels, dtype=np.float32)
    masked_share = {}
    if settings.bright_change_nmad is not None:
        ref_mask, sec_mask = bright_change_masks(ref_pixels, sec_pixels, threshold_nmad=settings.bright_change_nmad)
        ref_pixels = np.where(ref_mask, np.float32(np.nan), ref_pixels)
        sec_pixels = np.where(sec_mask, np.float32(np.nan), sec_pixels)
        masked_share = {"bright_change_share_reference": round(float(ref_mask.mean()), 6),
                        "bright_change_share_secondary": round(float(sec_mask.mean()), 6)}
    observed = centre_observed(ref_pixels, sec_pixels, (rows, cols), settings) if settings.observed_centre else None
    fine, prior = settings, None
    if settings.coarse_to_fine > 1 and settings.search_radius_px > settings.fine_search_radius_px:
        prior = coarse_prior(ref_pixels, sec_pixels, matcher, settings)
    if prior is not None:
        # The secondary is pulled back by the prior, so the fine pass only measures a small remainder
        # (memory: one more full-size image; the coarse pass is f^2 times smaller).
        from gvfuse.tracking.warping import warp_by_field

        sec_pixels = warp_by_field(sec_pixels, prior[0], prior[1])
        fine = attrs.evolve(settings, search_radius_px=settings.fine_search_radius_px)
    bands = _matched(ref_pixels, sec_pixels, fine, matcher, rows, cols, backward_matcher=backward_matcher)
    fill_from_larger_window(bands, ref_pixels, sec_pixels, fine, matcher, backward_matcher)
    dx, dy = bands.pop("dx_px"), bands.pop("dy_px")
    if observed is not None:  # no data comes first among the reasons, whatever else also dropped the cell
        dx[~observed] = np.nan
        dy[~observed] = np.nan
        bands["reason"][~observed] = 1
    if prior is not None:
        for band, p in ((dx, prior[0]), (dy, prior[1])):
            # What a window measures of the prior is its window mean.
            band += window_sums(p, window_px=settings.window_px, step_px=settings.step_px, rows=rows,
                                cols=cols) / float(settings.window_px**2)
    if not np.isfinite(dx).any():
        raise TrackingError(
            f"no window of {reference.source or 'the reference'} could be matched in "
            f"{secondary.source or 'the secondary'} (no texture, no overlap of valid data, or a search radius "
            f"of {settings.search_radius_px} px too small)"
        )
    mask_out = _stable_mask_on_output(stable_mask, reference.grid.shape, (rows, cols), settings)
    correction = estimate_stable_shift(dx, dy, mask_out, slowest_fraction=settings.stable_slowest_fraction,
                                       model=settings.stable_model,
                                       lag_cells=math.ceil(settings.window_px / settings.step_px))
    if settings.correct_stable_ground:
        dx, dy = remove_stable_shift(dx, dy, correction)
    else:
        correction = attrs.evolve(correction, decision="off",
                                  reason=f"switched off (correct_stable_ground=False); estimate: {correction.reason}")
    bands["valid"] = np.isfinite(dx).astype(np.float32)
    bands["window_px"][~np.isfinite(dx)] = np.nan
    parameters: dict[str, Any] = {
        "tracker": tracker_name,
        **attrs.asdict(settings),
        **(extra_parameters or {}),
        "coarse_to_fine_applied": prior is not None,
        **masked_share,
        "stable_shift_applied": bool(settings.correct_stable_ground and correction.source != "none"),
        **{f"stable_shift_{k}": v for k, v in correction.to_dict().items()},
    }
    return OffsetField(dx_px=dx, dy_px=dy, grid=out_grid, image_grid=reference.grid, quality=bands,
                       parameters=parameters)
