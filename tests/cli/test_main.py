import json

from click.testing import CliRunner

from gvfuse import __version__
from gvfuse.cli import main


def test_version_and_help():
    runner = CliRunner()
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0 and "plugins" in result.output


def test_plugins_json_lists_components_with_their_distribution():
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    assert set(listing) == {"components", "skipped"}
    for component in listing["components"]:
        assert {"kind", "name", "plugin", "distribution", "version"} <= set(component)


def test_unknown_command_exits_non_zero():
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2
