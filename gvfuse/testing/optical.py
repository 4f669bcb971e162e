"""Optical rendering: surface reflectance to digital numbers, with the day's radiometry and clouds.

The radiometric model is linear, ``DN = offset + scale * gain * reflectance *
illumination + offset_change + noise``, rounded and clipped to the sensor's
range. The default scale and offset invert the Landsat Collection 2 Level-1
rescaling (``REFLECTANCE_MULT_BAND_x = 2.0E-05``, ``REFLECTANCE_ADD_BAND_x =
-0.1``): reflectance 0.2 is DN 15000. Gain, offset and illumination differ
between the dates; noise is independent per image.
"""

from __future__ import annotations

import attrs
import numpy as np

from gvfuse.testing.clouds import CloudCover


@attrs.frozen
class OpticalRadiometry:
    """Linear sensor response and noise, in digital numbers."""

    dn_per_reflectance: float = 50000.0
    dn_offset: float = 5000.0
    noise_dn: float = 40.0
    saturation_dn: float = 65535.0


LANDSAT_RADIOMETRY = OpticalRadiometry()
UAV_RADIOMETRY = OpticalRadiometry(dn_per_reflectance=255.0, dn_offset=0.0, noise_dn=1.0, saturation_dn=255.0)
"""An 8-bit orthomosaic: grey value 255 is reflectance 1."""


def surface_reflectance(
    texture: np.ndarray,
    ice_weight: np.ndarray,
    *,
    rock: tuple[float, float] = (0.16, 0.3),
    ice: tuple[float, float] = (0.50, 0.08),
) -> np.ndarray:
    """Reflectance from a standardized texture, log-normal about a median for rock and ice, mixed by ``ice_weight``.

    ``rock``/``ice`` are ``(median reflectance, log standard deviation)``: the
    log-normal keeps reflectance positive with the bright tail of real
    terrain. Ice is brighter and smoother than rock, as debris-poor glacier
    ice is in the near infrared. ``ice_weight`` in [0, 1] should be soft (a
    few pixels wide at the margin) so the glacier outline is band-limited too.
    """
    # In place, two fine-grid arrays at a time: these images are the largest the generator makes.
    reflectance = np.exp(np.float32(rock[1]) * texture)
    reflectance *= np.float32(rock[0])
    ice_part = np.exp(np.float32(ice[1]) * texture)
    ice_part *= np.float32(ice[0])
    ice_part -= reflectance
    ice_part *= ice_weight
    reflectance += ice_part
    return reflectance.astype(np.float32, copy=False)


def render_optical(
    reflectance: np.ndarray,
    *,
    rng: np.random.Generator,
    radiometry: OpticalRadiometry = LANDSAT_RADIOMETRY,
    gain: float = 1.0,
    offset_dn: float = 0.0,
    illumination: np.ndarray | None = None,
    clouds: CloudCover | None = None,
    clouds_as_nan: bool = True,
    cloud_reflectance: float = 0.8,
    quantize: bool = True,
) -> np.ndarray:
    """Digital numbers (float32) of one acquisition.

    ``illumination`` multiplies the reflectance (changed sun angle, shadows).
    Clouds are NaN with ``clouds_as_nan`` (a cloud mask already applied),
    else painted over the ground with their opacity, as the raw sensor sees
    them (cloud tops brighter where thicker).
    """
    signal = reflectance if illumination is None else reflectance * illumination
    if clouds is not None and not clouds_as_nan:
        alpha = clouds.opacity
        cloud = cloud_reflectance * (0.85 + 0.15 * alpha)
        signal = signal + alpha * (cloud - signal)
    dn = radiometry.dn_offset + offset_dn + radiometry.dn_per_reflectance * gain * signal
    dn = dn + np.float32(radiometry.noise_dn) * rng.standard_normal(dn.shape, dtype=np.float32)
    if quantize:
        dn = np.round(dn)
    dn = np.clip(dn, 0.0, radiometry.saturation_dn).astype(np.float32)
    if clouds is not None and clouds_as_nan:
        dn[clouds.mask] = np.nan
    return dn
