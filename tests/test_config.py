from pathlib import Path

import pytest

from gvfuse.config import load_config
from gvfuse.errors import ConfigError
from gvfuse.model import Month
from gvfuse.pipeline.pairing import OpticalRules, SarRules, UavRules

CATALOG = Path(__file__).resolve().parents[1] / "catalog"


def test_gangrigab_run_configuration_carries_the_reference_method():
    cfg = load_config(CATALOG / "gangrigab_2023_run.toml", None)
    assert cfg.product.id == "gangrigab-2023" and len(cfg.months) == 12
    ls, s2, s1, uav = (cfg.sensors[n] for n in ("landsat", "sentinel-2", "sentinel-1", "uav"))
    assert (ls.tracker, ls.tracker_parameters["window_px"], ls.tracker_parameters["step_px"]) == ("fft-phase", 32, 2)
    assert (s2.tracker, s2.tracker_parameters["step_px"]) == ("fft-phase", 3)
    assert (s1.tracker, s1.tracker_parameters["window_px"]) == ("ncc", 128)
    assert isinstance(ls.rules, OpticalRules) and isinstance(s1.rules, SarRules) and isinstance(uav.rules, UavRules)
    assert s1.rules.baselines_days == (24, 36)
    assert cfg.reference_sensor == "uav" and cfg.weighting == "wls-uav"
    assert cfg.input_dir == (CATALOG / "scenes").resolve()


def write(tmp_path, text) -> Path:
    p = tmp_path / "run.toml"
    p.write_text(text)
    return p


def test_errors_name_file_and_field(tmp_path):
    with pytest.raises(ConfigError, match=r"run.toml \[sensors\]"):
        load_config(write(tmp_path, 'product = "gangrigab-2023"\n'), None)
    with pytest.raises(ConfigError, match=r"run.toml \[sensors.landsat\].*max_cloud"):
        load_config(write(tmp_path, 'product = "gangrigab-2023"\n[sensors.landsat]\n'
                                    'pair_rules = { max_cloud = 3 }\n'), None)
    with pytest.raises(ConfigError, match=r"\[sensors.lidar\].*no defaults"):
        load_config(write(tmp_path, 'product = "gangrigab-2023"\n[sensors.lidar]\n'), None)
    with pytest.raises(ConfigError, match=r"\[months\]"):
        load_config(write(tmp_path, 'product = "gangrigab-2023"\nmonths = ["2024-01"]\n[sensors.landsat]\n'), None)
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "product = "), None)
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.toml", None)


def test_sensor_overrides_merge_with_defaults(tmp_path):
    cfg = load_config(write(tmp_path, 'product = "gangrigab-2023"\nmonths = ["2023-03"]\n'
                                      '[sensors.landsat]\ntracker_parameters = { step_px = 4 }\n'), None)
    ls = cfg.sensors["landsat"]
    assert ls.tracker_parameters == {"window_px": 32, "step_px": 4} and cfg.months == (Month(2023, 3),)
