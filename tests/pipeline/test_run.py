"""The run pipeline end to end on small synthetic inputs: plan, track, fuse, validate, publish, resume, dask."""

from __future__ import annotations

import json
import re
from pathlib import Path

import dask
import numpy as np
import pytest
from click.testing import CliRunner

from gvfuse import inversion as inv
from gvfuse.cli import main
from gvfuse.config import load_config
from gvfuse.errors import ConfigError
from gvfuse.io.masks import load_mask
from gvfuse.io.raster import write_bands
from gvfuse.model import Month
from gvfuse.pipeline.run import build_plan, execute
from gvfuse.plugins import load_plugins
from gvfuse.publish.cog import read_month_bands
from gvfuse.publish.month import month_files
from gvfuse.testing import make_pair
from tests.helpers.scenes import product_toml

MONTHS = {"2023-01": ("20230101", "20230130"), "2023-03": ("20230301", "20230330")}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """Two months of a 15 m optical pair each, as dated GeoTIFFs, with a product and run definition."""
    root = tmp_path_factory.mktemp("run")
    scenes = root / "scenes"
    scenes.mkdir()
    for i, (first, last) in enumerate(MONTHS.values()):
        pair = make_pair("optical", (160, 160), dt_days=29, max_speed_m_per_day=0.5, cloud_fraction=0.0,
                         geolocation_shift_px=(0.2, -0.1), seed=10 + i)
        write_bands(scenes / f"optical_{first}.tif", {"B8": pair.reference}, pair.grid, cog=False)
        write_bands(scenes / f"optical_{last}.tif", {"B8": pair.secondary}, pair.grid, cog=False)
    masks = root / "masks"
    write_bands(masks / "stable.tif", {"stable": pair.stable_mask.astype("f4")}, pair.grid, cog=False)
    write_bands(masks / "ice.tif", {"ice": pair.ice_mask.astype("f4")}, pair.grid, cog=False)
    (scenes / "notes.txt").write_text("not a scene")
    (root / "product.toml").write_text(product_toml(pair.grid, "run-test", "two months", "2023-01", "2023-05"))
    (root / "run.toml").write_text('''
product = "product.toml"
input_dir = "scenes"
output_dir = "out"
months = ["2023-01", "2023-03"]
[sensors.optical]
reader = "geotiff"
pairing = "optical"
tracker = "ncc"
tracker_parameters = { window_px = 32, step_px = 2 }
max_speed_m_per_day = 1.0
[weighting]
name = "inverse-variance"
[validation]
validators = ["stable-ground", "strain-rate", "uav"]
stable_mask = "masks/stable.tif"
on_ice_mask = "masks/ice.tif"
''')
    return root


def test_plan_pairs_each_month_start_to_end(workspace, plugins):
    plan = build_plan(load_config(workspace / "run.toml", plugins), plugins)
    assert [(str(m.month), len(m.pairs)) for m in plan.months] == [("2023-01", 1), ("2023-03", 1)]
    assert all(j.tracking_grid.pixel_size_m == (15.0, 15.0) for j in plan.jobs)
    assert not plan.problems  # notes.txt beside the scenes is not a scene, and not a problem either
    result = CliRunner().invoke(main, ["pairs", str(workspace / "run.toml")])
    assert result.exit_code == 0 and "2023-01 optical" in result.output and "2 distinct pair(s)" in result.output


