"""A raster too large for this machine's memory: one line naming the file and its size, before any read.

A sparse GeoTIFF of 200000 x 200000 pixels is a few megabytes on disk and 37 GiB as uint8 once read; it is
refused by the same memory check that refuses a product grid too large for the machine
(:func:`gvfuse.product.memory_shortfall`), never by numpy's allocation error.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

import gvfuse.product
from gvfuse.cli import main
from gvfuse.errors import InputError
from gvfuse.formats.loading import load_band
from gvfuse.model import Grid
from tests.helpers.cli import one_line_error

SIDE = 200_000


@pytest.fixture
def eight_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine of 8 GiB, whatever this one has (the 200000 x 200000 band needs far more)."""
    monkeypatch.setattr(gvfuse.product, "physical_memory_bytes", lambda: 8 * 2**30)


def _sparse(path: Path) -> Path:
    """A tiled, sparse, deflated uint8 GeoTIFF of SIDE x SIDE pixels: no tile is written, a few MB on disk."""
    with rasterio.open(path, "w", driver="GTiff", width=SIDE, height=SIDE, count=1, dtype="uint8", tiled=True,
                       sparse_ok=True, compress="deflate", crs="EPSG:32647", BIGTIFF="YES",
                       transform=Affine(15.0, 0.0, 400000.0, 0.0, -15.0, 3300000.0)):
        pass
    return path


def test_a_band_too_large_for_memory_is_refused_before_reading(tmp_path, eight_gib):
    big = _sparse(tmp_path / "big_20230601.tif")
    with pytest.raises(InputError, match=rf"{SIDE} x {SIDE} px uint8 band needs about \d+ GiB to read; "
                                         r"this machine has 8 GiB") as err:
        load_band(str(big))
    assert err.value.source == str(big) and err.value.field == "band"
    with rasterio.open(big) as src:
        whole = Grid(src.crs, src.transform, src.shape)
    with pytest.raises(InputError, match="needs about"):
        load_band(str(big), whole)  # onto a grid as large: the window is the whole band
    corner = Grid(whole.crs, whole.transform, (64, 64))
    assert load_band(str(big), corner).pixels.shape == (64, 64)  # a small window of it still reads


def test_track_on_two_huge_sparse_geotiffs_is_one_line(tmp_path, eight_gib):
    first, second = _sparse(tmp_path / "big_20230601.tif"), _sparse(tmp_path / "big_20230701.tif")
    result = CliRunner().invoke(main, ["track", str(first), str(second), "-o", str(tmp_path / "v.tif")])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"gvfuse: error: {first} [band]: its {SIDE} x {SIDE} px uint8 band needs about"), line
    assert not (tmp_path / "v.tif").exists()


def test_the_product_grid_check_says_it_the_same_way(tmp_path, eight_gib):
    text = Path(gvfuse.product.load_product("gangrigab-2023").source).read_text()
    (tmp_path / "product.toml").write_text(text.replace("resolution_m = 30.0", "resolution_m = 1.0"))
    with pytest.raises(InputError, match=r"\[grid.resolution_m\]: a \d+ x \d+ grid at 1 m needs about \d+ GiB for "
                                         r"one month's bands; this machine has 8 GiB: use a coarser resolution"):
        gvfuse.product.load_product(tmp_path / "product.toml")


# --------------------------------------------------------------------------- a search radius too large


@pytest.fixture(scope="module")
def small_pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from gvfuse.testing import make_pair

    pair = make_pair("optical", (64, 64), seed=5, max_speed_m_per_day=1.0, cloud_fraction=0.0)  # 15 m pixels
    return pair.write_geotiffs(tmp_path_factory.mktemp("pair"))


@pytest.mark.parametrize(("speed", "radius"), [("1e9", 1066666670), ("1e6", 1066670), ("1e4", 10670), ("100", 110)])
def test_a_max_speed_whose_search_is_larger_than_the_image_is_one_line_naming_the_option(
        tmp_path, small_pair, plugins, monkeypatch, speed, radius):
    """Not numpy's "array is too big", a 16 TiB allocation error, or a process killed for its memory."""
    def never(*args, **kwargs):
        raise AssertionError("tracked although the search cannot fit")

    monkeypatch.setattr(plugins.get("trackers", "fft-phase").cls, "track", never)
    line = one_line_error(["track", small_pair["reference"], small_pair["secondary"], "-o", tmp_path / "v.tif",
                           "--dt", 16, "--max-speed", speed, "--window", 32])
    assert line == (f"gvfuse: error: --max-speed: {float(speed):g} m/day over 16 days at 15 m a pixel is a search "
                    f"radius of {radius} px; larger than the 64 x 64 px image: at most 57.18 m/day can be "
                    "searched here")
    assert not (tmp_path / "v.tif").exists()


def test_the_largest_speed_it_names_is_accepted_and_a_hundredth_more_is_not():
    from gvfuse.pipeline.pair import check_search_radius

    grid = Grid("EPSG:32647", Affine(15.0, 0.0, 400000.0, 0.0, -15.0, 3300000.0), (64, 64))
    assert check_search_radius(57.18, 16, grid, source="--max-speed") == 64
    with pytest.raises(InputError, match="at most 57.18 m/day"):
        check_search_radius(57.19, 16, grid, source="--max-speed")
    assert check_search_radius(5, 16, grid, source="--max-speed") == 9  # the default speed: ceil(5.33 + 2) + 1


def test_a_search_whose_scores_do_not_fit_in_memory_is_refused_saying_so(monkeypatch):
    from gvfuse.pipeline.pair import check_search_radius

    monkeypatch.setattr(gvfuse.product, "physical_memory_bytes", lambda: 2**30)  # 1 GiB: a radius of 511 at most
    grid = Grid("EPSG:32647", Affine(15.0, 0.0, 400000.0, 0.0, -15.0, 3300000.0), (4000, 4000))
    assert check_search_radius(470, 16, grid, source="x") == 505
    with pytest.raises(InputError, match=r"^x: 1000 m/day over 16 days at 15 m a pixel is a search radius of 1070 "
                                         r"px; searching it for 256 windows at once needs about 4 GiB of scores; "
                                         r"this machine has 1 GiB: at most 476.25 m/day can be searched here$"):
        check_search_radius(1000, 16, grid, source="x")


def test_a_runs_speed_too_large_is_the_pairs_problem_naming_the_sensor_key(tmp_path, plugins):
    from gvfuse.config import load_config
    from gvfuse.pipeline.run import build_plan, track_pairs
    from tests.helpers.scenes import optical_pair_run

    run_file = optical_pair_run(tmp_path, "speedy")
    run_file.write_text(run_file.read_text().replace("max_speed_m_per_day = 1.0", "max_speed_m_per_day = 1e9"))
    [outcome] = track_pairs(build_plan(load_config(run_file, plugins), plugins).jobs)
    assert outcome.error is not None
    assert outcome.error.startswith("sensors.optical.max_speed_m_per_day: 1e+09 m/day over 20 days at "), outcome.error
    assert "larger than the" in outcome.error
