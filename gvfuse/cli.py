"""The ``gvfuse`` command line.

Each command is a thin layer over a library function; errors that gvfuse
raises on purpose are printed as one clear line and exit with status 1
(2 for usage errors, as click does).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from gvfuse import __version__
from gvfuse.errors import GvfuseError


class _Group(click.Group):
    """Turns gvfuse's own errors into a one-line message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GvfuseError as exc:
            click.echo(f"gvfuse: error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="gvfuse")
def main() -> None:
    """Glacier surface velocity from satellite and drone image pairs.

    Readers, trackers, weightings, validators and publishers are plugins;
    `gvfuse plugins` lists what is installed.
    """


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*map(str, r)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print the listing as JSON.")
def plugins_command(as_json: bool) -> None:
    """List the registered readers, trackers, weightings, validators and publishers.

    Also lists every plugin that was skipped (blocked, or failed to import) with the reason.
    """
    from gvfuse.plugins import get_plugins

    plugins = get_plugins()
    components = [
        {
            "kind": reg.kind[:-1],
            "name": reg.name,
            "plugin": reg.plugin.name,
            "distribution": reg.plugin.distribution,
            "version": reg.plugin.version,
            "description": reg.cls.description,
        }
        for kind in plugins.registry.values()
        for reg in kind.values()
    ]
    skipped = [
        {"plugin": p.name, "distribution": p.distribution, "version": p.version, "reason": p.skipped_reason}
        for p in plugins.skipped
    ]
    if as_json:
        click.echo(json.dumps({"components": components, "skipped": skipped}, indent=2))
        return
    header = ["kind", "name", "plugin", "distribution", "version"]
    click.echo(_table([[c[k] for k in header] for c in components], header) if components
               else "no components registered")
    if skipped:
        click.echo("\nskipped plugins:")
        click.echo(_table([[s["plugin"], s["distribution"], s["reason"]] for s in skipped],
                          ["plugin", "distribution", "reason"]))


def _add_commands() -> None:
    # Imported here so `gvfuse --help` stays fast and each command's module owns its options.
    from gvfuse.catalog_check import check_command
    from gvfuse.demo import demo_command
    from gvfuse.run_command import pairs_command, run_command
    from gvfuse.scan import scan_command
    from gvfuse.track_command import track_command
    from gvfuse.validate_command import validate_command

    for command in (demo_command, scan_command, track_command, pairs_command, run_command, validate_command,
                    check_command):
        main.add_command(command)


_add_commands()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