def test_run_publishes_months_close_to_truth_and_resumes(workspace, tmp_path, plugins):
    config = load_config(workspace / "run.toml", plugins)
    result = execute(config, plugins=plugins)
    assert not result.failed_months, result.problems
    assert all(not o.error for o in result.pairs)
    product = config.output_dir / "202301_vx.tif"
    bands, _grid = read_month_bands(config.output_dir, Month(2023, 1), ("vx", "vy", "v_error", "count"))
    valid = np.isfinite(bands["vx"])
    assert valid.mean() > 0.5
    # The month's stable ground is near zero after the tracker's correction.
    stable = result.months[0].figures["stable-ground"]["fused"]
    assert abs(stable["vx_median_m_per_day"]) < 0.01 and abs(stable["vy_median_m_per_day"]) < 0.01
    assert result.months[0].figures["uav"] == {"skipped": "no reference for this month"}
    item = json.loads((config.output_dir / "items" / "run-test-202301.json").read_text())
    assert {i["id"] for i in item["properties"]["gvfuse:provenance"]["inputs"]} >= {"optical_20230101"}
    before = product.read_bytes()
    # Again: everything cached, nothing republished, identical bytes.
    again = execute(config, plugins=plugins)
    assert all(o.cached for o in again.pairs) and product.read_bytes() == before
    # Lose one pair's cache: only that pair is tracked again, and the product is identical.
    lost = result.pairs[0].path
    cached = lost.read_bytes()
    lost.unlink()
    third = execute(config, plugins=plugins)
    assert [o.cached for o in third.pairs] == [False, True] and product.read_bytes() == before
    assert lost.read_bytes() == cached  # the pair tracked again is the same file, to the byte (no timings)


def test_the_pair_cache_is_outside_the_publication_and_cache_dir_moves_it(workspace, plugins):
    config = load_config(workspace / "run.toml", plugins)
    assert config.cache_dir == workspace / ".gvfuse-cache"
    result = execute(config, plugins=plugins)
    assert result.pairs and all(o.path.is_relative_to(workspace / ".gvfuse-cache") for o in result.pairs)
    assert not any(p.suffix == ".tif" for p in (workspace / "out").rglob(".*/**/*"))  # no pair in the publication
    moved = workspace / "moved.toml"
    moved.write_text((workspace / "run.toml").read_text().replace('output_dir = "out"',
                                                                 'output_dir = "out-moved"\ncache_dir = "elsewhere"'))
    again = execute(load_config(moved, plugins), plugins=plugins)
    assert not any(o.cached for o in again.pairs)  # a new cache: tracked there
    assert all(o.path.is_relative_to(workspace / "elsewhere") for o in again.pairs)


def test_dask_local_cluster_gives_the_serial_result(workspace, tmp_path, plugins):
    from dask.distributed import Client, LocalCluster

    text = (workspace / "run.toml").read_text()
    serial_cfg = workspace / "serial.toml"
    dask_cfg = workspace / "dask.toml"
    serial_cfg.write_text(text.replace('output_dir = "out"', 'output_dir = "out-serial"'))
    # its own pair cache, or it would find the serial run's pairs and track nothing on the cluster
    dask_cfg.write_text(text.replace('output_dir = "out"', 'output_dir = "out-dask"\ncache_dir = "cache-dask"'))
    serial = execute(load_config(serial_cfg, plugins), plugins=plugins)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        distributed = execute(load_config(dask_cfg, plugins), plugins=plugins, client=client)
    assert not serial.failed_months and not distributed.failed_months
    for month in ("202301", "202303"):
        for name in month_files(Month.parse(f"{month[:4]}-{month[4:]}")).all:
            assert (workspace / "out-serial" / name).read_bytes() == (workspace / "out-dask" / name).read_bytes()
        # both runs tracked every pair afresh: their items differ only by the configuration file named
        items = [json.loads((workspace / out / "items" / f"run-test-{month}.json").read_text())
                 for out in ("out-serial", "out-dask")]
        for item in items:
            item["properties"]["gvfuse:provenance"]["parameters"].pop("configuration")
        assert items[0] == items[1]


def test_bad_scene_in_the_middle_is_reported_and_run_goes_on(workspace):
    text = (workspace / "run.toml").read_text().replace('output_dir = "out"', 'output_dir = "out-bad"')
    cfg = workspace / "bad.toml"
    cfg.write_text(text.replace('months = ["2023-01", "2023-03"]', 'months = ["2023-01", "2023-03", "2023-05"]')
                   .replace('input_dir = "scenes"', 'input_dir = "scenes-bad"'))
    bad = workspace / "scenes-bad"
    bad.mkdir()
    for scene in (workspace / "scenes").glob("*.tif"):
        (bad / scene.name).write_bytes(scene.read_bytes())
    (bad / "optical_20230115.tif").write_bytes(b"II*\x00 truncated download")
    result = CliRunner().invoke(main, ["run", str(cfg), "--workers", "0"])
    # May has no scenes: reported, the run goes on, exit status 1 because a requested month is missing.
    assert result.exit_code == 1
    assert "2023-05: FAILED" in result.output and re.search(r"2023-01: \d+ file\(s\)", result.output)
    assert "optical_20230115.tif" in result.output  # the unreadable file is named in the problems
    assert (workspace / "out-bad" / "202303_vx.tif").exists()


