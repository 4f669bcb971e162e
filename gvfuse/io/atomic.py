"""Atomic file writes: a temporary file beside the target, then a rename.

A reader of a published catalog never sees a half-written file under its
final name: either the old content or the new one. Rasters use the same
pattern inside :func:`gvfuse.io.raster.write_bands`. Files appear with the
mode a plain ``open()`` would give them (``0o666`` less the process umask, so
``0644`` under the usual ``022``), not the ``0600`` of a temporary file:
published products are readable by whoever may read their folder.

A group of renames that must all happen or none (a month moved into place,
then the indexes that describe it) runs in :func:`uninterrupted`: Ctrl-C
(SIGINT) is held while it runs and raised after it, as
:class:`InterruptedAfterCommit`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from gvfuse.errors import InputError, OutputExistsError


def process_umask() -> int:
    """The process umask, read without changing it (``/proc``) where possible."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        status = ""
    match = re.search(r"^Umask:\s*([0-7]+)", status, re.M)
    if match:
        return int(match[1], 8)
    mask = os.umask(0o022)  # no /proc: read it by setting it, and put it back at once
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode of a newly created file: ``0o666`` less the umask."""
    return 0o666 & ~process_umask()


def temporary_beside(path: Path) -> Path:
    """A new, empty temporary file in ``path``'s folder (``.<name>.<random>.tmp``), to be renamed onto ``path``."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp_name)


def confined(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """``path``, checked to resolve (links followed) inside ``root``; an :class:`InputError` otherwise."""
    path = Path(path)
    if not path.resolve().is_relative_to(Path(root).resolve()):
        raise InputError(f"resolves outside the folder {root}; refusing to write it", source=path)
    return path


def unwritable_reason(folder: str | os.PathLike[str]) -> str | None:
    """Why ``folder`` takes no new file, or ``None`` when it does.

    Probed by creating and removing a temporary file there (``.gvfuse-write-probe-*.tmp``, a name the next
    publication run removes should a kill leave it): permission bits alone do not tell (root ignores them; a
    read-only mount or a full quota refuses everyone).
    """
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".gvfuse-write-probe-", suffix=".tmp"):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """A temporary file beside ``path`` for the block to write; renamed onto ``path`` (with a new file's mode)
    when the block ends, removed when it raises. An existing ``path`` is an :class:`OutputExistsError` unless
    ``overwrite=True``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; refusing to overwrite it (use --force)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_beside(path)
    try:
        yield tmp
        descriptor = os.open(tmp, os.O_RDONLY)  # on disk before it takes the name: a crash leaves old or new
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``
    (:func:`atomic_target`)."""
    with atomic_target(path, overwrite=overwrite) as tmp, open(tmp, "wb") as stream:
        stream.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str, *, overwrite: bool = False) -> Path:
    """UTF-8 text through :func:`write_bytes_atomic`."""
    return write_bytes_atomic(path, text.encode("utf-8"), overwrite=overwrite)


class InterruptedAfterCommit(KeyboardInterrupt):
    """Ctrl-C (SIGINT) that arrived inside :func:`uninterrupted`, raised when its block had finished: what the
    block moved into place is whole. A ``KeyboardInterrupt``, so whatever stops on Ctrl-C stops on it."""


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold SIGINT (Ctrl-C) while the block runs; one that arrived is raised when the block has finished, as
    :class:`InterruptedAfterCommit` (or given to the handler that was there instead of Python's).

    For the few renames and index rewrites that make a month published: stopped half-way, they would leave
    files that no index describes. A block that raises is not interrupted again (its exception goes on).
    Signals reach Python's main thread only, and only it may set their handlers: in another thread, or when
    SIGINT is ignored (a background job), the block simply runs.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous in (signal.SIG_IGN, None):
        yield
        return
    arrived: list[tuple[int, FrameType | None]] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        arrived.append((signum, frame))

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if not arrived:
        return
    if previous is signal.default_int_handler:
        raise InterruptedAfterCommit()
    if callable(previous):
        previous(*arrived[0])
    else:  # SIG_DFL: end the process as the signal would have
        signal.raise_signal(signal.SIGINT)
