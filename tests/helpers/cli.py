"""Running the CLI in-process as a user would, for tests that check its one-line errors."""

from __future__ import annotations

from click.testing import CliRunner

from gvfuse.cli import main


def one_line_error(args: list[object]) -> str:
    """The single ``gvfuse: error: ...`` line of a command that must fail with exit 1 and no traceback."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    [line] = result.output.strip().splitlines()
    assert line.startswith("gvfuse: error: "), line
    return line
