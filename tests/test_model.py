import datetime as dt
import math

import numpy as np
import pytest
from affine import Affine
from hypothesis import given
from hypothesis import strategies as st

from gvfuse.model import (
    Grid,
    Month,
    MonthlyProduct,
    Pair,
    Provenance,
    Scene,
    SensorLegend,
    VelocityField,
)

UTC = dt.timezone.utc


def scene(day: int, sid: str = "S") -> Scene:
    return Scene(sensor="landsat", platform="LANDSAT_8", scene_id=f"{sid}{day}",
                 acquired_at=dt.datetime(2023, 1, day, 4, 30, tzinfo=UTC), path=f"/data/{sid}{day}")


@given(
    res=st.floats(0.5, 1000), rows=st.integers(1, 5000), cols=st.integers(1, 5000),
    x0=st.floats(-1e6, 1e6), y0=st.floats(-1e7, 1e7),
)
def test_grid_bounds_match_shape_and_resolution(res, rows, cols, x0, y0):
    g = Grid("EPSG:32647", Affine(res, 0, x0, 0, -res, y0), (rows, cols))
    left, bottom, right, top = g.bounds
    assert math.isclose(right - left, cols * res, rel_tol=1e-9)
    assert math.isclose(top - bottom, rows * res, rel_tol=1e-9)
    assert g.pixel_size_m == pytest.approx((res, res))


def test_grid_rejects_degenerate_transform_and_bad_shape():
    with pytest.raises(ValueError, match="degenerate"):
        Grid(32647, Affine(0, 0, 0, 0, 0, 0), (2, 2))
    with pytest.raises(ValueError, match="positive"):
        Grid(32647, Affine(30, 0, 0, 0, -30, 0), (0, 2))


def test_grid_is_frozen_and_hashable():
    g = Grid(32647, Affine(30, 0, 0, 0, -30, 0), (2, 3))
    assert g == Grid("EPSG:32647", Affine(30, 0, 0, 0, -30, 0), [2, 3])
    with pytest.raises(AttributeError):
        g.shape = (1, 1)  # type: ignore[misc]
    assert hash(g) == hash(Grid(32647, Affine(30, 0, 0, 0, -30, 0), (2, 3)))


@given(step=st.integers(1, 8), window=st.integers(2, 64), rows=st.integers(64, 300), cols=st.integers(64, 300))
def test_window_centre_grid_places_centres_at_window_middles(step, window, rows, cols):
    g = Grid(32647, Affine(15, 0, 1000, 0, -15, 5000), (rows, cols))
    out = g.window_centre_grid(step, window)
    # Window k spans [k*step, k*step + window); its centre must be cell k's centre.
    for k in (0, out.cols - 1):
        x_expected, _ = g.transform @ (k * step + window / 2, 0)
        x_cell, _ = out.transform @ (k + 0.5, 0.5)
        assert x_cell == pytest.approx(x_expected)
    assert (out.cols - 1) * step + window <= cols < out.cols * step + window


def test_pixel_to_map_displacement_north_up():
    g = Grid(32647, Affine(15, 0, 0, 0, -15, 0), (4, 4))
    east, north = g.pixel_to_map_displacement(np.array([1.0]), np.array([2.0]))
    assert east[0] == 15 and north[0] == -30  # two rows down is 30 m south


def test_from_bounds_snaps_outward():
    g = Grid.from_bounds(32647, 101, 199, 259, 301, resolution_m=30)
    left, bottom, right, top = g.bounds
    assert left <= 101 and bottom <= 199 and right >= 259 and top >= 301
    assert left % 30 == 0 and top % 30 == 0


def test_scene_requires_timezone_and_valid_cloud_cover():
    with pytest.raises(ValueError, match="time zone"):
        Scene(sensor="x", platform="p", scene_id="a", acquired_at=dt.datetime(2023, 1, 1), path="/x")
    with pytest.raises(ValueError, match="cloud_cover_percent"):
        Scene(sensor="x", platform="p", scene_id="a", acquired_at=dt.datetime(2023, 1, 1, tzinfo=UTC),
              path="/x", cloud_cover_percent=101)


def test_scene_times_are_normalised_to_utc_and_metadata_is_read_only():
    tz = dt.timezone(dt.timedelta(hours=8))
    s = Scene(sensor="x", platform="p", scene_id="a", acquired_at=dt.datetime(2023, 1, 1, 8, tzinfo=tz),
              path="/x", metadata={"k": 1})
    assert s.acquired_at == dt.datetime(2023, 1, 1, 0, tzinfo=UTC) and s.acquired_at.tzinfo == UTC
    with pytest.raises(TypeError):
        s.metadata["k"] = 2  # type: ignore[index]


