import json

import attrs
import numpy as np
import pytest

from gvfuse.hookspecs import hookimpl
from gvfuse.io.checksums import sha256_multihash
from gvfuse.model import Month
from gvfuse.plugins import PluginInfo, PluginSet
from gvfuse.product import load_product
from gvfuse.publish.month import publish_month
from gvfuse.publish.stac import ITEM_EXTENSIONS
from gvfuse.publish.stac_validation import (
    offline_validator,
    validate_catalog,
    validate_stac_dict,
)
from gvfuse.testing.products import synthetic_monthly_product
from tests.helpers import SCHEMAS

needs_schemas = pytest.mark.skipif(not SCHEMAS.is_dir(), reason=f"STAC extension schemas not found at {SCHEMAS}")


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    root = tmp_path_factory.mktemp("pub")
    definition = load_product("gangrigab-2023")
    for month in ("2023-01", "2023-02"):
        publish_month(synthetic_monthly_product(month), definition, root, plugins=PluginSet())
    return root


def _item(root, month="202301"):
    return json.loads((root / "items" / f"gangrigab-2023-{month}.json").read_text())


@needs_schemas
def test_items_and_collection_validate_offline_with_every_extension(published):
    assert validate_catalog(published, SCHEMAS) == []
    item = _item(published)
    assert item["stac_extensions"] == list(ITEM_EXTENSIONS)
    validator = offline_validator(SCHEMAS)
    assert all(uri in validator.schema_cache for uri in ITEM_EXTENSIONS)


@needs_schemas
def test_offline_validation_reports_an_invalid_item_and_a_missing_schema(published):
    validator = offline_validator(SCHEMAS)
    item = _item(published)
    item["assets"]["vx"]["proj:shape"] = [60]
    item["assets"]["vx"]["file:checksum"] = "not hex!"
    problems = validate_stac_dict(item, validator)
    assert len(problems) == 1 and "gangrigab-2023-202301" in problems[0]
    item = _item(published)
    item["stac_extensions"].append("https://stac-extensions.github.io/eo/v2.0.0/schema.json")
    assert "no offline schema" in validate_stac_dict(item, validator)[0]


VARIABLES = ["vx", "vy", "v", "vx_error", "vy_error", "v_error", "count", "sensor_flag"]


def test_item_fields_projection_raster_file_processing_version(published):
    item = _item(published)
    props = item["properties"]
    assert item["id"] == "gangrigab-2023-202301" and item["collection"] == "gangrigab-2023"
    assert props["datetime"] == "2023-01-16T12:00:00Z"  # the month's middle: stacking tools need a time
    assert (props["start_datetime"], props["end_datetime"]) == ("2023-01-01T00:00:00Z", "2023-01-31T23:59:59Z")
    # the pairs behind January run from its first reference scene into February
    assert props["gvfuse:observation_start_datetime"] == "2023-01-02T04:30:00Z"
    assert props["gvfuse:observation_end_datetime"] == "2023-02-01T04:30:00Z"
    assert list(item["assets"]) == [*VARIABLES, "quicklook", "thumbnail", "style"]
    for name in VARIABLES:
        data = item["assets"][name]
        assert data["href"] == f"../202301_{name}.tif" and data["roles"] == ["data"]
        assert data["proj:code"] == "EPSG:32647" and data["proj:shape"] == [60, 80]
        assert data["proj:transform"] == [30.0, 0.0, 300000.0, 0.0, -30.0, 3250000.0]
        assert data["proj:bbox"] == [300000.0, 3248200.0, 302400.0, 3250000.0]
        (band,) = data["bands"]
        assert band["name"] == name and band["unit"] == ("1" if name in ("count", "sensor_flag") else "m/d")
    assert item["assets"]["vx"]["bands"][0]["nodata"] == "nan"
    assert item["assets"]["count"]["bands"][0]["data_type"] == "uint16"
    assert "nodata" not in item["assets"]["count"]["bands"][0]
    assert item["assets"]["sensor_flag"]["bands"][0]["data_type"] == "uint8"
    assert item["assets"]["vx_error"]["bands"][0]["statistics"]["maximum"] == 0.025
    assert props["gvfuse:sensor_flag_bits"] == {"landsat": 1, "sentinel-1": 2, "sentinel-2": 4, "uav": 8}
    for asset in item["assets"].values():
        path = (published / "items" / asset["href"]).resolve()
        assert asset["file:checksum"] == sha256_multihash(path) and asset["file:size"] == path.stat().st_size
    assert props["processing:software"] == {"gvfuse": "0.1.0", "trackers": "0.1.0", "weightings": "0.1.0"}
    assert props["processing:level"] == "L3" and props["processing:version"] == "0.1.0"
    assert "6 image pair(s)" in props["processing:lineage"] and props["version"] == "1"
    # three constellations: no single platform/constellation, every instrument
    assert props["instruments"] == ["c-sar", "msi", "oli", "oli-2"]
    assert "platform" not in props and "constellation" not in props
    assert props["gvfuse:constellations"] == ["landsat", "sentinel-1", "sentinel-2"]
    west, south, east, north = item["bbox"]
    assert 96.9 < west < east < 97.0 and 29.3 < south < north < 29.4


