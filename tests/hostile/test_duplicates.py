"""Case 4: two scenes of one acquisition (a Landsat RT and T1 product, a Sentinel-1 copy) are reported and resolved.

One copy is kept by a documented rule (the reader's ``preference``: Landsat T1 > T2 > RT; then the latest
processing date; then the last product id), never the Real-Time one when a tiered one is there; the other is
listed as a duplicate with the reason by ``gvfuse scan`` and ``gvfuse pairs``, and nothing crashes on a zero
time baseline.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from gvfuse.cli import main
from gvfuse.model import Month, Scene
from gvfuse.pipeline.pairing import NetworkRules, OpticalRules, SarRules, deduplicate, plan
from tests.helpers.scenes import ORIGIN_X, ORIGIN_Y, make_landsat_folder, textured, write_raster

UTC = dt.timezone.utc
RT = "LC09_L1TP_135040_20230102_20230103_02_RT"
T1 = "LC09_L1TP_135040_20230102_20230120_02_T1"
LATER = "LC09_L1TP_135040_20230130_20230205_02_T1"


def invoke(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def _run_toml(folder: Path, sensor: str) -> Path:
    path = folder / "run.toml"
    path.write_text(f'product = "gangrigab-2023"\ninput_dir = "scenes"\nmonths = ["2023-01"]\n[sensors.{sensor}]\n')
    return path


@pytest.fixture(scope="module")
def landsat_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("landsat")
    for product_id in (RT, T1, LATER):
        make_landsat_folder(root / "scenes", product_id)
    return root


def test_scan_keeps_the_tier_1_product_and_says_why_the_real_time_one_is_left_out(landsat_folder):
    status, output = invoke("scan", landsat_folder / "scenes")
    assert status == 0
    scenes = [line for line in output.splitlines() if line.startswith("  20")]
    assert [line.split()[-1] for line in scenes] == [T1, LATER]
    (line,) = [line for line in output.splitlines() if RT in line and "duplicate" in line]
    assert f"same acquisition as {T1}, which is kept: higher preference (2 > 0)" in line


def test_pairs_pairs_the_tier_1_product_and_lists_the_duplicate(landsat_folder):
    status, output = invoke("pairs", _run_toml(landsat_folder, "landsat"))
    assert status == 0, output
    assert f"{T1}_X_{LATER}" in output and f"{RT}_X_" not in output
    assert f"{RT}: duplicate - same acquisition as {T1}" in output


@pytest.fixture(scope="module")
def sar_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Terrain-corrected Sentinel-1 scenes 24 days apart, the first one downloaded twice (two product ids)."""
    root = tmp_path_factory.mktemp("sar")
    image = textured(100, 100, seed=3, low=50, high=400).astype("float32")
    transform = Affine(30.0, 0, ORIGIN_X, 0, -30.0, ORIGIN_Y)
    for name in ("S1A_IW_20230105T234511_DVP_RTC30_G_gpuned_4C2D_VV.tif",
                 "S1A_IW_20230105T234511_DVP_RTC30_G_gpuned_9F1E_VV.tif",
                 "S1A_IW_20230129T234511_DVP_RTC30_G_gpuned_1A2B_VV.tif"):
        write_raster(root / "scenes" / name, image, transform, nodata=0)
    return root


def test_a_sentinel_1_copy_is_reported_not_a_zero_baseline_crash(sar_folder):
    status, output = invoke("pairs", _run_toml(sar_folder, "sentinel-1"))
    assert status == 0, output
    assert "dt = 0.000" not in output and "ValueError" not in output
    kept, dropped = "S1A_IW_20230105T234511_DVP_RTC30_G_gpuned_9F1E_VV", "gpuned_4C2D_VV.tif"
    assert f"{dropped}: duplicate - same acquisition as {kept}, which is kept: the last product id" in output
    assert f"{kept}_X_S1A_IW_20230129T234511" in output  # the 24-day pair, from the kept copy


# --------------------------------------------------------------------------- the rule, for any order and any copies


def _scene(scene_id: str, when: dt.datetime, **meta: object) -> Scene:
    return Scene(sensor="landsat", platform="landsat-9", scene_id=scene_id, acquired_at=when,
                 path=f"/downloads/{scene_id}", cloud_cover_percent=5.0,
                 metadata={"wrs_path": 135, "wrs_row": 40, **meta})


def test_a_tiered_product_is_kept_over_real_time_in_either_order():
    when = dt.datetime(2023, 1, 2, 4, 21, tzinfo=UTC)
    rt = _scene(RT, when, preference=0, processed_on="2023-01-03")
    t1 = _scene(T1, when, preference=2, processed_on="2023-01-20")
    t2 = _scene(T1.replace("T1", "T2"), when, preference=1, processed_on="2023-02-20")
    for scenes in ([rt, t1, t2], [t2, t1, rt], [t1, rt, t2]):
        kept, dropped = deduplicate(scenes)
        assert kept == [t1] and {d.dropped.scene_id for d in dropped} == {rt.scene_id, t2.scene_id}


_when = st.datetimes(min_value=dt.datetime(2022, 12, 1), max_value=dt.datetime(2023, 2, 28),
                     timezones=st.just(UTC)).map(lambda t: t.replace(microsecond=0))


@settings(max_examples=60, deadline=None)
@given(times=st.lists(_when, min_size=1, max_size=8), copies=st.lists(st.integers(0, 3), min_size=8, max_size=8),
       seed=st.randoms(use_true_random=False))
def test_any_set_of_copies_gives_one_scene_per_acquisition_in_any_order_and_never_a_crash(times, copies, seed):
    scenes = []
    for i, when in enumerate(times):
        for copy in range(1 + copies[i]):
            scenes.append(_scene(f"scene-{when:%Y%m%dT%H%M%S}-v{copy}", when, preference=copy % 2))
    shuffled = list(scenes)
    seed.shuffle(shuffled)
    kept, dropped = deduplicate(scenes)
    assert deduplicate(shuffled)[0] == kept
    assert len(kept) == len(set(times)) and len(kept) + len(dropped) == len(scenes)
    assert len({s.acquired_at for s in kept}) == len(kept)
    for duplicate in dropped:
        assert duplicate.kept in kept and duplicate.kept.acquired_at == duplicate.dropped.acquired_at
        assert duplicate.kept.metadata["preference"] >= duplicate.dropped.metadata["preference"]
    # pairing without deduplicating first: equal times are never paired, whatever the rules
    months = [Month.parse("2023-01")]
    for rules in (OpticalRules(), SarRules(baselines_days=(1.0, 24.0)), NetworkRules(min_dt_days=0.0)):
        for month_plan in plan({"landsat": scenes}, months, {"landsat": rules}):
            assert all(p.dt_days > 0 for p in month_plan.pairs)


def test_a_pair_with_no_time_between_its_scenes_is_never_formed():
    when = dt.datetime(2023, 1, 3, tzinfo=UTC)
    same = [_scene("a", when), _scene("b", when), _scene("c", when + dt.timedelta(days=27))]
    wide = OpticalRules(edge_window_days=31)  # both copies are near the month's start and its end
    (january,) = plan({"landsat": same}, [Month.parse("2023-01")], {"landsat": wide})
    assert {(p.reference.scene_id, p.secondary.scene_id) for p in january.pairs} <= {("a", "c"), ("b", "c")}
    assert np.all([p.dt_days == 27 for p in january.pairs])
