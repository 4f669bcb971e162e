"""The tools of the field open a publication as it is: the examples of docs/products.md, run, checked.

A small synthetic publication of three months; every check compares what a
tool returns with the arrays published (and the products they came from).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio

from gvfuse.model import Month
from gvfuse.plugins import PluginSet
from gvfuse.product import load_product
from gvfuse.publish.cog import VARIABLE_NAMES, read_month_bands
from gvfuse.publish.month import publish_month
from gvfuse.testing.products import synthetic_monthly_product

DOC = Path(__file__).resolve().parents[2] / "docs" / "products.md"
MONTHS = ("2023-01", "2023-02", "2023-03")
MIDDLES = [np.datetime64("2023-01-16T12:00:00"), np.datetime64("2023-02-15T00:00:00"),
           np.datetime64("2023-03-16T12:00:00")]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("loaders") / "DEST"
    definition = load_product("gangrigab-2023")
    for seed, month in enumerate(MONTHS):
        publish_month(synthetic_monthly_product(month, seed=seed), definition, root, plugins=PluginSet())
    return root


@pytest.fixture(scope="module")
def examples(published: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every ```python block of docs/products.md's loading section, run in order in one namespace."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Loading the products"):text.index("## Checking a publication")]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 6
    namespace: dict[str, Any] = {}
    workdir = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        for block in blocks:
            # the documented examples, run as a reader would paste them
            exec(compile(block.replace("DEST", str(published)), str(DOC), "exec"), namespace)
    namespace["workdir"] = workdir
    return namespace


def _published(root: Path, name: str) -> np.ndarray:
    return np.stack([read_month_bands(root, Month.parse(m), (name,))[0][name] for m in MONTHS])


def test_every_published_cog_is_valid_for_rio_cogeo(published, examples):
    from rio_cogeo.cogeo import cog_validate

    assert examples["valid"] and not examples["errors"]
    cogs = sorted(published.glob("*.tif"))
    assert len(cogs) == len(MONTHS) * len(VARIABLE_NAMES)
    for path in cogs:
        valid, errors, _ = cog_validate(str(path))
        assert valid and not errors, (path.name, errors)


def test_odc_stac_loads_variables_by_name_with_one_time_step_per_month(published, examples):
    data = examples["data"].compute()
    assert list(data["time"].values) == MIDDLES
    for name in ("vx", "vy", "count", "sensor_flag"):
        np.testing.assert_array_equal(data[name].values, _published(published, name))
    assert data["count"].dtype == np.uint16 and data["sensor_flag"].dtype == np.uint8
    product = synthetic_monthly_product("2023-02", seed=1)
    np.testing.assert_array_equal(data["vx"].values[1], product.vx_m_per_day)
    with rasterio.open(published / "202301_vx.tif") as src:
        assert tuple(data["x"].values[:1]) == (src.transform.c + 15.0,)  # pixel centres, same grid


def test_stackstac_stacks_the_assets_with_the_right_values_and_times(published, examples):
    stack = examples["stack"]
    assert list(stack["time"].values) == MIDDLES and list(stack["band"].values) == ["vx", "vy"]
    values = stack.compute().values
    np.testing.assert_array_equal(values[:, 0], _published(published, "vx"))
    np.testing.assert_array_equal(values[:, 1], _published(published, "vy"))


def test_stac_geoparquet_writes_the_items(examples):
    table = pq.read_table(examples["workdir"] / "gangrigab-2023-items.parquet")
    assert sorted(table.column("id").to_pylist()) == [f"gangrigab-2023-{m.replace('-', '')}" for m in MONTHS]
    assets = table.column("assets").to_pylist()
    assert all(set(VARIABLE_NAMES) <= set(a) for a in assets)


def test_stac_geoparquet_writes_items_whose_weighting_fell_back_to_nothing(published, tmp_path):
    import stac_geoparquet.arrow

    item = json.loads((published / "items" / "gangrigab-2023-202301.json").read_text())
    # what a month without a weighting fit publishes: no weights (an empty object would be a struct
    # without fields, which Parquet cannot hold; the item leaves it out)
    bare = synthetic_monthly_product()
    root = tmp_path / "bare"
    publish_month(attrs.evolve(bare, weights={}), load_product("gangrigab-2023"), root, plugins=PluginSet())
    bare_item = json.loads((root / "items" / "gangrigab-2023-202301.json").read_text())
    table = stac_geoparquet.arrow.parse_stac_items_to_arrow([item, bare_item])
    stac_geoparquet.arrow.to_parquet(table, tmp_path / "items.parquet")
    assert pq.read_table(tmp_path / "items.parquet").num_rows == 2


def test_intake_reads_named_variables_with_time(published, examples):
    january, months = examples["january"], examples["months"]
    assert list(january.data_vars) == list(VARIABLE_NAMES) and list(january["time"].values) == MIDDLES[:1]
    assert list(months["time"].values) == MIDDLES
    np.testing.assert_array_equal(months["v"].values, _published(published, "v"))
    np.testing.assert_array_equal(examples["one_pixel"], _published(published, "v")[:, 30, 40])
    assert examples["provenance"]["month"] == "2023-01"


def test_the_cube_opens_with_xarray_with_one_step_per_month(published, examples):
    cube = examples["cube"]
    assert list(cube["time"].values) == MIDDLES and cube.attrs["Conventions"] == "CF-1.10"
    np.testing.assert_array_equal(examples["pixel_year"], _published(published, "v")[:, 30, 40])
