"""Synthetic image pairs with a known surface displacement, for testing trackers end to end.

:func:`make_pair` renders one sensor's reference and secondary images of a
textured landscape whose glaciers (or any :class:`MotionModel`) moved by a
known field between the dates, plus a constant geolocation error of the
secondary, and returns them with the truth as a :class:`SyntheticPair`.

How the secondary is made, and why it is exact: the scene is drawn on a
working grid padded by a margin (so content entering the view from outside
is real texture, not an edge artefact) and ``oversample`` times finer than the
sensor (see :mod:`gvfuse.testing.texture`). The surface radiance (or SAR
reflectivity and speckle) is warped there by the analytic field, evaluated
exactly at every fine pixel centre, and integrated over each sensor pixel;
the reference is the same radiance integrated without warping. Between fine
centres the inversion takes the field as bilinear, which is exact for smooth
flow and errs only at the no-slip ice margin, by at most a quarter of the
margin's gradient jump times a fine pixel (<= 0.003 px for the default scenes).
Radiometry, noise and clouds are then applied per date on the sensor grid,
where they belong: they do not move with the ice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs
import numpy as np
from affine import Affine
from scipy import ndimage

from gvfuse.model import Grid
from gvfuse.testing.clouds import cloud_cover, shadow_factor, smooth_field
from gvfuse.testing.glacier import GlacierFlow, ValleyGlacier, default_glaciers
from gvfuse.testing.motion import MotionModel, max_displacement_gradient, sample_motion, stable_ground_mask
from gvfuse.testing.optical import LANDSAT_RADIOMETRY, UAV_RADIOMETRY, render_optical, surface_reflectance
from gvfuse.testing.pair import SyntheticPair
from gvfuse.testing.sar import backscatter_amplitude, sar_amplitude_pair, speckle_coherence
from gvfuse.testing.texture import block_mean, terrain_texture
from gvfuse.testing.warping import warp

MAX_GRADIENT = 0.8
"""Largest displacement gradient (px/px) a scene may have: beyond it the surface nearly folds over."""

GANGRIGAB_ORIGIN = (250000.0, 3240000.0)
"""Top-left corner (x, y) in WGS 84 / UTM 47N, inside the Gangrigab product area."""


@attrs.frozen
class SensorPreset:
    """Defaults for one kind of sensor; every one can be overridden in :func:`make_pair`."""

    pixel_size_m: float
    dt_days: float
    max_speed_m_per_day: float
    band_name: str
    units: str
    cloud_fraction: float
    psf_fwhm_px: float


PRESETS = {
    "optical": SensorPreset(15.0, 16.0, 1.0, "B8", "DN", 0.1, 1.0),  # Landsat 8/9 OLI panchromatic
    "sar": SensorPreset(10.0, 12.0, 1.0, "VV", "amplitude", 0.0, 2.0),  # Sentinel-1 IW GRDH
    "uav": SensorPreset(1.0, 10.0, 0.3, "gray", "DN", 0.0, 1.0),  # orthomosaic near a terminus
}

# Independent random streams per ingredient, keyed by a fixed number: changing
# one ingredient's draws (or adding a new one) never changes the others.
_STREAMS = {
    "glaciers": 0, "texture": 1, "radiometry": 2, "noise_reference": 3, "noise_secondary": 4,
    "clouds_reference": 5, "clouds_secondary": 6, "illumination": 7, "shadows": 8, "speckle": 9, "surface_change": 10,
}


def _stream(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STREAMS[name],)))


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def padded_motion(
    model: MotionModel, shape: tuple[int, int], shift_px: tuple[float, float]
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """The margin (px) that holds every displacement, and the field on the scene padded by it.

    Refuses motions that nearly fold the surface over, which no image pair can show.
    Public so that :mod:`gvfuse.testing.timeseries` builds its working grid the same way.
    """
    margin = 4
    while True:
        padded = (shape[0] + 2 * margin, shape[1] + 2 * margin)
        dx, dy, ice = sample_motion(model, padded, offset_px=-margin)
        # Three pixels beyond the largest move: the cubic kernel's reach, and some.
        needed = math.ceil(float(np.max(np.hypot(dx, dy), initial=0.0)) + math.hypot(*shift_px)) + 3
        if needed <= margin:
            break
        margin = needed
    gradient = max_displacement_gradient(dx, dy)
    if gradient >= MAX_GRADIENT:
        raise ValueError(
            f"the motion folds the surface over: displacement gradient {gradient:.2f} px/px (limit {MAX_GRADIENT}); "
            "glaciers this narrow (in pixels) cannot move this far in dt_days: lower the speed or dt_days, "
            "or use a larger scene"
        )
    return margin, dx, dy, ice


def fine_motion(
    model: MotionModel, ice: np.ndarray, oversample: int, margin: int
) -> tuple[np.ndarray, np.ndarray]:
    """The field, in fine pixels, at every fine pixel of the padded scene.

    Models are zero off ice, so only fine pixels near a coarse ice pixel are
    evaluated (the dilation by two coarse pixels covers ice narrower than one).
    Public for :mod:`gvfuse.testing.timeseries`, which scales one such field per date.
    """
    k = oversample
    if ice.all():
        dx, dy, _ = sample_motion(model, ice.shape, k, offset_px=-margin)
        return dx * k, dy * k
    near = np.flatnonzero(ndimage.binary_dilation(ice, iterations=2))
    coarse_row, coarse_col = near // ice.shape[1], near % ice.shape[1]
    within = (np.arange(k) + 0.5) / k
    # The k x k fine centres of each near coarse pixel, as (n, k, 1) and (n, 1, k) arrays.
    rows = (coarse_row - margin)[:, None, None] + within[None, :, None]
    cols = (coarse_col - margin)[:, None, None] + within[None, None, :]
    dx_near, dy_near, _ = model.evaluate(rows, cols)
    fine_shape = (ice.shape[0], k, ice.shape[1], k)
    dx, dy = np.zeros(fine_shape, np.float32), np.zeros(fine_shape, np.float32)
    dx[coarse_row, :, coarse_col, :], dy[coarse_row, :, coarse_col, :] = dx_near * k, dy_near * k
    return dx.reshape(ice.shape[0] * k, -1), dy.reshape(ice.shape[0] * k, -1)


# The former private names, still used by existing tests.
_padded_motion, _fine_motion = padded_motion, fine_motion


def _upsample_linear(image: np.ndarray, factor: int) -> np.ndarray:
    """Linear interpolation onto a grid ``factor`` times finer (fine centres at ``(I + 0.5) / factor``)."""
    for axis in (0, 1):
        n = image.shape[axis]
        padded = np.concatenate([image.take([0], axis), image, image.take([n - 1], axis)], axis=axis)
        out_shape = list(image.shape)
        out_shape[axis] = n * factor
        out = np.empty(out_shape, dtype=np.float32)
        step = np.empty(image.shape, dtype=np.float32)

        def along(start: int, stop: int | None, stride: int = 1) -> tuple[slice, ...]:
            return (slice(None),) * axis + (slice(start, stop, stride),)  # noqa: B023 - called within this pass only

        for j in range(factor):
            # Fine pixel j of coarse pixel i sits at coarse index i + (j + 0.5) / factor - 0.5.
            offset = (j + 0.5) / factor - 0.5
            first = 1 if offset >= 0 else 0
            lo, hi = padded[along(first, first + n)], padded[along(first + 1, first + 1 + n)]
            np.subtract(hi, lo, out=step)
            step *= np.float32(offset - first + 1)
            step += lo
            out[along(j, None, factor)] = step
        image = out
    return image


def soft_ice_weight(ice: np.ndarray, oversample: int) -> np.ndarray:
    """Ice weight in [0, 1] with a margin a couple of pixels wide, on the fine grid (shared with timeseries)."""
    weight = ndimage.gaussian_filter(ice.astype(np.float32), sigma=1.0)
    return weight if oversample == 1 else _upsample_linear(weight, oversample)


def make_pair(
    kind: str = "optical",
    shape: tuple[int, int] = (512, 512),
    *,
    pixel_size_m: float | None = None,
    dt_days: float | None = None,
    max_speed_m_per_day: float | None = None,
    motion: MotionModel | None = None,
    glaciers: Sequence[ValleyGlacier] | None = None,
    glacier_count: int = 1,
    cloud_fraction: float | None = None,
    reference_cloud_fraction: float = 0.0,
    clouds_as_nan: bool = True,
    shadow_fraction: float = 0.0,
    illumination_change: float = 0.1,
    radiometric_change: bool = True,
    surface_change: float = 0.0,
    noise: bool = True,
    geolocation_shift_px: tuple[float, float] = (0.0, 0.0),
    coherence: float | None = None,
    looks: int = 1,
    oversample: int = 2,
    psf_fwhm_px: float | None = None,
    stable_margin_px: float = 3.0,
    band_name: str | None = None,
    seed: int = 0,
    crs: str | int = "EPSG:32647",
    origin: tuple[float, float] = GANGRIGAB_ORIGIN,
) -> SyntheticPair:
    """Render a reference/secondary pair of one sensor over moving glaciers, with the truth.

    ``kind`` is ``"optical"`` (Landsat-like DN), ``"sar"`` (Sentinel-1-like
    linear amplitude with surface-attached speckle) or ``"uav"`` (8-bit
    orthomosaic); ``None`` arguments take the kind's :data:`PRESETS`.

    Motion: ``motion`` if given, else ``glaciers`` (scene metres, see
    :class:`ValleyGlacier`), else ``glacier_count`` random glaciers reaching
    ``max_speed_m_per_day``. ``geolocation_shift_px = (dx, dy)`` shifts the
    whole secondary on top of it.

    Optical: ``cloud_fraction`` clouds the secondary, ``reference_cloud_fraction``
    the reference, as NaN or painted (``clouds_as_nan``); ``shadow_fraction``
    and ``illumination_change`` alter the secondary's illumination,
    ``radiometric_change`` its gain and offset; ``surface_change`` in [0, 1] is
    the share of the ice's texture variance that is new at the secondary's date
    (melt, fresh snow, wind: real glacier texture decorrelates over days to
    weeks, and small windows lose the match first); the rest is the reference's
    surface, moved. ``noise=False`` renders without noise or DN rounding.
    SAR: ``coherence`` fixes the speckle coherence (else
    :func:`speckle_coherence` of dt and motion) and ``looks`` multi-looks.

    ``psf_fwhm_px`` is the optics' blur (the SAR resolution). At the default
    1 px an optical image is about as aliased as a real one (MTF ~0.26 at
    Nyquist with the detector), which biases whitened phase correlation by a
    few hundredths of a pixel; 1.5-2 px gives cleaner, blurrier images.
    ``origin`` is the (x, y) of the top-left corner in ``crs``. Same arguments
    and ``seed``, same pair, bit for bit.
    """
    if kind not in PRESETS:
        raise ValueError(f"kind must be one of {sorted(PRESETS)}, got {kind!r}")
    preset = PRESETS[kind]
    pixel_size_m = preset.pixel_size_m if pixel_size_m is None else pixel_size_m
    dt_days = preset.dt_days if dt_days is None else dt_days
    psf_fwhm_px = preset.psf_fwhm_px if psf_fwhm_px is None else psf_fwhm_px
    cloud_fraction = preset.cloud_fraction if cloud_fraction is None else cloud_fraction
    if kind != "optical" and (cloud_fraction or reference_cloud_fraction):
        raise ValueError(f"{kind} images have no clouds; cloud fractions must be 0")
    if not 0.0 <= surface_change <= 1.0:
        raise ValueError(f"surface_change must be in [0, 1], got {surface_change}")
    if kind == "sar" and surface_change:
        raise ValueError("SAR decorrelation is its speckle coherence: use coherence, not surface_change")
    if kind == "sar" and not noise:
        raise ValueError("SAR speckle is the signal, not noise: noise=False is not available for sar")
    shape = (int(shape[0]), int(shape[1]))
    shift = (float(geolocation_shift_px[0]), float(geolocation_shift_px[1]))
    grid = Grid(crs, Affine(pixel_size_m, 0.0, origin[0], 0.0, -pixel_size_m, origin[1]), shape)
    if motion is None:
        if glaciers is None:
            speed = preset.max_speed_m_per_day if max_speed_m_per_day is None else max_speed_m_per_day
            glaciers = default_glaciers(
                shape, pixel_size_m, rng=_stream(seed, "glaciers"), max_speed_m_per_day=speed, count=glacier_count
            )
        motion = GlacierFlow(tuple(glaciers), pixel_size_m, dt_days)

    margin, dx_pad, dy_pad, ice_pad = padded_motion(motion, shape, shift)
    crop = (slice(margin, margin + shape[0]), slice(margin, margin + shape[1]))
    k = int(oversample)
    texture = terrain_texture(ice_pad.shape, rng=_stream(seed, "texture"), oversample=k, psf_fwhm_px=psf_fwhm_px)
    ice_weight = soft_ice_weight(ice_pad, k)
    fine_dx, fine_dy = fine_motion(motion, ice_pad, k, margin) if k > 1 else (dx_pad, dy_pad)

    def move(stack: np.ndarray, integrate_blocks: int = 1) -> np.ndarray:
        """The surface's fine-grid bands as the secondary sees them (moved, plus the geolocation error)."""
        return warp(stack, fine_dx, fine_dy, shift_px=(shift[0] * k, shift[1] * k), integrate_blocks=integrate_blocks)

    dx, dy, ice = (np.ascontiguousarray(a[crop]) for a in (dx_pad, dy_pad, ice_pad))
    no_clouds = np.zeros(shape, dtype=bool)
    rho: np.ndarray | np.floating | None
    cloud_masks, rho = (no_clouds, no_clouds.copy()), None
    if kind == "sar":
        rho = np.float32(coherence) if coherence is not None else speckle_coherence(np.hypot(dx, dy), dt_days)
        reference, secondary = sar_amplitude_pair(
            backscatter_amplitude(texture, ice_weight), move, crop, rho,
            rng=_stream(seed, "speckle"), looks=looks, resolution_px=psf_fwhm_px, oversample=k,
        )
        rho = np.broadcast_to(rho, shape).copy()
    else:
        reflectance = surface_reflectance(texture, ice_weight)
        later = reflectance
        if surface_change:
            fresh = terrain_texture(ice_pad.shape, rng=_stream(seed, "surface_change"), oversample=k,
                                    psf_fwhm_px=psf_fwhm_px)
            # standardised textures: the mix keeps unit variance; only the ice changes
            kept, new = np.float32(math.sqrt(1.0 - surface_change)), np.float32(math.sqrt(surface_change))
            mixed = kept * texture + new * fresh
            later = surface_reflectance(texture + ice_weight * (mixed - texture), ice_weight)
            del fresh, mixed
        del texture, ice_weight
        reference, secondary, cloud_masks = _render_optical_pair(
            kind, block_mean(reflectance, k)[crop], move(later, k)[crop], seed=seed,
            cloud_fraction=cloud_fraction, reference_cloud_fraction=reference_cloud_fraction,
            clouds_as_nan=clouds_as_nan, shadow_fraction=shadow_fraction,
            illumination_change=illumination_change, radiometric_change=radiometric_change, noise=noise,
        )
    return SyntheticPair(
        kind=kind,
        reference=_readonly(reference),
        secondary=_readonly(secondary),
        grid=grid,
        dx_px=_readonly(dx),
        dy_px=_readonly(dy),
        geolocation_shift_px=shift,
        ice_mask=_readonly(ice),
        stable_mask=_readonly(stable_ground_mask(ice, stable_margin_px)),
        cloud_mask=_readonly(cloud_masks[1]),
        reference_cloud_mask=_readonly(cloud_masks[0]),
        dt_days=float(dt_days),
        motion=motion,
        band_name=band_name or preset.band_name,
        units=preset.units,
        seed=seed,
        coherence=None if rho is None else _readonly(rho),
    )


