"""Area masks: vector files in any CRS and rasters, burnt with pixel-centre semantics."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.warp
import shapely
from affine import Affine

from gvfuse.errors import InputError
from gvfuse.io.masks import load_mask, rasterize_polygons, read_polygons, stable_ground
from gvfuse.io.raster import write_bands
from gvfuse.model import Grid
from tests.helpers import SHARED

DEMO = SHARED / "data" / "glaft-kaskawulsh-demo"

RES = 60.0
GRID = Grid(32607, Affine(RES, 0, 600000.0, 0, -RES, 6740000.0), (50, 40))


def _write_polygons(path: Path, polygons: list, crs: str, driver: str) -> Path:
    import pyogrio.raw

    pyogrio.raw.write(path, geometry=shapely.to_wkb(polygons), field_data=[], fields=[], crs=crs,
                      driver=driver, geometry_type="Polygon")
    return path


def _rectangle_in(crs: str, left: float, bottom: float, right: float, top: float) -> shapely.Polygon:
    """A UTM 7N rectangle, densified, with its vertices transformed to ``crs``."""
    ring = shapely.segmentize(shapely.box(left, bottom, right, top), 20.0).exterior.coords
    xs, ys = zip(*ring)
    tx, ty = rasterio.warp.transform("EPSG:32607", crs, xs, ys)
    return shapely.Polygon(zip(tx, ty))


def _expected(left, bottom, right, top) -> np.ndarray:
    rows, cols = np.mgrid[0:GRID.rows, 0:GRID.cols]
    x = GRID.transform.c + RES * (cols + 0.5)
    y = GRID.transform.f - RES * (rows + 0.5)
    return (x > left) & (x < right) & (y > bottom) & (y < top)


# edges a quarter of a cell away from the cell centres: no ambiguity after reprojection
BOX = (600000 + 5.25 * RES, 6740000 - 30.75 * RES, 600000 + 22.75 * RES, 6740000 - 10.25 * RES)


@pytest.mark.parametrize(("crs", "driver", "suffix"), [
    ("EPSG:4326", "GeoJSON", ".geojson"),
    ("EPSG:3857", "GPKG", ".gpkg"),
    ("EPSG:32607", "ESRI Shapefile", ".shp"),
])
def test_vector_mask_in_another_crs_burns_cells_whose_centre_is_inside(tmp_path, crs, driver, suffix):
    path = _write_polygons(tmp_path / f"area{suffix}", [_rectangle_in(crs, *BOX)], crs, driver)
    mask = load_mask(path, GRID)
    expected = _expected(*BOX)
    assert expected.sum() == 18 * 21
    np.testing.assert_array_equal(mask, expected)


def test_raster_mask_on_the_same_and_on_a_coarser_grid(tmp_path):
    expected = _expected(*BOX)
    same = write_bands(tmp_path / "same.tif", {"stable": expected.astype("float32")}, GRID)
    np.testing.assert_array_equal(load_mask(same, GRID), expected)
    coarse_grid = Grid(GRID.crs, Affine(2 * RES, 0, GRID.transform.c, 0, -2 * RES, GRID.transform.f), (25, 20))
    coarse = np.zeros(coarse_grid.shape, dtype="float32")
    coarse[5:15, 3:11] = 1.0
    path = write_bands(tmp_path / "coarse.tif", {"stable": coarse}, coarse_grid)
    mask = load_mask(path, GRID)
    assert mask.sum() == 4 * coarse.sum()
    assert mask[10:30, 6:22].all()


def test_empty_and_disjoint_masks_are_errors_naming_the_file(tmp_path):
    far = (700000.0, 6000000.0, 710000.0, 6010000.0)
    path = _write_polygons(tmp_path / "far.geojson", [_rectangle_in("EPSG:4326", *far)], "EPSG:4326", "GeoJSON")
    with pytest.raises(InputError, match="far.geojson.*does not overlap"):
        load_mask(path, GRID)
    # overlaps the grid but contains no cell centre
    sliver = (600000 + 5.6 * RES, 6740000 - 5.9 * RES, 600000 + 5.9 * RES, 6740000 - 5.6 * RES)
    path = _write_polygons(tmp_path / "sliver.gpkg", [_rectangle_in("EPSG:32607", *sliver)], "EPSG:32607", "GPKG")
    with pytest.raises(InputError, match="sliver.gpkg.*selects no cell"):
        load_mask(path, GRID)
    empty = write_bands(tmp_path / "zeros.tif", {"m": np.zeros(GRID.shape, dtype="float32")}, GRID)
    with pytest.raises(InputError, match="zeros.tif"):
        load_mask(empty, GRID)
    with pytest.raises(InputError, match="missing.shp.*does not exist"):
        load_mask(tmp_path / "missing.shp", GRID)


def test_stable_ground_is_the_stable_mask_outside_the_glaciers(tmp_path):
    glaciers = _write_polygons(tmp_path / "rgi.gpkg", [_rectangle_in("EPSG:4326", *BOX)], "EPSG:4326", "GPKG")
    ice = _expected(*BOX)
    assert stable_ground(GRID) is None  # no mask: the tracker's own rule
    np.testing.assert_array_equal(stable_ground(GRID, glacier_mask=glaciers), ~ice)
    rock = np.zeros(GRID.shape, bool)
    rock[:, :12] = True  # overlaps the glacier (columns 6-22): the part on ice is not ground
    stable = write_bands(tmp_path / "rock.tif", {"m": rock.astype("float32")}, GRID)
    both = stable_ground(GRID, stable_mask=stable, glacier_mask=glaciers)
    np.testing.assert_array_equal(both, rock & ~ice)
    assert both.sum() < rock.sum() and both.any()


def test_stable_ground_counts_only_where_a_raster_glacier_mask_says_something(tmp_path):
    # a glacier raster over the left half only: the right half is unknown, neither ice nor ground (a tracking
    # grid reaches beyond the product area that a glacier raster is often made on)
    half = Grid(GRID.crs, GRID.transform, (GRID.rows, GRID.cols // 2))
    ice = np.zeros(half.shape, "float32")
    ice[10:30, 5:15] = 1.0
    ice[45:, :] = np.nan  # no data: unknown too
    path = write_bands(tmp_path / "ice.tif", {"ice": ice}, half)
    stable = stable_ground(GRID, glacier_mask=path)
    expected = np.zeros(GRID.shape, bool)
    expected[:45, : GRID.cols // 2] = ice[:45] == 0
    np.testing.assert_array_equal(stable, expected)


def test_a_glacier_mask_without_glaciers_here_leaves_all_ground_and_a_disjoint_one_is_an_error(tmp_path):
    nothing = write_bands(tmp_path / "zeros.tif", {"m": np.zeros(GRID.shape, dtype="float32")}, GRID)
    assert stable_ground(GRID, glacier_mask=nothing).all()  # a scene without glaciers: all of it is ground
    far = (700000.0, 6000000.0, 710000.0, 6010000.0)
    path = _write_polygons(tmp_path / "far.geojson", [_rectangle_in("EPSG:4326", *far)], "EPSG:4326", "GeoJSON")
    with pytest.raises(InputError, match="far.geojson.*glacier mask does not overlap"):
        stable_ground(GRID, glacier_mask=path)


def test_only_the_polygons_near_the_grid_are_read_and_the_mask_is_the_same(tmp_path):
    # an inventory-like file: many small outlines around the grid and far from it, one polygon enclosing the
    # whole grid with no vertex near it, in longitude/latitude
    rng = np.random.default_rng(4)
    left, bottom, right, top = rasterio.warp.transform_bounds(GRID.crs, "EPSG:4326", *GRID.bounds)
    near_x, near_y = 0.1 * (right - left), 0.1 * (top - bottom)  # most of them on and just around the grid
    xs = np.concatenate([rng.uniform(left - near_x, right + near_x, 2000), rng.uniform(left - 0.5, right + 0.5, 1000)])
    ys = np.concatenate([rng.uniform(bottom - near_y, top + near_y, 2000), rng.uniform(bottom - 0.3, top + 0.3, 1000)])
    outlines = [shapely.box(x, y, x + 0.0004, y + 0.0003) for x, y in zip(xs, ys, strict=True)]
    enclosing = shapely.box(left - 0.2, bottom + 0.3 * (top - bottom), right + 0.2, bottom + 0.7 * (top - bottom))
    path = _write_polygons(tmp_path / "inventory.gpkg", [*outlines, enclosing], "EPSG:4326", "GPKG")
    every = rasterize_polygons(read_polygons(path, GRID.crs), GRID)  # every polygon of the file, reprojected
    assert 500 < every.sum() < every.size and every[GRID.rows // 2].all()  # the enclosing band crosses the grid
    np.testing.assert_array_equal(load_mask(path, GRID), every)
    np.testing.assert_array_equal(stable_ground(GRID, glacier_mask=path), ~every)


def test_a_layer_without_polygons_and_an_inventory_without_glaciers_here(tmp_path):
    import pyogrio.raw

    points = tmp_path / "points.gpkg"
    pyogrio.raw.write(points, geometry=shapely.to_wkb([shapely.Point(600100.0, 6739900.0)]), field_data=[],
                      fields=[], crs="EPSG:32607", driver="GPKG", geometry_type="Point")
    with pytest.raises(InputError, match="points.gpkg.*no polygon"):
        load_mask(points, GRID)
    # outlines on both sides of the grid, none on it: the layer overlaps, no glacier is here
    west, east = (590000.0, 6737000.0, 592000.0, 6738000.0), (610000.0, 6737000.0, 612000.0, 6738000.0)
    path = _write_polygons(tmp_path / "around.gpkg", [_rectangle_in("EPSG:32607", *b) for b in (west, east)],
                           "EPSG:32607", "GPKG")
    assert stable_ground(GRID, glacier_mask=path).all()
    with pytest.raises(InputError, match="around.gpkg.*selects no cell"):
        load_mask(path, GRID, what="stable-ground mask")


def test_a_grid_across_the_antimeridian_keeps_the_polygons_of_both_sides(tmp_path):
    # UTM 60N from 178.8 E to 178.5 W at 60 N; outlines cut at 180 as inventories store them
    grid = Grid(32660, Affine(1000.0, 0, 600000.0, 0, -1000.0, 6700000.0), (60, 150))
    west, _, east, _ = rasterio.warp.transform_bounds(grid.crs, "EPSG:4326", *grid.bounds)
    assert west > east  # the box crosses 180
    sides = [shapely.box(179.3, 60.0, 180.0, 60.2), shapely.box(-180.0, 60.0, -179.3, 60.2)]
    path = _write_polygons(tmp_path / "dateline.gpkg", sides, "EPSG:4326", "GPKG")
    every = rasterize_polygons(read_polygons(path, grid.crs), grid)
    assert every[:, :75].any() and every[:, 75:].any()
    np.testing.assert_array_equal(load_mask(path, grid), every)


def test_a_layer_of_mixed_geometries_without_polygons_is_no_polygon_mask(tmp_path):
    import json

    path = tmp_path / "mixed.geojson"  # a layer of unknown type: read whole, not near the grid
    lon, lat = rasterio.warp.transform(GRID.crs, "EPSG:4326", [600500.0, 601500.0], [6739500.0, 6738500.0])
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [lon[0], lat[0]]}},
        {"type": "Feature", "properties": {},
         "geometry": {"type": "LineString", "coordinates": [[lon[0], lat[0]], [lon[1], lat[1]]]}}]}))
    for call in (lambda: load_mask(path, GRID), lambda: stable_ground(GRID, glacier_mask=path)):
        with pytest.raises(InputError, match="mixed.geojson.*no polygon"):
            call()


def test_a_binary_glacier_raster_with_no_data_zero_means_zero_as_outside(tmp_path):
    ice = np.zeros(GRID.shape, "uint8")
    ice[10:30, 5:15] = 1
    path = tmp_path / "ice.tif"
    with rasterio.open(path, "w", driver="GTiff", width=GRID.cols, height=GRID.rows, count=1, dtype="uint8",
                       crs=GRID.crs, transform=GRID.transform, nodata=0) as dst:
        dst.write(ice, 1)
    np.testing.assert_array_equal(stable_ground(GRID, glacier_mask=path), ice == 0)
    np.testing.assert_array_equal(load_mask(path, GRID), ice == 1)


@pytest.mark.skipif(not DEMO.is_dir(), reason=f"GLAFT demo data not found at {DEMO}")
def test_glaft_demo_polygons_select_the_documented_cell_counts():
    from gvfuse.io.raster import read_single_band

    _, grid = read_single_band(DEMO / "20180304-20180405_velo-raw_vx.tif")
    assert load_mask(DEMO / "bedrock_V2.shp", grid).sum() == 47823
    assert load_mask(DEMO / "glacier_V1_Kaskawulsh_s_inwardBuffer600m.shp", grid).sum() == 36906


def test_a_shapefile_mask_is_its_sidecars_too(tmp_path):
    from gvfuse.io.masks import mask_files

    path = _write_polygons(tmp_path / "area.shp", [_rectangle_in("EPSG:32607", *BOX)], "EPSG:32607", "ESRI Shapefile")
    (tmp_path / "area.qmd").write_text("a QGIS sidecar OGR does not read")
    names = [p.name for p in mask_files(path)]
    assert names[0] == "area.shp" and {"area.shx", "area.dbf", "area.prj"} <= set(names[1:])
    assert "area.qmd" not in names
    assert mask_files(tmp_path / "area.tif") == [tmp_path / "area.tif"]


def test_a_changed_prj_beside_a_shapefile_mask_changes_the_pair_key(tmp_path, plugins):
    """The .prj moves every polygon without touching the .shp: a cached pair must not survive it."""
    import attrs

    from gvfuse.config import load_config
    from gvfuse.io.raster import read_bands
    from gvfuse.pipeline.run import build_plan
    from tests.helpers.scenes import optical_pair_run

    optical_pair_run(tmp_path, "mask-key", extra='[validation]\nstable_mask = "stable.shp"\n')
    grid = read_bands(tmp_path / "scenes" / "optical_20230105.tif")[1]
    shp = _write_polygons(tmp_path / "stable.shp", [shapely.box(*grid.bounds)], str(grid.crs), "ESRI Shapefile")
    config = load_config(tmp_path / "run.toml", plugins)
    (job,) = build_plan(config, plugins).jobs
    before = job.key
    assert attrs.evolve(job).key == before  # the key is a function of the files, not of the call
    prj = shp.with_suffix(".prj")
    prj.write_text(prj.read_text().replace("Zone_47N", "Zone_48N").replace('"Central_Meridian",99.0',
                                                                           '"Central_Meridian",105.0'))
    assert "Zone_48N" in prj.read_text() and job.key != before  # another CRS, the .shp untouched
    shp.with_suffix(".prj").unlink()
    assert job.key != before
