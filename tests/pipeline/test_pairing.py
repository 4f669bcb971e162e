import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from gvfuse.model import Month, Scene
from gvfuse.pipeline.pairing import (
    NetworkRules,
    OpticalRules,
    SarRules,
    UavRules,
    deduplicate,
    plan,
    plan_month,
)

UTC = dt.timezone.utc


def scene(day: dt.date, sensor="landsat", cloud=5.0, **meta) -> Scene:
    return Scene(sensor=sensor, platform="X", scene_id=f"{sensor}-{day.isoformat()}-{meta}",
                 acquired_at=dt.datetime(day.year, day.month, day.day, 4, 30, tzinfo=UTC),
                 path=f"/d/{day}", cloud_cover_percent=cloud, metadata=meta)


def every(days: int, first: dt.date, n: int, **kw) -> list[Scene]:
    return [scene(first + dt.timedelta(days=days * i), **kw) for i in range(n)]


def test_month_start_and_end_cross_the_year():
    december = Month.parse("2023-12")
    assert (december.start, december.end) == (dt.datetime(2023, 12, 1, tzinfo=UTC), dt.datetime(2024, 1, 1, tzinfo=UTC))


def test_optical_pair_spans_the_month_from_start_to_end():
    scenes = every(8, dt.date(2022, 12, 20), 10, wrs_path=135, wrs_row=39)
    p = plan_month("landsat", scenes, "2023-01", OpticalRules(max_pairs_per_month=1))
    (pair,) = p.pairs
    assert pair.reference.acquired_at.date() == dt.date(2022, 12, 28)  # 4 days before the 1st
    assert pair.secondary.acquired_at.date() == dt.date(2023, 1, 29)  # 3 days before the 1 Feb
    assert p.note == ""


def test_clouds_widen_the_window_and_say_so():
    scenes = every(8, dt.date(2022, 11, 26), 14, wrs_path=135, wrs_row=39)
    cloudy = {dt.date(2022, 12, 28), dt.date(2023, 1, 5), dt.date(2023, 1, 21), dt.date(2023, 1, 29),
              dt.date(2022, 12, 20), dt.date(2023, 2, 6)}
    scenes = [scene(s.acquired_at.date(), cloud=90.0 if s.acquired_at.date() in cloudy else 5.0,
                    wrs_path=135, wrs_row=39) for s in scenes]
    p = plan_month("landsat", scenes, "2023-01", OpticalRules(max_pairs_per_month=1))
    (pair,) = p.pairs
    assert pair.reference.cloud_cover_percent == pair.secondary.cloud_cover_percent == 5.0
    start, end = Month(2023, 1).start, Month(2023, 1).end
    assert "widened" in p.note
    assert abs(pair.reference.acquired_at - start).days > 10 or abs(pair.secondary.acquired_at - end).days > 10


def test_all_cloudy_month_is_reported_not_invented():
    scenes = every(8, dt.date(2022, 12, 20), 10, cloud=95.0)
    p = plan_month("landsat", scenes, "2023-01", OpticalRules())
    assert p.pairs == () and "cloud cover" in p.note


def test_optical_pairs_never_mix_footprints():
    a = scene(dt.date(2022, 12, 30), wrs_path=135, wrs_row=39)
    b = scene(dt.date(2023, 1, 29), wrs_path=136, wrs_row=39)
    assert plan_month("landsat", [a, b], "2023-01", OpticalRules()).pairs == ()
    b_same = scene(dt.date(2023, 1, 29), wrs_path=135, wrs_row=39)
    assert len(plan_month("landsat", [a, b_same], "2023-01", OpticalRules()).pairs) == 1