THIRD_PARTY = '''
import dask
import numpy as np

from gvfuse import fusion, hookimpl
from gvfuse.errors import InputError
from gvfuse.interfaces import Validator, Weighting
from gvfuse.model import WeightFit


class FastShare(Validator):
    """Share of the ice outline faster than a threshold: needs a context key gvfuse does not know."""

    name = "fast-share"
    needs = {"ice_outline": "mask", "fast_m_per_day": "value"}
    per_sensor = True

    def validate(self, field, **context):
        inside = context["ice_outline"] & np.isfinite(field.vx_m_per_day)
        fast = field.speed_m_per_day[inside] > float(context["fast_m_per_day"])
        return {"fast_share": float(fast.mean()), "cells": int(inside.sum())}


class CalibratedInJanuary(Weighting):
    """A fitted scheme whose fit is only possible in January: the other months must borrow it."""

    name = "calibrated-in-january"

    def fit(self, fields, reference, *, month):
        if month.number != 1:
            raise InputError("no calibration data this month", source=self.name)
        return WeightFit({name: 1.0 / len(fields) for name in fields}, cells_used=7, residual_rms_m_per_day=0.0)

    def fuse(self, fields, *, fitted=None):
        stack = fusion.stack_fields(fields)
        weights = fusion.weights_vector(stack, fitted.weights)
        return fusion.fusion_result(stack, fusion.renormalise(weights, stack.valid), dt_days=29.0,
                                    weights=dict(fitted.weights),
                                    details={"scheme": self.name, "borrowed_from": fitted.borrowed_from})


@hookimpl
def gvfuse_register_validators():
    return [FastShare]


@hookimpl
def gvfuse_register_weightings():
    return [CalibratedInJanuary]
'''


def test_third_party_validator_context_and_fitted_weighting_work_in_a_run(workspace, plugin_site):
    from gvfuse.plugins import load_plugins
    from tests.helpers.plugins import fake_distribution

    fake_distribution(plugin_site, "gvfuse-thirdparty", "thirdparty_run", THIRD_PARTY)
    plugins = load_plugins()
    text = (workspace / "run.toml").read_text().replace('output_dir = "out"', 'output_dir = "out-thirdparty"')
    text = text.replace('name = "inverse-variance"', 'name = "calibrated-in-january"')
    text = text.replace('validators = ["stable-ground", "strain-rate", "uav"]', 'validators = ["fast-share", "uav"]')
    config_path = workspace / "thirdparty.toml"
    config_path.write_text(text + '[validation.context]\nice_outline = "masks/ice.tif"\nfast_m_per_day = 0.2\n')
    result = execute(load_config(config_path, plugins), plugins=plugins)
    assert not result.failed_months, result.problems
    january, march = (m.product for m in result.months)
    share = january.validation["fast-share"]
    assert 0 < share["fused"]["fast_share"] < 1 and share["fused"]["cells"] > 100
    assert share["optical"] == share["fused"]  # per sensor too; one sensor: the same map
    assert january.validation["uav"] == {"skipped": "no reference for this month"}
    assert january.validation["weighting"]["borrowed_from"] == ""
    assert march.validation["weighting"]["borrowed_from"] == "2023-01"
    assert march.validation["weighting"]["fit_not_possible"] == "calibrated-in-january: no calibration data this month"
    item = json.loads((workspace / "out-thirdparty" / "items" / "run-test-202303.json").read_text())
    assert item["properties"]["gvfuse:provenance"]["validation"]["fast-share"]["fused"]["cells"] > 100


