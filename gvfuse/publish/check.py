"""Checking a publication: every asset the STAC items name exists, with its recorded size and checksum.

:func:`verify` recomputes every local asset's size and checksum — the items'
files, and every file of the collection's ``cube`` asset (``cube.zarr``, a
folder: its files are recorded one by one in the asset's ``gvfuse:files``, so
a file changed, missing or added is found) — and checks the indexes: every
item in ``items/`` is linked from ``collection.json``, and
``catalog.yaml`` (intake) exists and its entries name files that exist and
items that are linked. Nothing outside the publication folder is read: an
item link or asset href that resolves outside it (links followed) is a
problem, never opened. Malformed JSON or YAML is a problem naming the file,
not an exception. ``gvfuse check`` (:mod:`gvfuse.cli.check`) runs it, and
optionally the offline schema validation of :mod:`gvfuse.publish.stac_validation`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import yaml

from gvfuse.errors import InputError, excerpt
from gvfuse.io.checksums import file_size_bytes, folder_files, sha256_multihash
from gvfuse.publish.cube import CUBE_DIR, FILES_KEY
from gvfuse.publish.intake import INTAKE_FILE
from gvfuse.publish.stac import COLLECTION_FILE, ITEMS_DIR, read_json_object

CATALOG_DIR_TOKEN = "{CATALOG_DIR}/"


@attrs.frozen
class Problem:
    """One thing wrong with a publication.

    ``kind``: ``missing-collection``, ``missing-item``, ``missing-file``,
    ``size``, ``checksum``, ``extra-file`` (a file in a folder asset, the
    cube, that the collection does not record), ``unrecorded`` (a cube
    whose files the collection does not record: they cannot be checked),
    ``malformed`` (JSON or YAML that does not parse,
    or has the wrong structure), ``outside`` (a link or href resolving outside
    the publication folder; not followed), ``orphan-item`` (an item in
    ``items/`` the collection does not link), ``missing-catalog``
    (``catalog.yaml``), ``catalog-entry`` (an intake entry naming a missing
    file or an item the collection does not link), ``not-in-catalog`` (a
    linked item without an intake entry) or ``schema``;
    ``expected``/``found`` give the recorded and the actual value where that
    applies.
    """

    kind: str
    path: str
    item: str = ""
    asset: str = ""
    expected: str | int | None = None
    found: str | int | None = None

    def __str__(self) -> str:
        parts = [f"{name} {value}" for name, value in (("item", self.item), ("asset", self.asset)) if value]
        where = f" ({', '.join(parts)})" if parts else ""
        values = f": expected {self.expected}, found {self.found}" if self.expected is not None else ""
        if self.expected is None and self.found is not None:
            values = f": {self.found}"
        return f"{self.kind}: {self.path}{where}{values}"


@attrs.frozen
class CheckReport:
    """The result of :func:`verify`: how many assets were checked and the problems found."""

    catalog_dir: str
    items_checked: int
    assets_checked: int
    problems: tuple[Problem, ...] = attrs.field(converter=tuple[Problem, ...])

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {"catalog_dir": self.catalog_dir, "ok": self.ok, "items_checked": self.items_checked,
                "assets_checked": self.assets_checked, "problems": [attrs.asdict(p) for p in self.problems]}


def _malformed(path: Path, exc: InputError) -> Problem:
    message = str(exc).removeprefix(f"{exc.source} [{exc.field}]: ") if exc.field else str(exc)
    return Problem("malformed", str(path), found=message)


def _local_assets(root: Path, document: Path, owner: dict[str, Any], where: dict[str, str],
                  problems: list[Problem]) -> Iterator[tuple[str, dict[str, Any], Path | None]]:
    """The local assets of an item or the collection ``owner`` (read from ``document``), as ``(key, asset,
    resolved path)``; a malformed asset or one whose href leaves the publication folder is a problem instead,
    remote assets are skipped."""
    assets = owner.get("assets", {})
    if not isinstance(assets, dict):
        problems.append(Problem("malformed", str(document), found="'assets' is not an object"))
        return
    for key, asset in sorted(assets.items()):
        if not isinstance(asset, dict):
            problems.append(Problem("malformed", str(document), found=f"asset {excerpt(key)} is not an object"))
            continue
        href = str(asset.get("href", ""))
        if "://" in href:
            continue  # remote assets are not ours to check
        path = (document.parent / href).resolve()
        if path.is_relative_to(root):
            yield key, asset, path
        else:  # counted as checked, never followed
            problems.append(Problem("outside", str(path), found=f"href {excerpt(href)} leaves the publication folder",
                                    **where, asset=key))
            yield key, asset, None


def _check_item(root: Path, item_file: Path, item: dict[str, Any], problems: list[Problem]) -> int:
    """Check one item's assets; returns how many were checked."""
    checked = 0
    where = {"item": str(item.get("id", ""))}
    for key, asset, path in _local_assets(root, item_file, item, where, problems):
        checked += 1
        if path is not None:
            _check_file(path, asset, {**where, "asset": key}, problems)
    return checked


