"""Scanning a download folder (``gvfuse scan``): what is in it, which reader takes each scene, and what was skipped.

The walk treats a folder that a reader detects (a ``.SAFE`` folder, a Landsat
scene folder) as *one* scene and never descends into it; every other folder is
walked. Each path goes to the detecting reader with the highest ``priority``
class attribute (absent = 0; ties broken by name), see :func:`choose_reader`.
Only metadata is read, never pixels.

Only regular files and folders are offered to the readers: a FIFO, socket or
device (which would block or never end when read) is skipped as ``not a
regular file``. Files are skipped with a reason: ``unrecognised`` (no reader detects them),
``unreadable folder`` (a subfolder that cannot be listed, for want of read
permission: reported, the rest is scanned; the scan root itself unreadable is
an :class:`~gvfuse.errors.InputError`), ``duplicate`` (another copy of the same acquisition is kept, see
:func:`gvfuse.pipeline.pairing.deduplicate`), ``malformed metadata`` (the reader's :class:`~gvfuse.errors.MetadataError`
message, naming file and field), ``outside the product area`` (reported, not
loaded) or ``reader failed`` (an unexpected error, named with the reader).
Companion files of a found scene (``<stem>.json``/``.txt`` sidecars,
``.aux.xml``, ``.ovr``) are not reported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from gvfuse.errors import GvfuseError, InputError, MetadataError
from gvfuse.interfaces import Reader
from gvfuse.model import Scene
from gvfuse.pipeline.pairing import deduplicate
from gvfuse.product import ProductDefinition

SKIP_UNRECOGNISED = "unrecognised"
SKIP_MALFORMED = "malformed metadata"
SKIP_OUTSIDE = "outside the product area"
SKIP_FAILED = "reader failed"
SKIP_SPECIAL = "not a regular file"
SKIP_DUPLICATE = "duplicate"
SKIP_UNREADABLE = "unreadable folder"


def is_regular(path: Path) -> bool:
    """True for a regular file or a folder (after links): the only paths a reader is offered."""
    return path.is_file() or path.is_dir()


@attrs.frozen
class FoundScene:
    """One scene a reader recognised and opened."""

    path: str
    reader: str
    sensor: str
    platform: str
    scene_id: str
    acquired_at: dt.datetime
    cloud_cover_percent: float | None
    crs: str | None
    resolution_m: float | None
    footprint_lonlat_bounds: tuple[float, float, float, float] | None
    overlap_fraction: float | None  # share of the product area the footprint covers; None without product/footprint
    #: The opened scene itself, for the stages that go on to load it (not part of the report).
    scene: Scene | None = attrs.field(default=None, eq=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = attrs.asdict(self, filter=lambda a, _: a.name != "scene")
        out["acquired_at"] = self.acquired_at.isoformat().replace("+00:00", "Z")
        out["footprint_lonlat_bounds"] = list(self.footprint_lonlat_bounds) if self.footprint_lonlat_bounds else None
        return out


@attrs.frozen
class SkippedFile:
    """A path no scene came from, and why."""

    path: str
    reason: str
    message: str = ""
    reader: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class ScanReport:
    """Everything ``scan`` found and skipped under ``directory``."""

    directory: str
    product: str | None
    scenes: tuple[FoundScene, ...] = attrs.field(converter=tuple[FoundScene, ...])
    skipped: tuple[SkippedFile, ...] = attrs.field(converter=tuple[SkippedFile, ...])

    def to_dict(self) -> dict[str, Any]:
        return {"directory": self.directory, "product": self.product,
                "scenes": [s.to_dict() for s in self.scenes], "skipped": [s.to_dict() for s in self.skipped]}


def choose_reader(path: Path, readers: Iterable[type[Reader]]) -> type[Reader] | None:
    """The detecting reader with the highest ``priority`` (then the first name), or None.

    A ``detect`` that raises counts as "not detected": detection must never stop a scan.
    Anything but a regular file or a folder (a FIFO, a socket, a device) is never offered.
    """
    if not is_regular(Path(path)):
        return None
    for cls in sorted(readers, key=lambda c: (-int(getattr(c, "priority", 0)), c.name)):
        try:
            if cls.detect(path):
                return cls
        except Exception:
            continue
    return None


def _box_overlap_fraction(footprint: Sequence[float], area: Sequence[float]) -> float:
    """Share of ``area`` (w, s, e, n degrees) covered by ``footprint`` (w, s, e, n)."""
    width = min(footprint[2], area[2]) - max(footprint[0], area[0])
    height = min(footprint[3], area[3]) - max(footprint[1], area[1])
    if width <= 0 or height <= 0:
        return 0.0
    return (width * height) / ((area[2] - area[0]) * (area[3] - area[1]))


def _footprint(scene: Scene) -> tuple[float, float, float, float] | None:
    bounds = scene.metadata.get("footprint_lonlat_bounds")
    if bounds:
        return tuple(float(v) for v in bounds)  # type: ignore[return-value]
    if scene.grid is not None:
        from gvfuse.formats.geotiff import lonlat_bounds

        return lonlat_bounds(scene.grid)
    return None


def _found(scene: Scene, product: ProductDefinition | None) -> FoundScene:
    footprint = _footprint(scene)
    overlap = None
    if product is not None and footprint is not None:
        a = product.area
        overlap = _box_overlap_fraction(footprint, (a.west_deg, a.south_deg, a.east_deg, a.north_deg))
    resolution = scene.metadata.get("resolution_m")
    if resolution is None and scene.grid is not None:
        resolution = scene.grid.pixel_size_m[0]
    crs = scene.metadata.get("crs")
    if crs is None and scene.grid is not None:
        crs = f"EPSG:{scene.grid.crs.to_epsg()}"
    return FoundScene(
        path=str(scene.path), reader=scene.reader, sensor=scene.sensor, platform=scene.platform,
        scene_id=scene.scene_id, acquired_at=scene.acquired_at, cloud_cover_percent=scene.cloud_cover_percent,
        crs=crs, resolution_m=float(resolution) if resolution is not None else None,
        footprint_lonlat_bounds=footprint, overlap_fraction=overlap, scene=scene,
    )


COMPANION_SUFFIXES = (".json", ".txt", ".aux.xml", ".ovr", ".tfw", ".prj", ".xml")


def _is_companion(path: Path, scene_paths: set[Path]) -> bool:
    for scene_path in scene_paths:
        if scene_path.parent == path.parent and path != scene_path:
            stem, name = scene_path.stem, path.name
            if any(name in (f"{stem}{s}", f"{scene_path.name}{s}") for s in COMPANION_SUFFIXES):
                return True
    return False


def scan(
    directory: Path | str, readers: Iterable[type[Reader]], product: ProductDefinition | None = None
) -> ScanReport:
    """Walk ``directory``: open every detected scene's metadata, report the rest as skipped.

    Scenes whose footprint misses the product area (when ``product`` is given)
    are reported as skipped ``outside the product area`` and never loaded.
    Results are sorted by acquisition time, then path.
    """
    root = Path(directory)
    if not root.is_dir():
        raise InputError("does not exist" if not root.exists() else "is not a folder", source=root)
    readers = tuple(readers)
    found: list[FoundScene] = []
    skipped: list[SkippedFile] = []
    unrecognised: list[Path] = []
    scene_paths: set[Path] = set()

    def visit(path: Path) -> None:
        if not is_regular(path):
            if path.exists():  # a FIFO, socket or device; a dangling link is not worth a line
                skipped.append(SkippedFile(str(path), SKIP_SPECIAL, "a FIFO, socket or device is never read"))
            return
        reader_cls = choose_reader(path, readers)
        if reader_cls is None:
            if path.is_dir() and not path.is_symlink():
                try:
                    children = sorted(path.iterdir())
                except OSError as exc:  # no read permission, a vanished mount: say so, scan the rest
                    skipped.append(SkippedFile(str(path), SKIP_UNREADABLE, f"cannot be listed ({exc.strerror or exc}); "
                                               "any scene in it is left out"))
                    return
                for child in children:
                    if not child.name.startswith("."):
                        visit(child)
            elif path.is_file():
                unrecognised.append(path)
            return
        try:
            scene = reader_cls().open(path)
        except MetadataError as exc:
            skipped.append(SkippedFile(str(path), SKIP_MALFORMED, str(exc), reader_cls.name))
            return
        except GvfuseError as exc:
            skipped.append(SkippedFile(str(path), SKIP_MALFORMED, str(exc), reader_cls.name))
            return
        except Exception as exc:
            skipped.append(SkippedFile(str(path), SKIP_FAILED, f"{type(exc).__name__}: {exc}", reader_cls.name))
            return
        scene_paths.add(path)
        entry = _found(scene, product)
        if entry.overlap_fraction == 0.0:
            skipped.append(SkippedFile(str(path), SKIP_OUTSIDE,
                                       f"{entry.scene_id}: footprint {entry.footprint_lonlat_bounds} misses the "
                                       f"area of {product.id if product else '?'}", reader_cls.name))
            return
        found.append(entry)

    try:
        children = sorted(root.iterdir())
    except OSError as exc:
        raise InputError(f"cannot be listed: {exc.strerror}", source=root) from exc
    for child in children:
        if not child.name.startswith("."):
            visit(child)
    skipped.extend(SkippedFile(str(p), SKIP_UNRECOGNISED, "no reader recognises this file")
                   for p in unrecognised if not _is_companion(p, scene_paths))
    found, duplicates = _without_duplicates(found)
    skipped.extend(duplicates)
    return ScanReport(
        directory=str(root), product=product.id if product else None,
        scenes=sorted(found, key=lambda s: (s.acquired_at, s.path)),
        skipped=sorted(skipped, key=lambda s: s.path),
    )


def _without_duplicates(found: list[FoundScene]) -> tuple[list[FoundScene], list[SkippedFile]]:
    """One scene per acquisition (:func:`gvfuse.pipeline.pairing.deduplicate`); the other copies skipped, with why."""
    entries = {id(f.scene): f for f in found if f.scene is not None}
    _kept, duplicates = deduplicate(f.scene for f in found if f.scene is not None)
    dropped = {id(d.dropped): d for d in duplicates}
    skipped = [SkippedFile(f.path, SKIP_DUPLICATE, dropped[key].reason, f.reader)
               for key, f in entries.items() if key in dropped]
    return [f for f in found if id(f.scene) not in dropped], skipped


def format_report(report: ScanReport) -> str:
    """A human-readable summary, one line per scene and per skipped file."""
    lines = [f"{len(report.scenes)} scene(s) in {report.directory}"
             + (f" (product {report.product})" if report.product else "")]
    for s in report.scenes:
        cloud = f"{s.cloud_cover_percent:5.1f}%" if s.cloud_cover_percent is not None else "    -"
        overlap = f" overlap {s.overlap_fraction:.1%}" if s.overlap_fraction is not None else ""
        res = f"{s.resolution_m:g} m" if s.resolution_m is not None else "-"
        lines.append(f"  {s.acquired_at:%Y-%m-%d %H:%M} {s.sensor:<10} {s.platform:<13} cloud {cloud} "
                     f"{s.crs or 'radar geometry'} {res}{overlap}  {s.scene_id}")
    if report.skipped:
        lines.append(f"{len(report.skipped)} skipped:")
        lines += [f"  {k.path}: {k.reason}" + (f" - {k.message}" if k.message and k.reason != SKIP_UNRECOGNISED else "")
                  for k in report.skipped]
    return "\n".join(lines)


__all__ = ["FoundScene", "ScanReport", "SkippedFile", "choose_reader", "format_report", "is_regular", "scan"]
