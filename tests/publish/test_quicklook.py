"""The quick-look, thumbnail and QGIS style of a month: deterministic, atomic, on the product's fixed scale."""

import io
import xml.etree.ElementTree as ET

import attrs
import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_hex
from matplotlib.image import imread

from gvfuse.plots import COLORMAP
from gvfuse.publish.quicklook import speed_style_qml, write_quicklooks
from gvfuse.testing.products import synthetic_monthly_product


def test_quicklook_and_thumbnail_are_deterministic_pngs_without_software_or_date(tmp_path):
    product = synthetic_monthly_product()
    first = write_quicklooks(product, tmp_path / "q1.png", tmp_path / "t1.png")
    second = write_quicklooks(synthetic_monthly_product(), tmp_path / "q2.png", tmp_path / "t2.png")
    assert first[0].read_bytes() == second[0].read_bytes()
    assert first[1].read_bytes() == second[1].read_bytes()
    for path in first:
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG") and b"Software" not in data and b"tIME" not in data


def _thumbnail(product, tmp_path, name, speed_max):
    _, thumbnail = write_quicklooks(product, tmp_path / f"{name}_q.png", tmp_path / f"{name}_t.png",
                                    speed_max_m_per_day=speed_max)
    return imread(io.BytesIO(thumbnail.read_bytes()))


def test_a_fixed_scale_gives_the_same_colour_to_the_same_speed_in_every_month(tmp_path):
    slow = synthetic_monthly_product()
    # a surging month: the same flow, and one fast tongue that would stretch a per-month scale
    vx = slow.vx_m_per_day.copy()
    vx[-5:, -10:] = 3.0
    fast = attrs.evolve(slow, month="2023-02", vx_m_per_day=vx)
    same = np.isfinite(slow.speed_m_per_day) & (np.arange(80)[None, :] < 70)
    fixed = _thumbnail(slow, tmp_path, "a", 1.5), _thumbnail(fast, tmp_path, "b", 1.5)
    np.testing.assert_array_equal(fixed[0][same], fixed[1][same])
    per_month = _thumbnail(slow, tmp_path, "c", None), _thumbnail(fast, tmp_path, "d", None)
    assert not np.array_equal(per_month[0][same], per_month[1][same])  # what the fixed scale is for
    # the top of the scale is the colour map's end
    np.testing.assert_allclose(fixed[1][-1, -1][:3], colormaps[COLORMAP](1.0)[:3], atol=1.01 / 255)  # 8 bits


def test_the_qgis_style_ramps_the_same_colours_over_the_same_scale():
    root = ET.fromstring(speed_style_qml(1.5).split("\n", 1)[1])
    renderer = root.find("pipe/rasterrenderer")
    assert renderer is not None and renderer.get("type") == "singlebandpseudocolor" and renderer.get("band") == "1"
    assert (renderer.get("classificationMin"), renderer.get("classificationMax")) == ("0", "1.5")
    items = root.findall("pipe/rasterrenderer/rastershader/colorrampshader/item")
    assert [float(i.get("value")) for i in items] == [round(0.15 * k, 6) for k in range(11)]
    ramp = colormaps[COLORMAP]
    assert [i.get("color") for i in items] == [to_hex(ramp(k / 10)) for k in range(11)]
