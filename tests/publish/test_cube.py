"""The CF time cube: every published month in one Zarr store that xarray, intake and STAC find."""

from __future__ import annotations

import json
from pathlib import Path

import intake
import numpy as np
import pytest
import xarray as xr
from pyproj import CRS

from gvfuse.io.atomic import new_file_mode
from gvfuse.model import Month
from gvfuse.plugins import PluginSet
from gvfuse.product import load_product
from gvfuse.publish.cog import VARIABLE_NAMES, read_month_bands
from gvfuse.publish.month import publish_month
from gvfuse.testing.products import synthetic_monthly_product

MONTHS = ("2023-01", "2023-02", "2023-04")  # a gap: March is not published


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cube") / "pub"
    for seed, month in enumerate(MONTHS):
        publish_month(synthetic_monthly_product(month, shape=(60, 300), seed=seed), load_product("gangrigab-2023"),
                      root, plugins=PluginSet())
    return root


def test_the_cube_holds_every_published_month_equal_to_its_cogs(published):
    cube = xr.open_zarr(published / "cube.zarr")
    assert list(cube["time"].values) == [np.datetime64("2023-01-16T12:00:00"), np.datetime64("2023-02-15T00:00:00"),
                                         np.datetime64("2023-04-16T00:00:00")]
    for index, month in enumerate(MONTHS):
        bands, grid = read_month_bands(published, Month.parse(month))
        for name in VARIABLE_NAMES:
            np.testing.assert_array_equal(cube[name].isel(time=index).values, bands[name])
    t = grid.transform
    assert cube["x"].values[0] == t.c + t.a / 2 and cube["y"].values[0] == t.f + t.e / 2
    assert cube["count"].dtype == np.uint16 and cube["sensor_flag"].dtype == np.uint8


def test_cf_time_bounds_observation_span_and_attributes(published):
    cube = xr.open_zarr(published / "cube.zarr")
    assert cube.attrs["Conventions"] == "CF-1.10" and cube.attrs["license"] == "CC-BY-4.0"
    assert "items/gangrigab-2023-202304.json" in cube.attrs["references"]
    assert cube["time"].attrs["bounds"] == "time_bnds"
    assert cube["time_bnds"].values[2].tolist() == [np.datetime64("2023-04-01", "ns").astype(int),
                                                    np.datetime64("2023-05-01", "ns").astype(int)]
    assert cube["observation_start"].values[0] == np.datetime64("2023-01-02T04:30:00")
    assert cube["date_dt"].values[0] == pytest.approx(30.0)  # 2023-01-02 to 2023-02-01
    assert cube["vx"].attrs["standard_name"] == "land_ice_surface_x_velocity"
    assert cube["vy_error"].attrs["standard_name"] == "land_ice_surface_y_velocity standard_error"
    assert {cube[n].attrs["grid_mapping"] for n in VARIABLE_NAMES} == {"mapping"}
    assert cube["vx"].attrs["units"] == "m d-1"
    mapping = cube["mapping"].attrs
    assert mapping["grid_mapping_name"] == "transverse_mercator" and mapping["longitude_of_central_meridian"] == 99
    assert CRS.from_wkt(mapping["crs_wkt"]).to_epsg() == 32647
    assert cube["sensor_flag"].attrs["flag_meanings"] == "landsat sentinel-1 sentinel-2 uav"
    assert list(cube["sensor_flag"].attrs["flag_masks"]) == [1, 2, 4, 8]


def test_one_pixels_year_is_one_chunk(published):
    cube = xr.open_zarr(published / "cube.zarr")
    for name in VARIABLE_NAMES:
        assert cube[name].encoding["chunks"] == (3, 60, 256)
    series = cube["v"].isel(x=10, y=20)
    assert series.data.npartitions == 1 and series.sizes == {"time": 3}


def test_the_collection_and_intake_catalog_name_the_cube(published):
    collection = json.loads((published / "collection.json").read_text())
    asset = collection["assets"]["cube"]
    assert asset["href"] == "./cube.zarr" and asset["type"] == "application/vnd+zarr" and asset["roles"] == ["data"]
    data = intake.from_yaml_file(str(published / "catalog.yaml"))["gangrigab_2023_cube"].read()
    assert data.sizes["time"] == 3 and data["vx"].attrs["standard_name"] == "land_ice_surface_x_velocity"


def test_the_netcdf_export_is_the_cube_and_never_overwrites_without_force(published, tmp_path):
    from click.testing import CliRunner

    from gvfuse.cli import main

    target = tmp_path / "out" / "gangrigab-2023.nc"
    result = CliRunner().invoke(main, ["netcdf", str(published), str(target), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["netcdf"] == str(target)
    assert (target.stat().st_mode & 0o777) == new_file_mode()  # readable as any new file (0644 under umask 022)
    with xr.open_zarr(published / "cube.zarr") as cube, xr.open_dataset(target, engine="h5netcdf") as exported:
        xr.testing.assert_identical(cube.load(), exported.load())  # values, dtypes, CF attributes, times
        assert exported["vx"].encoding["zlib"] and exported["count"].dtype == np.uint16
        assert "_FillValue" not in exported["time"].encoding and "_FillValue" not in exported["time_bnds"].encoding
    before = target.read_bytes()
    again = CliRunner().invoke(main, ["netcdf", str(published), str(target)])
    assert again.exit_code == 1 and "use --force" in again.output and target.read_bytes() == before
    assert CliRunner().invoke(main, ["netcdf", str(published), str(target), "--force"]).exit_code == 0
    assert not list(target.parent.glob(".*.tmp"))
    missing = CliRunner().invoke(main, ["netcdf", str(tmp_path), str(tmp_path / "x.nc")])
    assert missing.exit_code == 1 and "cube.zarr" in missing.output and len(missing.output.strip().splitlines()) == 1
