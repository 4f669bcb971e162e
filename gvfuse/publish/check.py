"""Checking a publication: every asset the STAC items name exists, with its recorded size and checksum.

:func:`verify` recomputes every local asset's size and checksum; ``gvfuse
check`` (:mod:`gvfuse.cli.check`) runs it, and optionally the offline schema
validation of :mod:`gvfuse.publish.stac_validation`.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from gvfuse.io.checksums import file_size_bytes, sha256_multihash
from gvfuse.publish.stac import COLLECTION_FILE, read_items


@attrs.frozen
class Problem:
    """One thing wrong with a publication.

    ``kind``: ``missing-collection``, ``missing-item``, ``missing-file``,
    ``size``, ``checksum`` or ``schema``; ``expected``/``found`` give the
    recorded and the actual value where that applies.
    """

    kind: str
    path: str
    item: str = ""
    asset: str = ""
    expected: str | int | None = None
    found: str | int | None = None

    def __str__(self) -> str:
        where = f" (item {self.item}, asset {self.asset})" if self.item else ""
        values = f": expected {self.expected}, found {self.found}" if self.expected is not None else ""
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


def verify(catalog_dir: str | Path) -> CheckReport:
    """Recompute the checksum and size of every local asset of every item linked from ``collection.json``."""
    catalog_dir = Path(catalog_dir)
    if not (catalog_dir / COLLECTION_FILE).is_file():
        return CheckReport(str(catalog_dir), 0, 0, [Problem("missing-collection", str(catalog_dir / COLLECTION_FILE))])
    problems: list[Problem] = []
    items = assets = 0
    for item_file, item in read_items(catalog_dir):
        if not item:
            problems.append(Problem("missing-item", str(item_file)))
            continue
        items += 1
        for key, asset in sorted(item.get("assets", {}).items()):
            href = str(asset.get("href", ""))
            if "://" in href:
                continue  # remote assets are not ours to check
            path = (item_file.parent / href).resolve()
            assets += 1
            where = {"item": str(item.get("id", "")), "asset": key}
            if not path.is_file():
                problems.append(Problem("missing-file", str(path), **where))
                continue
            if "file:size" in asset and (size := file_size_bytes(path)) != asset["file:size"]:
                problems.append(Problem("size", str(path), expected=asset["file:size"], found=size, **where))
            if "file:checksum" in asset and (digest := sha256_multihash(path)) != asset["file:checksum"]:
                problems.append(Problem("checksum", str(path), expected=asset["file:checksum"], found=digest,
                                        **where))
    return CheckReport(str(catalog_dir), items, assets, problems)
