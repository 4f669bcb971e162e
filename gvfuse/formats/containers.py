"""A scene as the provider ships it: a folder, a ``.zip`` or a ``.tar``.

Nothing is extracted. Members are listed with :mod:`zipfile`/:mod:`tarfile`
(the central directory or tar headers only), small metadata members are read
into memory, and rasters are opened by GDAL through its virtual file systems
(``/vsizip/``, ``/vsitar/``), which seek inside the archive and read only the
blocks a windowed read needs.

Member names are always POSIX paths relative to the container root, including
any top-level folder the archive holds (``S2A_...SAFE/manifest.safe``).

Reads stay inside the scene: a member name that is absolute or holds ``..``
(it may come from metadata, such as an MTL band file name) is refused, and so
is a folder member that is a symbolic link resolving outside the scene folder
(:meth:`Container.member_path`), as a :class:`~gvfuse.errors.MetadataError`,
unless its target is a git-annex object (:func:`is_annex_object`): git-annex
and DataLad keep every file's content under ``.git/annex/objects`` and leave
a link in its place, so a scene fetched with them is all links out of its
folder. Such a target is only read, never written.
"""

from __future__ import annotations

import fnmatch
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import attrs

from gvfuse.errors import InputError, MetadataError, excerpt

#: Metadata members larger than this are refused: real MTL/SAFE XML is < 30 MB
#: (Sentinel-1 annotation ~2-20 MB); a bigger one is a broken or hostile file.
MAX_METADATA_BYTES = 64 * 1024 * 1024

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


def container_kind(path: Path) -> str | None:
    """``"folder"``, ``"zip"``, ``"tar"`` or None for anything else (a plain file)."""
    name = path.name.lower()
    if path.is_dir():
        return "folder"
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(TAR_SUFFIXES):
        return "tar"
    return None


def is_annex_object(target: Path) -> bool:
    """True when ``target`` (a resolved path) is a git-annex object: a regular file named by its key, alone
    in a folder of the same name, under ``annex/objects`` (``.git/annex/objects/Xx/Yy/KEY/KEY``; DataLad
    datasets are git-annex repositories). A link to any other file out of a scene stays refused.
    """
    parts = target.parts
    return (target.is_file() and target.parent.name == target.name
            and any(parts[i:i + 2] == ("annex", "objects") for i in range(len(parts) - 1)))


def _absolute(path: Path | str) -> Path:
    return Path(path).absolute()


@attrs.frozen
class Container:
    """Read access to one folder or archive, without extracting it."""

    path: Path = attrs.field(converter=_absolute)
    kind: str = attrs.field(validator=attrs.validators.in_(("folder", "zip", "tar")))

    @classmethod
    def open(cls, path: Path | str) -> Container:
        path = Path(path)
        kind = container_kind(path)
        if kind is None:
            raise InputError("not a folder, .zip or .tar", source=path)
        return cls(path, kind)

    def members(self) -> tuple[str, ...]:
        """Every file member, as POSIX paths relative to the container."""
        try:
            if self.kind == "folder":
                return tuple(sorted(p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()))
            if self.kind == "zip":
                with zipfile.ZipFile(self.path) as archive:
                    return tuple(sorted(i.filename for i in archive.infolist() if not i.is_dir()))
            with tarfile.open(self.path) as archive:
                return tuple(sorted(m.name.removeprefix("./") for m in archive.getmembers() if m.isfile()))
        except (zipfile.BadZipFile, tarfile.TarError, OSError) as exc:
            raise MetadataError(f"cannot list archive: {exc}", source=self.path, field="archive") from exc

    def find(self, pattern: str) -> list[str]:
        """Members whose path matches a glob ``pattern`` (``*`` crosses folders)."""
        return [m for m in self.members() if fnmatch.fnmatchcase(m, pattern)]

    def member_path(self, member: str) -> PurePosixPath:
        """``member`` checked to stay inside the container, as a relative path.

        Refused (:class:`MetadataError`): an empty or absolute name, a ``..``
        part or a backslash; in a folder, a member that resolves (through
        symbolic links) outside the folder, or that is not a regular file (a FIFO
        would block the reader).
        """
        relative = PurePosixPath(member)
        if (not member or "\\" in member or relative.is_absolute() or ".." in relative.parts
                or (len(member) > 1 and member[1] == ":")):
            raise MetadataError(f"file name {excerpt(member)} leaves the scene (absolute or '..'); refused",
                                source=self.path, field="member")
        if self.kind == "folder":
            root = self.path.resolve()
            target = (root / relative).resolve()
            if not target.is_relative_to(root) and not is_annex_object(target):
                raise MetadataError("is a link to a file outside the scene folder; refused",
                                    source=self.path / relative, field="member")
            if target.exists() and not target.is_file():
                raise MetadataError("is not a regular file", source=self.path / relative, field="member")
        return relative

    def read_bytes(self, member: str) -> bytes:
        """A (small, metadata) member's content; refuses members larger than ``MAX_METADATA_BYTES``."""
        relative = self.member_path(member)
        where = self.describe(member)
        try:
            if self.kind == "folder":
                file = self.path / relative
                if file.stat().st_size > MAX_METADATA_BYTES:
                    raise MetadataError("metadata file is implausibly large", source=where, field="size")
                return file.read_bytes()
            if self.kind == "zip":
                with zipfile.ZipFile(self.path) as archive:
                    if archive.getinfo(member).file_size > MAX_METADATA_BYTES:
                        raise MetadataError("metadata file is implausibly large", source=where, field="size")
                    return archive.read(member)
            with tarfile.open(self.path) as archive:
                info = archive.getmember(member) if member in archive.getnames() else archive.getmember("./" + member)
                if info.size > MAX_METADATA_BYTES:
                    raise MetadataError("metadata file is implausibly large", source=where, field="size")
                handle = archive.extractfile(info)
                if handle is None:
                    raise MetadataError("member is not a regular file", source=where, field="member")
                return handle.read()
        except (KeyError, FileNotFoundError) as exc:
            raise MetadataError("file is missing", source=where, field="member") from exc
        except (zipfile.BadZipFile, tarfile.TarError, OSError) as exc:
            raise MetadataError(f"cannot read: {exc}", source=where, field="member") from exc

    def gdal_path(self, member: str) -> str:
        """A path GDAL (rasterio) opens directly, through ``/vsizip/`` or ``/vsitar/`` for archives."""
        relative = self.member_path(member)
        if self.kind == "folder":
            return str(self.path / relative)
        prefix = "/vsizip/" if self.kind == "zip" else "/vsitar/"
        return f"{prefix}{self.path.as_posix()}/{member}"

    def describe(self, member: str) -> str:
        """How to name a member in messages: ``archive.zip!member`` or the file path."""
        if self.kind == "folder":
            return str(self.path / PurePosixPath(member))
        return f"{self.path}!{member}"
