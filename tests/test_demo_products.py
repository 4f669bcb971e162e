"""The year of ``gvfuse demo`` opens in the field's tools: docs/products.md's examples on the demo's output.

Slow (the whole demo, about 5 minutes on 2 cores): ``pytest -m slow tests/test_demo_products.py``.
``GVFUSE_DEMO_DIR`` names a finished ``gvfuse demo`` folder to check instead of building one.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from gvfuse.demo import FULL, run_demo
from gvfuse.model import Month
from gvfuse.publish.cog import VARIABLE_NAMES, read_month_bands

pytestmark = pytest.mark.slow
DOC = Path(__file__).resolve().parents[1] / "docs" / "products.md"


@pytest.fixture(scope="module")
def products(tmp_path_factory: pytest.TempPathFactory, plugins) -> Path:
    given = os.environ.get("GVFUSE_DEMO_DIR")
    folder = Path(given) if given else tmp_path_factory.mktemp("demo-year")
    if not given:
        run_demo(folder, FULL, plugins=plugins)
    return folder / "products"


@pytest.fixture(scope="module")
def examples(products: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Loading the products"):text.index("## Checking a publication")]
    namespace: dict[str, Any] = {}
    workdir = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        for block in re.findall(r"```python\n(.*?)```", section, flags=re.S):
            # the documented examples with the demo's folder and product id (gangrigab-2023-demo)
            code = block.replace("DEST", str(products)).replace("gangrigab_2023", "gangrigab_2023_demo")
            exec(compile(code, str(DOC), "exec"), namespace)
    namespace["workdir"] = workdir
    return namespace


def _year(products: Path, name: str) -> np.ndarray:
    return np.stack([read_month_bands(products, m, (name,))[0][name] for m in FULL.months])


def test_every_loader_gives_twelve_months_equal_to_the_cogs(products, examples):
    assert len(FULL.months) == 12 and FULL.months[0] == Month(2023, 1)
    vx, v = _year(products, "vx"), _year(products, "v")
    np.testing.assert_array_equal(examples["data"]["vx"].values, vx)      # odc-stac, by band name
    np.testing.assert_array_equal(examples["stack"].values[:, 0], vx)     # stackstac, by asset
    np.testing.assert_array_equal(examples["months"]["v"].values, v)      # intake, named variables
    np.testing.assert_array_equal(examples["cube"]["v"].values, v)        # the CF cube (xarray.open_zarr)
    for times in (examples["data"]["time"], examples["stack"]["time"], examples["months"]["time"],
                  examples["cube"]["time"]):
        assert times.size == 12 and bool((np.diff(times.values) > np.timedelta64(0)).all())
    assert examples["valid"] and not examples["errors"]                   # rio-cogeo
    parquet = pq.read_table(examples["workdir"] / "gangrigab-2023-items.parquet")
    assert parquet.num_rows == 12                                         # stac-geoparquet


def test_flags_and_counts_are_exact_integers_in_every_overview_and_files_are_readable(products):
    import rasterio

    for name, dtype in (("count", "uint16"), ("sensor_flag", "uint8")):
        for path in sorted(products.glob(f"2023??_{name}.tif")):
            with rasterio.open(path) as src:
                assert src.dtypes[0] == dtype
                full = src.read(1)
                for factor in src.overviews(1):  # the demo's small grid may have none
                    small = src.read(1, out_shape=(src.height // factor, src.width // factor))
                    assert set(np.unique(small)) <= set(np.unique(full))  # nearest/mode: no averaged values
    assert {stat.S_IMODE(p.stat().st_mode) for p in products.glob("*.tif")} == {0o644}
    assert len(list(products.glob("2023??_*.tif"))) == 12 * len(VARIABLE_NAMES)
