import hashlib

import pytest

from gvfuse.errors import OutputExistsError
from gvfuse.plugins import PluginSet
from gvfuse.product import load_product
from gvfuse.publish.cog import VARIABLE_NAMES
from gvfuse.publish.month import publish_month
from gvfuse.testing.products import synthetic_monthly_product


def _digests(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_republishing_the_same_inputs_gives_identical_files_and_no_leftovers(tmp_path):
    definition = load_product("gangrigab-2023")
    publish_month(synthetic_monthly_product(), definition, tmp_path / "a", plugins=PluginSet())
    publish_month(synthetic_monthly_product(), definition, tmp_path / "b", plugins=PluginSet())
    first = _digests(tmp_path / "a")
    assert first == _digests(tmp_path / "b")
    publish_month(synthetic_monthly_product(), definition, tmp_path / "a", force=True, plugins=PluginSet())
    assert _digests(tmp_path / "a") == first
    assert sorted(p for p in first if not p.startswith("cube.zarr/")) == sorted([
        *(f"202301_{v}.tif" for v in VARIABLE_NAMES), "202301_quicklook.png", "202301_thumbnail.png", "202301_v.qml",
        "catalog.yaml", "collection.json", "items/gangrigab-2023-202301.json"])
    assert "cube.zarr/.zmetadata" in first and "cube.zarr/vx/0.0.0" in first  # the cube, the same bytes too


def test_existing_month_is_refused_without_force_and_left_untouched(tmp_path):
    definition = load_product("gangrigab-2023")
    publish_month(synthetic_monthly_product(), definition, tmp_path, plugins=PluginSet())
    before = _digests(tmp_path)
    with pytest.raises(OutputExistsError, match="already published"):
        publish_month(synthetic_monthly_product(seed=3), definition, tmp_path, plugins=PluginSet())
    assert _digests(tmp_path) == before
    for variable in VARIABLE_NAMES:  # a half-removed month is refused too: its item is still there
        (tmp_path / f"202301_{variable}.tif").unlink()
    with pytest.raises(OutputExistsError, match="gangrigab-2023-202301.json"):
        publish_month(synthetic_monthly_product(seed=3), definition, tmp_path, plugins=PluginSet())
    publish_month(synthetic_monthly_product(seed=3), definition, tmp_path, force=True, plugins=PluginSet())
    after = _digests(tmp_path)
    assert after["202301_vx.tif"] != before["202301_vx.tif"]
    assert after["items/gangrigab-2023-202301.json"] != before["items/gangrigab-2023-202301.json"]
