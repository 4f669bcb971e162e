"""``gvfuse pairs CONFIG``: the pair plan of a run configuration."""

from __future__ import annotations

from pathlib import Path

import click

from gvfuse.cli.common import Command, plugin_set


@click.command("pairs", cls=Command)
@click.argument("config_path", metavar="CONFIG", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def pairs_command(config_path: Path) -> None:
    """Print the pair plan of a run configuration: scenes, pairs per sensor and month, problems."""
    from gvfuse.config import load_config
    from gvfuse.pipeline.run import build_plan

    plugins = plugin_set()
    click.echo(build_plan(load_config(config_path, plugins), plugins).describe())
