"""Search radius from the expected motion."""

from __future__ import annotations

import math


def search_radius_px(
    max_speed_m_per_day: float,
    dt_days: float,
    pixel_size_m: float,
    *,
    geolocation_margin_px: float = 2.0,
    min_radius_px: int = 2,
) -> int:
    """Integer search radius: ``ceil(max_speed * dt / pixel_size + margin) + 1``.

    The margin covers the geolocation error between the images; the extra
    pixel keeps the true peak off the search edge (edge peaks are rejected).
    """
    if dt_days <= 0 or not math.isfinite(dt_days):
        raise ValueError(f"dt_days must be positive, got {dt_days}")
    if pixel_size_m <= 0:
        raise ValueError(f"pixel_size_m must be positive, got {pixel_size_m}")
    if max_speed_m_per_day < 0:
        raise ValueError(f"max_speed_m_per_day must be >= 0, got {max_speed_m_per_day}")
    motion = max_speed_m_per_day * dt_days / pixel_size_m
    return max(int(min_radius_px), math.ceil(motion + geolocation_margin_px) + 1)
