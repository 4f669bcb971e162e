"""Publishing a month is all or nothing, one process at a time, and cleans what a killed run left."""

from __future__ import annotations

import fcntl
import hashlib
import os

import pytest

from gvfuse.errors import OutputBusyError, PluginError
from gvfuse.hookspecs import hookimpl
from gvfuse.plugins import PluginInfo, PluginSet
from gvfuse.product import load_product
from gvfuse.publish.month import publish_month, write_month_files
from gvfuse.testing.products import synthetic_monthly_product


def _digests(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


class _Failing:
    @hookimpl
    def gvfuse_stac_item_ready(self, item, product):
        raise RuntimeError("the catalog service is down")


def test_a_failing_item_hook_publishes_nothing_of_the_month(tmp_path):
    definition = load_product("gangrigab-2023")
    publish_month(synthetic_monthly_product(), definition, tmp_path, plugins=PluginSet())  # January
    before = _digests(tmp_path)
    plugins = PluginSet()
    plugins.add(_Failing(), PluginInfo("failing", "test", "0", "tests"))
    february = synthetic_monthly_product(month="2023-02")
    with pytest.raises(PluginError, match="failing"):
        publish_month(february, definition, tmp_path, plugins=plugins)
    assert _digests(tmp_path) == before  # no COG, quick-look or item of February; no staging left
    # no staging folder or temporary file (the cube's own .zattrs/.zgroup are Zarr's)
    ours = [p for p in tmp_path.rglob("*") if p.relative_to(tmp_path).parts[0] != "cube.zarr"]
    assert not any(p.name.startswith(".") for p in ours)
    assert (tmp_path / "cube.zarr" / ".zmetadata").is_file()
    # replacing a month with force: a failure leaves the old month as it was
    with pytest.raises(PluginError):
        publish_month(synthetic_monthly_product(seed=9), definition, tmp_path, force=True, plugins=plugins)
    assert _digests(tmp_path) == before


def test_a_second_process_publishing_into_the_same_folder_is_refused(tmp_path):
    definition = load_product("gangrigab-2023")
    tmp_path.mkdir(exist_ok=True)
    holder = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as another gvfuse process would hold it
        with pytest.raises(OutputBusyError, match="another gvfuse process"):
            publish_month(synthetic_monthly_product(), definition, tmp_path, plugins=PluginSet())
        with pytest.raises(OutputBusyError):
            write_month_files(synthetic_monthly_product(), tmp_path)
    finally:
        os.close(holder)
    assert not list(tmp_path.iterdir())
    publish_month(synthetic_monthly_product(), definition, tmp_path, plugins=PluginSet())  # released: fine


def test_what_a_killed_run_left_is_removed_by_the_next(tmp_path):
    definition = load_product("gangrigab-2023")
    publish_month(synthetic_monthly_product(), definition, tmp_path, plugins=PluginSet())
    expected = _digests(tmp_path)
    (tmp_path / ".202306_vx.tif.k3j2.tmp").write_bytes(b"half a COG")
    (tmp_path / ".collection.json.x9.tmp").write_text("{")
    (tmp_path / "items" / ".gangrigab-2023-202306.json.a1.tmp").write_text("{")
    (tmp_path / ".staging-abc").mkdir()
    (tmp_path / ".staging-abc" / "202306_vx.tif").write_bytes(b"staged")
    publish_month(synthetic_monthly_product(), definition, tmp_path, force=True, plugins=PluginSet())
    assert _digests(tmp_path) == expected


def test_a_run_with_nothing_to_publish_still_removes_what_a_killed_run_left(tmp_path):
    from gvfuse.publish.month import remove_leftovers

    definition = load_product("gangrigab-2023")
    publish_month(synthetic_monthly_product(), definition, tmp_path, plugins=PluginSet())
    expected = _digests(tmp_path)
    (tmp_path / ".202306_vx.tif.k3j2.tmp").write_bytes(b"half a COG")
    (tmp_path / ".staging-abc").mkdir()
    remove_leftovers(tmp_path)  # what every publishing run does first, whatever it then publishes
    assert _digests(tmp_path) == expected and not (tmp_path / ".staging-abc").exists()
    remove_leftovers(tmp_path / "no-such-folder")  # nothing to do, nothing made
    assert not (tmp_path / "no-such-folder").exists()