def _check_file(path: Path, fields: dict[str, Any], where: dict[str, str], problems: list[Problem]) -> None:
    """One recorded file: it exists, with the ``file:size`` and ``file:checksum`` recorded (those that are)."""
    if not path.is_file():
        problems.append(Problem("missing-file", str(path), **where))
        return
    if "file:size" in fields and (size := file_size_bytes(path)) != fields["file:size"]:
        problems.append(Problem("size", str(path), expected=fields["file:size"], found=size, **where))
    if "file:checksum" in fields and (digest := sha256_multihash(path)) != fields["file:checksum"]:
        problems.append(Problem("checksum", str(path), expected=fields["file:checksum"], found=digest, **where))


def _check_collection_assets(root: Path, collection_file: Path, collection: dict[str, Any],
                             problems: list[Problem]) -> int:
    """The collection's own local assets (the cube); returns how many were checked.

    A file asset is checked as an item's; a folder asset (a Zarr store) file by file against its
    :data:`~gvfuse.publish.cube.FILES_KEY` record, and any file in it the record does not name is an
    ``extra-file``. A ``cube.zarr`` the collection has no asset for is ``unrecorded``.
    """
    checked = 0
    described: set[Path] = set()
    for key, asset, path in _local_assets(root, collection_file, collection, {}, problems):
        checked += 1
        if path is None:
            continue
        described.add(path)
        if path.is_dir():
            _check_folder(path, collection_file, key, asset, problems)
        else:
            _check_file(path, asset, {"asset": key}, problems)
    cube = root / CUBE_DIR
    if (cube.exists() or cube.is_symlink()) and cube.resolve() not in described:
        problems.append(Problem("unrecorded", str(cube), found="the collection has no asset for it: its files "
                                                               "cannot be checked"))
    return checked


def _check_folder(folder: Path, collection_file: Path, key: str, asset: dict[str, Any],
                  problems: list[Problem]) -> None:
    """A folder asset's files against its record: each recorded file as an asset, then the files not recorded."""
    files = asset.get(FILES_KEY)
    if files is None:
        problems.append(Problem("unrecorded", str(folder), asset=key,
                                found=f"its asset records no {FILES_KEY}: its files cannot be checked"))
        return
    if not isinstance(files, dict) or not all(isinstance(v, dict) for v in files.values()):
        problems.append(Problem("malformed", str(collection_file),
                                found=f"asset {excerpt(key)} {FILES_KEY} is not an object of objects"))
        return
    for name, fields in sorted(files.items()):
        path = (folder / name).resolve()
        if not path.is_relative_to(folder):
            problems.append(Problem("outside", str(path), asset=key,
                                    found=f"{FILES_KEY} entry {excerpt(name)} leaves {folder.name}"))
            continue
        _check_file(path, fields, {"asset": key}, problems)
    problems.extend(Problem("extra-file", str(folder / name), asset=key, found="a file the collection does not record")
                    for name in folder_files(folder) if name not in files)


