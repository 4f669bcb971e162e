import os

import intake
import numpy as np

from gvfuse.io.raster import read_bands
from gvfuse.plugins import PluginSet
from gvfuse.product import load_product
from gvfuse.publish.month import publish_month
from gvfuse.testing.products import synthetic_monthly_product


def test_every_month_reads_back_equal_to_its_cog_from_another_working_directory(tmp_path, monkeypatch):
    root = tmp_path / "published"
    definition = load_product("gangrigab-2023")
    for month in ("2023-01", "2023-02"):
        publish_month(synthetic_monthly_product(month, seed=int(month[-1])), definition, root, plugins=PluginSet())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    catalog = intake.from_yaml_file(str(root / "catalog.yaml"))
    assert sorted(catalog) == ["gangrigab_2023_202301", "gangrigab_2023_202302"]
    for month in ("202301", "202302"):
        name = f"gangrigab_2023_{month}"
        dataset = catalog[name].read()
        bands, grid, _ = read_bands(root / f"{month}.tif")
        for index, (band, values) in enumerate(bands.items(), start=1):
            variable = dataset[f"band_{index}"]
            assert variable.attrs["long_name"] == band
            np.testing.assert_array_equal(variable.values, values)
        assert dataset.sizes == {"y": grid.rows, "x": grid.cols}
        metadata = catalog.entries[name].metadata
        assert metadata["bands"]["band_1"] == "vx" and metadata["units"]["v_error"] == "m/d"
        assert metadata["stac_item"] == f"items/gangrigab-2023-{month}.json"
        provenance = metadata["provenance"]
        assert provenance["month"] == f"{month[:4]}-{month[4:]}" and len(provenance["pairs"]) == 6
        assert provenance["weights"]["sentinel-2"] == 0.4
    assert os.getcwd() == str(elsewhere)
