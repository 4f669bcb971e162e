"""The demo at a small size: inputs in provider layouts, the whole pipeline, products that load and check."""

from __future__ import annotations

import json

import attrs
import intake
import numpy as np
import pytest

from gvfuse.demo import SMALL, run_demo
from gvfuse.io.raster import read_bands
from gvfuse.model import Month
from gvfuse.pipeline.scan import scan
from gvfuse.publish.check import verify
from tests.helpers import SCHEMAS

ONE_MONTH = attrs.evolve(SMALL, months=(Month(2023, 7),))


@pytest.fixture(scope="module")
def demo(tmp_path_factory, plugins):
    folder = tmp_path_factory.mktemp("demo")
    return run_demo(folder, ONE_MONTH, plugins=plugins)


def test_inputs_are_in_the_providers_layouts(demo, plugins):
    report = scan(demo.folder / "scenes", plugins.classes("readers"))
    sensors = {s.sensor for s in report.scenes}
    assert sensors == {"landsat", "sentinel-2", "sentinel-1", "uav"}
    assert not report.skipped
    assert any(s.path.endswith(".SAFE") for s in report.scenes)
    assert any(s.path.endswith("_T1") for s in report.scenes)


def test_fused_month_is_close_to_the_truth_and_honest_about_its_error(demo):
    assert not demo.failed_months, demo.problems
    (row,) = demo.rows
    assert row["fused_ice_coverage"] > 0.8
    # A convex combination of the sensors is no worse than the worst of them (triangle inequality) ...
    singles = [row[f"{s}_rmse_m_per_day"] for s in ("landsat", "sentinel-1", "sentinel-2")]
    assert row["fused_rmse_m_per_day"] <= max(singles)
    # ... and the product's own error figure is within a factor 3 of its true error, either way.
    assert row["fused_rmse_m_per_day"] / 3 < row["fused_mean_v_error_m_per_day"] < 3 * row["fused_rmse_m_per_day"]
    assert set(row["weights"]) == {"landsat", "sentinel-1", "sentinel-2"}
    assert sum(row["weights"].values()) == pytest.approx(1.0)


def test_products_load_through_intake_equal_to_the_cogs_and_checksums_match(demo):
    products = demo.folder / "products"
    assert verify(products).ok
    bands, _, _ = read_bands(products / "202307.tif")
    catalog = intake.from_yaml_file(str(products / "catalog.yaml"))
    (name,) = list(catalog)
    data = catalog[name].read()
    loaded = np.asarray(data[next(iter(data.data_vars))]).squeeze()
    np.testing.assert_array_equal(loaded, bands["vx"])


def test_provenance_names_every_input_scene(demo):
    item = json.loads((demo.folder / "products" / "items" / "gangrigab-2023-demo-202307.json").read_text())
    block = item["properties"]["gvfuse:provenance"]
    named = {i["id"] for i in block["inputs"]}
    for pair in block["pairs"]:
        assert pair["reference"]["id"] in named and pair["secondary"]["id"] in named
        assert pair["tracker"] in {"fft-phase", "ncc", "template"}
    assert {p["sensor"] for p in block["pairs"]} == {"landsat", "sentinel-1", "sentinel-2", "uav"}
    assert (demo.folder / "summary.md").read_text().count("| 2023-07 |") == 1


@pytest.mark.skipif(not SCHEMAS.is_dir(), reason=f"STAC extension schemas not found at {SCHEMAS}")
def test_every_stac_item_of_the_demo_validates_offline(demo):
    from gvfuse.publish.stac_validation import validate_catalog

    assert validate_catalog(demo.folder / "products", SCHEMAS) == []
