"""Product definitions: what area, grid, months and metadata a product has.

Definitions are TOML files; the bundled ones live in ``catalog/`` (the
``gvfuse_catalog`` package) and are found by id (``gangrigab-2023``), any
other by path.
"""

from __future__ import annotations

import importlib.resources
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from rasterio.warp import transform_bounds

from gvfuse.errors import ConfigError, excerpt
from gvfuse.formats.missions import KNOWN_MISSIONS
from gvfuse.model import Grid, Month, parse_crs, parse_month

LONLAT = "EPSG:4326"
#: A product id is a safe slug: it names files and STAC ids (``items/<id>-YYYYMM.json``), so it can never
#: be a path: letters, digits, ``-`` and ``_``, starting and ending with a letter or digit, at most 64 characters.
PRODUCT_ID_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62}[A-Za-z0-9])?$")


def refuse_irregular_file(path: Path) -> None:
    """A :class:`ConfigError` when a definition or run file exists but is a FIFO, socket, device or folder
    (reading a FIFO would wait for a writer for ever)."""
    if path.exists() and not path.is_file():
        raise ConfigError("is not a regular file", source=path)


def _check_id(instance: object, attribute: object, value: str) -> None:
    if not isinstance(value, str) or not PRODUCT_ID_RE.match(value):
        raise ValueError(f"product id {excerpt(str(value))} is not a safe slug (letters, digits, '-' and '_', "
                         "starting and ending with a letter or digit, at most 64 characters)")


