"""The ``gvfuse`` command line: one module per command, each a thin layer over library functions.

``gvfuse`` is a click group whose commands are imported only when used
(:class:`LazyGroup`), and each command module imports the library inside the
command, so ``gvfuse --help`` and ``gvfuse --version`` start without numpy,
rasterio or dask. Errors are handled in one place
(:class:`gvfuse.cli.common.Command`): gvfuse's own errors print one line,
``gvfuse: error: <file> [<field>]: <what was expected>``, and exit with
status 1; usage errors exit with 2, as click does.
"""

from __future__ import annotations

import importlib
import sys

import click

from gvfuse import __version__

#: Command name -> "module:attribute" of its click command.
COMMANDS: dict[str, str] = {
    "demo": "gvfuse.cli.demo:demo_command",
    "plugins": "gvfuse.cli.plugins:plugins_command",
    "scan": "gvfuse.cli.scan:scan_command",
    "pairs": "gvfuse.cli.pairs:pairs_command",
    "run": "gvfuse.cli.run:run_command",
    "track": "gvfuse.cli.track:track_command",
    "validate": "gvfuse.cli.validate:validate_command",
    "check": "gvfuse.cli.check:check_command",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when the command is listed or run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="gvfuse")
def main() -> None:
    """Glacier surface velocity from satellite and drone image pairs.

    Readers, trackers, weightings, validators and publishers are plugins;
    `gvfuse plugins` lists what is installed.
    """


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
