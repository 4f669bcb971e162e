"""Run configuration: what to process, how, and where to put it.

A run configuration is a TOML file (see ``docs/configuration.md``; the
Gangrigab 2023 one is ``catalog/gangrigab_2023_run.toml``). Paths in it are
relative to the file. Every sensor section starts from the reference method's
defaults (:data:`SENSOR_DEFAULTS`) and overrides what it names.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from gvfuse.errors import ConfigError
from gvfuse.model import Month
from gvfuse.pipeline.pairing import NetworkRules, OpticalRules, Rules, SarRules, UavRules
from gvfuse.product import ProductDefinition, load_product, refuse_irregular_file

if TYPE_CHECKING:
    from gvfuse.plugins import PluginSet, Registration

RULE_TYPES: Mapping[str, type] = {"optical": OpticalRules, "sar": SarRules, "uav": UavRules,
                                  "network": NetworkRules}

#: The tracker ``gvfuse track`` uses unless told otherwise: the reference method's optical tracker.
DEFAULT_TRACKER = "fft-phase"

#: The reference method's per-sensor settings (GUIDE section 1). ``role = "reference"``
#: marks the sensor whose velocities weight and validate the others instead of being fused.
#: How ncc tracks Sentinel-1 amplitude: Wallis pre-filter, peak correlation at the chance level of unrelated
#: textures (16 / window: 0.125 at 128 px) with SNR >= 1.5, windows >= 60 % valid, forward-backward within 0.5 px,
#: no larger-window fallback (ncc's own default since issue 15's fourth session; not measured on radar), no
#: bright-change detection (it finds clouds and fresh snow by the brightening they cause in optical images; C-band
#: radar sees through clouds and dry snow, and on a full-area pair it cost 2.5 s on one core for nothing masked).
SAR_NCC_PARAMETERS: Mapping[str, Any] = {"prefilter": "wallis", "chance_correlation_px": 16.0, "min_snr": 1.5,
                                         "min_valid_fraction": 0.6, "max_forward_backward_px": 0.5,
                                         "fallback_window_px": False, "bright_change_nmad": False}

#: The reference method's fft-phase settings (COSI-Corr's 32 x 32 window, windows >= 60 % valid, phase coherence
#: at 16 / window without the NCC gate, the forward-backward check's way back by phase correlation too), kept by the
#: optical sensors since issue 15 moved fft-phase's own defaults to real-texture ones (128 px, 40 % valid,
#: 12 / window with the gate, the way back by dense NCC, the larger-window fallback).
REFERENCE_PHASE_PARAMETERS: Mapping[str, Any] = {"window_px": 32, "min_valid_fraction": 0.6,
                                                 "chance_correlation_px": 16.0, "ncc_gate": False,
                                                 "backward_matcher": "same", "fallback_window_px": False}

#: The drone settings of the template tracker (a 32 px template at step 4, orientation correlation without a
#: pre-filter, peak correlation >= 0.2 with SNR >= 2, templates >= 60 % valid, no larger-window fallback), kept by the
#: uav sensor since issue 15 moved template's own defaults to real satellite texture (128 px, NCC, high-pass, the
#: chance level 12 / window, the fallback).
UAV_TEMPLATE_PARAMETERS: Mapping[str, Any] = {"window_px": 32, "step_px": 4, "method": "oc", "prefilter": "none",
                                              "min_peak_correlation": 0.2, "min_snr": 2.0, "max_nan_fraction": 0.4,
                                              "fallback_window_px": False, "backward_matcher": "same"}

SENSOR_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "landsat": {
        "reader": "landsat", "pairing": "optical", "role": "fuse",
        "tracker": "fft-phase", "tracker_parameters": {**REFERENCE_PHASE_PARAMETERS, "step_px": 2},
        "max_speed_m_per_day": 3.0,
    },
    "sentinel-2": {
        "reader": "sentinel-2", "pairing": "optical", "role": "fuse",
        "tracker": "fft-phase", "tracker_parameters": {**REFERENCE_PHASE_PARAMETERS, "step_px": 3},
        "max_speed_m_per_day": 3.0,
    },
    "sentinel-1": {
        "reader": "sentinel-1", "pairing": "sar", "role": "fuse",
        # SAR: the ncc settings validated on speckle (before issue 15 tuned ncc's defaults on optical texture)
        "tracker": "ncc", "tracker_parameters": {"window_px": 128, "step_px": 3, **SAR_NCC_PARAMETERS},
        "max_speed_m_per_day": 3.0,
    },
    "uav": {
        "reader": "uav", "pairing": "uav", "role": "reference",
        "tracker": "template", "tracker_parameters": {**UAV_TEMPLATE_PARAMETERS},
        "max_speed_m_per_day": 3.0, "resolution_m": 2.0,
    },
}


#: ``[sensors.NAME] stable_shift``: how a run corrects each pair's geolocation offset (see
#: :mod:`gvfuse.pipeline.stable_network`).
STABLE_SHIFT_MODES = ("network", "per-pair")

#: Default pair cache, in the run file's folder (``cache_dir`` in a run file moves it).
CACHE_FOLDER = ".gvfuse-cache"
#: The run's publishing state, a small hidden folder of the publication.
STATE_FOLDER = ".gvfuse-state"

#: Every key a run configuration may have, per table; ``None``: a table of free keys (plugin parameters,
#: validator context). Anything else is an error naming the file and the key.
SCHEMA: Mapping[str, Any] = {
    "product": str, "input_dir": str, "output_dir": str, "cache_dir": str, "months": list,
    "sensors": {"*": {"reader": str, "tracker": str, "tracker_parameters": None, "max_speed_m_per_day": float,
                      "resolution_m": float, "pairing": str, "pair_rules": dict, "role": str, "band": int,
                      "stable_shift": str}},
    "weighting": {"name": str, "parameters": None},
    "fusion": {"name": str, "parameters": None, "glacier_mask": str},
    "validation": {"validators": list, "stable_mask": str, "on_ice_mask": str, "context": None},
    "publish": {"publishers": list},
}
_TYPE_NAMES = {str: "a string", float: "a number", list: "a list", dict: "a table"}


def unknown_key(key: str, known: Iterable[str], source: object, where: str) -> ConfigError:
    """The error for a key the schema does not have, with the closest known key suggested."""
    close = difflib.get_close_matches(key, sorted(known), n=1) or sorted(k for k in known if k.startswith(key))[:1]
    hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(known))}"
    return ConfigError(f"unknown key {key!r}{hint}", source=source, field=f"{where}.{key}" if where else key)


def check_keys(raw: Mapping[str, Any], schema: Mapping[str, Any], source: object, where: str = "") -> None:
    """Every key of ``raw`` is in ``schema`` and of its type (tables recursively); else a ConfigError naming it."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"must be a table, got {raw!r}", source=source, field=where or None)
    for key, value in raw.items():
        field = f"{where}.{key}" if where else key
        expected = schema.get(key, schema.get("*", KeyError))
        if expected is KeyError:
            raise unknown_key(key, schema, source, where)
        if isinstance(expected, Mapping):
            check_keys(value, expected, source, field)
        elif expected is None or expected is dict:
            if not isinstance(value, Mapping):
                raise ConfigError(f"must be a table, got {value!r}", source=source, field=field)
        elif expected is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"must be a number > 0, got {value!r}", source=source, field=field)
        elif expected is int:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"must be an integer >= 1, got {value!r}", source=source, field=field)
        elif not isinstance(value, expected):
            raise ConfigError(f"must be {_TYPE_NAMES[expected]}, got {value!r}", source=source, field=field)
        if expected is list and not all(isinstance(v, str) for v in value):
            raise ConfigError(f"must be a list of strings, got {value!r}", source=source, field=field)