def test_unknown_component_names_fail_before_any_pair_is_tracked(workspace, plugins):
    text = (workspace / "run.toml").read_text()
    for old, new, field in (('tracker = "ncc"', 'tracker = "nosuch"', "sensors.optical.tracker"),
                            ('reader = "geotiff"', 'reader = "nosuch"', "sensors.optical.reader"),
                            ('name = "inverse-variance"', 'name = "nosuch"', "weighting.name"),
                            ('validators = ["stable-ground"', 'validators = ["nosuch"', "validation.validators")):
        bad = workspace / "bad-name.toml"
        bad.write_text(text.replace(old, new))
        with pytest.raises(ConfigError, match=rf"\[{field}\].*no \w+ named 'nosuch'"):
            build_plan(load_config(bad, plugins), plugins)


def test_a_fusion_over_time_publishes_every_month_with_its_pair_count(workspace, plugins):
    text = (workspace / "run.toml").read_text().replace('output_dir = "out"', 'output_dir = "out-time"')
    text = text.replace('pairing = "optical"', 'pairing = "network"\npair_rules = { max_dt_days = 32 }')
    text = text.replace('[weighting]\nname = "inverse-variance"', '[fusion]\nname = "time-series"\n'
                        'parameters = { min_observations = 1, sample_cells = 256, scale_sample_cells = 256 }\n'
                        'glacier_mask = "masks/ice.tif"')
    config_path = workspace / "time.toml"
    config_path.write_text(text)
    config = load_config(config_path, plugins)

    def ambient(*args, **kwargs):  # what dask would use otherwise: e.g. a closed client left as the default
        raise AssertionError("the fusion computed on dask's ambient scheduler, not the run's")

    with dask.config.set(scheduler=ambient):
        result = execute(config, plugins=plugins)
    assert not result.failed_months, result.problems
    january = result.months[0].product
    details = january.validation["weighting"]
    assert details["scheme"] == "time-series" and details["pairs"] == 3  # Jan-Jan, Jan-Mar, Mar-Mar
    # the glacier mask reached the fusion: the smear at the glacier's edge, per band of cells (half the
    # 32 px window of 15 m pixels on the product's cells)
    bands = inv.margin_bands([32 * 15.0], january.grid.pixel_size_m[0])
    assert len(details["margin_smear_rms_m_per_day"]) == bands >= 1
    assert any(v is not None for v in details["margin_smear_rms_m_per_day"])  # measured, not only listed
    valid = np.isfinite(january.vx_m_per_day)
    assert valid.mean() > 0.5 and np.all(january.count[valid] >= 1)
    item = json.loads((workspace / "out-time" / "items" / "run-test-202301.json").read_text())
    provenance = item["properties"]["gvfuse:provenance"]
    assert provenance["parameters"]["fusion"] == "time-series" and "weighting" not in provenance["parameters"]
    # the pair spanning January to March informs both months
    assert {p["pair_id"] for p in provenance["pairs"]} >= {"optical_20230130_X_optical_20230301"}


def test_a_refused_month_stays_refused_and_a_corrupt_state_file_is_no_state(workspace, plugins):
    text = (workspace / "run.toml").read_text().replace('output_dir = "out"', 'output_dir = "out-refuse"')
    first = workspace / "refuse.toml"
    first.write_text(text)
    result = execute(load_config(first, plugins), plugins=plugins)
    assert not result.failed_months, result.problems
    product = workspace / "out-refuse" / "202301_vx.tif"
    before = product.read_bytes()
    # other inputs (another weighting) for the published months: refused, and refused again on the next run
    changed = workspace / "refuse-changed.toml"
    changed.write_text(text.replace('name = "inverse-variance"', 'name = "equal"'))
    for _ in range(2):
        again = execute(load_config(changed, plugins), plugins=plugins)
        assert set(again.failed_months) == {o.month for o in again.months}
        assert all("already" in (o.error or "") for o in again.months)
        assert product.read_bytes() == before
    # a state file emptied by a crash of an older version is no state: the month, already there, is refused
    state = load_config(changed, plugins).state_dir / "months" / "2023-01.json"
    state.write_text("")
    again = execute(load_config(changed, plugins), plugins=plugins)
    assert "already" in (again.months[0].error or "") and product.read_bytes() == before
    # with the original inputs March, whose state is intact, is recognised as published; January, whose
    # state was lost, can only be replaced with force, which gives the same bytes again
    original = execute(load_config(first, plugins), plugins=plugins)
    assert original.failed_months == [original.months[0].month]
    assert not execute(load_config(first, plugins), plugins=plugins, force=True).failed_months
    assert product.read_bytes() == before


