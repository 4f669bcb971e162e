"""Every bundled plugin class against the contract of its kind, built from the registry.

A new bundled reader, tracker, weighting, validator or publisher is tested
here as soon as its module registers it: no test needs to name it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from affine import Affine
from scipy import ndimage

from gvfuse.errors import OutputExistsError
from gvfuse.interfaces import CONTEXT_KINDS
from gvfuse.model import FusionResult, Grid, Image, Month, OffsetField, WeightFit
from gvfuse.pipeline.validate import ValidationContext, run_validators
from gvfuse.plugins import Registration, load_plugins
from gvfuse.product import load_product
from gvfuse.publish.provenance import canonical
from gvfuse.testing.products import synthetic_monthly_product
from tests.helpers.fields import field, noisy_sensors, truth

BUNDLED = load_plugins()


def bundled(kind: str) -> list[Registration]:
    regs = [r for r in BUNDLED.registry[kind].values() if r.plugin.distribution == "gvfuse"]
    assert regs, f"no bundled {kind}"
    return sorted(regs, key=lambda r: r.name)


def ids(regs: list[Registration]) -> list[str]:
    return [r.name for r in regs]


@pytest.mark.parametrize("reg", bundled("readers"), ids=ids(bundled("readers")))
def test_reader_describes_itself_and_detects_nothing_unrelated(reg, tmp_path):
    (tmp_path / "notes.txt").write_text("not a scene")
    (tmp_path / "empty.SAFE").mkdir()
    assert reg.cls.sensor and reg.cls.description and isinstance(reg.cls.priority, int)
    for path in (tmp_path / "notes.txt", tmp_path / "empty.SAFE", tmp_path / "missing.tif"):
        assert reg.cls.detect(path) is False


@pytest.mark.parametrize("reg", bundled("trackers"), ids=ids(bundled("trackers")))
def test_tracker_measures_a_known_translation_on_the_window_centre_grid(reg):
    rng = np.random.default_rng(0)
    base = ndimage.gaussian_filter(rng.standard_normal((176, 176)), 1.5).astype(np.float32)
    grid = Grid(32647, Affine(15, 0, 400000, 0, -15, 3250000), (144, 144))
    reference, secondary = base[16:160, 16:160], base[15:159, 14:158]  # content moves by (+2, +1) px
    tracker = reg.cls(window_px=32, step_px=4, correct_stable_ground=False)
    offsets = tracker.track(Image(reference, grid, "r"), Image(secondary, grid, "s"), search_radius_px=4)
    assert isinstance(offsets, OffsetField) and offsets.grid == grid.window_centre_grid(4, 32)
    assert np.isfinite(offsets.dx_px).mean() > 0.9
    assert np.nanmedian(offsets.dx_px) == pytest.approx(2.0, abs=0.02)
    assert np.nanmedian(offsets.dy_px) == pytest.approx(1.0, abs=0.02)
    with pytest.raises(TypeError, match="no parameter"):
        reg.cls(no_such_parameter=1)


@pytest.mark.parametrize("reg", bundled("weightings"), ids=ids(bundled("weightings")))
def test_weighting_fuses_identical_sensors_to_themselves_and_says_where_each_contributed(reg):
    one = noisy_sensors({"a": 0.05}, {"a": 0.8}, seed=1)[0]["a"]
    fields = {"a": one, "b": one}
    tx, ty = truth()
    scheme = reg.cls()
    fit = scheme.fit(fields, field(tx, ty, 0.01), month=Month(2023, 7))
    assert fit is None or isinstance(fit, WeightFit)
    result = scheme.fuse(fields, fitted=fit)
    assert isinstance(result, FusionResult) and set(result.contributing) <= {"a", "b"}
    np.testing.assert_allclose(result.field.vx_m_per_day, one.vx_m_per_day, rtol=1e-5, atol=1e-6)
    has = np.isfinite(result.field.vx_m_per_day)
    np.testing.assert_array_equal(has, np.isfinite(one.vx_m_per_day))
    assert np.all(np.isfinite(result.field.quality["v_error_m_per_day"][has]))
    assert json.dumps(canonical(result.details)) and json.dumps(canonical(result.weights))


@pytest.mark.parametrize("reg", bundled("validators"), ids=ids(bundled("validators")))
def test_validator_declares_its_context_and_returns_json_figures(reg, tmp_path):
    assert set(reg.cls.needs.values()) <= set(CONTEXT_KINDS)
    pairs, (tx, ty) = noisy_sensors({"map": 0.02}, {"map": 0.9}, seed=2, shape=(60, 80))
    the_map = pairs["map"]
    rows = np.arange(the_map.grid.rows)[:, None] * np.ones(the_map.grid.cols)
    masks = {"top": (rows < 10).astype("float32"), "middle": ((rows > 15) & (rows < 45)).astype("float32")}
    from gvfuse.io.raster import write_bands

    for name, values in masks.items():
        write_bands(tmp_path / f"{name}.tif", {name: values}, the_map.grid, cog=False)
    # every mask entry is the quiet top rows (stable ground) or the glacier band: a value for every need
    entries = {key: (tmp_path / ("top.tif" if "stable" in key else "middle.tif") if kind in ("mask", "path") else 1.0)
               for key, kind in reg.cls.needs.items() if kind != "reference"}
    figures = run_validators(BUNDLED, [reg.name], the_map, {"sensor": the_map}, ValidationContext(entries, tmp_path),
                             reference=field(tx, ty, 0.01))[reg.name]
    assert "error" not in figures and "skipped" not in figures, figures
    assert set(figures) == ({"fused", "sensor"} if reg.cls.per_sensor else {"fused"})
    json.dumps(canonical(figures))
    assert all(isinstance(line, str) for line in reg.cls.summarise(figures["fused"]))
    missing = run_validators(BUNDLED, [reg.name], the_map, {}, ValidationContext({}, tmp_path))[reg.name]
    assert missing == {"skipped": missing["skipped"]} if reg.cls.needs else "fused" in missing


@pytest.mark.parametrize("reg", bundled("publishers"), ids=ids(bundled("publishers")))
def test_publisher_writes_inside_its_folder_and_refuses_to_overwrite(reg, tmp_path):
    publisher = reg.cls(definition=load_product("gangrigab-2023"), plugins=BUNDLED)
    paths = publisher.publish(synthetic_monthly_product("2023-05"), tmp_path)
    assert paths and all(p.is_file() and p.resolve().is_relative_to(tmp_path.resolve()) for p in paths)
    before = {p: p.read_bytes() for p in paths}
    with pytest.raises(OutputExistsError):
        publisher.publish(synthetic_monthly_product("2023-05"), tmp_path)
    assert publisher.publish(synthetic_monthly_product("2023-05"), tmp_path, force=True) == paths
    assert {p: p.read_bytes() for p in paths} == before  # the same product gives the same bytes
