import json

import attrs
import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from gvfuse.errors import InputError, OutputExistsError
from gvfuse.model import SensorLegend
from gvfuse.publish.cog import PRODUCT_VARIABLES, read_month_bands, write_product_cogs
from gvfuse.testing.products import synthetic_monthly_product

LEGEND = ("landsat", "sentinel-1", "sentinel-2", "uav")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    product = synthetic_monthly_product(shape=(300, 400))  # large enough for an overview level
    paths = write_product_cogs(product, tmp_path_factory.mktemp("cogs"), LEGEND)
    return product, {p.name.removeprefix("202301_").removesuffix(".tif"): p for p in paths}


def test_one_valid_cog_per_variable_with_its_type_nodata_unit_and_overviews(written):
    product, paths = written
    assert list(paths) == [spec.name for spec in PRODUCT_VARIABLES]
    for spec in PRODUCT_VARIABLES:
        path = paths[spec.name]
        valid, errors, _warnings = cog_validate(str(path))
        assert valid and not errors, (path.name, errors)
        with rasterio.open(path) as src:
            assert src.count == 1 and src.descriptions == (spec.name,)
            assert src.block_shapes[0] == (256, 256) and src.overviews(1) == [2]
            assert src.crs.to_epsg() == 32647 and src.transform == product.grid.transform
            assert src.units == (spec.unit,) and src.tags()["variable"] == spec.name
            if spec.floating:
                assert src.dtypes[0] == "float32" and np.isnan(src.nodata)
                # the overview of a band with a NaN corner keeps NaN there: nodata was set before overviews
                overview = src.read(1, out_shape=(150, 200))
                assert np.isnan(overview[0, 0]) and np.isfinite(overview[100, 150])
            else:
                assert src.nodata is None
    with rasterio.open(paths["count"]) as src:
        assert src.dtypes[0] == "uint16"
    with rasterio.open(paths["sensor_flag"]) as src:
        assert src.dtypes[0] == "uint8"
        tags = src.tags()
    assert json.loads(tags["sensor_flag_bits"]) == {"landsat": 1, "sentinel-1": 2, "sentinel-2": 4, "uav": 8}
    assert json.loads(tags["weights"]) == {"landsat": 0.35, "sentinel-1": 0.25, "sentinel-2": 0.4}
    assert tags["pair_count"] == "6" and tags["input_scene_count"] == "11" and tags["month"] == "2023-01"


def test_values_read_back_errors_included(written, tmp_path):
    product, paths = written
    bands, grid = read_month_bands(paths["vx"].parent, product.month)
    assert grid == product.grid
    np.testing.assert_array_equal(bands["vx"], product.vx_m_per_day)
    np.testing.assert_array_equal(bands["vx_error"], product.vx_error_m_per_day)
    np.testing.assert_array_equal(bands["vy_error"], product.vy_error_m_per_day)
    np.testing.assert_allclose(bands["v"], np.hypot(product.vx_m_per_day, product.vy_m_per_day), rtol=1e-6)
    np.testing.assert_array_equal(bands["count"], np.nan_to_num(product.count))
    np.testing.assert_array_equal(bands["sensor_flag"], product.sensor_mask)  # same first three bits


def test_integer_overviews_are_codes_and_counts_that_occur_never_averages(tmp_path):
    product = synthetic_monthly_product(shape=(300, 400))
    # a checkerboard of two sensor sets and two counts: averaging would give 1.5 / 2.5 / 3 ... never a code
    checker = (np.add.outer(np.arange(300), np.arange(400)) % 2).astype(bool)
    mask = np.where(checker, 1, 4).astype("float32")
    count = np.where(checker, 2, 5).astype("float32")
    product = type(product)(**{**_fields(product), "sensor_mask": mask, "count": count})
    paths = {p.name: p for p in write_product_cogs(product, tmp_path, LEGEND)}
    for name, allowed in (("202301_sensor_flag.tif", {1, 4}), ("202301_count.tif", {2, 5})):
        with rasterio.open(paths[name]) as src:
            assert src.overviews(1) == [2]
            overview = src.read(1, out_shape=(150, 200))
            assert overview.dtype.kind == "u" and set(np.unique(overview)) <= allowed


def _fields(product):
    return {f.name: getattr(product, f.name) for f in attrs.fields(type(product))}


def test_the_flag_is_in_the_product_legend_whatever_the_month_had(tmp_path):
    product = synthetic_monthly_product()
    # the month's own legend lacks sentinel-1: landsat = 1, sentinel-2 = 2 there
    own = SensorLegend(("landsat", "sentinel-2"))
    cells = {"landsat": np.ones(product.grid.shape, bool), "sentinel-2": np.eye(*product.grid.shape, dtype=bool)}
    month = type(product)(**{**_fields(product), "sensors": own.sensors,
                             "sensor_mask": own.encode(cells, product.grid.shape).astype("float32")})
    write_product_cogs(month, tmp_path, LEGEND)
    bands, _ = read_month_bands(tmp_path, month.month, ("sensor_flag",))
    np.testing.assert_array_equal(bands["sensor_flag"], np.where(cells["sentinel-2"], 1 + 4, 1))
    with pytest.raises(InputError, match=r"\['landsat'\].*sensors"):
        write_product_cogs(month, tmp_path / "other", ("sentinel-1", "sentinel-2"))


def test_unstated_component_errors_are_published_as_unknown(tmp_path):
    product = synthetic_monthly_product()
    month = type(product)(**{**_fields(product), "vx_error_m_per_day": None, "vy_error_m_per_day": None})
    write_product_cogs(month, tmp_path, LEGEND)
    bands, _ = read_month_bands(tmp_path, month.month, ("vx_error", "v_error"))
    assert np.isnan(bands["vx_error"]).all() and np.isfinite(bands["v_error"]).any()


def test_same_product_twice_gives_identical_bytes_and_existing_files_are_refused(tmp_path):
    first = write_product_cogs(synthetic_monthly_product(), tmp_path / "a", LEGEND)
    second = write_product_cogs(synthetic_monthly_product(), tmp_path / "b", LEGEND)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    before = [p.read_bytes() for p in first]
    with pytest.raises(OutputExistsError, match="202301_vx.tif"):
        write_product_cogs(synthetic_monthly_product(seed=1), tmp_path / "a", LEGEND)
    assert [p.read_bytes() for p in first] == before
    write_product_cogs(synthetic_monthly_product(seed=1), tmp_path / "a", LEGEND, force=True)
    assert first[0].read_bytes() != before[0]
