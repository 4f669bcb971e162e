"""The quick-look and thumbnail PNGs of a published month, written atomically.

The pictures are drawn by :mod:`gvfuse.plots`; this module only writes them
beside the COG (``YYYYMM_quicklook.png``, ``YYYYMM_thumbnail.png``).
"""

from __future__ import annotations

from pathlib import Path

from gvfuse.io.atomic import write_bytes_atomic
from gvfuse.model import MonthlyProduct
from gvfuse.plots import render_quicklook_png, render_thumbnail_png


def write_quicklooks(
    product: MonthlyProduct, quicklook_path: str | Path, thumbnail_path: str | Path, *,
    force: bool = False, title: str = "",
) -> tuple[Path, Path]:
    """Write the quick-look and the thumbnail atomically; existing files need ``force=True``."""
    quicklook = write_bytes_atomic(quicklook_path, render_quicklook_png(product, title), overwrite=force)
    thumbnail = write_bytes_atomic(thumbnail_path, render_thumbnail_png(product), overwrite=force)
    return quicklook, thumbnail
