"""A plain raster's fill taken from the data when its no-data tag does not declare it (gvfuse.formats.fill)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from gvfuse.formats.fill import find_fill
from gvfuse.formats.loading import load_plain_raster
from tests.helpers.scenes import ORIGIN_X, ORIGIN_Y, textured, write_raster

TRANSFORM = Affine(10.0, 0.0, ORIGIN_X, 0.0, -10.0, ORIGIN_Y)


def outline(shape: tuple[int, int], *, centre=(0.5, 0.5), radii=(0.35, 0.3)) -> np.ndarray:
    """An elliptical 'glacier' inside the raster (True = data)."""
    rows, cols = np.indices(shape)
    (cy, cx), (ry, rx) = centre, radii
    return ((rows / shape[0] - cy) / ry) ** 2 + ((cols / shape[1] - cx) / rx) ** 2 <= 1.0


def rgb_crop(shape=(120, 90), *, fill: int = 0, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Three uint16 bands of texture (never 0 or 65535) with ``fill`` outside an outline, and the outline."""
    inside = outline(shape)
    bands = np.stack([textured(*shape, seed=seed + k) for k in range(3)])
    bands[:, ~inside] = fill
    return bands, inside


def fill_of(path) -> object:
    with rasterio.open(path) as src:
        return find_fill(src)


def test_a_wrong_tag_is_overruled_by_the_obvious_fill(tmp_path):
    """The Rhone crops' case: tagged 65535, filled with 0 around the glacier."""
    bands, inside = rgb_crop()
    path = tmp_path / "crop_20170719.tif"
    write_raster(path, bands, TRANSFORM, nodata=65535)
    fill = fill_of(path)
    assert fill is not None and fill.value == 0 and fill.tag == 65535
    assert fill.share == pytest.approx((~inside).mean(), abs=0.01)
    image = load_plain_raster(path)
    np.testing.assert_array_equal(np.isfinite(image.pixels), inside)
    assert image.notes[0] == "3 bands: band 1 is tracked (choose another with --band)"
    assert "65535 never occurs" in image.notes[1] and "value 0" in image.notes[1]


def test_a_missing_tag_and_a_white_fill(tmp_path):
    bands, inside = rgb_crop(fill=65535)
    path = tmp_path / "crop.tif"
    write_raster(path, bands[1], TRANSFORM)  # one band, no tag
    image = load_plain_raster(path)
    np.testing.assert_array_equal(np.isfinite(image.pixels), inside)
    assert len(image.notes) == 1 and "no no-data tag" in image.notes[0]


def test_a_tag_in_use_is_believed(tmp_path):
    """The tag occurs in the data: it is the file's word, and 0 elsewhere stays data."""
    bands, _inside = rgb_crop()
    bands[:, :5, :5] = 65535
    path = tmp_path / "crop.tif"
    write_raster(path, bands, TRANSFORM, nodata=65535)
    assert fill_of(path) is None
    image = load_plain_raster(path, band=2)
    assert image.notes == ()  # a chosen band is not news
    assert np.isnan(image.pixels[:5, :5]).all() and np.isfinite(image.pixels[-1, -1])


@pytest.mark.parametrize("case", ["inner dark lake", "scattered zeros", "one band zero", "too small"])
def test_zeros_that_are_not_a_fill_stay_data(tmp_path, case):
    bands = np.stack([textured(120, 90, seed=k) for k in range(3)])
    if case == "inner dark lake":  # 0 in every band, a large region, but not reaching the edge
        bands[:, 40:80, 30:60] = 0
    elif case == "scattered zeros":
        rng = np.random.default_rng(0)
        bands[:, rng.integers(0, 120, 300), rng.integers(0, 90, 300)] = 0
    elif case == "one band zero":  # a black border in red only is not "every band"
        bands[0, :, :20] = 0
    else:  # reaches the edge in every band but covers < 1 % of the raster
        bands[:, :5, :10] = 0
    path = tmp_path / "scene.tif"
    write_raster(path, bands, TRANSFORM)
    assert fill_of(path) is None


def test_an_alpha_band_is_the_files_own_mask(tmp_path):
    bands, inside = rgb_crop()
    alpha = np.where(inside, 255, 0).astype("uint16")
    path = tmp_path / "ortho.tif"
    write_raster(path, np.concatenate([bands, alpha[None]]), TRANSFORM, photometric="RGB", alpha="YES")
    assert fill_of(path) is None


@settings(max_examples=15, deadline=None)
@given(cy=st.floats(0.2, 0.8), cx=st.floats(0.2, 0.8), ry=st.floats(0.2, 0.45), rx=st.floats(0.2, 0.45),
       fill=st.sampled_from([0, 65535]), size=st.sampled_from([(60, 80), (300, 200), (2100, 64)]))
def test_the_fill_share_is_the_outside_share(tmp_path_factory, cy, cx, ry, rx, fill, size):
    """Any outline cut by the raster edge or not: the fill is found and its share measured (the largest
    size is read decimated)."""
    inside = outline(size, centre=(cy, cx), radii=(ry, rx))
    data = textured(*size, seed=2)
    data[~inside] = fill
    path = tmp_path_factory.mktemp("fill") / "crop.tif"
    write_raster(path, data, TRANSFORM, nodata=None if fill else 65535)
    found = fill_of(path)
    assert found is not None and found.value == fill
    assert found.share == pytest.approx((~inside).mean(), abs=0.02)
