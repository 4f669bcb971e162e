import io

import numpy as np
from PIL import Image

from gvfuse.plots import render_quicklook_png, render_thumbnail_png
from gvfuse.testing.products import synthetic_monthly_product


def test_thumbnail_is_small_and_transparent_where_no_data():
    product = synthetic_monthly_product(shape=(300, 600))
    image = Image.open(io.BytesIO(render_thumbnail_png(product)))
    assert max(image.size) <= 256 and image.mode == "RGBA"
    alpha = np.asarray(image)[..., 3]
    assert alpha[0, 0] == 0 and alpha[-1, -1] == 255  # the synthetic gap is the top-left corner


def test_quicklook_changes_with_the_data():
    assert render_quicklook_png(synthetic_monthly_product(seed=0)) != render_quicklook_png(
        synthetic_monthly_product(seed=1))
