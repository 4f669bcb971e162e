"""Atomic file writes: a temporary file beside the target, then a rename.

A reader of a published catalog never sees a half-written file under its
final name: either the old content or the new one. Rasters use the same
pattern inside :func:`gvfuse.io.raster.write_bands`. Files appear with the
mode a plain ``open()`` would give them (``0o666`` less the process umask, so
``0644`` under the usual ``022``), not the ``0600`` of a temporary file:
published products are readable by whoever may read their folder.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

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
