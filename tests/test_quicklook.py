import io

import numpy as np
from PIL import Image

from gvfuse.quicklook import render_quicklook_png, render_thumbnail_png, write_quicklooks
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


def test_thumbnail_is_small_and_transparent_where_no_data():
    product = synthetic_monthly_product(shape=(300, 600))
    image = Image.open(io.BytesIO(render_thumbnail_png(product)))
    assert max(image.size) <= 256 and image.mode == "RGBA"
    alpha = np.asarray(image)[..., 3]
    assert alpha[0, 0] == 0 and alpha[-1, -1] == 255  # the synthetic gap is the top-left corner


def test_quicklook_changes_with_the_data():
    assert render_quicklook_png(synthetic_monthly_product(seed=0)) != render_quicklook_png(
        synthetic_monthly_product(seed=1))
