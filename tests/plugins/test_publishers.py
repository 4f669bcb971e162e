import json

import pytest
import rasterio

import gvfuse_plugins.publishers as publishers
from gvfuse.errors import OutputExistsError
from gvfuse.plugins import PluginInfo, PluginSet
from gvfuse.product import load_product
from gvfuse.publish.check import verify
from gvfuse.publish.cog import VARIABLE_NAMES
from gvfuse.publish.stac_validation import validate_catalog
from gvfuse.testing.products import synthetic_monthly_product
from tests.helpers import SCHEMAS


def _plugin_set() -> PluginSet:
    plugins = PluginSet()
    plugins.add(publishers, PluginInfo("publishers", "gvfuse", "0.1.0", "gvfuse_plugins.publishers"))
    return plugins


def test_both_publishers_are_registered():
    registry = _plugin_set().registry["publishers"]
    assert registry["stac-intake"].cls is publishers.StacIntakePublisher
    assert registry["cog"].cls is publishers.CogPublisher


def test_stac_intake_publisher_writes_a_verifiable_catalog_and_refuses_to_overwrite(tmp_path):
    plugins = _plugin_set()
    publisher = plugins.get("publishers", "stac-intake").cls(definition=load_product("gangrigab-2023"),
                                                             plugins=plugins)
    paths = publisher.publish(synthetic_monthly_product("2023-03"), tmp_path)
    cube = [p.relative_to(tmp_path).as_posix() for p in paths if p.relative_to(tmp_path).parts[0] == "cube.zarr"]
    assert [p.name for p in paths if p.relative_to(tmp_path).as_posix() not in cube] == [
        *(f"202303_{v}.tif" for v in VARIABLE_NAMES), "202303_quicklook.png", "202303_thumbnail.png", "202303_v.qml",
        "gangrigab-2023-202303.json", "collection.json", "catalog.yaml"]
    assert "cube.zarr/.zmetadata" in cube and "cube.zarr/vx/0.0.0" in cube
    assert verify(tmp_path).ok
    if SCHEMAS.is_dir():
        assert validate_catalog(tmp_path, SCHEMAS) == []
    with pytest.raises(OutputExistsError):
        publisher.publish(synthetic_monthly_product("2023-03"), tmp_path)
    assert publisher.publish(synthetic_monthly_product("2023-03"), tmp_path, force=True) == paths
    assert json.loads((tmp_path / "collection.json").read_text())["id"] == "gangrigab-2023"


def test_cog_publisher_writes_product_files_only(tmp_path):
    publisher = publishers.CogPublisher(definition=load_product("gangrigab-2023"), plugins=_plugin_set())
    paths = publisher.publish(synthetic_monthly_product(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths) == sorted([
        *(f"202301_{v}.tif" for v in VARIABLE_NAMES), "202301_quicklook.png", "202301_thumbnail.png", "202301_v.qml"])
    # in the definition's legend (uav = 8 is the definition's, not the month's)
    with rasterio.open(tmp_path / "202301_sensor_flag.tif") as src:
        assert json.loads(src.tags()["sensor_flag_bits"])["uav"] == 8
    with pytest.raises(TypeError, match="MonthlyProduct"):
        publisher.publish(object(), tmp_path)  # type: ignore[arg-type]
