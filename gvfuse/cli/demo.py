"""``gvfuse demo [DIR]``: the synthetic Gangrigab 2023 made and processed end to end, against its truth."""

from __future__ import annotations

from pathlib import Path

import click

from gvfuse.cli.common import Command, cluster_logging, echo_json, finish, pair_progress_bar, plugin_set, quiet

#: The sizes of :data:`gvfuse.demo.SIZES`, named here so that ``--help`` needs no numpy.
SIZE_NAMES = ("full", "small")


@click.command("demo", cls=Command)
@click.argument("directory", required=False, default="gvfuse-demo",
                type=click.Path(path_type=Path))
@click.option("--size", "size_name", type=click.Choice(SIZE_NAMES), default="full", show_default=True,
              help="full: 12 months of a ~5 x 5 km area; small: 2 months of a ~3 x 3 km area.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Worker processes of the local dask cluster (default: one per core; 0: no dask).")
@click.option("--force", is_flag=True, help="Replace products published from other inputs, files in DIRECTORY "
              "the demo did not write, and a demo of another size.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary (per month and sensor) as JSON.")
@click.pass_context
def demo_command(ctx: click.Context, directory: Path, size_name: str, workers: int | None, force: bool,
                 as_json: bool) -> None:
    """Synthetic Gangrigab 2023 end to end, into DIRECTORY (default ./gvfuse-demo).

    Makes a year of Landsat 8/9, Sentinel-2, Sentinel-1 and UAV scenes in the
    providers' folder layouts over glaciers with a known, seasonal flow; runs
    scan, pairs, tracking, fusion, validation and publishing; prints how each
    month's fused map, and each single sensor, compare with the truth.
    Run again, it reuses the scenes and every finished pair.
    """
    from gvfuse.config import check_writable_folder
    from gvfuse.demo import SIZES, run_demo
    from gvfuse.pipeline.run import dask_client, default_workers

    # a read-only DIRECTORY (or the folder it would be made in) is one line before the cluster starts
    check_writable_folder(directory, source=directory, field="DIRECTORY")

    def say(text: str) -> None:
        if not quiet():
            click.echo(text, err=True)

    if workers != 0:
        cluster_logging()
    with dask_client(None, default_workers() if workers is None else workers) as client, \
            pair_progress_bar() as progress:
        report = run_demo(directory, SIZES[size_name], plugins=plugin_set(), client=client, force=force,
                          progress=say, pair_progress=progress)
    if as_json:
        echo_json({"directory": str(directory), "size": size_name, "months": report.rows,
                   "products": str(directory / "products"), "plots": str(directory / "plots"),
                   "summary": str(directory / "summary.md"), "seconds": report.seconds,
                   "problems": report.problems, "failed_months": [str(m) for m in report.failed_months]})
        finish(ctx, report.problems, report.failed_months)
        return
    click.echo(report.table)
    click.echo(f"\nproducts, STAC and intake catalog: {directory / 'products'}; plots: {directory / 'plots'}; "
               f"summary: {directory / 'summary.md'}")
    click.echo("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in report.seconds.items()))
    finish(ctx, report.problems, report.failed_months)
