"""Case 2 and the cache: a pair's cache key follows its inputs' content, and a corrupt cached pair is no cache.

A band replaced by another image of the same size (even keeping its modification time, as ``cp -p`` does)
is tracked again; a truncated or empty cached pair result is tracked again instead of ending the run in a
traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from hypothesis import given, settings
from hypothesis import strategies as st

from gvfuse.config import load_config
from gvfuse.pipeline.pair import SAMPLE_BYTES, file_fingerprint, read_pair_result
from gvfuse.pipeline.run import build_plan, execute
from gvfuse.testing import make_pair
from tests.helpers.scenes import product_toml, write_raster


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One month, one optical pair of uncompressed dated GeoTIFFs, with its product and run definition."""
    root = tmp_path_factory.mktemp("cache")
    pair = make_pair("optical", (160, 160), dt_days=29, max_speed_m_per_day=0.5, cloud_fraction=0.0,
                     geolocation_shift_px=(0.2, -0.1), seed=10)
    write_raster(root / "scenes" / "optical_20230101.tif", pair.reference, pair.grid.transform, crs=pair.grid.crs)
    write_raster(root / "scenes" / "optical_20230130.tif", pair.secondary, pair.grid.transform, crs=pair.grid.crs)
    (root / "product.toml").write_text(product_toml(pair.grid, "cache-test", "one month", "2023-01", "2023-01"))
    (root / "run.toml").write_text('''
product = "product.toml"
[sensors.optical]
reader = "geotiff"
pairing = "optical"
tracker = "ncc"
tracker_parameters = { window_px = 32, step_px = 2 }
max_speed_m_per_day = 1.0
[weighting]
name = "equal"
[validation]
validators = []
''')
    return root


def _rewrite_keeping_size_and_time(path: Path, pixels: np.ndarray) -> None:
    """Another image in the same file: same size, and its modification time put back (``cp -p``)."""
    before = path.stat()
    with rasterio.open(path, "r+") as dst:
        dst.write(pixels.astype(dst.dtypes[0]), 1)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_a_band_replaced_at_the_same_size_and_time_is_tracked_again(workspace, plugins):
    config = load_config(workspace / "run.toml", plugins)
    first = execute(config, plugins=plugins)
    assert not first.failed_months, first.problems
    product = config.output_dir / "202301_vx.tif"
    published = product.read_bytes()
    assert np.isfinite(first.months[0].product.vx_m_per_day).mean() > 0.5
    (job,) = build_plan(config, plugins).jobs
    key = job.key  # the key is of the files as they are now
    band = workspace / "scenes" / "optical_20230130.tif"
    with rasterio.open(workspace / "scenes" / "optical_20230101.tif") as src:
        still = src.read(1)  # the reference again: a glacier that did not move
    _rewrite_keeping_size_and_time(band, still)
    (changed,) = build_plan(config, plugins).jobs
    assert changed.key != key
    # the month is published from other inputs now: replaced with --force, from a pair tracked again
    again = execute(config, plugins=plugins, force=True)
    assert not again.failed_months, again.problems
    assert [o.cached for o in again.pairs] == [False]
    assert product.read_bytes() != published


def test_a_truncated_or_empty_cached_pair_is_tracked_again_not_a_traceback(workspace, plugins):
    config = load_config(workspace / "run.toml", plugins)
    done = execute(config, plugins=plugins, force=True)
    assert not done.failed_months, done.problems
    published = (config.output_dir / "202301_vx.tif").read_bytes()
    (cached,) = (o.path for o in done.pairs)
    assert cached is not None
    good = cached.read_bytes()
    field, _ = read_pair_result(cached)
    for broken in (good[: len(good) // 2], good[:100], b""):
        cached.write_bytes(broken)
        result = execute(config, plugins=plugins)
        assert not result.failed_months, result.problems
        assert [o.cached for o in result.pairs] == [False]
        assert read_pair_result(cached)[0].vx_m_per_day.tobytes() == field.vx_m_per_day.tobytes()
        assert (config.output_dir / "202301_vx.tif").read_bytes() == published


def test_the_pair_key_includes_the_tracker_parameters_and_defaults(workspace, plugins):
    config = load_config(workspace / "run.toml", plugins)
    (job,) = build_plan(config, plugins).jobs
    import attrs

    assert attrs.evolve(job, tracker_parameters={"window_px": 32, "step_px": 4}).key != job.key
    # a default written out is the same run as the default left out
    assert attrs.evolve(job, tracker_parameters={**job.tracker_parameters, "refine_iterations": 3}).key == job.key


@settings(max_examples=25, deadline=None)
@given(where=st.sampled_from(["start", "middle", "end"]), offset=st.integers(0, SAMPLE_BYTES - 1),
       value=st.integers(1, 255))
def test_a_changed_byte_in_a_sampled_block_changes_a_large_file_fingerprint(tmp_path_factory, where, offset, value):
    path = tmp_path_factory.getbasetemp() / "large.bin"
    size = 5 * SAMPLE_BYTES + 12345
    if not path.exists() or path.stat().st_size != size:
        path.write_bytes(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
    before = file_fingerprint(path)
    position = {"start": 0, "middle": (size - SAMPLE_BYTES) // 2, "end": size - SAMPLE_BYTES}[where] + offset
    stat = path.stat()
    with open(path, "r+b") as f:
        f.seek(position)
        old = f.read(1)
        f.seek(position)
        f.write(bytes([old[0] ^ value]))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    try:
        assert file_fingerprint(path) != before
    finally:
        with open(path, "r+b") as f:
            f.seek(position)
            f.write(old)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_small_file_rewritten_with_the_same_bytes_keeps_its_fingerprint_and_another_byte_changes_it(tmp_path):
    """A mask regenerated by a script (the demo rewrote its masks on every run) must not re-track every
    pair: files hashed whole are known by their content alone."""
    path = tmp_path / "mask.tif"
    data = np.random.default_rng(1).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    path.write_bytes(data)
    before = file_fingerprint(path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # rewritten a second later, same bytes
    assert file_fingerprint(path) == before
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert file_fingerprint(path) != before