@attrs.frozen
class Area:
    """A geographic bounding box in degrees (WGS 84)."""

    west_deg: float
    south_deg: float
    east_deg: float
    north_deg: float

    def __attrs_post_init__(self) -> None:
        if not (-180 <= self.west_deg < self.east_deg <= 180 and -90 <= self.south_deg < self.north_deg <= 90):
            raise ValueError(f"invalid area bounds {attrs.astuple(self)}")

    def bounds_in(self, crs: str) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) of the box in another CRS, densified so curved edges are covered."""
        return transform_bounds(LONLAT, crs, self.west_deg, self.south_deg, self.east_deg, self.north_deg,
                                densify_pts=101)


@attrs.frozen
class SensorInfo:
    """A sensor of the product's legend: its name (as run configurations name it) and what STAC says of it
    (``platform``/``instruments``/``constellation`` of the common metadata, lowercase)."""

    name: str
    platforms: tuple[str, ...] = attrs.field(default=(), converter=tuple[str, ...])
    instruments: tuple[str, ...] = attrs.field(default=(), converter=tuple[str, ...])
    constellation: str = ""


#: What the bundled sensor names stand for (:data:`gvfuse.formats.missions.KNOWN_MISSIONS`), used when a
#: definition lists a sensor by name alone or lists none (the legend is then the run's fused sensors).
KNOWN_SENSORS: Mapping[str, SensorInfo] = {name: SensorInfo(name, *mission)
                                           for name, mission in KNOWN_MISSIONS.items()}

#: Upper end of the quick-looks' speed colour scale when a definition does not set ``display.speed_max_m_per_day``.
DEFAULT_SPEED_MAX_M_PER_DAY = 1.0


def sensor_info(name: str) -> SensorInfo:
    """The known description of a sensor name, or the name alone."""
    return KNOWN_SENSORS.get(name, SensorInfo(name))


@attrs.frozen
class ProductDefinition:
    """One product: identity, licence, area, output grid and months."""

    id: str = attrs.field(validator=_check_id)
    title: str
    description: str
    license: str
    area: Area
    crs: str
    resolution_m: float = attrs.field(validator=attrs.validators.gt(0))
    first_month: Month = attrs.field(converter=parse_month)
    last_month: Month = attrs.field(converter=parse_month)
    keywords: tuple[str, ...] = attrs.field(default=(), converter=tuple[str, ...])
    providers: tuple[Mapping[str, Any], ...] = attrs.field(default=(), converter=tuple[Mapping[str, Any], ...])
    source: str = ""
    #: The sensor legend of every month (bit ``i`` of ``sensor_flag`` is ``sensors[i]``); empty: the run's
    #: fused sensors, sorted.
    sensors: tuple[SensorInfo, ...] = attrs.field(default=(), converter=tuple[SensorInfo, ...])
    #: Upper end of the quick-looks' speed colour scale, the same for every month so months compare by eye.
    speed_max_m_per_day: float = attrs.field(default=DEFAULT_SPEED_MAX_M_PER_DAY, validator=attrs.validators.gt(0))

    def __attrs_post_init__(self) -> None:
        if self.last_month < self.first_month:
            raise ValueError(f"last_month {self.last_month} is before first_month {self.first_month}")

    @property
    def months(self) -> tuple[Month, ...]:
        """Every month from first to last."""
        return Month.span(self.first_month, self.last_month)

    def legend(self, fused_sensors: Sequence[str] = ()) -> tuple[SensorInfo, ...]:
        """The sensor legend: the definition's sensors, else ``fused_sensors`` (the run's), described."""
        return self.sensors or tuple(sensor_info(name) for name in fused_sensors)

    def grid(self) -> Grid:
        """The product's output grid: the area's extent in ``crs``, snapped to ``resolution_m``."""
        return Grid.from_bounds(self.crs, *self.area.bounds_in(self.crs), resolution_m=self.resolution_m)


def bundled_definitions() -> dict[str, Path]:
    """Bundled product definitions by id (``<id>.toml``; ``*_run.toml`` files are run configurations)."""
    found = {}
    for entry in importlib.resources.files("gvfuse_catalog").iterdir():
        if entry.name.endswith(".toml") and not entry.name.endswith("_run.toml"):
            found[entry.name.removesuffix(".toml").replace("_", "-")] = Path(str(entry))
    return found


def load_product(id_or_path: str | Path) -> ProductDefinition:
    """A product definition by bundled id (``gangrigab-2023``) or TOML path."""
    bundled = bundled_definitions()
    path = bundled.get(str(id_or_path)) or Path(id_or_path)
    refuse_irregular_file(path)
    if not path.is_file():
        raise ConfigError(f"no such product definition; bundled ones: {', '.join(sorted(bundled))}",
                          source=id_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=path) from exc
    return product_from_dict(raw, source=path)


#: Every key a product definition may have (tables and their keys; ``providers`` is a list of STAC providers).
SCHEMA: Mapping[str, Any] = {
    "id": str, "title": str, "description": str, "license": str, "keywords": list, "providers": list,
    "area": {"west_deg": float, "south_deg": float, "east_deg": float, "north_deg": float},
    "grid": {"crs": str, "resolution_m": float},
    "time": {"first_month": str, "last_month": str},
    "sensors": list,
    "display": {"speed_max_m_per_day": float},
}
#: The keys of a STAC provider object.
PROVIDER_KEYS = ("name", "description", "roles", "url")
#: The keys of a ``[[sensors]]`` entry and their types (``name`` required).
SENSOR_KEYS: Mapping[str, type] = {"name": str, "platforms": list, "instruments": list, "constellation": str}


def _check_schema(raw: Mapping[str, Any], source: object) -> None:
    """Unknown keys (with the close match suggested), and values of the wrong type, are errors naming them."""
    from gvfuse.config import unknown_key

    for key, value in raw.items():
        expected = SCHEMA.get(key)
        if expected is None:
            raise unknown_key(key, SCHEMA, source, "")
        if isinstance(expected, Mapping):
            if not isinstance(value, Mapping):
                raise ConfigError(f"must be a table, got {excerpt(str(value))}", source=source, field=key)
            for sub, item in value.items():
                if sub not in expected:
                    raise unknown_key(sub, expected, source, key)
                kind = expected[sub]
                if isinstance(item, bool) or not isinstance(item, (int, float) if kind is float else kind):
                    raise ConfigError(f"must be {'a number' if kind is float else 'a string'}, got "
                                      f"{excerpt(str(item))}", source=source, field=f"{key}.{sub}")
        elif not isinstance(value, expected):
            raise ConfigError(f"must be {'a list' if expected is list else 'a string'}, got {excerpt(str(value))}",
                              source=source, field=key)
    for i, provider in enumerate(raw.get("providers", ())):
        if not isinstance(provider, Mapping) or "name" not in provider:
            raise ConfigError("each provider must be a table with a 'name'", source=source, field=f"providers[{i}]")
        for key in provider:
            if key not in PROVIDER_KEYS:
                raise unknown_key(key, PROVIDER_KEYS, source, f"providers[{i}]")
    names = []
    for i, sensor in enumerate(raw.get("sensors", ())):
        where = f"sensors[{i}]"
        if not isinstance(sensor, Mapping) or not isinstance(sensor.get("name"), str):
            raise ConfigError("each sensor must be a table with a 'name' string", source=source, field=where)
        for key, value in sensor.items():
            if key not in SENSOR_KEYS:
                raise unknown_key(key, SENSOR_KEYS, source, where)
            kind = SENSOR_KEYS[key]
            strings = isinstance(value, list) and all(isinstance(v, str) for v in value)
            if not isinstance(value, kind) or (kind is list and not strings):
                raise ConfigError(f"must be {'a list of strings' if kind is list else 'a string'}, got "
                                  f"{excerpt(str(value))}", source=source, field=f"{where}.{key}")
        names.append(sensor["name"])
    if len(set(names)) != len(names):
        raise ConfigError(f"sensor names repeat: {names}", source=source, field="sensors")
    if len(names) > 16:
        raise ConfigError(f"{len(names)} sensors; the sensor flag holds at most 16", source=source, field="sensors")


def _check_crs(crs: str) -> None:
    """A CRS PROJ understands, projected (the grid is in metres)."""
    from rasterio.errors import CRSError

    try:
        parsed = parse_crs(crs)
    except CRSError:
        raise ValueError(f"{excerpt(crs)} is not a coordinate reference system PROJ knows") from None
    if not parsed.is_projected:
        raise ValueError(f"{excerpt(crs)} is not a projected CRS: the grid's resolution_m is in metres")


#: Float32 bands of one month's product held at once while it is made and published.
MONTH_BANDS_IN_MEMORY = 8


def physical_memory_bytes() -> int | None:
    """This machine's memory, or None where the system does not say."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def memory_shortfall(needed_bytes: int, what: str, purpose: str) -> str | None:
    """None when ``needed_bytes`` fit in this machine's memory (or the system does not say how much it has);
    else why not: ``<what> needs about N GiB <purpose>; this machine has M GiB``.

    Work that cannot fit is refused before it starts, not minutes or hours later with an allocation error:
    a product grid (:func:`_check_grid_fits`), a band read whole (:func:`gvfuse.formats.loading.load_band`).
    """
    memory = physical_memory_bytes()
    if memory is None or needed_bytes <= memory:
        return None
    return f"{what} needs about {needed_bytes / 2**30:.0f} GiB {purpose}; this machine has {memory / 2**30:.0f} GiB"