def _quoted_number(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def parameter_type_problem(value: Any, default: Any, *, switchable: bool = False) -> str | None:
    """Why ``value`` cannot stand for a plugin parameter whose default is ``default`` (None: it can).

    A boolean default wants ``true``/``false``, a whole-number default an integer, any other number a finite
    number (an integer will do). A number in quotes (``min_peak_correlation = "0.9"``) is refused whatever
    the default, since no option word is a number: it is the usual slip, and before this check it reached
    the tracking arithmetic and failed there, after the scenes were read. A string default (an option word,
    or a sentinel such as ``"auto"`` beside numbers) refuses ``true``/``false`` and otherwise leaves the
    value to the plugin, and so do defaults of other types (None, lists, tables). A ``switchable`` number
    also takes ``false`` (off).
    """
    if switchable and value is False:
        return None
    if _quoted_number(value):
        return f"must be a number, got the string {value!r} (write numbers without quotes)"
    if isinstance(default, bool) and switchable:  # a number that is off (false) by default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return f"must be a number, or false (off), got {value!r}"
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if isinstance(default, str) and isinstance(value, bool):  # an option word (or "auto"), never a switch
        if switchable:  # a number, its sentinel word, or false (off)
            return f"must be a number, {default!r} or false (off), got {value!r}"
        return f"must be a word such as {default!r}, got {value!r}"
    if isinstance(default, int | float):
        if isinstance(default, int) and (isinstance(value, bool) or not isinstance(value, int)):
            return f"must be an integer, got {value!r}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, got {value!r}"
        if not math.isfinite(value):
            return f"must be a finite number, got {value!r}"
    return None


def check_parameter_types(defaults: Mapping[str, Any], parameters: Mapping[str, Any], *, source: object,
                          where: str | None, switchable: Collection[str] = ()) -> None:
    """Each of ``parameters`` of the type of its default (:func:`parameter_type_problem`); else a ConfigError.

    The error names ``source`` and the key (``<where>.<key>``, or the key alone when ``where`` is None).
    Keys without a default are left to the plugin (it refuses unknown ones, listing the known).
    """
    for key, value in parameters.items():
        if key in defaults and (problem := parameter_type_problem(value, defaults[key],
                                                                  switchable=key in switchable)):
            raise ConfigError(problem, source=source, field=f"{where}.{key}" if where else key)


def check_window_and_step(rows: int, cols: int, window_px: int, step_px: int, *, source: object,
                          field: str | None) -> None:
    """A tracking window and step that fit a ``rows`` x ``cols`` image; else one line saying which does not.

    A window larger than the image leaves no window to match; a step larger than the image leaves one window
    per row or column, and the tiled drivers size their work by the step, so ``step_px = 100000`` asked for
    hundreds of GiB before this check.
    """
    side = min(rows, cols)
    if window_px > side:
        raise ConfigError(f"the {window_px} px window is larger than the {rows} x {cols} px image: no window fits",
                          source=source, field=field)
    if step_px > side:
        raise ConfigError(f"the {step_px} px step is larger than the {rows} x {cols} px image: at most one window "
                          "per row or column; choose a step below the image size", source=source, field=field)


def check_writable_folder(folder: Path, *, source: object, field: str | None = None) -> None:
    """``folder`` (or, when it does not exist yet, the nearest folder above it) takes new files; else one line.

    Probed by creating and removing a temporary file there (:func:`gvfuse.io.atomic.unwritable_reason`):
    a run, a ``gvfuse track`` or a ``gvfuse demo`` that found out only when writing its result had done
    all its work for nothing.
    """
    from gvfuse.io.atomic import unwritable_reason

    existing = Path(folder).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{existing} is not a folder", source=source, field=field)
    reason = unwritable_reason(existing)
    if reason is not None:
        raise ConfigError(f"cannot write into {existing} ({reason})", source=source, field=field)


def _rules(name: str, cls: type, raw: Mapping[str, Any], source: Path) -> Rules:
    """The sensor's pair rules, each key checked on its own first so that an error names it."""
    where = f"sensors.{name}.pair_rules"
    known = [a.name for a in attrs.fields(cls)]
    for key, value in raw.items():
        if key not in known:
            raise unknown_key(key, known, source, where)
        try:
            cls(**{key: value})
        except ValueError as exc:
            if key in str(exc):  # this key alone is wrong (else: only together with a default)
                raise ConfigError(str(exc), source=source, field=f"{where}.{key}") from None
    try:
        rules: Rules = cls(**raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc), source=source, field=where) from None
    return rules


