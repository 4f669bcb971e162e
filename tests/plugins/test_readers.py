"""The bundled reader plugin module: registration through the plugin manager, names, priorities."""

from __future__ import annotations

import gvfuse_plugins.readers as readers_module
from gvfuse.interfaces import Reader
from gvfuse.plugins import PluginInfo, PluginSet


def test_module_registers_all_readers():
    plugins = PluginSet()
    plugins.add(readers_module, PluginInfo("readers", "gvfuse", "test", "gvfuse_plugins.readers"))
    names = set(plugins.registry["readers"])
    assert names == {"landsat", "sentinel-2", "sentinel-1", "uav", "geotiff"}
    for registration in plugins.registry["readers"].values():
        cls = registration.cls
        assert issubclass(cls, Reader) and cls.description and cls.sensor


def test_generic_geotiff_has_the_lowest_priority():
    priorities = {cls.name: cls.priority for cls in readers_module.READERS}
    providers = min(priorities[n] for n in ("landsat", "sentinel-1", "sentinel-2"))
    assert priorities["geotiff"] < priorities["uav"] < providers


def test_detect_is_false_for_unrelated_paths(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    for cls in readers_module.READERS:
        assert not cls.detect(tmp_path / "notes.txt")
        assert not cls.detect(tmp_path / "missing.SAFE")
