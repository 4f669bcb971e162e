"""``gvfuse scan DIRECTORY``: the scenes in a download folder and what was skipped."""

from __future__ import annotations

from pathlib import Path

import click

from gvfuse.cli.common import Command, echo_json, plugin_set


@click.command("scan", cls=Command)
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--product", "product_ref", metavar="ID_OR_TOML",
              help="Product definition (bundled id such as gangrigab-2023, or a TOML path): report overlap "
                   "with its area and skip scenes outside it.")
def scan_command(directory: Path, as_json: bool, product_ref: str | None) -> None:
    """List the scenes in DIRECTORY (sensor, platform, time, cloud cover, CRS, resolution) and what was skipped.

    A DIRECTORY that does not exist, is not a folder or cannot be listed is bad input (status 1).
    """
    from gvfuse.pipeline.scan import format_report, scan
    from gvfuse.product import load_product

    # a product definition that does not read is bad input (exit 1), as in gvfuse pairs and run
    product = load_product(product_ref) if product_ref else None
    report = scan(directory, plugin_set().classes("readers"), product)
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(format_report(report))
