"""The plugin manager: discovery through entry points, skipping, blocking, conflicts, errors."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gvfuse.errors import PluginError, UnknownComponentError
from gvfuse.plugins import BLOCK_ENV, load_plugins

PLUGIN_SOURCE = '''
from gvfuse import hookimpl
from gvfuse.interfaces import Validator

class CountValidator(Validator):
    name = "{name}"
    description = "counts valid cells"

    def validate(self, field, **context):
        import numpy as np
        return {{"valid_cells": int(np.isfinite(field.vx_m_per_day).sum())}}

@hookimpl
def gvfuse_register_validators():
    return [CountValidator]

@hookimpl
def gvfuse_configure(config):
    config.setdefault("seen_by", []).append("{module}")
'''


def fake_distribution(root: Path, dist: str, module: str, body: str, version: str = "1.2.3") -> None:
    """An installed distribution on ``root`` (a sys.path entry) with one entry point in group gvfuse."""
    (root / f"{module}.py").write_text(textwrap.dedent(body))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[gvfuse]\n{module} = {module}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("thirdparty_")]:
        del sys.modules[name]


def test_third_party_plugin_is_discovered_listed_and_callable(site):
    fake_distribution(site, "gvfuse-count", "thirdparty_count",
                      PLUGIN_SOURCE.format(name="count", module="thirdparty_count"))
    plugins = load_plugins()
    reg = plugins.get("validators", "count")
    assert (reg.plugin.name, reg.plugin.distribution, reg.plugin.version) == (
        "thirdparty_count", "gvfuse-count", "1.2.3")
    import numpy as np
    from affine import Affine

    from gvfuse.model import Grid, VelocityField
    g = Grid(32647, Affine(30, 0, 0, 0, -30, 0), (2, 2))
    vx = np.array([[1, np.nan], [2, 3]], "f4")
    assert reg.cls().validate(VelocityField(vx, vx, g, dt_days=1)) == {"valid_cells": 3}
    config: dict = {}
    plugins.call_event("gvfuse_configure", config=config)
    assert config["seen_by"] == ["thirdparty_count"]


def test_plugin_with_missing_dependency_is_skipped_with_reason(site):
    fake_distribution(site, "gvfuse-broken", "thirdparty_broken", "import a_module_nobody_has\n")
    fake_distribution(site, "gvfuse-count", "thirdparty_count",
                      PLUGIN_SOURCE.format(name="count", module="thirdparty_count"))
    plugins = load_plugins()
    skipped = {p.name: p.skipped_reason for p in plugins.skipped}
    assert "a_module_nobody_has" in skipped["thirdparty_broken"]
    assert plugins.get("validators", "count")  # the others keep working


def test_block_list_from_environment(site, monkeypatch):
    fake_distribution(site, "gvfuse-count", "thirdparty_count",
                      PLUGIN_SOURCE.format(name="count", module="thirdparty_count"))
    monkeypatch.setenv(BLOCK_ENV, "gvfuse-count, other")
    plugins = load_plugins()
    assert "count" not in plugins.registry["validators"]
    assert any(p.name == "thirdparty_count" and "blocked" in p.skipped_reason for p in plugins.skipped)


def test_two_plugins_with_one_name_is_an_error_naming_both(site):
    for module in ("thirdparty_a", "thirdparty_b"):
        fake_distribution(site, module.replace("_", "-"), module, PLUGIN_SOURCE.format(name="dup", module=module))
    with pytest.raises(PluginError, match=r"'dup' is registered twice: by plugin 'thirdparty_a'.*'thirdparty_b'"):
        load_plugins()


def test_exception_inside_a_plugin_names_the_plugin(site):
    fake_distribution(site, "gvfuse-bad", "thirdparty_bad", '''
        from gvfuse import hookimpl
        @hookimpl
        def gvfuse_configure(config):
            raise KeyError("region")
    ''')
    plugins = load_plugins()
    with pytest.raises(PluginError, match=r"plugin 'thirdparty_bad': gvfuse_configure\(\) failed: KeyError"):
        plugins.call_event("gvfuse_configure", config={})


def test_registering_a_non_component_class_is_an_error(site):
    fake_distribution(site, "gvfuse-odd", "thirdparty_odd", '''
        from gvfuse import hookimpl
        class NotATracker:
            name = "odd"
        @hookimpl
        def gvfuse_register_trackers():
            return [NotATracker]
    ''')
    with pytest.raises(PluginError, match="thirdparty_odd.*not a subclass of gvfuse.interfaces.Tracker"):
        load_plugins()


def test_unknown_hook_in_plugin_fails_check_pending(site):
    fake_distribution(site, "gvfuse-typo", "thirdparty_typo", '''
        from gvfuse import hookimpl
        @hookimpl
        def gvfuse_register_trackerz():
            return []
    ''')
    with pytest.raises(Exception, match="gvfuse_register_trackerz"):
        load_plugins()


def test_unknown_component_lists_available(site):
    fake_distribution(site, "gvfuse-count", "thirdparty_count",
                      PLUGIN_SOURCE.format(name="count", module="thirdparty_count"))
    with pytest.raises(UnknownComponentError, match="available: .*count"):
        load_plugins().get("validators", "nope")


def test_pip_installed_plugin_appears_in_cli_listing(tmp_path):
    """A real distribution, built and installed by pip, shows in `gvfuse plugins` with no change to gvfuse."""
    src = tmp_path / "src"
    (src / "gvfuse_demo_plugin").mkdir(parents=True)
    (src / "gvfuse_demo_plugin" / "__init__.py").write_text(
        textwrap.dedent(PLUGIN_SOURCE.format(name="demo-count", module="gvfuse_demo_plugin")))
    (src / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "gvfuse-demo-plugin"
        version = "0.4.0"
        [project.entry-points.gvfuse]
        demo_count = "gvfuse_demo_plugin"
    '''))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), str(src)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "gvfuse.cli", "plugins", "--json"], env=env,
                         capture_output=True, text=True, check=True).stdout
    listed = {(c["kind"], c["name"]): c for c in json.loads(out)["components"]}
    entry = listed[("validator", "demo-count")]
    assert (entry["plugin"], entry["distribution"], entry["version"]) == (
        "demo_count", "gvfuse-demo-plugin", "0.4.0")