@attrs.frozen
class SensorConfig:
    """How one sensor's scenes are read, paired and tracked."""

    name: str
    reader: str
    tracker: str
    tracker_parameters: Mapping[str, Any]
    rules: Rules
    max_speed_m_per_day: float = attrs.field(validator=attrs.validators.gt(0))
    role: str = attrs.field(default="fuse", validator=attrs.validators.in_(("fuse", "reference")))
    #: Pixel size of the tracking grid; ``None`` = the scenes' own resolution.
    resolution_m: float | None = None
    #: Band (1-based) of plain or drone rasters to track; ``None`` = the reader's choice.
    band: int | None = None
    #: "network": the pairs' stable-ground shifts made consistent over the sensor's date network
    #: (:mod:`gvfuse.pipeline.stable_network`); "per-pair": each pair's own correction.
    stable_shift: str = attrs.field(default="network", validator=attrs.validators.in_(STABLE_SHIFT_MODES))


@attrs.frozen
class RunConfig:
    """A whole run: the product, the inputs, the sensors, fusion, validation and output."""

    product: ProductDefinition
    input_dir: Path
    output_dir: Path
    months: tuple[Month, ...]
    sensors: Mapping[str, SensorConfig]
    weighting: str = "wls-uav"
    weighting_parameters: Mapping[str, Any] = attrs.field(factory=dict)
    #: A fusion over time (``[fusion] name``); when given it fuses every month instead of the weighting.
    fusion: str | None = None
    fusion_parameters: Mapping[str, Any] = attrs.field(factory=dict)
    #: The glaciers' extent (``[fusion] glacier_mask``): where their edges are, for the fusion's error model.
    glacier_mask: Path | None = None
    validators: tuple[str, ...] = ("stable-ground", "uav", "strain-rate")
    stable_mask: Path | None = None
    on_ice_mask: Path | None = None
    #: Further validator context entries (``[validation.context]``), as written; relative paths
    #: are taken from the configuration's folder when a validator needs them as a mask or path.
    validation_context: Mapping[str, Any] = attrs.field(factory=dict)
    publishers: tuple[str, ...] = ("stac-intake",)
    source: Path | None = None
    #: Where tracked pairs are cached (``cache_dir``); None: :data:`CACHE_FOLDER` beside the run file.
    pair_cache_dir: Path | None = None

    @property
    def cache_dir(self) -> Path:
        """The pair cache: outside the publication, so that publishing or syncing it never carries the
        pairs (most of the bytes); shared by the runs of one folder (a pair's file name is its key)."""
        return self.pair_cache_dir if self.pair_cache_dir is not None else self.base_dir / CACHE_FOLDER

    @property
    def state_dir(self) -> Path:
        """What the run knows of the months it published (their input keys): with the publication."""
        return self.output_dir / STATE_FOLDER

    @property
    def reference_sensor(self) -> str | None:
        refs = [s.name for s in self.sensors.values() if s.role == "reference"]
        return refs[0] if refs else None

    @property
    def fused_sensors(self) -> tuple[str, ...]:
        """The sensors that are fused (not the reference), sorted: the product's sensor legend."""
        return tuple(sorted(n for n, s in self.sensors.items() if s.role == "fuse"))

    @property
    def base_dir(self) -> Path:
        """The folder relative paths of the configuration are taken from."""
        return self.source.parent if self.source is not None else Path.cwd()

    def context_entries(self) -> dict[str, Any]:
        """Every configured validator context entry: the masks, then ``[validation.context]``."""
        entries: dict[str, Any] = {}
        if self.stable_mask is not None:
            entries["stable_mask"] = self.stable_mask
        if self.on_ice_mask is not None:
            entries["on_ice_mask"] = self.on_ice_mask
        return {**entries, **self.validation_context}