def _render_optical_pair(
    kind: str,
    reference_refl: np.ndarray,
    secondary_refl: np.ndarray,
    *,
    seed: int,
    cloud_fraction: float,
    reference_cloud_fraction: float,
    clouds_as_nan: bool,
    shadow_fraction: float,
    illumination_change: float,
    radiometric_change: bool,
    noise: bool,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Each date's radiometry on the sensor grid: illumination, gain/offset, noise, clouds."""
    shape = reference_refl.shape
    radiometry = UAV_RADIOMETRY if kind == "uav" else LANDSAT_RADIOMETRY
    if not noise:
        radiometry = attrs.evolve(radiometry, noise_dn=0.0)
    illumination = shadow_factor(shape, shadow_fraction, rng=_stream(seed, "shadows"))
    if illumination_change:
        change = smooth_field(shape, rng=_stream(seed, "illumination"), scale_px=max(shape) / 3.0)
        illumination = illumination * (1.0 + illumination_change * np.clip(change, -3.0, 3.0) / 3.0)
    draws = _stream(seed, "radiometry")
    gain, offset = (1.0 + draws.normal(0.0, 0.05), draws.normal(0.0, 0.01) * radiometry.dn_per_reflectance)
    if not radiometric_change:
        gain, offset = 1.0, 0.0
    clouds_ref = cloud_cover(shape, reference_cloud_fraction, rng=_stream(seed, "clouds_reference"))
    clouds_sec = cloud_cover(shape, cloud_fraction, rng=_stream(seed, "clouds_secondary"))
    reference = render_optical(
        reference_refl, rng=_stream(seed, "noise_reference"), radiometry=radiometry,
        clouds=clouds_ref, clouds_as_nan=clouds_as_nan, quantize=noise,
    )
    secondary = render_optical(
        secondary_refl, rng=_stream(seed, "noise_secondary"), radiometry=radiometry, gain=gain, offset_dn=offset,
        illumination=illumination, clouds=clouds_sec, clouds_as_nan=clouds_as_nan, quantize=noise,
    )
    return reference, secondary, (clouds_ref.mask, clouds_sec.mask)
