"""The pictures of a published month: quick-look and thumbnail PNGs, and the QGIS style of the speed COG.

The pictures are drawn by :mod:`gvfuse.plots` on the product's fixed colour
scale (0 to ``speed_max_m_per_day`` of the product definition, the same for
every month so months compare by eye). The QGIS style (``YYYYMM_v.qml``,
beside ``YYYYMM_v.tif``, which QGIS applies when it opens the COG) is a
single-band pseudocolour ramp of the same colour map on the same scale.
All written atomically.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from gvfuse.io.atomic import write_bytes_atomic, write_text_atomic
from gvfuse.model import MonthlyProduct
from gvfuse.plots import COLORMAP, render_quicklook_png, render_thumbnail_png

#: Colour stops of the QGIS ramp (interpolated between them, as the PNGs' colour map is).
QML_STOPS = 11


def write_quicklooks(
    product: MonthlyProduct, quicklook_path: str | Path, thumbnail_path: str | Path, *,
    force: bool = False, title: str = "", speed_max_m_per_day: float | None = None,
) -> tuple[Path, Path]:
    """Write the quick-look and the thumbnail atomically; existing files need ``force=True``.

    ``speed_max_m_per_day`` is the top of the colour scale (``None``: the month's 99th percentile).
    """
    quicklook = write_bytes_atomic(quicklook_path, render_quicklook_png(product, title, speed_max_m_per_day),
                                   overwrite=force)
    thumbnail = write_bytes_atomic(thumbnail_path,
                                   render_thumbnail_png(product, vmax_m_per_day=speed_max_m_per_day),
                                   overwrite=force)
    return quicklook, thumbnail


def speed_style_qml(speed_max_m_per_day: float) -> str:
    """A QGIS layer style (``.qml``): band 1 as a pseudocolour ramp of :data:`gvfuse.plots.COLORMAP`
    from 0 to ``speed_max_m_per_day`` m/d, clamped above, no-data transparent."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    top = f"{speed_max_m_per_day:g}"
    root = ET.Element("qgis", version="3.28", styleCategories="Symbology")
    pipe = ET.SubElement(root, "pipe")
    renderer = ET.SubElement(pipe, "rasterrenderer", type="singlebandpseudocolor", band="1", opacity="1",
                             alphaBand="-1", classificationMin="0", classificationMax=top, nodataColor="")
    shader = ET.SubElement(ET.SubElement(renderer, "rastershader"), "colorrampshader",
                           colorRampType="INTERPOLATED", classificationMode="1", clip="0",
                           minimumValue="0", maximumValue=top, labelPrecision="3")
    ramp = colormaps[COLORMAP]
    for i in range(QML_STOPS):
        fraction = i / (QML_STOPS - 1)
        value = f"{fraction * speed_max_m_per_day:.6g}"
        ET.SubElement(shader, "item", value=value, label=f"{value} m/d", alpha="255",
                      color=to_hex(ramp(fraction)))
    ET.indent(root)
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(root, encoding="unicode") + "\n"


def write_speed_style(path: str | Path, speed_max_m_per_day: float, *, force: bool = False) -> Path:
    """Write :func:`speed_style_qml` to ``path`` atomically."""
    return write_text_atomic(path, speed_style_qml(speed_max_m_per_day), overwrite=force)
