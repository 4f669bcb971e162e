"""Case 15: one broken plugin (a raising registration hook, a misspelled hook) is skipped, not fatal."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from gvfuse import plugins as plugin_module
from gvfuse.cli import main
from gvfuse.plugins import load_plugins
from tests.helpers.plugins import fake_distribution

RAISING = '''
from gvfuse import hookimpl

@hookimpl
def gvfuse_register_trackers():
    raise RuntimeError("boom while registering")
'''

MISSPELLED = '''
from gvfuse import hookimpl
from gvfuse.interfaces import Validator

class Typo(Validator):
    name = "typo"
    def validate(self, field, **context):
        return {}

@hookimpl
def gvfuse_register_tracker():
    return []

@hookimpl
def gvfuse_register_validators():
    return [Typo]
'''


@pytest.fixture
def fresh_cli_plugins() -> Iterator[None]:
    """The CLI's cached plugin set is rebuilt from the test's plugin site, and forgotten afterwards."""
    plugin_module.get_plugins.cache_clear()
    yield
    plugin_module.get_plugins.cache_clear()


def test_a_raising_registration_hook_skips_that_plugin_only(plugin_site):
    fake_distribution(plugin_site, "gvfuse-raising", "thirdparty_raising", RAISING)
    plugins = load_plugins()
    (skipped,) = [p for p in plugins.skipped if p.name == "thirdparty_raising"]
    assert "gvfuse_register_trackers() failed: RuntimeError: boom while registering" in skipped.skipped_reason
    assert {"fft-phase", "ncc", "template"} <= set(plugins.registry["trackers"])  # the others still work
    assert "thirdparty_raising" not in {p.name for p in plugins.loaded}
    assert plugins.manager.get_plugin("thirdparty_raising") is None  # none of its hooks stay registered


def test_a_misspelled_hook_skips_that_plugin_with_the_reason(plugin_site):
    fake_distribution(plugin_site, "gvfuse-typo", "thirdparty_typo", MISSPELLED)
    plugins = load_plugins()
    (skipped,) = [p for p in plugins.skipped if p.name == "thirdparty_typo"]
    assert "unknown hook(s) gvfuse_register_tracker " in skipped.skipped_reason
    assert "typo" not in plugins.registry["validators"]  # all or nothing
    assert "stable-ground" in plugins.registry["validators"]


def test_commands_keep_working_and_list_the_broken_plugins(plugin_site, fresh_cli_plugins):
    fake_distribution(plugin_site, "gvfuse-raising", "thirdparty_raising", RAISING)
    fake_distribution(plugin_site, "gvfuse-typo", "thirdparty_typo", MISSPELLED)
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    reasons = {s["plugin"]: s["reason"] for s in listing["skipped"]}
    assert "boom while registering" in reasons["thirdparty_raising"]
    assert "gvfuse_register_tracker" in reasons["thirdparty_typo"]
    assert "Traceback" not in result.output
    # a command naming a component of a skipped plugin says so on one line
    result = CliRunner().invoke(main, ["track", "a.tif", "b.tif", "-o", "v.tif", "--tracker", "typo"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "gvfuse: error:" in result.output


WARM_UP_RAISES = '''
from gvfuse import hookimpl
from gvfuse_plugins.trackers import NccTracker

class ColdTracker(NccTracker):
    name = "cold"
    def warm_up(self):
        raise RuntimeError("boom while warming up")

@hookimpl
def gvfuse_register_trackers():
    return [ColdTracker]
'''


def test_a_tracker_whose_warm_up_raises_still_tracks_without_a_traceback(plugin_site, fresh_cli_plugins, tmp_path):
    from tests.helpers.scenes import optical_pair_run

    fake_distribution(plugin_site, "gvfuse-cold", "thirdparty_cold", WARM_UP_RAISES)
    optical_pair_run(tmp_path, "cold", shape=(128, 128), days=("20230101", "20230130"), seed=3)
    scenes = tmp_path / "scenes"
    result = CliRunner().invoke(main, ["track", str(scenes / "optical_20230101.tif"),
                                       str(scenes / "optical_20230130.tif"), "-o", str(tmp_path / "v.tif"),
                                       "--tracker", "cold", "--window", "32", "--step", "8"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "v.tif").exists()
    assert "Traceback" not in result.output and "boom" not in result.output