def _check_grid_fits(definition: ProductDefinition) -> None:
    """A grid whose month does not fit in this machine's memory is refused before any work, not hours later
    with an allocation error (``resolution_m = 0.01`` for a glacier: 10^11 cells)."""
    grid = definition.grid()
    needed = grid.rows * grid.cols * 4 * MONTH_BANDS_IN_MEMORY
    problem = memory_shortfall(needed, f"a {grid.rows} x {grid.cols} grid at {definition.resolution_m:g} m",
                               "for one month's bands")
    if problem is not None:
        raise ValueError(f"{problem}: use a coarser resolution or a smaller area")


def _positive_number(value: float) -> float:
    """A finite number above zero (a resolution, a colour scale's end); else a ValueError saying so."""
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"must be a finite number above 0, got {number}")
    return number


def _sensor(entry: Mapping[str, Any]) -> SensorInfo:
    """A ``[[sensors]]`` entry; fields it leaves out come from :data:`KNOWN_SENSORS` for a known name."""
    known = sensor_info(str(entry["name"]))
    return SensorInfo(known.name, tuple(entry.get("platforms", known.platforms)),
                      tuple(entry.get("instruments", known.instruments)),
                      str(entry.get("constellation", known.constellation)))


def product_from_dict(raw: Mapping[str, Any], source: object = "<product>") -> ProductDefinition:
    """Build a definition from its parsed TOML, naming the field at fault on error."""
    _check_schema(raw, source)
    field = "?"
    try:
        field = "area"
        area = Area(**{k: float(raw["area"][k]) for k in ("west_deg", "south_deg", "east_deg", "north_deg")})
        field = "grid"
        crs, resolution = str(raw["grid"]["crs"]), raw["grid"]["resolution_m"]
        field = "grid.crs"
        _check_crs(crs)
        field = "grid.resolution_m"
        resolution_m = _positive_number(resolution)
        field = "time"
        first, last = str(raw["time"]["first_month"]), str(raw["time"]["last_month"])
        field = "time.first_month"
        first_month = parse_month(first)
        field = "time.last_month"
        last_month = parse_month(last)
        if last_month < first_month:
            raise ValueError(f"last_month {last_month} is before first_month {first_month}")
        field = "display.speed_max_m_per_day"
        speed_max = _positive_number(raw.get("display", {}).get("speed_max_m_per_day", DEFAULT_SPEED_MAX_M_PER_DAY))
        field = "id"
        _check_id(None, None, str(raw["id"]))
        texts = {}
        for field in ("title", "description", "license"):
            texts[field] = str(raw[field])
        field = ""
        definition = ProductDefinition(
            id=str(raw["id"]), title=texts["title"], description=texts["description"].strip(),
            license=texts["license"], area=area, crs=crs, resolution_m=resolution_m,
            first_month=first_month, last_month=last_month, keywords=tuple(raw.get("keywords", ())),
            providers=tuple(raw.get("providers", ())), source=str(source),
            sensors=tuple(_sensor(entry) for entry in raw.get("sensors", ())),
            speed_max_m_per_day=speed_max,
        )
        field = "grid.resolution_m"
        _check_grid_fits(definition)
        return definition
    except KeyError as exc:
        raise ConfigError(f"missing key {exc.args[0]!r}", source=source, field=field) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc), source=source, field=field) from None
