import os

import intake
import numpy as np

from gvfuse.model import Month
from gvfuse.plugins import PluginSet
from gvfuse.product import load_product
from gvfuse.publish.cog import VARIABLE_NAMES, read_month_bands
from gvfuse.publish.month import publish_month
from gvfuse.testing.products import synthetic_monthly_product


def test_entries_read_named_variables_with_time_from_another_working_directory(tmp_path, monkeypatch):
    root = tmp_path / "published"
    definition = load_product("gangrigab-2023")
    for month in ("2023-01", "2023-02"):
        publish_month(synthetic_monthly_product(month, seed=int(month[-1])), definition, root, plugins=PluginSet())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    catalog = intake.from_yaml_file(str(root / "catalog.yaml"))
    assert sorted(catalog) == ["gangrigab_2023", "gangrigab_2023_202301", "gangrigab_2023_202302",
                               "gangrigab_2023_cube"]
    middles = {"202301": np.datetime64("2023-01-16T12:00:00"), "202302": np.datetime64("2023-02-15T00:00:00")}
    for stem, middle in middles.items():
        name = f"gangrigab_2023_{stem}"
        dataset = catalog[name].read()
        assert list(dataset.data_vars) == list(VARIABLE_NAMES)
        assert list(dataset["time"].values) == [middle]
        bands, grid = read_month_bands(root, Month.parse(f"{stem[:4]}-{stem[4:]}"))
        for variable, values in bands.items():
            np.testing.assert_array_equal(dataset[variable].isel(time=0).values, values)
            assert dataset[variable].attrs["units"] == ("1" if variable in ("count", "sensor_flag") else "m/d")
        assert dataset["count"].dtype == np.uint16 and dataset["sensor_flag"].dtype == np.uint8
        assert dict(dataset.sizes) == {"time": 1, "y": grid.rows, "x": grid.cols}
        metadata = catalog.entries[name].metadata
        assert metadata["files"]["vx"] == f"{stem}_vx.tif" and metadata["units"]["v_error"] == "m/d"
        assert metadata["stac_item"] == f"items/gangrigab-2023-{stem}.json"
        provenance = metadata["provenance"]
        assert provenance["month"] == f"{stem[:4]}-{stem[4:]}" and len(provenance["pairs"]) == 6
        assert provenance["weights"]["sentinel-2"] == 0.4
    every = catalog["gangrigab_2023"].read()
    assert list(every["time"].values) == list(middles.values())
    assert list(every.data_vars) == list(VARIABLE_NAMES)
    february, _ = read_month_bands(root, Month(2023, 2), ("vy",))
    np.testing.assert_array_equal(every["vy"].sel(time="2023-02").values[0], february["vy"])
    assert os.getcwd() == str(elsewhere)
