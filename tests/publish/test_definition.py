"""The product definition's sensor legend and colour scale, which every published month follows."""

import pytest

from gvfuse.errors import ConfigError
from gvfuse.product import DEFAULT_SPEED_MAX_M_PER_DAY, load_product, product_from_dict

RAW = {"id": "x", "title": "t", "description": "d", "license": "CC0-1.0",
       "area": {"west_deg": 1, "south_deg": 1, "east_deg": 2, "north_deg": 2},
       "grid": {"crs": "EPSG:32631", "resolution_m": 30}, "time": {"first_month": "2023-01", "last_month": "2023-02"}}


def test_the_bundled_legend_and_scale():
    definition = load_product("gangrigab-2023")
    assert [s.name for s in definition.legend()] == ["landsat", "sentinel-1", "sentinel-2", "uav"]
    assert definition.legend(("whatever",)) == definition.sensors  # the run's sensors do not change it
    assert definition.sensors[2].instruments == ("msi",) and definition.speed_max_m_per_day == 1.5


def test_without_sensors_the_legend_is_the_runs_described_by_name_and_the_scale_the_default():
    definition = product_from_dict(RAW)
    legend = definition.legend(("landsat", "radar-x"))
    assert [s.name for s in legend] == ["landsat", "radar-x"]
    assert legend[0].constellation == "landsat" and legend[1].instruments == ()
    assert definition.speed_max_m_per_day == DEFAULT_SPEED_MAX_M_PER_DAY


def test_a_sensor_by_name_alone_is_described_and_its_fields_override():
    definition = product_from_dict({**RAW, "sensors": [{"name": "sentinel-2"},
                                                       {"name": "landsat", "platforms": ["landsat-9"]}]})
    s2, landsat = definition.sensors
    assert s2.platforms == ("sentinel-2a", "sentinel-2b") and landsat.platforms == ("landsat-9",)
    assert landsat.instruments == ("oli", "oli-2")


@pytest.mark.parametrize(("sensors", "field"), [
    ([{"platforms": ["a"]}], "sensors[0]"),
    ([{"name": "a", "platform": ["b"]}], "sensors[0]"),
    ([{"name": "a", "instruments": "msi"}], "sensors[0].instruments"),
    ([{"name": "a"}, {"name": "a"}], "sensors"),
    ([{"name": f"s{i}"} for i in range(17)], "sensors"),
])
def test_a_bad_sensor_entry_names_its_field(sensors, field):
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        product_from_dict({**RAW, "sensors": sensors})


@pytest.mark.parametrize("value", [0, -1.0, "fast"])
def test_a_bad_colour_scale_names_its_field(value):
    with pytest.raises(ConfigError, match="display"):
        product_from_dict({**RAW, "display": {"speed_max_m_per_day": value}})
