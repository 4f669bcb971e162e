"""What every command shares: the error handling, logging, the plugin set, tables, JSON and the end-of-run report."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import click

from gvfuse.errors import GvfuseError

if TYPE_CHECKING:
    from gvfuse.pipeline.pair import PairOutcome
    from gvfuse.plugins import PluginSet

log = logging.getLogger("gvfuse")

#: Exit statuses of every command (docs/cli.md, "Exit status").
EXIT_OK = 0
#: Bad input (a file's content, a folder a configuration names), a failed month, a failed check, an OS error.
EXIT_ERROR = 1
#: The command line itself (unknown command or option, a bad option value): click's own usage errors.
EXIT_USAGE = 2
#: Interrupted by Ctrl-C (SIGINT): 128 + the signal's number, as a shell reports a command the signal ended.
EXIT_INTERRUPTED = 130
#: The one line of an interrupted command.
INTERRUPTED = "interrupted (Ctrl-C); run the command again to finish (a month is published whole or not at all)"

#: Loggers of dask.distributed and the web stack under it, which log a cluster's start and stop at INFO.
CLUSTER_LOGGERS = ("distributed", "bokeh", "tornado")


class Command(click.Command):
    """A click command whose gvfuse errors (and OS errors) become one line on standard error and exit status 1,
    and whose Ctrl-C (SIGINT, ``KeyboardInterrupt``) is one line and exit status 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GvfuseError as exc:
            click.echo(f"gvfuse: error: {exc}", err=True)
            ctx.exit(EXIT_ERROR)
        except OSError as exc:  # a full disk, a permission refused while working: the file and the reason
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"gvfuse: error: {where}{exc.strerror or exc}", err=True)
            ctx.exit(EXIT_ERROR)
        except KeyboardInterrupt:  # not click's blank line and "Aborted!" (status 1, as a bad input's)
            click.echo(f"gvfuse: error: {INTERRUPTED}", err=True)
            ctx.exit(EXIT_INTERRUPTED)


class _ClickHandler(logging.Handler):
    """Log records to standard error through click (so a test runner's captured stream gets them)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:  # a closed stream at shutdown must not raise out of logging
            self.handleError(record)


def set_log_level(level: int) -> Callable[[], None]:
    """Log gvfuse's messages at ``level`` and above to standard error; returns what undoes it.

    Called by the ``gvfuse`` group from ``-v``/``-q``/``--log-level`` (and undone when the command ends, so
    commands invoked in one process, as tests do, do not inherit each other's level); the level also decides
    what else a command prints (:func:`quiet`, :func:`verbose`) and how chatty a dask cluster is
    (:func:`cluster_logging`).
    """
    logger = logging.getLogger("gvfuse")
    before = (logger.level, logger.propagate)
    handler = _ClickHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    # with -v the cluster's own messages go out through the same handler (their levels: cluster_logging)
    cluster = [logging.getLogger(name) for name in CLUSTER_LOGGERS] if level <= logging.INFO else []
    for other in cluster:
        other.addHandler(handler)

    silenced = None
    if level > logging.WARNING:  # -q: no warnings at all, Python's (a library's UserWarning) included
        silenced = warnings.catch_warnings()
        silenced.__enter__()
        warnings.simplefilter("ignore")

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(before[0])
        logger.propagate = before[1]
        for other in cluster:
            other.removeHandler(handler)
        if silenced is not None:
            silenced.__exit__(None, None, None)

    return restore


def log_level() -> int:
    """The level the command line asked for (WARNING unless ``-v``, ``-q`` or ``--log-level``)."""
    return logging.getLogger("gvfuse").getEffectiveLevel()


def verbose() -> bool:
    """``-v`` (or ``--log-level INFO``/``DEBUG``): log each step, and the dask cluster's own messages."""
    return log_level() <= logging.INFO


def quiet() -> bool:
    """``-q`` (or ``--log-level ERROR``/``CRITICAL``): errors only, no warnings and no progress bar."""
    return log_level() > logging.WARNING


def warn(text: str) -> None:
    """``gvfuse: warning: <text>`` on standard error, unless ``-q``."""
    if not quiet():
        click.echo(f"gvfuse: warning: {text}", err=True)


def cluster_logging() -> None:
    """Give dask.distributed's loggers gvfuse's level, but never below WARNING without ``-v``.

    distributed sets its own loggers to INFO when it is imported, so a run would print some thirty lines of
    cluster chatter (and the dashboard address) on standard error; imported here first, then quietened.
    """
    import distributed  # noqa: F401

    level = log_level() if verbose() else max(log_level(), logging.WARNING)
    for name in CLUSTER_LOGGERS:
        logging.getLogger(name).setLevel(level)
    if not verbose():  # the scheduler's HTTP server moving to a free port (another cluster on 8787) is no news
        warnings.filterwarnings("ignore", message=r"Port \d+ is already in use", category=UserWarning)


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
    show = not quiet()

    def progress(outcome: PairOutcome, done: int, total: int) -> None:
        nonlocal bar
        if bar is None and show:
            bar = click.progressbar(length=total, label="tracking pairs", file=sys.stderr)
            bar.__enter__()
        if bar is not None:
            bar.update(1)
        state = "cached" if outcome.cached else ("failed: " + outcome.error if outcome.error else "done")
        log.info("pair %s (%s) %s", outcome.pair_id, outcome.sensor, state)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def finish(ctx: click.Context, problems: Sequence[str], failed_months: Sequence[object]) -> None:
    """List the problems on standard error (unless ``-q``); exit with status 1 when a requested month failed."""
    if problems and not quiet():
        click.echo(f"\n{len(problems)} problem(s):", err=True)
        for problem in problems:
            click.echo(f"  {problem}", err=True)
    if failed_months:
        ctx.exit(EXIT_ERROR)
