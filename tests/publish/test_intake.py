import os
import string

import intake
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gvfuse.model import Month
from gvfuse.plugins import PluginSet
from gvfuse.product import load_product
from gvfuse.publish.cog import VARIABLE_NAMES, read_month_bands
from gvfuse.publish.intake import catalog_text
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


#: Keys as a catalog has them: entry names, metadata and provenance keys.
KEYS = st.text(alphabet=string.ascii_letters + string.digits + "_:-. ", min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(content=st.dictionaries(KEYS, st.recursive(
    st.one_of(st.text(), st.floats(allow_nan=False), st.integers(), st.booleans(), st.none()),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)),
    max_leaves=20), max_size=5))
def test_the_catalog_is_the_same_bytes_with_either_yaml_emitter_and_reads_back(content):
    """libyaml's emitter where PyYAML has it, PyYAML's own elsewhere: the same publication must be the
    same bytes on every install, and read back as written. (A catalog is a mapping of short, plain keys;
    the emitters also differ on empty keys, keys with control characters and keys longer than 128
    characters once escaped: none is a catalog's.)"""
    import yaml

    text = catalog_text(content)
    if hasattr(yaml, "CSafeDumper"):
        with pytest.MonkeyPatch.context() as patch:
            patch.delattr(yaml, "CSafeDumper")
            assert catalog_text(content) == text
    assert yaml.safe_load(text) == content
    assert text.isascii()