def _sensor(name: str, raw: Mapping[str, Any], source: Path) -> SensorConfig:
    base = dict(SENSOR_DEFAULTS.get(name, {}))
    merged = {**base, **raw}
    inherited = base.get("tracker_parameters", {})
    if "tracker" in raw and raw["tracker"] != base.get("tracker"):
        # another tracker keeps the sensor's sampling, not the settings of the tracker it replaces (which it
        # may not even have: ncc has no ncc_gate, template no min_valid_fraction)
        inherited = {k: v for k, v in inherited.items() if k in ("window_px", "step_px")}
    merged["tracker_parameters"] = {**inherited, **raw.get("tracker_parameters", {})}
    where = f"sensors.{name}"
    missing = [k for k in ("reader", "tracker", "pairing") if k not in merged]
    if missing:
        raise ConfigError(f"missing {missing} (no defaults for sensor {name!r}; known: {sorted(SENSOR_DEFAULTS)})",
                          source=source, field=where)
    pairing = merged["pairing"]
    if pairing not in RULE_TYPES:
        raise ConfigError(f"pairing must be one of {sorted(RULE_TYPES)}, got {pairing!r}", source=source,
                          field=f"{where}.pairing")
    if merged.get("role", "fuse") not in ("fuse", "reference"):
        raise ConfigError(f"role must be 'fuse' or 'reference', got {merged['role']!r}", source=source,
                          field=f"{where}.role")
    if merged.get("stable_shift", "network") not in STABLE_SHIFT_MODES:
        raise ConfigError(f"stable_shift must be one of {', '.join(repr(m) for m in STABLE_SHIFT_MODES)}, got "
                          f"{merged['stable_shift']!r}", source=source, field=f"{where}.stable_shift")
    rules = _rules(name, RULE_TYPES[pairing], merged.get("pair_rules", {}), source)
    try:
        return SensorConfig(
            name=name, reader=str(merged["reader"]), tracker=str(merged["tracker"]),
            tracker_parameters=dict(merged["tracker_parameters"]), rules=rules,
            max_speed_m_per_day=float(merged.get("max_speed_m_per_day", 3.0)), role=str(merged.get("role", "fuse")),
            resolution_m=float(merged["resolution_m"]) if merged.get("resolution_m") else None,
            band=int(merged["band"]) if "band" in merged else None,
            stable_shift=str(merged.get("stable_shift", "network")),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc), source=source, field=where) from None