@given(a=st.integers(1, 30), b=st.integers(1, 30))
def test_pair_dt_days_positive_or_rejected(a, b):
    if b > a:
        assert Pair(scene(a), scene(b, "T")).dt_days == b - a
    else:
        with pytest.raises(ValueError, match="not later"):
            Pair(scene(a), scene(b, "T"))


def test_velocity_field_checks_shapes_and_dt():
    g = Grid(32647, Affine(30, 0, 0, 0, -30, 0), (3, 4))
    z = np.zeros((3, 4), "f4")
    f = VelocityField(z, z + 1, g, dt_days=16, quality={"snr": z}, provenance=Provenance(inputs=["a", "b"]))
    assert f.speed_m_per_day.max() == 1
    with pytest.raises(ValueError, match="shape"):
        VelocityField(z, np.zeros((2, 2)), g, dt_days=16)
    with pytest.raises(ValueError, match="quality band"):
        VelocityField(z, z, g, dt_days=16, quality={"snr": np.zeros(3)})
    with pytest.raises(ValueError, match="dt_days"):
        VelocityField(z, z, g, dt_days=0)


def test_monthly_product_month_format_and_file_stem():
    g = Grid(32647, Affine(30, 0, 0, 0, -30, 0), (2, 2))
    z = np.zeros((2, 2), "f4")
    p = MonthlyProduct("2023-07", z, z, z, z, z, g, sensors=("landsat",))
    assert p.month == Month(2023, 7) and p.month.stem == "202307" and str(p.month) == "2023-07"
    with pytest.raises(ValueError):
        MonthlyProduct("2023-13", z, z, z, z, z, g, sensors=())


@pytest.mark.parametrize("text", ["2023-7", "2023-13", "2023-00", "23-07", "2023/07", "", "2023-07-01"])
def test_month_rejects_anything_but_yyyy_mm(text):
    with pytest.raises(ValueError, match="YYYY-MM"):
        Month.parse(text)


def test_month_instants_names_and_spans():
    feb = Month.parse("2024-02")
    assert (feb.start, feb.end) == (dt.datetime(2024, 2, 1, tzinfo=UTC), dt.datetime(2024, 3, 1, tzinfo=UTC))
    assert feb.last_second == dt.datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC) and feb.days == 29
    assert Month(2023, 12).shifted(1) == Month(2024, 1) and Month(2024, 1).shifted(-1) == Month(2023, 12)
    assert [str(m) for m in Month.span("2022-11", "2023-02")] == ["2022-11", "2022-12", "2023-01", "2023-02"]
    assert Month.span("2023-02", "2023-01") == ()
    assert sorted([Month(2024, 1), Month(2023, 12)]) == [Month(2023, 12), Month(2024, 1)]


@given(st.integers(1900, 2200), st.integers(1, 12), st.integers(-400, 400))
def test_month_arithmetic_agrees_with_the_calendar(year, number, shift):
    month = Month(year, number)
    later = month.shifted(shift)
    assert month.months_to(later) == shift and later.shifted(-shift) == month
    assert Month.parse(str(later)) == later and later.stem == str(later).replace("-", "")
    # the next month starts where this one ends, 28 to 31 days later
    assert month.shifted(1).start == month.end and 28 <= month.days <= 31


@given(st.lists(st.sampled_from(["landsat", "sentinel-1", "sentinel-2", "uav", "extra"]), min_size=1,
                unique=True), st.integers(0, 2**16))
def test_sensor_legend_decodes_what_it_encodes(sensors, seed):
    legend = SensorLegend(sensors)
    rng = np.random.default_rng(seed)
    used = {name: rng.random((3, 4)) < 0.5 for name in sensors}
    mask = legend.encode(used, (3, 4)).astype("float32")  # products store the bits as float32
    decoded = legend.decode(mask)
    assert all(np.array_equal(decoded[name], used[name]) for name in sensors)
    assert legend.bits == {name: 1 << i for i, name in enumerate(sensors)}
    with pytest.raises(ValueError, match="not in the legend"):
        legend.encode({"lidar": used[sensors[0]]}, (3, 4))


def test_values_with_read_only_metadata_pickle_for_worker_processes():
    import pickle

    s = Scene(sensor="x", platform="p", scene_id="a", acquired_at=dt.datetime(2023, 1, 1, tzinfo=UTC),
              path="/x", metadata={"relative_orbit": 99})
    back = pickle.loads(pickle.dumps(s))
    assert back == s and back.metadata["relative_orbit"] == 99
    with pytest.raises(TypeError):
        back.metadata["k"] = 1  # type: ignore[index]
