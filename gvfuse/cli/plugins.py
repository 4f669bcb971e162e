"""``gvfuse plugins``: the registered readers, trackers, weightings, validators and publishers."""

from __future__ import annotations

import click

from gvfuse.cli.common import Command, echo_json, plugin_set, table


@click.command("plugins", cls=Command)
@click.option("--json", "as_json", is_flag=True, help="Print the listing as JSON.")
def plugins_command(as_json: bool) -> None:
    """List the registered readers, trackers, weightings, validators and publishers.

    Also lists every plugin that was skipped (blocked, or failed to import) with the reason.
    """
    plugins = plugin_set()
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
        echo_json({"components": components, "skipped": skipped})
        return
    header = ["kind", "name", "plugin", "distribution", "version"]
    click.echo(table([[c[k] for k in header] for c in components], header) if components
               else "no components registered")
    if skipped:
        click.echo("\nskipped plugins:")
        click.echo(table([[s["plugin"], s["distribution"], s["reason"]] for s in skipped],
                         ["plugin", "distribution", "reason"]))
