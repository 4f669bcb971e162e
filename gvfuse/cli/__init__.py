"""The ``gvfuse`` command line: one module per command, each a thin layer over library functions.

``gvfuse`` is a click group whose commands are imported only when used
(:class:`LazyGroup`), and each command module imports the library inside the
command, so ``gvfuse --help`` and ``gvfuse --version`` start without numpy,
rasterio or dask. Errors are handled in one place
(:class:`gvfuse.cli.common.Command`): gvfuse's own errors print one line,
``gvfuse: error: <file> [<field>]: <what was expected>``, and exit with
status 1; usage errors exit with 2, as click does. The group's ``-v``/``-q``/
``--log-level`` set the log level every command shares.
"""

from __future__ import annotations

import importlib
import logging
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
    "netcdf": "gvfuse.cli.netcdf:netcdf_command",
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


#: ``--log-level`` choices, most to least verbose.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="gvfuse")
@click.option("-v", "--verbose", count=True,
              help="Log what each step does (INFO), with the dask cluster's own messages; -vv: DEBUG.")
@click.option("-q", "--quiet", is_flag=True, help="Errors only: no warnings, no progress bar, no problem list.")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False),
              help="Log level (default WARNING); instead of -v/-q.")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool, log_level: str | None) -> None:
    """Glacier surface velocity from satellite and drone image pairs.

    Readers, trackers, weightings, validators and publishers are plugins;
    `gvfuse plugins` lists what is installed. Exit status: 0 done, 1 bad
    input or a failed step (one line `gvfuse: error: ...`), 2 a wrong
    command line.
    """
    from gvfuse.cli.common import set_log_level

    if sum((verbose > 0, quiet, log_level is not None)) > 1:
        raise click.UsageError("give one of -v, -q and --log-level")
    if log_level is not None:
        level = getattr(logging, log_level.upper())
    elif quiet:
        level = logging.ERROR
    else:
        level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    ctx.call_on_close(set_log_level(level))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
