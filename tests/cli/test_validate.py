"""``gvfuse validate``: JSON figures, summary, plots and clear errors (CliRunner on the command object)."""

import json

import numpy as np
import pytest
import shapely
from affine import Affine
from click.testing import CliRunner

from gvfuse.cli.validate import validate_command
from gvfuse.io.raster import write_bands
from gvfuse.model import Grid

GRID = Grid(32647, Affine(30.0, 0, 400000, 0, -30.0, 3250000), (60, 80))


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:GRID.rows, 0:GRID.cols]
    ice = (rows >= 30)
    vx = np.where(ice, 0.5 + 2e-4 * 30.0 * cols, 0.0) + rng.normal(0, 0.02, GRID.shape)
    vy = rng.normal(0, 0.02, GRID.shape)
    product = write_bands(tmp_path / "202301.tif", {"vx": vx, "vy": vy, "v": np.hypot(vx, vy)}, GRID)
    uav = write_bands(tmp_path / "uav.tif", {"vx": vx - 0.03, "vy": vy + 0.01}, GRID)
    on_ice = write_bands(tmp_path / "ice.tif", {"ice": ice.astype("float32")}, GRID)
    import pyogrio.raw

    stable = tmp_path / "stable.geojson"
    box = shapely.box(400000 + 30 * 2, 3250000 - 30 * 28, 400000 + 30 * 78, 3250000 - 30 * 2)
    pyogrio.raw.write(stable, geometry=shapely.to_wkb([box]), field_data=[], fields=[], crs="EPSG:32647",
                      driver="GeoJSON", geometry_type="Polygon")
    return {"product": product, "uav": uav, "ice": on_ice, "stable": stable, "tmp": tmp_path}


