"""``gvfuse track``: output format, time baseline, grids, masks, and bad input that leaves no file behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from gvfuse.cli.track import track_command
from gvfuse.io.raster import write_bands
from gvfuse.testing import make_pair
from gvfuse.testing.motion import Translation

SHAPE = (128, 128)


@pytest.fixture(scope="module")
def pair():
    return make_pair("optical", SHAPE, seed=3, max_speed_m_per_day=1.5, cloud_fraction=0.0,
                     geolocation_shift_px=(0.3, 0.0))


@pytest.fixture()
def files(pair, tmp_path) -> dict[str, Path]:
    return pair.write_geotiffs(tmp_path / "in")


def run(*args: object) -> object:
    return CliRunner().invoke(track_command, [str(a) for a in args])


def test_writes_a_described_cog_with_tags(pair, files, tmp_path):
    out = tmp_path / "v.tif"
    result = run(files["reference"], files["secondary"], "-o", out, "--dt", pair.dt_days, "--max-speed", 2,
                 "--tracker", "ncc", "--window", 32, "--step", 4)
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        assert src.descriptions[:3] == ("vx", "vy", "v")
        assert {"peak_correlation", "snr", "valid"} <= set(src.descriptions)
        assert src.dtypes[0] == "float32" and np.isnan(src.nodata)
        assert src.profile.get("tiled") and src.overviews(1) is not None  # COG layout
        tags = src.tags()
        assert src.tags(1)["unit"] == "m/d"
        vx, vy, v = src.read(1), src.read(2), src.read(3)
        grid_transform = src.transform
    assert tags["tracker"] == "ncc" and float(tags["dt_days"]) == pair.dt_days
    params = json.loads(tags["parameters"])
    assert params["window_px"] == 32 and params["step_px"] == 4 and params["search_radius_px"] >= 2
    stable = json.loads(tags["stable_ground_correction"])
    assert stable["source"] == "slowest-fraction" and stable["dx_px"] == pytest.approx(0.3, abs=0.03)
    assert tags["reference"].endswith("synthetic_reference.tif")
    # window-centre grid at the step spacing, east/north velocity against the truth
    out_grid = pair.grid.window_centre_grid(4, 32)
    assert tuple(grid_transform)[:6] == pytest.approx(tuple(out_grid.transform)[:6])
    tvx, tvy = pair.true_velocity_on(out_grid, window_px=32)
    ok = np.isfinite(vx)
    assert ok.mean() > 0.9
    scale = pair.pixel_size_m / pair.dt_days  # 1 px in m/day
    assert np.sqrt(np.mean((vx[ok] - tvx[ok]) ** 2 + (vy[ok] - tvy[ok]) ** 2)) < 0.15 * scale
    np.testing.assert_allclose(v[ok], np.hypot(vx[ok], vy[ok]), rtol=1e-5)


def test_existing_output_refused_without_force(pair, files, tmp_path):
    out = tmp_path / "v.tif"
    out.write_bytes(b"keep me")
    result = run(files["reference"], files["secondary"], "-o", out, "--dt", 16)
    assert result.exit_code != 0 and "--force" in result.output and out.read_bytes() == b"keep me"
    result = run(files["reference"], files["secondary"], "-o", out, "--dt", 16, "--tracker", "ncc",
                 "--window", 32, "--step", 8, "--force")
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        assert src.count >= 3


def test_baseline_from_dated_scenes_and_warning_on_disagreement(pair, tmp_path):
    ref = write_bands(tmp_path / "ref_20230105.tif", {"B8": pair.reference}, pair.grid, cog=False)
    sec = write_bands(tmp_path / "sec_20230121.tif", {"B8": pair.secondary}, pair.grid, cog=False)
    out = tmp_path / "v.tif"
    result = run(ref, sec, "-o", out, "--tracker", "ncc", "--window", 32, "--step", 8, "--dt", 30)
    assert result.exit_code == 0, result.output
    assert "disagrees" in result.output
    with rasterio.open(out) as src:
        assert float(src.tags()["dt_days"]) == pytest.approx(16.0) and src.tags()["dt_source"] == "scene dates"
    # reversed order: negative baseline from the dates
    bad = tmp_path / "bad.tif"
    result = run(sec, ref, "-o", bad, "--tracker", "ncc", "--window", 32)
    assert result.exit_code != 0 and "not later" in result.output and not bad.exists()


def test_secondary_in_another_crs_is_loaded_onto_the_reference_grid(pair, files, tmp_path):
    from rasterio.warp import calculate_default_transform, reproject

    dst_crs = "EPSG:32646"
    with rasterio.open(files["secondary"]) as src:
        transform, width, height = calculate_default_transform(src.crs, dst_crs, src.width, src.height, *src.bounds)
        data = np.full((height, width), np.nan, np.float32)
        reproject(src.read(1), data, src_transform=src.transform, src_crs=src.crs, dst_transform=transform,
                  dst_crs=dst_crs, src_nodata=np.nan, dst_nodata=np.nan)
    from gvfuse.model import Grid

    sec = write_bands(tmp_path / "sec_utm46.tif", {"B8": data}, Grid(dst_crs, transform, (height, width)), cog=False)
    out = tmp_path / "v.tif"
    result = run(files["reference"], sec, "-o", out, "--dt", 16, "--tracker", "ncc", "--window", 32, "--step", 8)
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        assert src.crs == pair.grid.crs
        assert np.isfinite(src.read(1)).mean() > 0.5


def test_stable_mask_raster_is_used(pair, files, tmp_path):
    mask = write_bands(tmp_path / "stable.tif", {"stable": pair.stable_mask.astype(np.float32)}, pair.grid, cog=False)
    out = tmp_path / "v.tif"
    result = run(files["reference"], files["secondary"], "-o", out, "--dt", 16, "--tracker", "ncc",
                 "--window", 32, "--step", 8, "--stable-mask", mask)
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        tags = src.tags()
    assert json.loads(tags["stable_ground_correction"])["source"] == "mask"
    assert tags["stable_mask"].endswith("stable.tif")


def test_glacier_mask_measures_the_shift_outside_the_glaciers(pair, files, tmp_path):
    # the same ground as the stable mask, given as the glaciers instead (RGI outlines are what users have)
    top_half = np.zeros(pair.grid.shape, bool)
    top_half[: pair.grid.rows // 2] = True
    masks = {name: write_bands(tmp_path / f"{name}.tif", {"m": values.astype(np.float32)}, pair.grid, cog=False)
             for name, values in (("stable", pair.stable_mask), ("glacier", ~pair.stable_mask),
                                  ("everywhere", np.ones(pair.grid.shape, bool)), ("top", top_half))}
    results = {}
    for name, options in (("stable", ["--stable-mask", masks["stable"]]),
                          ("glacier", ["--glacier-mask", masks["glacier"]]),
                          ("both", ["--stable-mask", masks["everywhere"], "--glacier-mask", masks["glacier"]]),
                          ("top", ["--stable-mask", masks["top"], "--glacier-mask", masks["glacier"]])):
        out = tmp_path / f"v-{name}.tif"
        result = run(files["reference"], files["secondary"], "-o", out, "--dt", 16, "--tracker", "ncc",
                     "--window", 32, "--step", 8, *options)
        assert result.exit_code == 0 and "warning" not in result.output, result.output
        with rasterio.open(out) as src:
            results[name] = json.loads(src.tags()["stable_ground_correction"])
    glacier = results["glacier"]
    assert glacier["source"] == "mask" and glacier["dx_px"] == pytest.approx(0.3, abs=0.03)
    assert glacier == results["stable"] == results["both"]  # the stable mask's cells outside the glaciers
    # a stable mask over the top half only: its ground outside the glaciers, fewer points, the same shift
    top = results["top"]
    assert top["source"] == "mask" and 10 <= top["count"] < glacier["count"]
    assert top["dx_px"] == pytest.approx(0.3, abs=0.03)


def test_glacier_mask_over_an_all_ice_image_skips_the_correction_with_a_warning(tmp_path):
    # all ice, moving (1.2, 0.5) px with a (0.3, -0.2) px geolocation shift: no ground outside the glacier, so no
    # correction; without the mask the slowest-fraction rule has to judge the ice itself
    ice = make_pair("optical", (160, 160), motion=Translation(1.2, 0.5), cloud_fraction=0.0,
                    geolocation_shift_px=(0.3, -0.2), seed=3)
    files = ice.write_geotiffs(tmp_path / "in")
    mask = write_bands(tmp_path / "glacier.tif", {"ice": np.ones(ice.grid.shape, np.float32)}, ice.grid, cog=False)
    out = tmp_path / "v.tif"
    result = run(files["reference"], files["secondary"], "-o", out, "--dt", ice.dt_days, "--tracker", "ncc",
                 "--window", 32, "--glacier-mask", mask)
    assert result.exit_code == 0, result.output
    assert "no window lies on the ground outside the glacier mask" in result.output
    with rasterio.open(out) as src:
        stable = json.loads(src.tags()["stable_ground_correction"])
        assert src.tags()["glacier_mask"].endswith("glacier.tif")
        vx = src.read(1)
    assert stable["decision"] == "skipped" and stable["dx_px"] == 0.0 and stable["count"] == 0
    # the images' shift stays in the velocities, the motion is not taken for it
    assert np.nanmedian(vx) * ice.dt_days / ice.grid.pixel_size_m[0] == pytest.approx(1.5, abs=0.05)


def _bad_input_cases(pair, files, tmp: Path) -> dict[str, tuple[list[object], str]]:
    far = make_pair("optical", SHAPE, seed=3, origin=(400000.0, 3100000.0))
    far_sec = write_bands(tmp / "far.tif", {"B8": far.secondary}, far.grid, cog=False)
    nan_img = write_bands(tmp / "nan.tif", {"B8": np.full(SHAPE, np.nan, np.float32)}, pair.grid, cog=False)
    const = write_bands(tmp / "const.tif", {"B8": np.full(SHAPE, 7.0, np.float32)}, pair.grid, cog=False)
    ref, sec = files["reference"], files["secondary"]
    return {
        "no overlap": ([ref, far_sec, "--dt", 16], "far.tif"),
        "zero baseline": ([ref, sec, "--dt", 0], "--dt"),
        "negative baseline": ([ref, sec, "--dt", -3], "--dt"),
        "no baseline": ([ref, sec], "--dt"),
        "all-NaN reference": ([nan_img, sec, "--dt", 16], "nan.tif"),
        "all-NaN secondary": ([ref, nan_img, "--dt", 16], "nan.tif"),
        "constant secondary": ([ref, const, "--dt", 16], "const.tif"),
        "window larger than image": ([ref, sec, "--dt", 16, "--window", 256], "window"),
        "unknown tracker": ([ref, sec, "--dt", 16, "--tracker", "cosi-corr"], "cosi-corr"),
        "missing file": ([tmp / "nope.tif", sec, "--dt", 16], "nope.tif"),
        "bad stable mask": ([ref, sec, "--dt", 16, "--stable-mask", tmp / "nomask.gpkg"], "nomask.gpkg"),
        "bad glacier mask": ([ref, sec, "--dt", 16, "--glacier-mask", tmp / "noice.gpkg"], "noice.gpkg"),
    }


def test_bad_input_one_clear_line_and_no_output(pair, files, tmp_path):
    for name, (args, named) in _bad_input_cases(pair, files, tmp_path).items():
        out = tmp_path / f"{name.replace(' ', '_')}.tif"
        result = run(*args, "-o", out, "--tracker", "ncc") if "--tracker" not in args else run(*args, "-o", out)
        assert result.exit_code != 0, name
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("gvfuse: error:"), (name, result.output)
        assert named in lines[0], (name, lines[0])
        assert not out.exists(), name
        assert not list(out.parent.glob(f".{out.name}.*")), name  # no temporary left either


def test_skipped_stable_ground_correction_is_a_warning(tmp_path):
    # all ice, one uniform motion: nothing shows still ground, so no correction, and the user is told why
    ice = make_pair("optical", (160, 160), motion=Translation(1.2, 0.5), cloud_fraction=0.0,
                    geolocation_shift_px=(0.3, -0.2), seed=3)
    files = ice.write_geotiffs(tmp_path / "in")
    out = tmp_path / "v.tif"
    result = CliRunner().invoke(track_command, [str(files["reference"]), str(files["secondary"]), "-o", str(out),
                                                "--dt", str(ice.dt_days), "--tracker", "ncc", "--window", "32"])
    assert result.exit_code == 0, result.output
    assert "warning: stable-ground correction skipped (no stable ground shown" in result.output
    with rasterio.open(out) as src:
        stable = json.loads(src.tags()["stable_ground_correction"])
    assert stable["decision"] == "skipped" and stable["dx_px"] == 0.0


def test_acceptance_and_stable_ground_options_reach_the_tracker(pair, files, tmp_path):
    out = tmp_path / "v.tif"
    result = run(files["reference"], files["secondary"], "-o", out, "--dt", pair.dt_days, "--max-speed", 2,
                 "--tracker", "ncc", "--no-stable-correction", "--min-correlation", 0.3,
                 "--param", "min_valid_fraction=0.3", "--param", "refine_iterations=2")
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        tags = src.tags()
    parameters = json.loads(tags["parameters"])
    assert parameters["min_peak_correlation"] == 0.3 and parameters["min_valid_fraction"] == 0.3
    assert parameters["refine_iterations"] == 2
    assert json.loads(tags["stable_ground_correction"])["decision"] == "off"
    for bad, message in ((("--param", "nosuch=1"), "no parameter"), (("--param", "nope"), "KEY=VALUE")):
        result = run(files["reference"], files["secondary"], "-o", tmp_path / "w.tif", "--dt", pair.dt_days,
                     "--tracker", "ncc", *bad)
        assert result.exit_code != 0 and message in result.output and not (tmp_path / "w.tif").exists()


WRONG_TYPES = [("min_peak_correlation='0.9'", "must be a number, got the string '0.9' (write numbers without quotes)"),
               ("min_snr=true", "must be a number, got True"),
               ("correct_stable_ground=1", "must be true or false, got 1"),
               ("window_px=32.5", "must be an integer, got 32.5"),
               ("prefilter=true", "must be a word such as 'high-pass', got True"),
               ("fallback_window_px=true", "must be a number, 'auto' or false (off), got True")]


@pytest.mark.parametrize(("param", "words"), WRONG_TYPES)
def test_a_tracker_parameter_of_the_wrong_type_is_one_line_before_any_reading(tmp_path, param, words):
    out = tmp_path / "v.tif"
    result = run(tmp_path / "missing-a.tif", tmp_path / "missing-b.tif", "-o", out, "--tracker", "ncc",
                 "--param", param)
    assert result.exit_code == 1 and not out.exists()
    key = param.split("=")[0]
    assert result.output.strip() == f"gvfuse: error: --param [{key}]: {words}"


def test_a_step_larger_than_the_image_is_one_line_not_an_allocation(files, tmp_path):
    out = tmp_path / "v.tif"
    result = run(files["reference"], files["secondary"], "-o", out, "--dt", 10, "--tracker", "ncc",
                 "--step", 100000)
    assert result.exit_code == 1 and not out.exists()
    [line] = result.output.strip().splitlines()
    assert line.startswith("gvfuse: error: ") and "[step_px]" in line
    assert f"100000 px step is larger than the {SHAPE[0]} x {SHAPE[1]} px image" in line


def test_parameters_the_tracker_refuses_are_one_line_before_any_reading(tmp_path):
    out = tmp_path / "v.tif"
    for args, words in ((["--param", "windw_px=16"], "has no parameter(s) ['windw_px']"),
                        (["--window", "2"], "window_px"), (["--param", "prefilter=sharpen"], "prefilter")):
        result = run(tmp_path / "missing-a.tif", tmp_path / "missing-b.tif", "-o", out, "--tracker", "ncc", *args)
        assert result.exit_code == 1 and not out.exists(), result.output
        [line] = result.output.strip().splitlines()
        assert line.startswith("gvfuse: error: tracker 'ncc'") and words in line and "does not exist" not in line


def test_an_rgb_crop_with_a_wrong_nodata_tag_is_read_as_meant(pair, tmp_path):
    """Issue 15: a 3-band crop tagged 65535 but filled with 0 was tracked on band 1 with the fill as data.
    Now the fill is no data (no value whose centre lies in it), and both decisions are warned and tagged."""
    from tests.formats.test_fill import outline
    from tests.helpers.scenes import write_raster

    inside = outline(pair.grid.shape, radii=(0.42, 0.4))
    paths = {}
    for role, image in (("reference", pair.reference), ("secondary", pair.secondary)):
        scaled = np.nan_to_num(1000 + 8000 * (image - np.nanmin(image)) / np.nanmax(image), nan=1000)
        bands = np.stack([scaled, 0.9 * scaled, 0.8 * scaled]).astype("uint16")
        bands[:, ~inside] = 0
        paths[role] = tmp_path / f"crop_{role}.tif"
        write_raster(paths[role], bands, pair.grid.transform, crs=pair.grid.crs, nodata=65535)
    out = tmp_path / "v.tif"
    result = CliRunner().invoke(track_command, [str(a) for a in (
        paths["reference"], paths["secondary"], "-o", out, "--dt", pair.dt_days, "--max-speed", 2,
        "--tracker", "ncc", "--window", 32, "--step", 4)])
    assert result.exit_code == 0, result.output
    warned = result.stderr.splitlines()
    for name in ("crop_reference.tif", "crop_secondary.tif"):
        assert f"gvfuse: warning: {name}: 3 bands: band 1 is tracked (choose another with --band)" in warned
        assert any(line.startswith(f"gvfuse: warning: {name}: its no-data tag 65535 never occurs") for line in warned)
    with rasterio.open(out) as src:
        vx, tags = src.read(1), src.tags()
    assert len(json.loads(tags["reference_reading"])) == 2
    rows, cols = np.indices(vx.shape)
    centre_inside = inside[rows * 4 + 16, cols * 4 + 16]
    assert np.isfinite(vx[centre_inside]).mean() > 0.5
    assert not np.isfinite(vx[~centre_inside]).any()


def test_band_is_chosen_for_plain_rasters_only(pair, files, tmp_path):
    from tests.helpers.cli import one_line_error
    from tests.helpers.scenes import make_landsat_folder

    line = one_line_error(["track", files["reference"], files["secondary"], "-o", tmp_path / "v.tif",
                           "--dt", 16, "--band", 2])
    assert "has 1 band(s), band 2 requested" in line and "synthetic_reference.tif" in line
    landsat = make_landsat_folder(tmp_path / "l8")
    line = one_line_error(["track", landsat, landsat, "-o", tmp_path / "w.tif", "--band", 1])
    assert "--band" in line and "reads its sensor's own tracking band" in line
