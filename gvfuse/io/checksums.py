"""File checksums as the STAC file extension writes them (``file:checksum``, ``file:size``).

``file:checksum`` is a self-describing multihash in hex: the multihash code of
the algorithm (``0x12`` for SHA2-256), the digest length in bytes (``0x20``),
then the digest; so a SHA2-256 checksum always starts with ``1220``. A folder
asset (a Zarr store) is recorded file by file (:func:`folder_fields`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

#: Multihash prefix of a SHA2-256 digest: function code 0x12, length 0x20 (32 bytes).
SHA2_256_PREFIX = "1220"
_CHUNK_BYTES = 1 << 20


def sha256_multihash(path: str | os.PathLike[str]) -> str:
    """The SHA2-256 multihash (hex) of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            digest.update(chunk)
    return SHA2_256_PREFIX + digest.hexdigest()


def file_size_bytes(path: str | os.PathLike[str]) -> int:
    """The size of a file in bytes."""
    return Path(path).stat().st_size


def file_fields(path: str | os.PathLike[str]) -> dict[str, str | int]:
    """``{"file:checksum": ..., "file:size": ...}`` for one asset file."""
    return {"file:checksum": sha256_multihash(path), "file:size": file_size_bytes(path)}


def folder_files(folder: str | os.PathLike[str]) -> list[str]:
    """Every file under ``folder`` (links too, never followed), as sorted POSIX paths relative to it."""
    root = Path(folder)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_symlink() or not p.is_dir())


def folder_fields(folder: str | os.PathLike[str]) -> dict[str, dict[str, str | int]]:
    """:func:`file_fields` of every file under ``folder``, keyed by its path relative to it (sorted)."""
    return {name: file_fields(Path(folder) / name) for name in folder_files(folder)}
