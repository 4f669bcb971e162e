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
from tests.helpers.plugins import fake_distribution

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


def test_third_party_plugin_is_discovered_listed_and_callable(plugin_site):
    fake_distribution(plugin_site, "gvfuse-count", "thirdparty_count",
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
    plugins.notify("gvfuse_configure", config=config, source=Path("run.toml"))
    assert config["seen_by"] == ["thirdparty_count"]


def test_plugin_with_missing_dependency_is_skipped_with_reason(plugin_site):
    fake_distribution(plugin_site, "gvfuse-broken", "thirdparty_broken", "import a_module_nobody_has\n")
    fake_distribution(plugin_site, "gvfuse-count", "thirdparty_count",
                      PLUGIN_SOURCE.format(name="count", module="thirdparty_count"))
    plugins = load_plugins()
    skipped = {p.name: p.skipped_reason for p in plugins.skipped}
    assert "a_module_nobody_has" in skipped["thirdparty_broken"]
    assert plugins.get("validators", "count")  # the others keep working


def test_block_list_from_environment(plugin_site, monkeypatch):
    fake_distribution(plugin_site, "gvfuse-count", "thirdparty_count",
                      PLUGIN_SOURCE.format(name="count", module="thirdparty_count"))
    monkeypatch.setenv(BLOCK_ENV, "gvfuse-count, other")
    plugins = load_plugins()
    assert "count" not in plugins.registry["validators"]
    assert any(p.name == "thirdparty_count" and "blocked" in p.skipped_reason for p in plugins.skipped)


def test_two_plugins_with_one_name_is_an_error_naming_both(plugin_site):
    for module in ("thirdparty_a", "thirdparty_b"):
        fake_distribution(plugin_site, module.replace("_", "-"), module,
                          PLUGIN_SOURCE.format(name="dup", module=module))
    with pytest.raises(PluginError, match=r"'dup' is registered twice: by plugin 'thirdparty_a'.*'thirdparty_b'"):
        load_plugins()


def test_exception_inside_a_plugin_names_the_plugin(plugin_site):
    fake_distribution(plugin_site, "gvfuse-bad", "thirdparty_bad", '''
        from gvfuse import hookimpl
        @hookimpl
        def gvfuse_configure(config):
            raise KeyError("region")
    ''')
    plugins = load_plugins()
    with pytest.raises(PluginError, match=r"plugin 'thirdparty_bad': gvfuse_configure\(\) failed: KeyError"):
        plugins.notify("gvfuse_configure", config={}, source=Path("run.toml"))


def test_plugin_registering_a_non_component_class_is_skipped_with_the_reason(plugin_site):
    fake_distribution(plugin_site, "gvfuse-odd", "thirdparty_odd", '''
        from gvfuse import hookimpl
        class NotATracker:
            name = "odd"
        @hookimpl
        def gvfuse_register_trackers():
            return [NotATracker]
    ''')
    plugins = load_plugins()
    assert "odd" not in plugins.registry["trackers"]
    (skipped,) = [p for p in plugins.skipped if p.name == "thirdparty_odd"]
    assert "not a subclass of gvfuse.interfaces.Tracker" in skipped.skipped_reason


def test_plugin_with_an_unknown_hook_is_skipped_with_the_reason(plugin_site):
    fake_distribution(plugin_site, "gvfuse-typo", "thirdparty_typo", '''
        from gvfuse import hookimpl
        @hookimpl
        def gvfuse_register_trackerz():
            return []
    ''')
    (skipped,) = [p for p in load_plugins().skipped if p.name == "thirdparty_typo"]
    assert "unknown hook(s) gvfuse_register_trackerz" in skipped.skipped_reason


def test_unknown_component_lists_available(plugin_site):
    fake_distribution(plugin_site, "gvfuse-count", "thirdparty_count",
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


def test_events_go_through_pluggy_so_wrappers_and_tracing_see_them(plugin_site, monkeypatch, capsys):
    fake_distribution(plugin_site, "gvfuse-count", "thirdparty_count",
                      PLUGIN_SOURCE.format(name="count", module="thirdparty_count"))
    fake_distribution(plugin_site, "gvfuse-wrap", "thirdparty_wrap", '''
        from gvfuse import hookimpl
        @hookimpl(wrapper=True)
        def gvfuse_configure(config):
            config["before"] = list(config.get("seen_by", []))
            result = yield
            config["after"] = list(config["seen_by"])
            return result
    ''')
    monkeypatch.setenv("GVFUSE_TRACE_PLUGINS", "1")
    plugins = load_plugins()
    config: dict = {}
    plugins.notify("gvfuse_configure", config=config, source=Path("run.toml"))
    assert config == {"before": [], "seen_by": ["thirdparty_count"], "after": ["thirdparty_count"]}
    assert "gvfuse_configure" in capsys.readouterr().err  # pluggy's trace of the call


def test_configure_hook_amends_the_run_configuration_before_it_is_read(plugin_site, tmp_path):
    from gvfuse.config import load_config

    fake_distribution(plugin_site, "gvfuse-defaults", "thirdparty_defaults", '''
        from gvfuse import hookimpl
        @hookimpl
        def gvfuse_configure(config, source):
            config.setdefault("months", ["2023-03"])
            config["sensors"]["landsat"].setdefault("max_speed_m_per_day", 7.5)
    ''')
    run = tmp_path / "run.toml"
    run.write_text('product = "gangrigab-2023"\n[sensors.landsat]\n')
    config = load_config(run, load_plugins())
    assert [str(m) for m in config.months] == ["2023-03"]
    assert config.sensors["landsat"].max_speed_m_per_day == 7.5
    assert len(load_config(run, None).months) == 12  # without plugins, the file as it is


def test_validator_declaring_an_unknown_context_kind_is_skipped_with_the_reason(plugin_site):
    fake_distribution(plugin_site, "gvfuse-odd", "thirdparty_odd", '''
        from gvfuse import hookimpl
        from gvfuse.interfaces import Validator
        class Odd(Validator):
            name = "odd"
            needs = {"dem": "raster"}
            def validate(self, field, **context):
                return {}
        @hookimpl
        def gvfuse_register_validators():
            return [Odd]
    ''')
    plugins = load_plugins()
    assert "odd" not in plugins.registry["validators"]
    (skipped,) = [p for p in plugins.skipped if p.name == "thirdparty_odd"]
    assert "unknown kind(s) {'dem': 'raster'}" in skipped.skipped_reason
