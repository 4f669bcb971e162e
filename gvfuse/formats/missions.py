"""What the bundled sensor names stand for in STAC common metadata: platforms, instruments, constellation.

Published items name the satellites and instruments behind a month
(``platform``/``instruments``/``constellation``, lowercase as STAC asks); a
product definition's ``[[sensors]]`` entry may state them, and for the
sensor names of the bundled readers these are the values it defaults to.
"""

from __future__ import annotations

from collections.abc import Mapping

#: ``{sensor name: (platforms, instruments, constellation)}`` for the bundled readers' sensors.
KNOWN_MISSIONS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "landsat": (("landsat-8", "landsat-9"), ("oli", "oli-2"), "landsat"),
    "sentinel-1": (("sentinel-1a", "sentinel-1b"), ("c-sar",), "sentinel-1"),
    "sentinel-2": (("sentinel-2a", "sentinel-2b"), ("msi",), "sentinel-2"),
    "uav": (("uav",), ("camera",), ""),
}