def config_from_dict(raw: Mapping[str, Any], source: Path) -> RunConfig:
    """Build a run configuration from parsed TOML; relative paths are taken from ``source``'s folder."""
    here = source.parent

    def path(key: str, default: str | None = None) -> Path | None:
        value = raw.get(key, default)
        return None if value is None else (here / str(value)).resolve()

    check_keys(raw, SCHEMA, source)
    if "product" not in raw:
        raise ConfigError("missing key 'product' (a bundled product id or a product TOML path)", source=source)
    product_ref = str(raw["product"])
    product = load_product(product_ref if not product_ref.endswith(".toml") else here / product_ref)
    try:
        months = tuple(Month.parse(m) for m in raw.get("months") or product.months)
    except ValueError as exc:
        raise ConfigError(str(exc), source=source, field="months") from None
    unknown_months = sorted(str(m) for m in set(months) - set(product.months))
    if unknown_months:
        raise ConfigError(f"months {unknown_months} are outside the product's {product.first_month}.."
                          f"{product.last_month}", source=source, field="months")
    sensors_raw = raw.get("sensors")
    if not sensors_raw:
        raise ConfigError("no [sensors.*] section", source=source, field="sensors")
    sensors = {name: _sensor(name, section, source) for name, section in sorted(sensors_raw.items())}
    if sum(s.role == "reference" for s in sensors.values()) > 1:
        raise ConfigError("more than one sensor has role = 'reference'", source=source, field="sensors")
    by_reader: dict[str, list[str]] = {}
    for name, sensor in sensors.items():
        by_reader.setdefault(sensor.reader, []).append(name)
    for reader, names in by_reader.items():
        if len(names) > 1:  # scenes go to sensors by their reader: one of the sections would get none
            raise ConfigError(f"sensors {', '.join(names)} all read with reader {reader!r}: each scene goes to "
                              "one sensor by its reader, so give each sensor its own reader",
                              source=source, field=f"sensors.{names[1]}.reader")
    weighting = raw.get("weighting", {})
    fusion = raw.get("fusion", {})
    if weighting and fusion:
        raise ConfigError("give [fusion] (fusion over time) or [weighting] (month by month), not both",
                          source=source, field="fusion")
    if fusion and not fusion.get("name"):
        raise ConfigError("missing key 'name'", source=source, field="fusion")
    validation = raw.get("validation", {})
    return RunConfig(
        product=product,
        input_dir=path("input_dir", "scenes"),  # type: ignore[arg-type]
        output_dir=path("output_dir", "output"),  # type: ignore[arg-type]
        months=months,
        sensors=sensors,
        weighting=str(weighting.get("name", "wls-uav")),
        weighting_parameters=dict(weighting.get("parameters", {})),
        fusion=str(fusion["name"]) if fusion else None,
        fusion_parameters=dict(fusion.get("parameters", {})),
        glacier_mask=(here / fusion["glacier_mask"]).resolve() if fusion.get("glacier_mask") else None,
        validators=tuple(validation.get("validators", ("stable-ground", "uav", "strain-rate"))),
        stable_mask=(here / validation["stable_mask"]).resolve() if validation.get("stable_mask") else None,
        on_ice_mask=(here / validation["on_ice_mask"]).resolve() if validation.get("on_ice_mask") else None,
        validation_context=dict(validation.get("context", {})),
        publishers=tuple(raw.get("publish", {}).get("publishers", ("stac-intake",))),
        source=source,
        pair_cache_dir=path("cache_dir"),
    )


