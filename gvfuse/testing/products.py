"""A small synthetic :class:`~gvfuse.model.MonthlyProduct` with full provenance, for tests and examples."""

from __future__ import annotations

import datetime as dt

import numpy as np
from affine import Affine

from gvfuse.model import Grid, MonthlyProduct, Provenance

SENSORS: tuple[str, ...] = ("landsat", "sentinel-1", "sentinel-2")
_TRACKERS = {"landsat": "fft-phase", "sentinel-1": "ncc", "sentinel-2": "fft-phase"}


def _scene(sensor: str, scene_id: str, when: dt.datetime) -> dict[str, str]:
    return {"id": scene_id, "sensor": sensor, "datetime": when.isoformat().replace("+00:00", "Z")}


def synthetic_monthly_product(
    month: str = "2023-01", shape: tuple[int, int] = (60, 80), seed: int = 0
) -> MonthlyProduct:
    """A month on EPSG:32647 (30 m) with a valley-glacier-like flow, gaps, and two pairs per sensor.

    Provenance follows the pipeline's layout: ``parameters["pairs"]`` (one dict
    per pair), ``inputs`` (every scene id), ``plugins`` (name -> version).
    """
    rng = np.random.default_rng(seed)
    rows, cols = shape
    grid = Grid(32647, Affine(30.0, 0.0, 300000.0, 0.0, -30.0, 3250000.0), shape)
    yy, xx = np.mgrid[0:rows, 0:cols].astype("float32")
    centre = rows / 2.0
    speed = np.clip(1.0 - ((yy - centre) / (rows / 3.0)) ** 2, 0.0, None) * (0.2 + xx / cols)
    vx = (speed * 0.9 + rng.normal(0, 0.01, shape)).astype("float32")
    vy = (speed * -0.3 + rng.normal(0, 0.01, shape)).astype("float32")
    v_error = np.full(shape, 0.02, dtype="float32")
    vx_error = np.full(shape, 0.025, dtype="float32")
    vy_error = np.full(shape, 0.015, dtype="float32")
    count = np.full(shape, 3.0, dtype="float32")
    sensor_mask = np.full(shape, 7.0, dtype="float32")
    gap = (slice(0, rows // 6), slice(0, cols // 5))
    for arr in (vx, vy, v_error, vx_error, vy_error):
        arr[gap] = np.nan
    count[gap] = 0.0
    sensor_mask[gap] = 0.0
    count[-5:, :] = 2.0
    sensor_mask[-5:, :] = 5.0  # landsat (1) + sentinel-2 (4)

    year, mon = map(int, month.split("-"))
    start = dt.datetime(year, mon, 2, 4, 30, tzinfo=dt.timezone.utc)
    pairs, inputs = [], []
    for k, sensor in enumerate(SENSORS):
        for j in range(2):
            t0 = start + dt.timedelta(days=k + 12 * j)
            t1 = t0 + dt.timedelta(days=12 if sensor == "sentinel-1" else 16)
            ref = _scene(sensor, f"{sensor.upper()}_{t0:%Y%m%dT%H%M}", t0)
            sec = _scene(sensor, f"{sensor.upper()}_{t1:%Y%m%dT%H%M}", t1)
            inputs += [ref["id"], sec["id"]]
            pairs.append({
                "pair_id": f"{ref['id']}_X_{sec['id']}", "sensor": sensor, "reference": ref, "secondary": sec,
                "dt_days": (t1 - t0).total_seconds() / 86400.0, "tracker": _TRACKERS[sensor],
                "tracker_parameters": {"window_px": 32, "step_px": 2 if sensor == "landsat" else 3},
            })
    provenance = Provenance(
        software="gvfuse", software_version="0.1.0",
        plugins={"weightings": "0.1.0", "trackers": "0.1.0"},
        inputs=tuple(dict.fromkeys(inputs)),
        parameters={"pairs": pairs, "weighting": "wls-uav", "grid_resolution_m": 30.0},
    )
    return MonthlyProduct(
        month=month, vx_m_per_day=vx, vy_m_per_day=vy, v_error_m_per_day=v_error, count=count,
        sensor_mask=sensor_mask, grid=grid, sensors=SENSORS,
        weights={"landsat": 0.35, "sentinel-1": 0.25, "sentinel-2": 0.40},
        validation={"stable_ground": {"mean_m_per_day": 0.0012, "std_m_per_day": 0.0098, "n": 1200},
                    "uav": {"mean_m_per_day": -0.004, "std_m_per_day": 0.031, "invalid_percent": 4.2}},
        provenance=provenance, vx_error_m_per_day=vx_error, vy_error_m_per_day=vy_error,
    )