def _no_empty_objects(value, where="properties"):
    if isinstance(value, dict):
        assert value, f"empty object at {where}"
        for key, inner in value.items():
            _no_empty_objects(inner, f"{where}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            _no_empty_objects(inner, f"{where}[{i}]")


def test_no_empty_object_anywhere_in_the_properties_even_when_weights_and_plugins_are_empty(tmp_path):
    product = synthetic_monthly_product()
    bare = attrs.evolve(product, weights={}, validation={"weighting": {}},
                        provenance=attrs.evolve(product.provenance, plugins={}))
    publish_month(bare, load_product("gangrigab-2023"), tmp_path, plugins=PluginSet())
    props = _item(tmp_path)["properties"]
    _no_empty_objects(props)
    assert "weights" not in props["gvfuse:provenance"]


def test_a_single_sensor_month_names_its_platform_and_constellation(tmp_path):
    product = synthetic_monthly_product()
    pairs = [p for p in product.provenance.parameters["pairs"] if p["sensor"] == "sentinel-1"]
    one = attrs.evolve(product, provenance=attrs.evolve(
        product.provenance, parameters={**product.provenance.parameters, "pairs": pairs}))
    publish_month(one, load_product("gangrigab-2023"), tmp_path, plugins=PluginSet())
    props = _item(tmp_path)["properties"]
    assert props["constellation"] == "sentinel-1" and props["instruments"] == ["c-sar"]
    assert "platform" not in props  # two satellites, sentinel-1a and -1b
    assert props["gvfuse:platforms"] == ["sentinel-1a", "sentinel-1b"]


def test_a_sensor_that_gave_no_cell_a_value_is_not_named_in_the_provenance_or_the_lineage(tmp_path):
    product = synthetic_monthly_product()
    no_sentinel_1 = np.where(np.isfinite(product.sensor_mask), product.sensor_mask.astype(np.int64) & ~2, 0)
    product = attrs.evolve(product, sensor_mask=no_sentinel_1.astype("float32"))  # bit 1 is sentinel-1
    publish_month(product, load_product("gangrigab-2023"), tmp_path, plugins=PluginSet())
    props = _item(tmp_path)["properties"]
    assert props["gvfuse:provenance"]["sensors"] == ["landsat", "sentinel-2"]
    assert "Sensors: landsat, sentinel-2;" in props["processing:lineage"]


def test_provenance_block_names_every_input_pair_tracker_weight_validation_and_plugin(published):
    product = synthetic_monthly_product()
    block = _item(published)["properties"]["gvfuse:provenance"]
    assert {s["id"] for s in block["inputs"]} == set(product.provenance.inputs)
    assert all(s["sensor"] and s["datetime"].endswith("Z") for s in block["inputs"])
    pairs = product.provenance.parameters["pairs"]
    assert [p["pair_id"] for p in block["pairs"]] == sorted(p["pair_id"] for p in pairs)
    assert {(p["tracker"], p["tracker_parameters"]["step_px"]) for p in block["pairs"]} == {
        ("fft-phase", 2), ("fft-phase", 3), ("ncc", 3)}
    assert block["weights"] == dict(product.weights)
    assert block["validation"]["stable_ground"]["std_m_per_day"] == 0.0098
    assert block["plugins"] == {"trackers": "0.1.0", "weightings": "0.1.0"}
    assert block["parameters"] == {"grid_resolution_m": 30.0, "weighting": "wls-uav"}
    assert block["sensors"] == ["landsat", "sentinel-1", "sentinel-2"]


def test_collection_from_definition_links_every_published_month_within_its_extent(published):
    collection = json.loads((published / "collection.json").read_text())
    assert collection["id"] == "gangrigab-2023" and collection["license"] == "CC-BY-4.0"
    # the extent is the items': January and February, and their footprint
    assert collection["extent"]["temporal"]["interval"] == [["2023-01-01T00:00:00Z", "2023-02-28T23:59:59Z"]]
    (box,) = collection["extent"]["spatial"]["bbox"]
    for month in ("202301", "202302"):
        west, south, east, north = _item(published, month)["bbox"]
        assert box[0] <= west and box[1] <= south and east <= box[2] and north <= box[3]
    assert box == _item(published)["bbox"]  # both months are on the same grid
    assert "glacier" in collection["keywords"] and collection["providers"][0]["name"] == "gvfuse"
    assert [link["href"] for link in collection["links"] if link["rel"] == "item"] == [
        "./items/gangrigab-2023-202301.json", "./items/gangrigab-2023-202302.json"]


def test_month_last_second_handles_december_and_leap_february():
    assert Month.parse("2023-12").last_second.isoformat() == "2023-12-31T23:59:59+00:00"
    assert Month.parse("2024-02").last_second.day == 29


class _Amender:
    @hookimpl
    def gvfuse_stac_item_ready(self, item, product):
        item.properties["test:amended_month"] = str(product.month)


def test_stac_item_ready_hook_amends_the_item_before_it_is_written(tmp_path):
    plugins = PluginSet()
    plugins.add(_Amender(), PluginInfo("amender", "test", "0", "tests"))
    publish_month(synthetic_monthly_product(), load_product("gangrigab-2023"), tmp_path, plugins=plugins)
    assert _item(tmp_path)["properties"]["test:amended_month"] == "2023-01"


def test_the_observation_span_is_utc_whatever_zone_the_pairs_were_written_in(tmp_path):
    product = synthetic_monthly_product()
    pairs = [{**p, "reference": {**p["reference"], "datetime": "2023-01-02T06:30:00+02:00"}}
             if i == 0 else p for i, p in enumerate(product.provenance.parameters["pairs"])]
    zoned = attrs.evolve(product, provenance=attrs.evolve(
        product.provenance, parameters={**product.provenance.parameters, "pairs": pairs}))
    publish_month(zoned, load_product("gangrigab-2023"), tmp_path, plugins=PluginSet())
    props = _item(tmp_path)["properties"]
    assert props["gvfuse:observation_start_datetime"] == "2023-01-02T04:30:00Z"
    assert props["gvfuse:observation_end_datetime"] == "2023-02-01T04:30:00Z"
