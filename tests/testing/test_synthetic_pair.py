"""The scene-pair builder: the truth it returns, reproducibility, and GeoTIFFs that read back."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import rasterio
from affine import Affine
from scipy import ndimage

from gvfuse.io.raster import read_bands
from gvfuse.model import Grid
from gvfuse.testing import SyntheticPair, Translation, make_pair


@pytest.fixture(scope="module")
def glacier_pair() -> SyntheticPair:
    return make_pair("optical", (160, 192), cloud_fraction=0.1, geolocation_shift_px=(0.3, -0.2), seed=21)


def test_pair_has_consistent_truth(glacier_pair: SyntheticPair) -> None:
    pair = glacier_pair
    assert pair.reference.shape == pair.secondary.shape == pair.grid.shape == (160, 192)
    for array in (pair.reference, pair.secondary, pair.dx_px, pair.dy_px):
        assert array.dtype == np.float32
    assert pair.ice_mask.any() and pair.stable_mask.any()
    assert not (pair.ice_mask & pair.stable_mask).any()
    assert (pair.dx_px[~pair.ice_mask] == 0).all() and (pair.dy_px[~pair.ice_mask] == 0).all()
    speed = np.hypot(pair.dx_px, pair.dy_px) * pair.pixel_size_m / pair.dt_days
    assert speed.max() <= 1.0 + 1e-6  # the optical preset's max speed, m/day
    assert (pair.pixel_size_m, pair.dt_days, pair.band_name) == (15.0, 16.0, "B8")
    assert pair.grid.crs.to_epsg() == 32647
    assert not pair.reference_cloud_mask.any() and abs(pair.cloud_mask.mean() - 0.1) <= 0.03


def test_truth_arrays_are_read_only(glacier_pair: SyntheticPair) -> None:
    with pytest.raises(ValueError):
        glacier_pair.dx_px[0, 0] = 1.0
    with pytest.raises(ValueError):
        glacier_pair.reference[0, 0] = 1.0


def test_same_seed_same_pair_bit_for_bit() -> None:
    kwargs = {"cloud_fraction": 0.2, "shadow_fraction": 0.1, "geolocation_shift_px": (0.3, -0.2), "seed": 3}
    a, b = make_pair("optical", (96, 112), **kwargs), make_pair("optical", (96, 112), **kwargs)
    for name in ("reference", "secondary", "dx_px", "dy_px", "ice_mask", "stable_mask", "cloud_mask"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    c = make_pair("optical", (96, 112), **{**kwargs, "seed": 4})
    assert not np.array_equal(a.reference, c.reference)
    sar_a, sar_b = make_pair("sar", (64, 64), seed=8), make_pair("sar", (64, 64), seed=8)
    np.testing.assert_array_equal(sar_a.secondary, sar_b.secondary)


def test_ingredients_draw_from_independent_streams() -> None:
    """Changing the secondary's clouds changes nothing else: each ingredient has its own random stream."""
    a = make_pair("optical", (96, 96), cloud_fraction=0.1, seed=5)
    b = make_pair("optical", (96, 96), cloud_fraction=0.3, seed=5)
    np.testing.assert_array_equal(a.reference, b.reference)
    np.testing.assert_array_equal(a.dx_px, b.dx_px)
    clear = ~(a.cloud_mask | b.cloud_mask)
    np.testing.assert_array_equal(a.secondary[clear], b.secondary[clear])


def test_surface_change_renews_the_ice_texture_only() -> None:
    """``surface_change`` replaces that share of the ice's texture variance at the secondary's date; the
    reference, the truth and the ground off the ice stay as they were."""
    kwargs = {"cloud_fraction": 0.0, "noise": False, "illumination_change": 0.0, "radiometric_change": False,
              "max_speed_m_per_day": 1e-4, "seed": 6}  # a glacier that barely moves
    same = make_pair("optical", (128, 128), **kwargs)
    np.testing.assert_allclose(same.secondary, same.reference, rtol=1e-5)
    ice = same.ice_mask & ~ndimage.binary_dilation(~same.ice_mask, iterations=3)
    rock = ~ndimage.binary_dilation(same.ice_mask, iterations=6)  # beyond the soft margin of the ice weight
    correlation = {}
    for change in (0.5, 1.0):
        pair = make_pair("optical", (128, 128), surface_change=change, **kwargs)
        np.testing.assert_array_equal(pair.reference, same.reference)
        np.testing.assert_allclose(pair.secondary[rock], same.secondary[rock], rtol=1e-5)  # the warp: 2e-6
        correlation[change] = np.corrcoef(pair.reference[ice], pair.secondary[ice])[0, 1]
    # the log-normal reflectance of a standardised mix: about sqrt(1 - change) of the texture is shared
    assert 0.6 < correlation[0.5] < 0.8 and abs(correlation[1.0]) < 0.15, correlation
    with pytest.raises(ValueError, match="surface_change"):
        make_pair("optical", (64, 64), surface_change=1.5)
    with pytest.raises(ValueError, match="coherence"):
        make_pair("sar", (64, 64), surface_change=0.5)


