import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from gvfuse.errors import InputError, OutputExistsError
from gvfuse.io import raster
from gvfuse.io.raster import read_bands, read_windows, write_bands
from gvfuse.model import Grid

GRID = Grid(32647, Affine(30, 0, 300000, 0, -30, 3250000), (300, 400))


def test_cog_roundtrip_keeps_nan_descriptions_units_and_tags(tmp_path):
    rng = np.random.default_rng(0)
    vx = rng.normal(size=GRID.shape).astype("f4")
    vx[:20, :30] = np.nan
    path = write_bands(tmp_path / "a.tif", {"vx": vx, "vy": -vx}, GRID, units={"vx": "m/d", "vy": "m/d"},
                       tags={"tracker": "ncc", "parameters": {"window_px": 32}})
    bands, grid, tags = read_bands(path)
    assert grid == GRID and list(bands) == ["vx", "vy"]
    np.testing.assert_array_equal(bands["vx"], vx)
    assert tags["tracker"] == "ncc" and tags["parameters"] == '{"window_px": 32}'
    with rasterio.open(path) as src:
        assert src.units == ("m/d", "m/d") and np.isnan(src.nodata) and src.overviews(1)
        assert src.profile["tiled"] and src.dtypes[0] == "float32"


def test_existing_file_is_not_overwritten_and_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "a.tif"
    write_bands(target, {"vx": np.zeros(GRID.shape)}, GRID)
    before = target.read_bytes()
    with pytest.raises(OutputExistsError):
        write_bands(target, {"vx": np.ones(GRID.shape)}, GRID)
    assert target.read_bytes() == before
    with pytest.raises(ValueError, match="shape"):
        write_bands(tmp_path / "b.tif", {"vx": np.zeros((2, 2))}, GRID)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif"]


def test_read_bands_names_missing_band_and_bad_file(tmp_path):
    path = write_bands(tmp_path / "a.tif", {"vx": np.zeros(GRID.shape)}, GRID)
    with pytest.raises(InputError, match=r"a.tif \[band descriptions\]"):
        read_bands(path, ("vx", "vy"))
    (tmp_path / "junk.tif").write_text("not a tiff")
    with pytest.raises(InputError, match="junk.tif"):
        read_bands(tmp_path / "junk.tif")


@settings(max_examples=30, deadline=None)
@given(corners=st.lists(st.tuples(st.integers(0, 55), st.integers(0, 45), st.integers(1, 20), st.integers(1, 20)),
                        min_size=1, max_size=6))
def test_read_windows_gives_each_block_as_read_bands_does(tmp_path_factory, corners):
    """Blocks that fill their bounding box are read in one go, scattered ones one by one: the same values
    and grids either way, no data as NaN."""
    path = tmp_path_factory.getbasetemp() / "blocks.tif"
    if not path.exists():
        rng = np.random.default_rng(3)
        a, b = rng.normal(size=(60, 50)).astype("float32"), rng.normal(size=(60, 50)).astype("float32")
        a[::7, ::5] = np.nan
        write_bands(path, {"a": a, "b": b}, Grid("EPSG:32647", Affine(30, 0, 600000, 0, -30, 3240000), (60, 50)),
                    cog=False)
    windows = [(slice(r, min(r + h, 60)), slice(c, min(c + w, 50))) for r, c, h, w in corners]
    for whole_read_cells in (raster.WHOLE_READ_CELLS, 0):  # small rasters are read whole; else as they fill
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(raster, "WHOLE_READ_CELLS", whole_read_cells)
            blocks = read_windows(path, ("b", "a"), windows)
        for (bands, grid), window in zip(blocks, windows):
            expected, expected_grid, _ = read_bands(path, ("b", "a"), window=window)
            assert grid == expected_grid and list(bands) == ["b", "a"]
            for name in ("a", "b"):
                np.testing.assert_array_equal(bands[name], expected[name])
