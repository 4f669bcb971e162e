import numpy as np
import pytest
import rasterio
from affine import Affine

from gvfuse.errors import InputError, OutputExistsError
from gvfuse.io.raster import read_bands, write_bands
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