def test_json_output_has_the_three_keys_with_their_figures(files):
    result = CliRunner().invoke(validate_command, [
        str(files["product"]), "--stable-mask", str(files["stable"]), "--on-ice-mask", str(files["ice"]),
        "--reference", str(files["uav"]), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert set(figures) == {"stable-ground", "uav", "strain-rate"}
    sg = figures["stable-ground"]
    assert sg["cell_count"] == 26 * 76 and sg["invalid_percent"] == 0
    assert sg["vx_std_m_per_day"] == pytest.approx(0.02, rel=0.1)
    assert {"delta_x_m_per_day", "delta_y_m_per_day", "kde_peak_vx_m_per_day", "wrong_match_percent",
            "vx_nmad_m_per_day", "vx_normality_p_value"} <= set(sg)
    assert figures["uav"]["vx_bias_m_per_day"] == pytest.approx(0.03, abs=1e-5)
    assert figures["uav"]["vy_bias_m_per_day"] == pytest.approx(-0.01, abs=1e-5)
    assert {"delta_xx_per_day", "delta_xy_per_day"} <= set(figures["strain-rate"])


def test_validators_without_their_input_are_skipped_and_the_summary_is_readable(files):
    runner = CliRunner()
    result = runner.invoke(validate_command, [str(files["product"]), "--stable-mask", str(files["stable"]), "--json"])
    figures = json.loads(result.output)
    assert figures["uav"] == {"skipped": "no reference given"}
    assert figures["strain-rate"] == {"skipped": "no on ice mask given"}
    assert figures["stable-ground"]["valid_count"] > 0
    result = runner.invoke(validate_command, [str(files["product"]), "--stable-mask", str(files["stable"])])
    assert result.exit_code == 0
    assert "stable ground" in result.output and "GLAFT metric 1" in result.output
    assert "uav: skipped (no reference given)" in result.output


def test_without_a_stable_mask_the_ground_outside_the_glaciers_is_the_stable_ground(files):
    result = CliRunner().invoke(validate_command, [str(files["product"]), "--glacier-mask", str(files["ice"]),
                                                   "--json"])
    assert result.exit_code == 0, result.output
    sg = json.loads(result.output)["stable-ground"]
    assert sg["cell_count"] == 30 * 80  # the rows above the ice
    assert sg["vx_std_m_per_day"] == pytest.approx(0.02, rel=0.1) and abs(sg["vx_median_m_per_day"]) < 0.01
    # a stable mask given too: its cells outside the glaciers (rows 2-27 of the box, the ice from row 20 on here)
    ice = files["tmp"] / "ice20.tif"
    write_bands(ice, {"ice": (np.mgrid[0:GRID.rows, 0:GRID.cols][0] >= 20).astype("float32")}, GRID)
    both = CliRunner().invoke(validate_command, [str(files["product"]), "--glacier-mask", str(ice),
                                                 "--stable-mask", str(files["stable"]), "--json"])
    assert json.loads(both.output)["stable-ground"]["cell_count"] == 18 * 76


def test_an_all_ice_map_has_its_stable_ground_figures_skipped_not_an_error(files):
    everywhere = files["tmp"] / "all-ice.tif"
    write_bands(everywhere, {"ice": np.ones(GRID.shape, "float32")}, GRID)
    result = CliRunner().invoke(validate_command, [str(files["product"]), "--glacier-mask", str(everywhere),
                                                   "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["stable-ground"] == {"skipped": "no stable ground outside the glaciers given"}


def test_two_single_band_files_and_plots(files):
    vx = write_bands(files["tmp"] / "vx.tif",
                     {"band": np.random.default_rng(2).normal(0.1, 0.05, GRID.shape).astype("float32")}, GRID)
    vy = write_bands(files["tmp"] / "vy.tif",
                     {"band": np.random.default_rng(1).normal(0, 0.05, GRID.shape).astype("float32")}, GRID)
    plots = files["tmp"] / "plots"
    result = CliRunner().invoke(validate_command, [
        "--vx", str(vx), "--vy", str(vy), "--stable-mask", str(files["stable"]), "--reference", str(files["uav"]),
        "--plots", str(plots)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in plots.iterdir()} == {"velocity_map.png", "stable_ground_histogram.png", "uav_scatter.png"}


def test_errors_name_the_file_and_exit_non_zero(files):
    runner = CliRunner()
    result = runner.invoke(validate_command, [str(files["ice"]), "--json"])
    assert result.exit_code == 1 and "ice.tif" in result.output and "vx" in result.output
    empty = write_bands(files["tmp"] / "empty.tif", {"m": np.zeros(GRID.shape, "float32")}, GRID)
    result = runner.invoke(validate_command, [str(files["product"]), "--stable-mask", str(empty)])
    assert result.exit_code == 1 and "empty.tif" in result.output and "no cell" in result.output
    result = runner.invoke(validate_command, ["--vx", str(files["product"])])
    assert result.exit_code == 1 and "--vy" in result.output


def test_a_registered_third_party_validator_runs_with_its_own_context(files, plugin_site, monkeypatch):
    import gvfuse.plugins
    from tests.helpers.plugins import fake_distribution

    fake_distribution(plugin_site, "gvfuse-fast", "thirdparty_fast", '''
        import numpy as np
        from gvfuse import hookimpl
        from gvfuse.interfaces import Validator

        class FastShare(Validator):
            name = "fast-share"
            needs = {"ice_outline": "mask", "fast_m_per_day": "value"}

            def validate(self, field, **context):
                inside = context["ice_outline"] & np.isfinite(field.vx_m_per_day)
                return {"fast_share": float((field.speed_m_per_day[inside] > float(context["fast_m_per_day"])).mean())}

        @hookimpl
        def gvfuse_register_validators():
            return [FastShare]
    ''')
    plugins = gvfuse.plugins.load_plugins()
    monkeypatch.setattr(gvfuse.plugins, "get_plugins", lambda: plugins)
    runner = CliRunner()
    # 0.737 m/day: the speed of the middle column.
    args = [str(files["product"]), "--context", f"ice_outline={files['ice']}", "--context", "fast_m_per_day=0.737"]
    result = runner.invoke(validate_command, [*args, "--validator", "fast-share", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"fast-share": {"fast_share": pytest.approx(0.5, abs=0.1)}}
    text = runner.invoke(validate_command, args)  # every registered validator: bundled ones skip without input
    assert text.exit_code == 0, text.output
    assert "fast-share:\n  fast_share: 0." in text.output
    assert "stable-ground: skipped (no stable mask given)" in text.output
    missing = runner.invoke(validate_command, [str(files["product"]), "--validator", "fast-share", "--json"])
    assert json.loads(missing.output) == {"fast-share": {"skipped": "no ice outline given"}}
    bad = runner.invoke(validate_command, [str(files["product"]), "--context", "no-equals-sign"])
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output