def test_a_failed_forced_publication_does_not_let_the_next_plain_run_replace_the_month(workspace, plugins):
    from gvfuse.hookspecs import hookimpl
    from gvfuse.plugins import PluginInfo

    class Failing:
        @hookimpl
        def gvfuse_stac_item_ready(self, item, product):
            raise RuntimeError("the catalog service is down")

    text = (workspace / "run.toml").read_text().replace('output_dir = "out"', 'output_dir = "out-failforce"')
    first = workspace / "failforce.toml"
    first.write_text(text)
    assert not execute(load_config(first, plugins), plugins=plugins).failed_months
    product = workspace / "out-failforce" / "202301_vx.tif"
    before = product.read_bytes()
    changed = workspace / "failforce-changed.toml"
    changed.write_text(text.replace('name = "inverse-variance"', 'name = "equal"'))
    failing = load_plugins()
    failing.add(Failing(), PluginInfo("failing", "test", "0", "tests"))
    forced = execute(load_config(changed, failing), plugins=failing, force=True)
    assert forced.failed_months and product.read_bytes() == before
    # the forced attempt failed: without --force the changed inputs are still refused
    plain = execute(load_config(changed, plugins), plugins=plugins)
    assert all("already" in (o.error or "") for o in plain.months) and product.read_bytes() == before


def test_a_month_fused_to_no_valid_cell_fails_instead_of_publishing_an_empty_product(workspace, plugins,
                                                                                     monkeypatch):
    import attrs

    import gvfuse.pipeline.run as run_module

    original = run_module._fuse_by_month

    def emptied(*args, **kwargs):
        out = original(*args, **kwargs)
        return {m: r if isinstance(r, str) else attrs.evolve(r, field=attrs.evolve(
            r.field, vx_m_per_day=np.full_like(r.field.vx_m_per_day, np.nan),
            vy_m_per_day=np.full_like(r.field.vy_m_per_day, np.nan))) for m, r in out.items()}

    monkeypatch.setattr(run_module, "_fuse_by_month", emptied)
    text = (workspace / "run.toml").read_text().replace('output_dir = "out"', 'output_dir = "out-empty"')
    (workspace / "empty.toml").write_text(text)
    result = execute(load_config(workspace / "empty.toml", plugins), plugins=plugins)
    assert set(result.failed_months) == {o.month for o in result.months}
    assert all("no cell with a velocity" in (o.error or "") for o in result.months)
    assert not (workspace / "out-empty" / "202301_vx.tif").exists()


def test_a_project_copied_elsewhere_is_already_published_and_publishes_the_same_bytes(workspace, plugins, tmp_path):
    import shutil

    text = (workspace / "run.toml").read_text().replace('output_dir = "out"', 'output_dir = "out-moved"')
    (workspace / "moved.toml").write_text(text)
    assert not execute(load_config(workspace / "moved.toml", plugins), plugins=plugins).failed_months
    copy = tmp_path / "elsewhere"
    shutil.copytree(workspace, copy, symlinks=True)  # as cp -a: times kept
    again = execute(load_config(copy / "moved.toml", plugins), plugins=plugins)
    assert not again.failed_months, again.problems  # the same inputs: nothing refused
    shutil.rmtree(copy / "out-moved")  # published afresh from the moved project: the same bytes
    fresh = execute(load_config(copy / "moved.toml", plugins), plugins=plugins)
    assert not fresh.failed_months
    for name in ("items/run-test-202301.json", "202301_vx.tif", "catalog.yaml"):
        assert (copy / "out-moved" / name).read_bytes() == (workspace / "out-moved" / name).read_bytes(), name


