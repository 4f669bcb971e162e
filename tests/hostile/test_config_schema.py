"""Case 3: a misconfiguration is one line and exit status 1 before any work, never a product missing a sensor.

The run configuration and the product definition have a strict schema: unknown (misspelled) keys are errors
naming the file and the key, with the close match suggested; types and ranges are checked; every plugin
name, and each tracker's parameters, are resolved against the registry. ``gvfuse pairs``, ``gvfuse run
--dry-run`` and ``gvfuse run`` all stop there. Scenes of a sensor without a section are listed, not ignored.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gvfuse.cli import main
from gvfuse.config import SCHEMA, config_from_dict
from gvfuse.errors import ConfigError
from gvfuse.product import product_from_dict
from tests.helpers.scenes import make_landsat_folder

GOOD = '''product = "gangrigab-2023"
input_dir = "scenes"
output_dir = "out"
months = ["2023-01"]
[sensors.landsat]
tracker = "fft-phase"
tracker_parameters = { window_px = 32, step_px = 2 }
pair_rules = { max_pairs_per_month = 2 }
[sensors.sentinel-1]
pair_rules = { baselines_days = [24, 36] }
[weighting]
name = "inverse-variance"
[validation]
validators = ["stable-ground"]
stable_mask = "masks/stable.gpkg"
[publish]
publishers = ["stac-intake"]
'''

#: (what the file says instead, the field the error names, words of the message)
BAD = [
    ('output_dir = "out"', 'outptu_dir = "out"', "outptu_dir", "did you mean 'output_dir'"),
    ('tracker = "fft-phase"', 'trackr = "fft-phase"', "sensors.landsat.trackr", "did you mean 'tracker'"),
    ('stable_mask = "masks/stable.gpkg"', 'stable_msk = "masks/stable.gpkg"', "validation.stable_msk",
     "did you mean 'stable_mask'"),
    ('[publish]', '[publsh]', "publsh", "did you mean 'publish'"),
    ("window_px = 32,", "window_px = -32,", "sensors.landsat.tracker_parameters", "'window_px' must be >= 4"),
    ("step_px = 2 }", "step_px = 0 }", "sensors.landsat.tracker_parameters", "'step_px' must be >= 1"),
    ("window_px = 32,", 'window_px = "32",', "sensors.landsat.tracker_parameters.window_px", "must be a number"),
    ("window_px = 32,", "window_px = 32.5,", "sensors.landsat.tracker_parameters.window_px", "must be an integer"),
    ("window_px = 32,", 'window_px = 32, min_peak_correlation = "0.9",',
     "sensors.landsat.tracker_parameters.min_peak_correlation", "must be a number, got the string '0.9'"),
    ("window_px = 32,", "window_px = 32, min_snr = true,", "sensors.landsat.tracker_parameters.min_snr",
     "must be a number, got True"),
    ("window_px = 32,", "window_px = 32, min_snr = false,", "sensors.landsat.tracker_parameters.min_snr",
     "must be a number, got False"),  # false switches off only what the tracker says it can
    ("window_px = 32,", "window_px = 32, max_forward_backward_px = true,",
     "sensors.landsat.tracker_parameters.max_forward_backward_px", "must be a number, got True"),
    ("window_px = 32,", "window_px = 32, correct_stable_ground = 1,",
     "sensors.landsat.tracker_parameters.correct_stable_ground", "must be true or false"),
    ("window_px = 32,", "window_px = 32, median_test_epsilon_px = nan,",
     "sensors.landsat.tracker_parameters.median_test_epsilon_px", "must be a finite number"),
    ('[weighting]', '[sensors.landsat-9]\nreader = "landsat"\npairing = "optical"\ntracker = "ncc"\n[weighting]',
     "sensors.landsat-9.reader", "all read with reader 'landsat'"),
    ("window_px = 32,", "window_px = 32, windw_px = 16,", "sensors.landsat.tracker_parameters", "no parameter"),
    ('tracker = "fft-phase"', 'tracker = "nosuch"', "sensors.landsat.tracker", "no tracker named 'nosuch'"),
    ('[sensors.landsat]', '[sensors.landsat]\nreader = "nosuch"', "sensors.landsat.reader", "no reader named"),
    ('name = "inverse-variance"', 'name = "nosuch"', "weighting.name", "no weighting named 'nosuch'"),
    ('name = "inverse-variance"', 'name = "wls-uav"\nparameters = { fallbak = "equal" }', "weighting.parameters",
     "fallbak"),
    ('validators = ["stable-ground"]', 'validators = ["nosuch"]', "validation.validators", "no validator named"),
    ('publishers = ["stac-intake"]', 'publishers = ["nosuch"]', "publish.publishers", "no publisher named"),
    ('[sensors.landsat]\n', 'sensors = "landsat"\n[sensors.landsat]\n', None, "TOML"),  # a key defined twice
    ('[weighting]', 'sensors = "landsat"\n[weighting]', None, ""),
    ('tracker_parameters = { window_px = 32, step_px = 2 }', 'tracker_parameters = "big"',
     "sensors.landsat.tracker_parameters", "must be a table"),
    ("baselines_days = [24, 36]", 'baselines_days = "24"', "sensors.sentinel-1.pair_rules.baselines_days",
     "list of positive numbers"),
    ("max_pairs_per_month = 2", "max_pairs_per_month = -1", "sensors.landsat.pair_rules.max_pairs_per_month",
     "must be an integer >= 1"),
    ("max_pairs_per_month = 2", "max_cloud_cover_percent = 160", "sensors.landsat.pair_rules.max_cloud_cover_percent",
     "within 0..100"),
    ("max_pairs_per_month = 2", "min_dt_days = 40, max_dt_days = 20", "sensors.landsat.pair_rules",
     "min_dt_days (40) is above max_dt_days (20)"),
    ('[sensors.landsat]\n', '[sensors.landsat]\nmax_speed_m_per_day = "fast"\n', "sensors.landsat.max_speed_m_per_day",
     "must be a number > 0"),
    ('months = ["2023-01"]', 'months = "2023-01"', "months", "must be a list"),
    ('[sensors.landsat]\n', '[sensors.landsat]\nrole = "boss"\n', "sensors.landsat.role", "'fuse' or 'reference'"),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("schema")
    (root / "scenes").mkdir()
    (root / "run.toml").write_text(GOOD)
    return root


def _one_line_error(args: list[str], field: str | None, words: str, file: str = "bad.toml") -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gvfuse: error: "), result.output
    assert file in lines[0] and words in lines[0], lines[0]
    if field is not None:
        assert f"[{field}]" in lines[0], lines[0]
    return lines[0]


def test_the_good_configuration_plans(folder):
    result = CliRunner().invoke(main, ["pairs", str(folder / "run.toml")])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("old", "new", "field", "words"), BAD, ids=[b[1].splitlines()[-1][:40] for b in BAD])
@pytest.mark.parametrize("command", [["pairs"], ["run", "--dry-run"], ["run", "--workers", "0"]],
                         ids=["pairs", "dry-run", "run"])
def test_a_misconfiguration_is_one_line_naming_file_and_key_before_any_work(folder, command, old, new, field, words):
    assert old in GOOD
    bad = folder / "bad.toml"
    bad.write_text(GOOD.replace(old, new, 1))
    _one_line_error([*command, str(bad)], field, words)
    assert not (folder / "out").exists()  # nothing tracked, nothing published


def test_a_product_definition_has_a_strict_schema_too(folder):
    product = folder / "product.toml"
    good = ('id = "p"\ntitle = "t"\ndescription = "d"\nlicense = "CC0-1.0"\n[area]\nwest_deg = 96.4\n'
            'south_deg = 29.1\neast_deg = 96.5\nnorth_deg = 29.2\n[grid]\ncrs = "EPSG:32647"\nresolution_m = 30\n'
            '[time]\nfirst_month = "2023-01"\nlast_month = "2023-02"\n')
    bad = folder / "bad.toml"
    for old, new, field, words in (
            ("resolution_m = 30", "resolutoin_m = 30", "grid.resolutoin_m", "did you mean 'resolution_m'"),
            ('license = "CC0-1.0"', 'licence = "CC0-1.0"', "licence", "did you mean 'license'"),
            ('crs = "EPSG:32647"', 'crs = "EPSG:999999"', "grid.crs", "not a coordinate reference system"),
            ('crs = "EPSG:32647"', 'crs = "EPSG:4326"', "grid.crs", "not a projected CRS"),
            ("west_deg = 96.4", 'west_deg = "96.4"', "area.west_deg", "must be a number"),
            ("resolution_m = 30", "resolution_m = 0", "grid.resolution_m", "must be a finite number above 0, got 0"),
            ("resolution_m = 30", "resolution_m = nan", "grid.resolution_m", "must be a finite number above 0"),
            ('last_month = "2023-02"', 'last_month = "2023-13"', "time.last_month", "a month is written YYYY-MM"),
            ('first_month = "2023-01"', 'first_month = "2023-05"', "time.last_month",
             "last_month 2023-02 is before first_month 2023-05"),
            ('last_month = "2023-02"\n', 'last_month = "2023-02"\n[display]\nspeed_max_m_per_day = nan\n',
             "display.speed_max_m_per_day", "must be a finite number above 0, got nan"),
    ):
        assert old in good
        product.write_text(good.replace(old, new))
        bad.write_text(GOOD.replace('product = "gangrigab-2023"', 'product = "product.toml"'))
        line = _one_line_error(["pairs", str(bad)], None, words, file="product.toml")
        assert f"product.toml [{field}]" in line, line


def test_scenes_of_a_sensor_without_a_section_are_listed_with_the_reason(tmp_path):
    make_landsat_folder(tmp_path / "scenes")
    (tmp_path / "run.toml").write_text('product = "gangrigab-2023"\nmonths = ["2023-01"]\n[sensors.uav]\n')
    result = CliRunner().invoke(main, ["pairs", str(tmp_path / "run.toml")])
    assert result.exit_code == 0, result.output
    assert re.search(r"LC09_\w+: left out - sensor 'landsat' is not configured", result.output), result.output


# --------------------------------------------------------------------------- any unknown key, at any level

_name = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


def _tables(schema: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], frozenset[str]]]:
    """Every table of the schema where a key could be misspelled, with the keys it knows."""
    out = [(path, frozenset(k for k in schema if k != "*"))]
    for key, value in schema.items():
        if isinstance(value, dict):
            out += _tables(value, (*path, "landsat" if key == "*" else key))
    return out


RUN_TABLES = [t for t in _tables(SCHEMA) if t[0] != ("sensors",)] + [
    (("sensors", "landsat", "pair_rules"), frozenset({"max_cloud_cover_percent", "edge_window_days",
                                                      "widen_step_days", "max_widen_days", "min_dt_days",
                                                      "max_dt_days", "max_pairs_per_month"}))]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=st.sampled_from(RUN_TABLES), key=_name)
def test_any_unknown_key_at_any_level_of_a_run_configuration_is_refused_naming_it(tmp_path, table, key):
    path, known = table
    if key in known:
        return
    raw = tomllib.loads(GOOD)
    node = raw
    for part in path:
        node = node.setdefault(part, {})
    node[key] = 1
    with pytest.raises(ConfigError, match=re.escape(f"[{'.'.join((*path, key))}]: unknown key {key!r}")):
        config_from_dict(raw, tmp_path / "run.toml")


PRODUCT = {"id": "p", "title": "t", "description": "d", "license": "CC0-1.0",
           "area": {"west_deg": 96.4, "south_deg": 29.1, "east_deg": 96.5, "north_deg": 29.2},
           "grid": {"crs": "EPSG:32647", "resolution_m": 30.0},
           "time": {"first_month": "2023-01", "last_month": "2023-02"}}


@pytest.mark.parametrize(("table", "key", "value", "words"), [
    ("grid", "resolution_m", 0, "must be a finite number above 0"),
    ("grid", "resolution_m", -30.0, "must be a finite number above 0"),
    ("grid", "resolution_m", float("nan"), "must be a finite number above 0"),
    ("grid", "resolution_m", float("inf"), "must be a finite number above 0"),
    ("time", "first_month", "2023-00", "a month is written YYYY-MM"),
    ("time", "last_month", "2023-13", "a month is written YYYY-MM"),
    ("time", "first_month", "2023-03", "last_month 2023-02 is before first_month 2023-03"),
    ("display", "speed_max_m_per_day", float("nan"), "must be a finite number above 0"),
    ("display", "speed_max_m_per_day", float("inf"), "must be a finite number above 0"),
    ("display", "speed_max_m_per_day", 0, "must be a finite number above 0"),
])
def test_a_bad_product_value_names_its_own_table_and_key(table, key, value, words):
    """Each value is checked under its own name, never a catch-all ``[title/description/license/display]``."""
    node: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in PRODUCT.items()}
    node.setdefault(table, {})[key] = value
    field = "time.last_month" if "is before" in words else f"{table}.{key}"
    with pytest.raises(ConfigError, match=re.escape(f"p.toml [{field}]: {words}")) as err:
        product_from_dict(node, "p.toml")
    assert err.value.field == field


@settings(max_examples=60, deadline=None)
@given(table=st.sampled_from([(), ("area",), ("grid",), ("time",)]), key=_name)
def test_any_unknown_key_of_a_product_definition_is_refused_naming_it(table, key):
    node: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in PRODUCT.items()}
    target = node[table[0]] if table else node
    if key in target or (not table and key in ("keywords", "providers")):
        return
    target[key] = 1
    with pytest.raises(ConfigError, match=re.escape(f"[{'.'.join((*table, key))}]: unknown key {key!r}")):
        product_from_dict(node, "p.toml")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["max_pairs_per_month", "max_dt_days", "edge_window_days", "max_cloud_cover_percent"]),
       value=st.one_of(st.text(max_size=5), st.booleans(), st.integers(max_value=-1), st.floats(max_value=-1e-9),
                       st.just(float("nan")), st.lists(st.integers(), max_size=2)))
def test_a_pair_rule_of_the_wrong_type_or_sign_is_refused_naming_it(tmp_path, key, value):
    raw = tomllib.loads(GOOD)
    raw["sensors"]["landsat"]["pair_rules"] = {key: value}
    with pytest.raises(ConfigError, match=re.escape(f"[sensors.landsat.pair_rules.{key}]: {key} must be")):
        config_from_dict(raw, tmp_path / "run.toml")


NUMBER_OR_TEXT = st.one_of(st.text(max_size=5), st.booleans(), st.integers(-10, 10), st.floats(allow_nan=True))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_tracker_parameter_of_another_type_than_its_default_is_refused_naming_it(plugins, tmp_path, data):
    """Every bundled tracker's parameters: a value not of its default's type is a ConfigError naming the key."""
    from gvfuse.config import check_components, parameter_type_problem

    tracker = data.draw(st.sampled_from(sorted(plugins.registry["trackers"])))
    cls = plugins.get("trackers", tracker).cls
    defaults = cls.defaults
    key = data.draw(st.sampled_from(sorted(defaults)))
    switchable = key in cls.switchable  # a number that false switches off
    value = data.draw(NUMBER_OR_TEXT)
    default = defaults[key]
    quoted_number = False
    if isinstance(value, str):  # the specification: a string Python reads as a number
        try:
            float(value)
            quoted_number = True
        except ValueError:
            pass
    wrong = not (switchable and value is False) and (quoted_number or (
        type(value) is not bool if isinstance(default, bool) and not switchable
        # a number that is off by default: any finite number turns it on
        else (isinstance(value, bool | str) or value != value or value in (float("inf"), float("-inf")))
        if isinstance(default, bool)
        else (isinstance(value, bool | str) or (isinstance(default, int) and not isinstance(value, int))
              or value != value or value in (float("inf"), float("-inf"))) if isinstance(default, int | float)
        else isinstance(value, bool) if isinstance(default, str)
        else False))
    assert (parameter_type_problem(value, default, switchable=switchable) is not None) == wrong
    raw = tomllib.loads(GOOD)
    raw["sensors"]["landsat"]["tracker"] = tracker
    raw["sensors"]["landsat"]["tracker_parameters"] = {key: value}
    config = config_from_dict(raw, tmp_path / "run.toml")
    if wrong:
        with pytest.raises(ConfigError, match=re.escape(f"[sensors.landsat.tracker_parameters.{key}]: must be")):
            check_components(config, plugins)


@pytest.mark.parametrize(("key", "value", "field"), [("sensors", "landsat", "sensors"),
                                                      ("weighting", "equal", "weighting"),
                                                      ("input_dir", 3, "input_dir")])
def test_a_table_or_path_of_the_wrong_type_is_refused_naming_it(tmp_path, key, value, field):
    raw = tomllib.loads(GOOD)
    raw[key] = value
    with pytest.raises(ConfigError, match=re.escape(f"[{field}]: must be")):
        config_from_dict(raw, tmp_path / "run.toml")
