import json

import numpy as np
import pytest
import rasterio

from gvfuse.errors import OutputExistsError
from gvfuse.io.raster import read_bands
from gvfuse.publish.cog import PRODUCT_BANDS, write_product_cog
from gvfuse.testing.products import synthetic_monthly_product


def test_cog_is_tiled_float32_nan_nodata_with_overviews_described_bands_units_and_tags(tmp_path):
    product = synthetic_monthly_product(shape=(300, 400))  # large enough for an overview level
    path = write_product_cog(product, tmp_path)
    assert path.name == "202301.tif"
    with rasterio.open(path) as src:
        assert src.driver == "GTiff" and src.profile["tiled"] and src.block_shapes[0] == (256, 256)
        assert set(src.dtypes) == {"float32"} and np.isnan(src.nodata)
        assert src.overviews(1) == [2]
        assert src.descriptions == ("vx", "vy", "v", "v_error", "count", "sensor_mask")
        assert src.units == ("m/d", "m/d", "m/d", "m/d", "1", "bitmask")
        tags = src.tags()
        assert src.crs.to_epsg() == 32647 and src.transform == product.grid.transform
        # the overview of a band with a NaN corner keeps NaN there: nodata was set before overviews
        overview = src.read(1, out_shape=(150, 200))
        assert np.isnan(overview[0, 0]) and np.isfinite(overview[100, 150])
    assert json.loads(tags["sensor_mask_bits"]) == {"landsat": 1, "sentinel-1": 2, "sentinel-2": 4}
    assert json.loads(tags["weights"]) == {"landsat": 0.35, "sentinel-1": 0.25, "sentinel-2": 0.4}
    assert tags["pair_count"] == "6" and tags["input_scene_count"] == "11" and tags["month"] == "2023-01"
    assert json.loads(tags["trackers"]) == ["fft-phase", "ncc"]
    bands, _, _ = read_bands(path)
    np.testing.assert_array_equal(bands["vx"], product.vx_m_per_day)
    np.testing.assert_allclose(bands["v"], np.hypot(product.vx_m_per_day, product.vy_m_per_day), rtol=1e-6)
    np.testing.assert_array_equal(bands["sensor_mask"], product.sensor_mask)
    assert [b.name for b in PRODUCT_BANDS] == list(bands)


def test_same_product_twice_gives_identical_bytes_and_existing_file_is_refused(tmp_path):
    first = write_product_cog(synthetic_monthly_product(), tmp_path / "a")
    second = write_product_cog(synthetic_monthly_product(), tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    before = first.read_bytes()
    with pytest.raises(OutputExistsError, match="202301.tif"):
        write_product_cog(synthetic_monthly_product(seed=1), tmp_path / "a")
    assert first.read_bytes() == before
    write_product_cog(synthetic_monthly_product(seed=1), tmp_path / "a", force=True)
    assert first.read_bytes() != before
