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
