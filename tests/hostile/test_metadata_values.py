"""Provider metadata with values out of range or nested without end: one line naming the file and the field.

A Landsat MTL's ``CLOUD_COVER = 150`` (or ``nan``, ``inf``) and its integers (``UTM_ZONE = nan``) are the
reader's :class:`MetadataError`, never the data model's ``ValueError`` or ``int()``'s; a JSON sidecar or MTL
nested 100000 deep is refused as one, never a ``RecursionError``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from affine import Affine

from gvfuse.errors import MetadataError
from gvfuse.formats import landsat
from gvfuse.model import Grid
from gvfuse.testing.provider_layouts import write_uav_orthomosaic
from gvfuse_plugins.readers import LandsatReader, UavReader
from tests.helpers.cli import one_line_error
from tests.helpers.scenes import LANDSAT_ID, UTM47, landsat_groups, make_landsat_folder, mtl_json, textured

#: 100000 arrays, one inside the other: far past Python's recursion limit.
DEEP_JSON = "[" * 100_000 + "]" * 100_000


# --------------------------------------------------------------------------- Landsat values


@pytest.mark.parametrize("cloud", [150.0, float("nan"), float("inf"), -5.0])
def test_a_cloud_cover_outside_0_to_100_is_the_readers_error_naming_the_field(tmp_path, cloud):
    folder = make_landsat_folder(tmp_path, groups=landsat_groups(cloud=cloud))
    with pytest.raises(MetadataError) as err:
        LandsatReader().open(folder)
    assert err.value.field == "CLOUD_COVER" and f"{LANDSAT_ID}_MTL.txt" in str(err.value)
    assert "outside 0..100" in str(err.value)


def test_track_on_a_scene_with_cloud_cover_150_isone_line_error(tmp_path):
    folder = make_landsat_folder(tmp_path, groups=landsat_groups(cloud=150))
    line = one_line_error(["track", folder, folder, "-o", tmp_path / "v.tif"])
    assert f"{LANDSAT_ID}_MTL.txt [CLOUD_COVER]" in line and "150" in line
    assert not (tmp_path / "v.tif").exists()


def test_cloud_cover_minus_one_still_means_not_computed(tmp_path):
    scene = LandsatReader().open(make_landsat_folder(tmp_path, groups=landsat_groups(cloud=-1)))
    assert scene.cloud_cover_percent is None


@pytest.mark.parametrize(("key", "value"), [("UTM_ZONE", "nan"), ("UTM_ZONE", "61"), ("UTM_ZONE", "47.5"),
                                            ("PANCHROMATIC_LINES", "inf"), ("PANCHROMATIC_SAMPLES", "-3")])
def test_an_mtl_integer_that_is_not_one_names_its_field(key, value):
    groups = landsat_groups()
    groups["PROJECTION_ATTRIBUTES"][key] = value
    with pytest.raises(MetadataError) as err:
        landsat.metadata_from_mtl(groups, "x_MTL.txt")
    assert err.value.field == key and "not a whole number" in str(err.value)


def test_an_mtl_json_nested_without_end_is_one_error():
    for text in (DEEP_JSON, '{"LANDSAT_METADATA_FILE": ' + '{"a": ' * 990 + "1" + "}" * 991):
        with pytest.raises(MetadataError, match="nested too deep") as err:
            landsat.parse_mtl_json(text, "x_MTL.json")
        assert err.value.field == "document"
    assert landsat.parse_mtl_json(mtl_json(landsat_groups()), "x_MTL.json")  # a real one still reads


# --------------------------------------------------------------------------- UAV sidecars


def _orthomosaic(folder: Path, day: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    grid = Grid(UTM47, Affine(0.5, 0, 255000.0, 0, -0.5, 3245000.0), (96, 96))
    return write_uav_orthomosaic(folder, pixels=textured(*grid.shape, seed=day, low=20, high=230).astype("float64"),
                                 grid=grid, acquired_at=dt.datetime(2023, 6, day, 5, 30, tzinfo=dt.timezone.utc),
                                 site="terminus")


def test_a_sidecar_nested_100000_deep_is_one_line_naming_it(tmp_path):
    first, second = _orthomosaic(tmp_path, 1), _orthomosaic(tmp_path, 20)
    sidecar = first.with_suffix(".json")
    sidecar.write_text(DEEP_JSON)
    with pytest.raises(MetadataError, match="nested too deep") as err:
        UavReader().open(first)
    assert err.value.source == sidecar and err.value.field == "document"
    line = one_line_error(["track", first, second, "-o", tmp_path / "v.tif"])
    assert f"{sidecar} [document]" in line
    assert not (tmp_path / "v.tif").exists()
    assert UavReader().open(second).acquired_at == dt.datetime(2023, 6, 20, 5, 30, tzinfo=dt.timezone.utc)
