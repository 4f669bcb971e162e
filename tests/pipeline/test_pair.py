"""The grid a pair is tracked on: the product area both scenes cover, however the scene says where it is."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.warp import transform_bounds

from gvfuse.errors import GridError
from gvfuse.model import Grid, Scene
from gvfuse.pipeline.pair import tracking_grid

#: 6 km x 6 km at 30 m in UTM 47N (the Gangrigab zone)
PRODUCT = Grid("EPSG:32647", Affine(30.0, 0.0, 600_000.0, 0.0, -30.0, 3_240_000.0), (200, 200))


def _scene(name: str, *, grid: Grid | None = None, box_m: tuple[float, float, float, float] | None = None) -> Scene:
    metadata = {}
    if box_m is not None:  # the footprint a manifest gives: lon/lat bounds of a box in the product's CRS
        metadata["footprint_lonlat_bounds"] = list(transform_bounds(PRODUCT.crs, "EPSG:4326", *box_m))
    return Scene("sentinel-1", "S1A", name, dt.datetime(2023, 1, 1, tzinfo=dt.UTC), f"/scenes/{name}", grid=grid,
                 metadata=metadata)


def test_a_scene_in_radar_geometry_is_bounded_by_its_footprint_not_the_whole_area():
    grd = _scene("grd", box_m=(601_000.0, 3_236_000.0, 603_000.0, 3_238_500.0))
    grid = tracking_grid(PRODUCT, (grd, grd), 10.0)
    left, bottom, right, top = grid.bounds
    # the footprint's box (slightly larger once it went through lon/lat), snapped outwards to product cells
    assert 600_960.0 <= left <= 601_000.0 and 602_999.0 <= right <= 603_060.0
    assert 3_235_940.0 <= bottom <= 3_236_000.0 and 3_238_500.0 <= top <= 3_238_560.0
    assert grid.shape[0] * grid.shape[1] < 0.2 * (600 * 600)  # not the 600 x 600 cells of the whole area at 10 m


def test_a_scene_without_grid_or_footprint_covers_the_whole_area_and_grids_intersect():
    blind = _scene("blind")
    assert tracking_grid(PRODUCT, (blind, blind), 30.0).bounds == PRODUCT.bounds
    half = Grid(PRODUCT.crs, Affine(10.0, 0.0, 603_000.0, 0.0, -10.0, 3_240_000.0), (600, 300))
    grid = tracking_grid(PRODUCT, (_scene("half", grid=half), blind), 10.0)
    assert grid.bounds == (603_000.0, 3_234_000.0, 606_000.0, 3_240_000.0)
    with pytest.raises(GridError, match="do not overlap"):
        tracking_grid(PRODUCT, (_scene("half", grid=half), _scene("west", box_m=(600_100.0, 3_235_000.0,
                                                                                 602_000.0, 3_236_000.0))), 10.0)


@pytest.mark.parametrize("footprint", [[float("nan"), 29.0, 96.7, 29.1], [96.6, 29.0, float("inf"), 29.1],
                                       [96.7, 29.0, 96.6, 29.1], [96.6, 29.0], "96,29,97,30", None])
def test_a_malformed_footprint_is_no_footprint(footprint):
    odd = attrs.evolve(_scene("odd"), metadata={"footprint_lonlat_bounds": footprint})
    assert tracking_grid(PRODUCT, (odd, odd), 30.0).bounds == PRODUCT.bounds


@settings(max_examples=40, deadline=None)
@given(x0=st.floats(600_000, 605_000), y0=st.floats(3_234_000, 3_239_000),
       width=st.floats(300, 3000), height=st.floats(300, 3000))
def test_the_tracking_grid_covers_the_footprint_inside_the_product_and_snaps_to_its_cells(x0, y0, width, height):
    box = (x0, y0, min(x0 + width, 606_000.0), min(y0 + height, 3_240_000.0))
    grid = tracking_grid(PRODUCT, (_scene("a", box_m=box), _scene("b")), 10.0)
    left, bottom, right, top = grid.bounds
    p_left, p_bottom, p_right, p_top = PRODUCT.bounds
    assert p_left <= left <= box[0] + 1e-6 and box[2] - 1e-6 <= right <= p_right
    assert p_bottom <= bottom <= box[1] + 1e-6 and box[3] - 1e-6 <= top <= p_top
    assert (left - p_left) % 30.0 == pytest.approx(0.0, abs=1e-6) or (left - p_left) % 30.0 == pytest.approx(30.0)
    assert (p_top - top) % 30.0 == pytest.approx(0.0, abs=1e-6) or (p_top - top) % 30.0 == pytest.approx(30.0)


def test_scenes_reaching_beyond_the_product_are_read_a_halo_beyond_it_snapped_outwards():
    left, bottom, right, top = PRODUCT.bounds
    wide = _scene("wide", box_m=(left - 2000.0, bottom - 2000.0, right + 2000.0, top + 2000.0))
    grid = tracking_grid(PRODUCT, (wide, wide), 10.0, halo_m=301.0)
    assert grid.bounds == (left - 330.0, bottom - 330.0, right + 330.0, top + 330.0)  # whole 30 m cells outwards
    # a scene that stops at the product's edge, and one that says nothing of its extent, give no halo there
    flush = _scene("flush", grid=Grid(PRODUCT.crs, Affine(10.0, 0.0, left, 0.0, -10.0, top), (600, 600)))
    assert tracking_grid(PRODUCT, (wide, flush), 10.0, halo_m=301.0).bounds == PRODUCT.bounds
    assert tracking_grid(PRODUCT, (wide, _scene("blind")), 10.0, halo_m=301.0).bounds == PRODUCT.bounds


def test_the_halo_is_half_the_largest_window_plus_the_search_radius():
    from gvfuse.pipeline.pair import tracking_halo_m
    from gvfuse.tracking.search import search_radius_px

    radius = search_radius_px(1.0, 20.0, 15.0)
    assert tracking_halo_m({"window_px": 32}, 1.0, 20.0, 15.0) == (16 + radius) * 15.0
    assert tracking_halo_m({"window_px": 32, "fallback_window_px": 48}, 1.0, 20.0, 15.0) == (24 + radius) * 15.0
    # "auto" (a tracker's default: ncc's and fft-phase's) is the window it stands for, 44 px at 32 px / step 2
    assert tracking_halo_m({"window_px": 32, "step_px": 2, "fallback_window_px": "auto"}, 1.0, 20.0,
                           15.0) == (22 + radius) * 15.0
    assert tracking_halo_m({"window_px": 32, "fallback_window_px": False}, 1.0, 20.0, 15.0) == (16 + radius) * 15.0
    assert tracking_halo_m({}, 1.0, 20.0, 15.0) == radius * 15.0