def check_components(config: RunConfig, plugins: PluginSet) -> None:
    """Every plugin the configuration names is registered, and takes the parameters it is given.

    Readers, trackers (constructed with the sensor's ``tracker_parameters``, which they check against
    their ``defaults``), the weighting or fusion (constructed with its ``parameters``), validators and
    publishers: a :class:`ConfigError` naming the file and the key otherwise. Cheap: nothing is read.
    """
    from gvfuse.errors import InputError, UnknownComponentError
    from gvfuse.interfaces import Tracker
    from gvfuse.pipeline.pair import make_tracker
    from gvfuse.plugins import plugin_errors

    def registered(kind: str, name: str, field: str) -> Registration:
        try:
            return plugins.get(kind, name)
        except UnknownComponentError as exc:
            raise ConfigError(str(exc), source=config.source, field=field) from None

    def constructed(registration: Registration, parameters: Mapping[str, Any], field: str) -> None:
        with plugin_errors(registration.plugin.name, f"{registration.kind[:-1]} {registration.name!r}"):
            try:
                registration.cls(**parameters)
            except (TypeError, ValueError, InputError) as exc:
                raise ConfigError(str(exc), source=config.source, field=field) from None

    for name, sensor in config.sensors.items():
        reader = registered("readers", sensor.reader, f"sensors.{name}.reader")
        if sensor.band is not None and not getattr(reader.cls, "band_selectable", False):
            raise ConfigError(f"the {sensor.reader} reader reads its sensor's own tracking band; a band is chosen "
                              "only for plain GeoTIFFs and drone orthomosaics", source=config.source,
                              field=f"sensors.{name}.band")
        tracker = registered("trackers", sensor.tracker, f"sensors.{name}.tracker")
        assert issubclass(tracker.cls, Tracker)  # checked when the plugin registered it
        check_parameter_types(tracker.cls.defaults, sensor.tracker_parameters, source=config.source,
                              where=f"sensors.{name}.tracker_parameters", switchable=tracker.cls.switchable)
        try:
            make_tracker(tracker, sensor.tracker_parameters)
        except InputError as exc:
            raise ConfigError(str(exc).removeprefix(f"tracker {tracker.name!r}: "), source=config.source,
                              field=f"sensors.{name}.tracker_parameters") from None
    if config.fusion is not None:
        constructed(registered("fusions", config.fusion, "fusion.name"), config.fusion_parameters,
                    "fusion.parameters")
    else:
        constructed(registered("weightings", config.weighting, "weighting.name"), config.weighting_parameters,
                    "weighting.parameters")
    for name in config.validators:
        registered("validators", name, "validation.validators")
    for name in config.publishers:
        registered("publishers", name, "publish.publishers")


def load_config(path: str | Path, plugins: PluginSet | None) -> RunConfig:
    """Read a run configuration TOML file.

    With a plugin set, the ``gvfuse_configure`` hook sees (and may amend) the
    parsed file before it is interpreted, and every plugin it names is
    checked against the registry (:func:`check_components`); ``None`` reads
    the file as it is. Either way the file is checked against :data:`SCHEMA`
    (unknown keys, types, ranges) before anything else happens.
    """
    path = Path(path)
    refuse_irregular_file(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("no such configuration file", source=path) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=path) from None
    if plugins is None:
        return config_from_dict(raw, path.resolve())
    plugins.notify("gvfuse_configure", config=raw, source=path.resolve())
    config = config_from_dict(raw, path.resolve())
    check_components(config, plugins)
    return config
