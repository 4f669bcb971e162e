"""Velocity fields with known truth for the fusion and month tests: a smooth glacier flow plus sensor noise."""

from __future__ import annotations

import numpy as np
from affine import Affine

from gvfuse.model import ERROR_BAND, Grid, VelocityField


def grid(shape=(40, 50)) -> Grid:
    return Grid(32647, Affine(30, 0, 250000, 0, -30, 3260000), shape)


def truth(shape=(40, 50)) -> tuple[np.ndarray, np.ndarray]:
    """A smooth glacier-like flow: fast in a band, slow outside (m/day)."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    centre = shape[0] / 2 + 4 * np.sin(cols / 8)
    speed = 1.5 * np.clip(1 - ((rows - centre) / 10) ** 2, 0, None)
    angle = np.arctan(0.5 * np.cos(cols / 8))
    return speed * np.cos(angle), -speed * np.sin(angle)


def field(vx, vy, sigma, g=None) -> VelocityField:
    g = g or grid(vx.shape)
    return VelocityField(vx.astype("f4"), vy.astype("f4"), g, dt_days=16,
                         quality={ERROR_BAND: np.broadcast_to(np.float32(sigma), g.shape).copy()})


def noisy_sensors(sigmas, coverage, seed=0, shape=(40, 50)):
    rng = np.random.default_rng(seed)
    tx, ty = truth(shape)
    fields = {}
    for name, sigma in sigmas.items():
        vx = tx + rng.normal(0, sigma, shape)
        vy = ty + rng.normal(0, sigma, shape)
        gap = rng.random(shape) > coverage[name]
        vx[gap] = vy[gap] = np.nan
        fields[name] = field(vx, vy, sigma, grid(shape))
    return fields, (tx, ty)


def rmse(f: VelocityField, tx, ty, where) -> float:
    return float(np.sqrt(np.nanmean(((f.vx_m_per_day - tx) ** 2 + (f.vy_m_per_day - ty) ** 2)[where])))