def test_velocity_is_east_north_in_metres_per_day() -> None:
    east = make_pair("optical", (48, 48), motion=Translation(1.0, 0.0), cloud_fraction=0.0, seed=1)
    vx, vy = east.true_velocity_m_per_day()
    np.testing.assert_allclose(vx, 15.0 / 16.0, rtol=1e-6)
    np.testing.assert_array_equal(vy, 0.0)
    south = make_pair("optical", (48, 48), motion=Translation(0.0, 2.0), cloud_fraction=0.0, seed=1)
    vx, vy = south.true_velocity_m_per_day()
    np.testing.assert_allclose(vy, -2.0 * 15.0 / 16.0, rtol=1e-6)  # rows grow southward
    assert not south.stable_mask.any() and south.ice_mask.all()


def test_truth_on_a_tracker_grid(glacier_pair: SyntheticPair) -> None:
    pair = glacier_pair
    step, window = 4, 16
    tracker = pair.grid.window_centre_grid(step, window)
    dx, dy = pair.true_displacement_on(tracker)
    assert dx.shape == tracker.shape
    # Window k's centre is at k * step + window / 2 in continuous pixel coordinates.
    k_row, k_col = 7, 11
    centre = (k_row * step + window / 2, k_col * step + window / 2)
    exact_dx, exact_dy = pair.true_displacement_at(np.array(centre[0]), np.array(centre[1]))
    assert (dx[k_row, k_col], dy[k_row, k_col]) == (exact_dx, exact_dy)
    # The analytic field and the bilinear sample of the per-pixel truth agree where the four pixels
    # around a centre are all ice or all rock; across the margin's kink bilinear sampling cuts the corner.
    centres = np.arange(tracker.rows) * step + window // 2, np.arange(tracker.cols) * step + window // 2
    bilinear_dx, bilinear_dy = pair.true_displacement_at(
        *np.broadcast_arrays(centres[0][:, None], centres[1][None, :]), exact=False
    )
    corners = [pair.ice_mask[np.ix_(centres[0] + i, centres[1] + j)] for i in (-1, 0) for j in (-1, 0)]
    uniform = np.all(corners, axis=0) | ~np.any(corners, axis=0)
    assert uniform.sum() > 0.8 * uniform.size and (~uniform).any()
    assert np.abs(bilinear_dy - dy)[uniform].max() < 2e-3 and np.abs(bilinear_dx - dx)[uniform].max() < 2e-3
    # Window means are means of the per-pixel truth over the window.
    mean_dx, mean_dy = pair.true_displacement_on(tracker, window_px=window)
    rows, cols = slice(k_row * step, k_row * step + window), slice(k_col * step, k_col * step + window)
    assert mean_dy[k_row, k_col] == pytest.approx(float(pair.dy_px[rows, cols].mean()), abs=1e-6)
    assert mean_dx[k_row, k_col] == pytest.approx(float(pair.dx_px[rows, cols].mean()), abs=1e-6)
    assert np.isfinite(mean_dx).all()


def test_truth_outside_the_image_is_nan(glacier_pair: SyntheticPair) -> None:
    dx, dy = glacier_pair.true_displacement_at(np.array([-1.0, 10.0]), np.array([5.0, 500.0]))
    assert np.isnan(dx).all() and np.isnan(dy).all()
    elsewhere = Grid("EPSG:32647", Affine(60.0, 0, 249000.0, 0, -60.0, 3241000.0), (60, 60))
    dx, _ = glacier_pair.true_displacement_on(elsewhere)
    assert np.isnan(dx).any() and np.isfinite(dx).any()
    with pytest.raises(ValueError, match="CRS"):
        glacier_pair.true_displacement_on(Grid("EPSG:4326", Affine(0.1, 0, 96, 0, -0.1, 29), (3, 3)))