def _check_catalog(root: Path, linked: set[Path], problems: list[Problem]) -> None:
    """``catalog.yaml``: present, parseable, every entry's file present, every linked item listed."""
    path = root / INTAKE_FILE
    if not path.is_file():
        problems.append(Problem("missing-catalog", str(path)))
        return
    try:
        catalog = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problems.append(Problem("malformed", str(path), found=f"not valid YAML{at}"))
        return
    entries = catalog.get("entries") if isinstance(catalog, dict) else None
    data = catalog.get("data") if isinstance(catalog, dict) else None
    if not isinstance(entries, dict) or not isinstance(data, dict):
        problems.append(Problem("malformed", str(path), found="not an intake catalog (no 'entries' and 'data')"))
        return
    aliases = catalog.get("aliases")
    named = set(aliases.values()) if isinstance(aliases, dict) else set(entries)
    listed: set[Path] = set()
    for name, entry in sorted(entries.items()):
        if name not in named:
            continue  # a step of a named entry's pipeline (one variable's reader): its data is checked below
        metadata = entry.get("metadata", {}) if isinstance(entry, dict) else None
        if not isinstance(metadata, dict):
            problems.append(Problem("malformed", str(path), found=f"entry {excerpt(str(name))} has no metadata"))
            continue
        label = f"entry {excerpt(str(name))}"
        # a month's entry names its item, the product's its items, the cube's none (its months are items too)
        items = metadata.get("stac_items", [metadata["stac_item"]] if "stac_item" in metadata else [])
        files = metadata.get("files", {})
        for key, value in [*(("stac_item", i) for i in (items if isinstance(items, list) else [items])),
                           *(("file", f) for f in _file_values(files))]:
            target = (root / str(value)).resolve()
            if not target.is_relative_to(root):
                problems.append(Problem("outside", str(target), found=f"{label} {key}"))
            elif key == "stac_item":
                listed.add(target)
                if target not in linked:
                    problems.append(Problem("catalog-entry", str(target),
                                            found=f"{label} names an item the collection does not link"))
            elif not (target.is_file() or target.is_dir()):  # a Zarr store is a folder
                problems.append(Problem("catalog-entry", str(target), found=f"{label} names a missing file"))
    for key, source in sorted(data.items()):
        url = source.get("kwargs", {}).get("url") if isinstance(source, dict) else None
        for one in url if isinstance(url, list) else [url]:
            if isinstance(one, str) and one.startswith(CATALOG_DIR_TOKEN):
                target = (root / one.removeprefix(CATALOG_DIR_TOKEN)).resolve()
                if not target.is_relative_to(root):
                    problems.append(Problem("outside", str(target), found=f"data {excerpt(str(key))} url"))
                elif not (target.is_file() or target.is_dir()):  # a Zarr store is a folder
                    problems.append(Problem("catalog-entry", str(target),
                                            found=f"data {excerpt(str(key))} names a missing file"))
    problems.extend(Problem("not-in-catalog", str(item)) for item in sorted(linked - listed))


def _file_values(files: object) -> list[str]:
    """The paths in an entry's ``files`` metadata: a mapping variable -> path, or a list of them."""
    if isinstance(files, dict):
        return [str(v) for v in files.values()]
    if isinstance(files, list):
        return [value for month in files for value in _file_values(month)]
    return []


def verify(catalog_dir: str | Path) -> CheckReport:
    """Check every local asset of every item linked from ``collection.json``, and the indexes (see the module doc)."""
    catalog_dir = Path(catalog_dir)
    root = catalog_dir.resolve()
    collection_file = catalog_dir / COLLECTION_FILE
    if not collection_file.is_file():
        return CheckReport(str(catalog_dir), 0, 0, [Problem("missing-collection", str(collection_file))])
    problems: list[Problem] = []
    try:
        collection = read_json_object(collection_file)
    except InputError as exc:
        return CheckReport(str(catalog_dir), 0, 0, [_malformed(collection_file, exc)])
    items = assets = 0
    linked: set[Path] = set()
    links = collection.get("links", [])
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict) or link.get("rel") != "item":
            continue
        href = str(link.get("href", ""))
        item_file = (root / href).resolve()
        if "://" in href or not item_file.is_relative_to(root):
            problems.append(Problem("outside", str(item_file), found=f"item link {excerpt(href)}"))
            continue
        linked.add(item_file)
        if not item_file.is_file():
            problems.append(Problem("missing-item", str(item_file)))
            continue
        try:
            item = read_json_object(item_file)
        except InputError as exc:
            problems.append(_malformed(item_file, exc))
            continue
        items += 1
        assets += _check_item(root, item_file, item, problems)
    assets += _check_collection_assets(root, collection_file, collection, problems)
    items_dir = root / ITEMS_DIR
    if items_dir.is_dir():
        problems.extend(Problem("orphan-item", str(p)) for p in sorted(items_dir.glob("*.json"))
                        if p.resolve() not in linked)
    _check_catalog(root, linked, problems)
    return CheckReport(str(catalog_dir), items, assets, problems)