def test_sar_pairs_are_same_orbit_on_24_or_36_days():
    track_a = every(12, dt.date(2022, 12, 10), 8, sensor="sentinel-1", relative_orbit=33)
    track_b = every(12, dt.date(2022, 12, 16), 8, sensor="sentinel-1", relative_orbit=106)
    p = plan_month("sentinel-1", track_a + track_b, "2023-01", SarRules(max_pairs_per_month=10))
    assert p.pairs
    for pair in p.pairs:
        assert pair.reference.metadata["relative_orbit"] == pair.secondary.metadata["relative_orbit"]
        assert pair.dt_days in (24, 36)
        mid = pair.reference.acquired_at + (pair.secondary.acquired_at - pair.reference.acquired_at) / 2
        assert mid.month == 1


def test_uav_surveys_pair_consecutively_for_overlapping_months():
    surveys = [scene(d, sensor="uav", site="terminus") for d in
               (dt.date(2023, 3, 10), dt.date(2023, 4, 20), dt.date(2023, 8, 1))]
    april = plan_month("uav", surveys, "2023-04", UavRules())
    # Mar 10 - Apr 20 covers 19 days of April, Apr 20 - Aug 1 only 10: the first is chosen.
    assert [(p.reference.acquired_at.day, p.secondary.acquired_at.day) for p in april.pairs] == [(10, 20)]
    june = plan_month("uav", surveys, "2023-06", UavRules())
    assert len(june.pairs) == 1 and june.pairs[0].secondary.acquired_at.month == 8
    assert plan_month("uav", surveys, "2023-10", UavRules()).pairs == ()


def test_duplicates_are_dropped_once():
    s = scene(dt.date(2023, 1, 1))
    kept, dropped = deduplicate([s, s, scene(dt.date(2023, 1, 9))])
    assert len(kept) == 2 and [d.dropped for d in dropped] == [s]


@settings(max_examples=25, deadline=None)
@given(first=st.dates(dt.date(2022, 12, 1), dt.date(2022, 12, 31)), revisit=st.sampled_from([5, 8, 16]),
       month=st.integers(1, 11))
def test_every_chosen_optical_pair_is_ordered_and_centred_in_its_month(first, revisit, month):
    scenes = every(revisit, first, 400 // revisit, wrs_path=1, wrs_row=1)
    (p,) = plan({"landsat": scenes}, [Month(2023, month)], {"landsat": OpticalRules()})
    start, end = p.month.start, p.month.end
    assert p.pairs, p.note
    for pair in p.pairs:
        assert pair.dt_days > 0
        mid = pair.reference.acquired_at + (pair.secondary.acquired_at - pair.reference.acquired_at) / 2
        assert start <= mid < end


def test_network_pairs_every_allowed_baseline_within_the_budget_each_in_the_month_of_its_mid_time():
    scenes = [scene(dt.date(2023, 1, 1) + dt.timedelta(days=8 * i)) for i in range(12)]
    rules = NetworkRules(min_dt_days=8, max_dt_days=24, max_pairs_per_scene=2)
    months = [plan_month("landsat", scenes, f"2023-0{m}", rules) for m in (1, 2, 3)]
    pairs = [p for mp in months for p in mp.pairs]
    assert all(8 <= p.dt_days <= 24 for p in pairs)
    for mp in months:
        assert all(mp.month.start <= p.reference.acquired_at + (p.secondary.acquired_at - p.reference.acquired_at) / 2
                   < mp.month.end for p in mp.pairs)
    per_reference = {}
    for p in pairs:
        per_reference.setdefault(p.reference.scene_id, []).append(p.dt_days)
    assert max(len(v) for v in per_reference.values()) == 2
    assert all(sorted(v) == [8.0, 16.0] for v in per_reference.values() if len(v) == 2)  # the shortest first
    sar = NetworkRules(baselines_days=(12, 24), max_pairs_per_scene=3)
    s1 = [scene(dt.date(2023, 1, 1) + dt.timedelta(days=12 * i)) for i in range(8)]
    assert {round(p.dt_days) for p in plan_month("sentinel-1", s1, "2023-02", sar).pairs} == {12, 24}
