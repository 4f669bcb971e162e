"""``gvfuse run CONFIG``: scan, pair, track (cached, on dask), fuse, validate and publish every month."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from gvfuse.cli.common import Command, finish, pair_progress_bar, plugin_set


@click.command("run", cls=Command)
@click.argument("config_path", metavar="CONFIG", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the plan and stop.")
@click.option("--scheduler", metavar="ADDRESS", help="Use this dask.distributed scheduler (e.g. tcp://host:8786).")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Worker processes of the local dask cluster (default: one per core; 0: no dask).")
@click.option("--force", is_flag=True, help="Replace months already published from other inputs.")
@click.option("-v", "--verbose", is_flag=True, help="Log what each step does.")
@click.pass_context
def run_command(ctx: click.Context, config_path: Path, dry_run: bool, scheduler: str | None, workers: int | None,
                force: bool, verbose: bool) -> None:
    """Run a configuration: scan, pair, track (cached, on dask), fuse, validate and publish every month.

    Started again after an interruption, it redoes only the unfinished pairs and
    months. Problems with single inputs are listed at the end; the exit status
    is non-zero only when a requested month could not be produced.
    """
    from gvfuse.config import load_config
    from gvfuse.pipeline.run import build_plan, dask_client, default_workers, execute

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    plugins = plugin_set()
    config = load_config(config_path, plugins)
    if dry_run:
        click.echo(build_plan(config, plugins).describe())
        return
    if not verbose:
        # distributed sets its own loggers to INFO when imported: quiet them after, or a run prints some
        # thirty lines of cluster chatter on standard error
        import distributed  # noqa: F401

        for name in ("distributed", "bokeh", "tornado"):
            logging.getLogger(name).setLevel(logging.WARNING)
    with dask_client(scheduler, default_workers() if workers is None else workers) as client, \
            pair_progress_bar() as progress:
        result = execute(config, plugins=plugins, client=client, force=force, progress=progress)
    for month in result.months:
        status = f"{len(month.paths)} file(s)" if not month.error else f"FAILED: {month.error}"
        click.echo(f"{month.month}: {status}")
    finish(ctx, result.problems, result.failed_months)