def test_a_publication_whose_state_is_in_the_earlier_cache_folder_is_rerun_without_refusal(workspace, plugins):
    legacy_cfg = workspace / "legacy.toml"
    legacy_cfg.write_text((workspace / "run.toml").read_text().replace('output_dir = "out"',
                                                                        'output_dir = "out-legacy"'))
    config = load_config(legacy_cfg, plugins)
    assert not execute(config, plugins=plugins).failed_months
    old = workspace / "out-legacy" / ".cache"
    old.mkdir()
    (config.state_dir / "months").rename(old / "months")  # where gvfuse kept it before 2026-12-03
    again = execute(config, plugins=plugins)
    assert not again.failed_months, again.problems  # same inputs: recognised, not "already published"
    assert any(".cache: the pair cache of an earlier gvfuse" in p for p in again.plan.problems)


def test_a_run_file_chooses_the_band_of_plain_rasters(tmp_path):
    """``sensors.<name>.band`` reaches the reader (a band the scenes lack is the pair's problem, named), enters
    the pair's cache key only when given, and a sensor format refuses it naming the key."""
    from gvfuse.pipeline.pair import process_pair
    from tests.helpers.scenes import optical_pair_run

    plugins = load_plugins()
    run_file = optical_pair_run(tmp_path, "band-choice")
    [plain] = build_plan(load_config(run_file, plugins), plugins).jobs
    run_file.write_text(run_file.read_text().replace('reader = "geotiff"\n', 'reader = "geotiff"\nband = 2\n'))
    [second] = build_plan(load_config(run_file, plugins), plugins).jobs
    assert (plain.band, second.band) == (None, 2) and plain.key != second.key
    outcome = process_pair(second)
    assert outcome.path is None and "has 1 band(s), band 2 requested" in outcome.error
    assert process_pair(plain).path is not None
    for value, problem in (("0", "must be an integer >= 1"), ('"red"', "must be an integer >= 1"),
                           ("true", "must be an integer >= 1")):
        run_file.write_text(re.sub(r"band = .*\n", f"band = {value}\n", run_file.read_text()))
        with pytest.raises(ConfigError, match=rf"\[sensors.optical.band\]: {problem}"):
            load_config(run_file, plugins)
    landsat = tmp_path / "landsat.toml"
    landsat.write_text('product = "gangrigab-2023"\n[sensors.landsat]\nband = 1\n')
    with pytest.raises(ConfigError, match=r"\[sensors.landsat.band\].*reads its sensor's own tracking band"):
        build_plan(load_config(landsat, plugins), plugins)


def _glacier_only_run(workspace: Path, name: str) -> Path:
    """The workspace's run over time with a glacier mask and no stable mask, publishing to ``out-<name>``."""
    text = (workspace / "run.toml").read_text().replace('stable_mask = "masks/stable.tif"\n', "")
    text = text.replace('output_dir = "out"', f'output_dir = "out-{name}"')
    run_file = workspace / f"{name}.toml"
    run_file.write_text(text.replace('[weighting]\nname = "inverse-variance"',
                                     '[fusion]\nname = "time-series"\n'
                                     'parameters = { min_observations = 1, sample_cells = 256, '
                                     'scale_sample_cells = 256 }\n'
                                     'glacier_mask = "masks/ice.tif"'))
    return run_file


def test_without_a_stable_mask_the_months_are_validated_on_the_ground_outside_the_glaciers(workspace, plugins):
    config = load_config(_glacier_only_run(workspace, "glacier-validated"), plugins)
    result = execute(config, plugins=plugins)
    assert not result.failed_months, result.problems
    january = result.months[0]
    stable = january.figures["stable-ground"]["fused"]
    ice = load_mask(workspace / "masks" / "ice.tif", january.product.grid)
    assert stable["cell_count"] == int((~ice).sum()) > 0  # every cell outside the glaciers, none on them
    assert abs(stable["vx_median_m_per_day"]) < 0.01 and abs(stable["vy_median_m_per_day"]) < 0.01
    assert "stable_ground_error_calibration" in january.product.validation["weighting"]
    item = json.loads((workspace / "out-glacier-validated" / "items" / "run-test-202301.json").read_text())
    assert item["properties"]["gvfuse:provenance"]["parameters"]["masks"] == {"glacier_mask": "ice.tif"}


