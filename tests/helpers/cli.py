"""Running the CLI in-process as a user would, for tests that check its one-line errors; and in a process
that file modes bind, for tests of folders that cannot be read or written."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys

import pytest
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


@functools.cache
def _user_namespaces() -> bool:
    """Whether ``unshare --user`` runs a command here (a new user namespace; no privilege needed)."""
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "--user", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def bound_by_modes(*args: object) -> list[str]:
    """``python args...`` as a command line that file modes bind, to run with :mod:`subprocess`.

    For a user, itself. Root reads and writes whatever a file's mode says, so tests running as root (in a
    container, say) start it under ``unshare --user``: in a new user namespace it keeps its user id on the
    files it owns but has no capability over them, so a folder of mode 0555 refuses it a new file and one
    of mode 0 a listing, as the kernel refuses anyone else. Skips the test when neither is possible.
    """
    command = [sys.executable, *map(str, args)]
    if os.geteuid() != 0:
        return command
    if not _user_namespaces():
        pytest.skip("running as root, and unshare --user is not available: file modes do not bind root")
    return ["unshare", "--user", *command]