def test_geotiffs_read_back_with_georeferencing_values_and_tags(glacier_pair: SyntheticPair, tmp_path) -> None:
    paths = glacier_pair.write_geotiffs(tmp_path, stem="l8", truth=True)
    assert set(paths) == {"reference", "secondary", "truth"}
    for role, image in (("reference", glacier_pair.reference), ("secondary", glacier_pair.secondary)):
        with rasterio.open(paths[role]) as src:
            assert src.crs.to_epsg() == 32647
            assert src.transform == glacier_pair.grid.transform
            assert src.descriptions == ("B8",)
            tags = src.tags()
            assert tags["role"] == role and json.loads(tags["geolocation_shift_px"]) == [0.3, -0.2]
            assert float(tags["dt_days"]) == 16.0
        bands, grid, _ = read_bands(paths[role])
        assert grid == glacier_pair.grid
        np.testing.assert_array_equal(bands["B8"], image)  # NaN where clouds, equal elsewhere
    truth, _, _ = read_bands(paths["truth"])
    np.testing.assert_array_equal(truth["dx_px"], glacier_pair.dx_px)
    np.testing.assert_array_equal(truth["stable_mask"] == 1, glacier_pair.stable_mask)
    np.testing.assert_allclose(truth["vy"], glacier_pair.true_velocity_m_per_day()[1])
    with pytest.raises(Exception, match="exists"):
        glacier_pair.write_geotiffs(tmp_path, stem="l8")


def test_pair_origin_and_sensor_presets() -> None:
    pair = make_pair("sar", (32, 40), origin=(300000.0, 3200000.0), seed=2)
    assert pair.grid.transform == Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 3200000.0)
    assert pair.band_name == "VV" and pair.units == "amplitude" and pair.dt_days == 12.0
    uav = make_pair("uav", (32, 40), pixel_size_m=0.5, band_name="red", max_speed_m_per_day=0.02, seed=2)
    assert uav.pixel_size_m == 0.5 and uav.band_name == "red"
    # A 20 m wide scene's glacier is a few pixels wide: at the preset 0.3 m/day it would fold over.
    with pytest.raises(ValueError, match="folds the surface over"):
        make_pair("uav", (32, 40), pixel_size_m=0.5, seed=2)
    with pytest.raises(ValueError, match="kind"):
        make_pair("lidar", (32, 32))


def test_a_1024_pair_builds_quickly() -> None:
    start = time.perf_counter()
    make_pair("optical", (1024, 1024), seed=0)
    # Generous for a shared machine; measured ~1.3 s on two busy cores.
    assert time.perf_counter() - start < 10.0


def test_fine_grid_motion_is_the_exact_field_everywhere() -> None:
    """The builder evaluates the field on the fine grid only near ice; that must lose nothing."""
    from gvfuse.testing import GlacierFlow, default_glaciers, sample_motion
    from gvfuse.testing.scene import _fine_motion

    glaciers = default_glaciers((60, 80), 15.0, rng=np.random.default_rng(1), max_speed_m_per_day=3.0, count=2)
    flow = GlacierFlow(glaciers, 15.0, 16.0)
    margin, k = 5, 3
    _, _, ice = sample_motion(flow, (70, 90), offset_px=-margin)
    fine_dx, fine_dy = _fine_motion(flow, ice, k, margin)
    exact_dx, exact_dy, exact_ice = sample_motion(flow, (70, 90), k, offset_px=-margin)
    assert exact_ice.any() and not exact_ice.all()
    np.testing.assert_array_equal(fine_dy == 0, exact_dy == 0)  # no ice point skipped
    np.testing.assert_allclose(fine_dx, exact_dx * k, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fine_dy, exact_dy * k, rtol=1e-6, atol=1e-6)


def test_true_velocity_on_a_tracker_grid_matches_the_pixel_velocity() -> None:
    pair = make_pair("optical", (64, 64), motion=Translation(0.5, -0.25), cloud_fraction=0.0, seed=1)
    tracker = pair.grid.window_centre_grid(2, 32)
    vx, vy = pair.true_velocity_on(tracker, window_px=32)
    np.testing.assert_allclose(vx, 0.5 * 15.0 / 16.0, rtol=1e-6)
    np.testing.assert_allclose(vy, 0.25 * 15.0 / 16.0, rtol=1e-6)  # up the image is north