def test_a_glacier_mask_puts_the_tracking_correction_on_the_ground_outside_the_glaciers(workspace, plugins, tmp_path):
    import attrs

    from gvfuse.pipeline.pair import process_pair, read_pair_info

    run_file = _glacier_only_run(workspace, "glacier-only")
    job = build_plan(load_config(run_file, plugins), plugins).jobs[0]
    assert job.stable_mask is None and job.glacier_mask == workspace / "masks" / "ice.tif"
    unmasked = attrs.evolve(job, glacier_mask=None, cache_dir=tmp_path / "plain")
    assert unmasked.key != job.key  # another correction, another result
    shifts = {}
    for name, each in (("glacier", attrs.evolve(job, cache_dir=tmp_path / "glacier")), ("rule", unmasked)):
        outcome = process_pair(each)
        assert outcome.path is not None, outcome.error
        info = read_pair_info(outcome.path)["tracker_parameters"]
        shifts[name] = (info["stable_shift_source"], info["stable_shift_dx_px"], info["stable_shift_dy_px"])
    # the pair's (0.2, -0.1) px geolocation shift, measured off the ice; the slowest-fraction rule agrees here,
    # where the scene shows rock beside moving ice
    assert shifts["glacier"][0] == "mask" and shifts["rule"][0] == "slowest-fraction"
    assert shifts["glacier"][1:] == pytest.approx((0.2, -0.1), abs=0.03)


def test_cells_at_the_product_edge_are_tracked_when_the_scenes_reach_beyond_it(tmp_path, plugins, monkeypatch):
    """A satellite scene covers far more than a glacier's product area: the cells along the area's edge are
    matched on whole windows from the pixels beyond it, as well as the rest. Without the halo, a band of
    half a window plus the search radius along the edge had no value."""
    import attrs
    from affine import Affine

    import gvfuse.pipeline.run as run_module
    from gvfuse.model import Grid, VelocityField
    from gvfuse.pipeline.regrid import regrid_field
    from tests.helpers.scenes import optical_pair_run

    optical_pair_run(tmp_path, "halo", shape=(256, 256), days=("20230105", "20230125"),
                     tracker_parameters="{ window_px = 32, step_px = 2 }", seed=21)
    # the same pair as the helper's, for its truth
    pair = make_pair("optical", (256, 256), dt_days=20, max_speed_m_per_day=0.5, cloud_fraction=0.0, seed=21)
    # the product: the scenes' middle, 600 m inside their edges (more than the 32 px window's half and the radius)
    t = pair.grid.transform
    inner = Grid(pair.grid.crs, Affine(15.0, 0.0, t.c + 600.0, 0.0, -15.0, t.f - 600.0), (176, 176))
    (tmp_path / "product.toml").write_text(product_toml(inner, "halo", "one month", "2023-01", "2023-01"))

    def edge_and_inside(output: str) -> tuple[float, float, float]:
        config = load_config(tmp_path / "run.toml", plugins)
        config = attrs.evolve(config, output_dir=tmp_path / output, pair_cache_dir=tmp_path / f"{output}-cache")
        result = execute(config, plugins=plugins)
        assert not result.failed_months, result.problems
        bands, grid = read_month_bands(config.output_dir, Month(2023, 1), ("vx", "vy"))
        truth = regrid_field(VelocityField(pair.dx_px * 15.0 / 20.0, -pair.dy_px * 15.0 / 20.0, pair.grid, 20.0),
                             grid)
        error = np.hypot(bands["vx"] - truth.vx_m_per_day, bands["vy"] - truth.vy_m_per_day)
        ring = np.zeros(grid.shape, bool)
        ring[:3], ring[-3:], ring[:, :3], ring[:, -3:] = True, True, True, True
        valid = np.isfinite(error)
        return float(valid[ring].mean()), float(np.sqrt(np.mean(error[ring & valid] ** 2))), float(
            np.sqrt(np.mean(error[~ring & valid] ** 2)))

    covered, ring_rmse, inside_rmse = edge_and_inside("with-halo")
    assert covered > 0.95
    assert ring_rmse < 1.5 * inside_rmse + 0.002  # the edge is tracked like the inside, not worse
    monkeypatch.setattr(run_module, "tracking_halo_m", lambda *args: 0.0)  # the product area alone, as before
    covered_before, _, _ = edge_and_inside("without-halo")
    assert covered_before < 0.2
