"""``gvfuse run CONFIG``: scan, pair, track (cached, on dask), fuse, validate and publish every month."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from gvfuse.cli.common import (
    Command,
    cluster_logging,
    echo_json,
    finish,
    pair_progress_bar,
    plugin_set,
    set_log_level,
    verbose,
)


@click.command("run", cls=Command)
@click.argument("config_path", metavar="CONFIG", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the plan and stop.")
@click.option("--scheduler", metavar="ADDRESS", help="Use this dask.distributed scheduler (e.g. tcp://host:8786).")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Worker processes of the local dask cluster (default: one per core; 0: no dask).")
@click.option("--force", is_flag=True, help="Replace months already published from other inputs.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the result (with --dry-run: the plan, as gvfuse pairs --json) as JSON.")
@click.option("-v", "--verbose", "run_verbose", is_flag=True, help="Same as gvfuse -v run: log what each step does.")
@click.pass_context
def run_command(ctx: click.Context, config_path: Path, dry_run: bool, scheduler: str | None, workers: int | None,
                force: bool, as_json: bool, run_verbose: bool) -> None:
    """Run a configuration: scan, pair, track (cached, on dask), fuse, validate and publish every month.

    Started again after an interruption, it redoes only the unfinished pairs and
    months. Problems with single inputs are listed at the end; the exit status
    is non-zero only when a requested month could not be produced.
    """
    from gvfuse.cli.pairs import plan_to_dict
    from gvfuse.config import check_writable_folder, load_config
    from gvfuse.pipeline.run import build_plan, dask_client, default_workers, execute

    if run_verbose and not verbose():
        ctx.call_on_close(set_log_level(logging.INFO))
    plugins = plugin_set()
    config = load_config(config_path, plugins)
    if dry_run:
        plan = build_plan(config, plugins)
        if as_json:
            echo_json(plan_to_dict(plan))
        else:
            click.echo(plan.describe())
        return
    check_writable_folder(config.output_dir, source=config.source, field="output_dir")
    check_writable_folder(config.cache_dir, source=config.source, field="cache_dir")
    if scheduler is not None or workers != 0:
        cluster_logging()
    with dask_client(scheduler, default_workers() if workers is None else workers) as client, \
            pair_progress_bar() as progress:
        result = execute(config, plugins=plugins, client=client, force=force, progress=progress)
    if as_json:
        echo_json({
            "months": [{"month": str(m.month), "files": [str(p) for p in m.paths], "error": m.error or None}
                       for m in result.months],
            "pairs": {"total": len(result.pairs), "cached": sum(o.cached and not o.error for o in result.pairs),
                      "tracked": sum(not o.cached and not o.error for o in result.pairs),
                      "failed": sum(bool(o.error) for o in result.pairs)},
            "problems": result.problems,
            "failed_months": [str(m) for m in result.failed_months],
        })
    else:
        for month in result.months:
            status = f"{len(month.paths)} file(s)" if not month.error else f"FAILED: {month.error}"
            click.echo(f"{month.month}: {status}")
    finish(ctx, result.problems, result.failed_months)
