import re
from pathlib import Path

import pytest

from gvfuse.config import REFERENCE_PHASE_PARAMETERS, load_config
from gvfuse.errors import ConfigError
from gvfuse.model import Month
from gvfuse.pipeline.pairing import NetworkRules, UavRules

CATALOG = Path(__file__).resolve().parents[1] / "catalog"


def test_gangrigab_run_configuration_carries_the_reference_trackers_and_fuses_over_time():
    cfg = load_config(CATALOG / "gangrigab_2023_run.toml", None)
    assert cfg.product.id == "gangrigab-2023" and len(cfg.months) == 12
    ls, s2, s1, uav = (cfg.sensors[n] for n in ("landsat", "sentinel-2", "sentinel-1", "uav"))
    assert (ls.tracker, ls.tracker_parameters["window_px"], ls.tracker_parameters["step_px"]) == ("fft-phase", 32, 2)
    assert (s2.tracker, s2.tracker_parameters["step_px"]) == ("fft-phase", 3)
    assert (s1.tracker, s1.tracker_parameters["window_px"]) == ("ncc", 128)
    assert isinstance(ls.rules, NetworkRules) and isinstance(s1.rules, NetworkRules)
    assert isinstance(uav.rules, UavRules)
    assert s1.rules.baselines_days == (12, 24, 36)
    assert cfg.reference_sensor == "uav" and cfg.fusion == "time-series"
    assert cfg.input_dir == (CATALOG / "scenes").resolve()


def write(tmp_path, text) -> Path:
    p = tmp_path / "run.toml"
    p.write_text(text)
    return p


def test_errors_name_file_and_field(tmp_path):
    with pytest.raises(ConfigError, match=r"run.toml \[sensors\]"):
        load_config(write(tmp_path, 'product = "gangrigab-2023"\n'), None)
    with pytest.raises(ConfigError, match=r"run.toml \[sensors.landsat.pair_rules.max_cloud\].*max_cloud_cover"):
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
    assert ls.tracker_parameters == {**REFERENCE_PHASE_PARAMETERS, "step_px": 4} and cfg.months == (Month(2023, 3),)
    assert ls.tracker_parameters["window_px"] == 32


def test_stable_shift_is_network_by_default_and_a_sensor_may_keep_its_pairs_own(tmp_path):
    cfg = load_config(write(tmp_path, 'product = "gangrigab-2023"\nmonths = ["2023-03"]\n[sensors.landsat]\n'
                                      '[sensors.sentinel-2]\nstable_shift = "per-pair"\n'), None)
    assert (cfg.sensors["landsat"].stable_shift, cfg.sensors["sentinel-2"].stable_shift) == ("network", "per-pair")
    for value, words in (('"joint"', "stable_shift must be one of 'network', 'per-pair', got 'joint'"),
                         ("true", "must be a string")):
        with pytest.raises(ConfigError, match=re.escape(f"run.toml [sensors.landsat.stable_shift]: {words}")):
            load_config(write(tmp_path, f'product = "gangrigab-2023"\n[sensors.landsat]\nstable_shift = {value}\n'),
                        None)


def test_another_tracker_keeps_the_sensors_sampling_only(tmp_path, plugins):
    """landsat's defaults are fft-phase's reference settings; ncc and template do not know all of them."""
    for tracker in ("ncc", "template"):
        cfg = load_config(write(tmp_path, f'product = "gangrigab-2023"\nmonths = ["2023-03"]\n'
                                          f'[sensors.landsat]\ntracker = "{tracker}"\n'), plugins)  # builds it
        assert cfg.sensors["landsat"].tracker_parameters == {"window_px": 32, "step_px": 2}
    cfg = load_config(write(tmp_path, 'product = "gangrigab-2023"\nmonths = ["2023-03"]\n'
                                      '[sensors.landsat]\ntracker = "fft-phase"\n'), None)
    assert cfg.sensors["landsat"].tracker_parameters == {**REFERENCE_PHASE_PARAMETERS, "step_px": 2}


def test_fusion_over_time_replaces_the_weighting(tmp_path):
    cfg = load_config(write(tmp_path, 'product = "gangrigab-2023"\n[sensors.landsat]\npairing = "network"\n'
                                      '[fusion]\nname = "time-series"\nparameters = { bin_days = 8 }\n'), None)
    assert cfg.fusion == "time-series" and cfg.fusion_parameters == {"bin_days": 8} and cfg.glacier_mask is None
    assert cfg.sensors["landsat"].rules.max_pairs_per_scene == 4
    cfg = load_config(write(tmp_path, 'product = "gangrigab-2023"\n[sensors.landsat]\n[fusion]\nname = "time-series"\n'
                                      'glacier_mask = "masks/rgi.shp"\n'), None)
    assert cfg.glacier_mask == (tmp_path / "masks" / "rgi.shp").resolve()
    with pytest.raises(ConfigError, match=r"\[fusion\].*not both"):
        load_config(write(tmp_path, 'product = "gangrigab-2023"\n[sensors.landsat]\n[fusion]\nname = "time-series"\n'
                                    '[weighting]\nname = "equal"\n'), None)
    with pytest.raises(ConfigError, match=r"\[fusion\].*'name'"):
        load_config(write(tmp_path, 'product = "gangrigab-2023"\n[sensors.landsat]\n[fusion]\nparameters = {}\n'),
                    None)
