"""What every command shares: the error handling, the plugin set, tables, JSON and the end-of-run report."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import click

from gvfuse.errors import GvfuseError

if TYPE_CHECKING:
    from gvfuse.pipeline.pair import PairOutcome
    from gvfuse.plugins import PluginSet

log = logging.getLogger("gvfuse")


class Command(click.Command):
    """A click command whose gvfuse errors become one line on standard error and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GvfuseError as exc:
            click.echo(f"gvfuse: error: {exc}", err=True)
            ctx.exit(1)


def plugin_set() -> PluginSet:
    """The installed plugins, loaded once per process (the CLI is where the plugin set is made)."""
    from gvfuse import plugins

    return plugins.get_plugins()


def echo_json(value: Any) -> None:
    """Print ``value`` as JSON: keys sorted, NaN and infinities as ``null``."""
    from gvfuse.publish.provenance import canonical

    click.echo(json.dumps(canonical(value), indent=2))


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """A plain-text table with a header and a rule, columns left-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*map(str, r)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


@contextlib.contextmanager
def pair_progress_bar() -> Iterator[Callable[[PairOutcome, int, int], None]]:
    """A progress callback for tracked pairs: a bar on standard error, and a log line per pair."""
    bar: Any = None

    def progress(outcome: PairOutcome, done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="tracking pairs", file=sys.stderr)
            bar.__enter__()
        bar.update(1)
        state = "cached" if outcome.cached else ("failed: " + outcome.error if outcome.error else "done")
        log.info("pair %s (%s) %s", outcome.pair_id, outcome.sensor, state)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def finish(ctx: click.Context, problems: Sequence[str], failed_months: Sequence[object]) -> None:
    """List the problems on standard error; exit with status 1 when a requested month could not be produced."""
    if problems:
        click.echo(f"\n{len(problems)} problem(s):", err=True)
        for problem in problems:
            click.echo(f"  {problem}", err=True)
    if failed_months:
        ctx.exit(1)
