"""UAV (drone) orthomosaics: a GeoTIFF in any CRS, its acquisition time from a sidecar, a tag or the name.

Where the acquisition time comes from, first match wins:

1. **A sidecar file** beside the orthomosaic, same stem (``ortho_site3.tif`` →
   ``ortho_site3.json`` or ``ortho_site3.txt``), because the person who flew
   the survey knows best:

   * ``.json``: an object with ``"acquired_at"`` — an ISO 8601 date or date-time;
     a time without offset is UTC (``"2023-07-15"``, ``"2023-07-15T05:30:00Z"``,
     ``"2023-07-15T11:30:00+06:00"``). Optional ``"platform"`` (``"DJI M300 RTK"``),
     ``"sensor"`` and ``"site"`` strings are copied into the scene metadata
     (``site`` names the surveyed area: the pair planner pairs UAV surveys of
     the same site, :data:`gvfuse.pipeline.pairing.FOOTPRINT_KEYS`).
   * ``.txt``: the first line that is neither blank nor a ``#`` comment is the
     ISO 8601 date or date-time (same rules).

2. **A TIFF/EXIF tag**: ``DateTimeOriginal``/``EXIF_DateTimeOriginal``,
   ``ACQUISITION_DATE``/``ACQUISITIONDATETIME`` or ``TIFFTAG_DATETIME``
   (``YYYY:MM:DD HH:MM:SS``; TIFF has no time zone, so it is taken as UTC and
   the scene says ``time_source = "tag (assumed UTC)"``). Note that
   ``TIFFTAG_DATETIME`` is the file's creation time for many photogrammetry
   tools, hence it comes last among the tags.
3. **The file name**: see :func:`gvfuse.formats.geotiff.date_from_name`.

A UAV orthomosaic is recognised by a sidecar, photogrammetry software in
``TIFFTAG_SOFTWARE`` (DJI Terra, Pix4D, Agisoft Metashape, OpenDroneMap,
WebODM), a name containing ``uav``/``drone``/``dji``/``ortho``, or a pixel
size finer than :data:`UAV_MAX_PIXEL_SIZE_M`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import Path

from gvfuse.errors import MetadataError, excerpt
from gvfuse.formats.containers import is_annex_object
from gvfuse.formats.geotiff import GeoTiffHeader, date_from_name

SIDECAR_SUFFIXES = (".json", ".txt")
#: Satellite optical imagery stops at ~0.3 m; anything finer is airborne.
UAV_MAX_PIXEL_SIZE_M = 1.0
UAV_SOFTWARE = re.compile(r"dji|pix4d|agisoft|metashape|photoscan|opendronemap|odm|webodm|drone", re.I)
UAV_NAME = re.compile(r"(?<![a-z])(uav|drone|dji|ortho\w*|m300|mavic|phantom)(?![a-z])", re.I)
_DATE_LIKE = re.compile(r"^[0-9T:+\-Z. ]{1,40}$")
DATE_TAGS = ("DateTimeOriginal", "EXIF_DateTimeOriginal", "ACQUISITION_DATE", "ACQUISITIONDATETIME",
             "TIFFTAG_DATETIME")


def sidecar_for(path: Path) -> Path | None:
    """The orthomosaic's sidecar file, if one exists."""
    for suffix in SIDECAR_SUFFIXES:
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def parse_iso_time(text: str, source: object, field: str) -> dt.datetime:
    """An ISO 8601 date or date-time; naive values are UTC."""
    text = text.strip()
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        # quoted only when it looks like a date: a file that is not a sidecar must not be shown
        shown = f": {excerpt(text)}" if _DATE_LIKE.match(text) else ""
        raise MetadataError(f"not an ISO 8601 date or date-time{shown}", source=source, field=field) from None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def read_sidecar(path: Path) -> tuple[dt.datetime, dict[str, str]]:
    """Acquisition time and extra fields from a ``.json`` or ``.txt`` sidecar (format in the module doc).

    A sidecar that is a link to a file outside the orthomosaic's folder is refused, unless it is a
    git-annex object (:func:`~gvfuse.formats.containers.is_annex_object`).
    """
    if not path.resolve().is_relative_to(path.parent.resolve()) and not is_annex_object(path.resolve()):
        raise MetadataError("sidecar is a link to a file outside the orthomosaic's folder; refused", source=path,
                            field="sidecar")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MetadataError(f"cannot read sidecar: {exc}", source=path, field="acquired_at") from exc
    if path.suffix == ".json":
        try:
            content = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MetadataError(f"malformed JSON: {exc}", source=path, field="document") from exc
        except RecursionError:  # arrays or objects nested thousands deep: no sidecar is
            raise MetadataError("JSON nested too deep to be a sidecar", source=path, field="document") from None
        if not isinstance(content, dict) or not isinstance(content.get("acquired_at"), str):
            raise MetadataError('needs a string "acquired_at"', source=path, field="acquired_at")
        extra = {k: str(content[k]) for k in ("platform", "sensor", "site") if isinstance(content.get(k), str)}
        return parse_iso_time(content["acquired_at"], path, "acquired_at"), extra
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return parse_iso_time(line, path, "acquired_at"), {}
    raise MetadataError("sidecar holds no date", source=path, field="acquired_at")


def time_from_tags(tags: Mapping[str, str]) -> tuple[dt.datetime, str] | None:
    """The acquisition time from TIFF/EXIF tags (as UTC) and the tag used, or None."""
    for name in DATE_TAGS:
        value = tags.get(name)
        if not value:
            continue
        match = re.match(r"^\s*(\d{4})[:-](\d{2})[:-](\d{2})(?:[ T](\d{2}):(\d{2}):(\d{2}))?", value)
        if match is None:
            continue
        year, month, day, hour, minute, second = (int(v) if v is not None else 0 for v in match.groups())
        try:
            return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.timezone.utc), name
        except ValueError:
            continue
    return None


def acquisition_time(path: Path, header: GeoTiffHeader) -> tuple[dt.datetime, str, dict[str, str]]:
    """(time, where it came from, extra sidecar fields); a :class:`MetadataError` when nothing gives one."""
    sidecar = sidecar_for(path)
    if sidecar is not None:
        when, extra = read_sidecar(sidecar)
        return when, f"sidecar {sidecar.name}", extra
    from_tags = time_from_tags(header.tags)
    if from_tags is not None:
        return from_tags[0], f"tag {from_tags[1]} (assumed UTC)", {}
    from_name = date_from_name(path.name)
    if from_name is not None:
        return from_name, "file name", {}
    raise MetadataError("no acquisition date: add a sidecar <name>.json {\"acquired_at\": \"YYYY-MM-DD\"}, "
                        "a DateTime tag, or a YYYYMMDD date in the file name", source=path, field="acquired_at")


def looks_like_uav(path: Path, header: GeoTiffHeader | None) -> bool:
    """Cheap evidence that a GeoTIFF is a drone orthomosaic (see the module doc)."""
    if sidecar_for(path) is not None or UAV_NAME.search(path.stem.replace("_", " ").replace("-", " ")):
        return True
    if header is None:
        return False
    if UAV_SOFTWARE.search(header.tags.get("TIFFTAG_SOFTWARE", "")):
        return True
    return header.grid is not None and header.grid.crs.is_projected and max(
        header.grid.pixel_size_m) <= UAV_MAX_PIXEL_SIZE_M
