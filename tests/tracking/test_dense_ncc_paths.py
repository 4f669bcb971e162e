"""The paths of the dense NCC against each other and a direct NCC.

Windows without no-data take the fast path (Lewis 1995 box sums with the
secondary's window statistics precomputed); windows that touch no-data take
the masked path (Padfield 2012: sums over the pixels valid in both windows).
They must agree where both apply, and the masked path must be the plain NCC
of the valid pixels. The compiled stack the matchers use
(gvfuse.tracking.dense_ncc.dense_ncc_stack) must be the numpy/OpenCV one
(gvfuse.tracking.correlation.ncc_score_stack) for any window, step and search
radius, and its peak search the numpy peak search; the matchers' peak search
one row of shifts at a time (dense_ncc_peaks) must be the peak search of the
whole stack.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gvfuse.tracking.correlation import _cover, masked_ncc_scores, ncc_score_stack, peak_from_stack
from gvfuse.tracking.dense_ncc import _prepare, dense_ncc_peaks, dense_ncc_stack, peak_search
from tests.helpers.textures import shifted_pair

W, S, R = 32, 4, 3


def _masked_stack(ref: np.ndarray, sec: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The masked path over every window, prepared as ncc_score_stack prepares its inputs."""
    valid_r, valid_s = np.isfinite(ref), np.isfinite(sec)
    r0 = np.where(valid_r, ref - np.float32(ref[valid_r].mean()), 0).astype(np.float32)
    s0 = np.where(valid_s, sec - np.float32(sec[valid_s].mean()), 0).astype(np.float32)
    r0 /= np.float32(np.sqrt(np.mean(r0[valid_r] ** 2)))
    s0 /= np.float32(np.sqrt(np.mean(s0[valid_s] ** 2)))
    out = np.empty((2 * R + 1, 2 * R + 1, rows, cols), np.float32)
    masked_ncc_scores(r0, s0, valid_r.astype(np.float32), valid_s.astype(np.float32), out, y0=R, x0=R,
                      window_px=W, step_px=S, search_radius_px=R, min_count=0.6 * W * W, var_floor=1e-6)
    return np.clip(out, -1.0, 1.0)


def _direct_ncc(ref: np.ndarray, sec: np.ndarray, y: int, x: int, dy: int, dx: int) -> float:
    """NCC, in float64, of the reference window at (y, x) and the secondary one at (y + dy, x + dx),
    over the pixels valid in both."""
    a = ref[y : y + W, x : x + W].astype(np.float64)
    b = sec[y + dy : y + dy + W, x + dx : x + dx + W].astype(np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))


def test_fast_and_masked_paths_agree_without_no_data():
    ref, sec = shifted_pair(104, 1.4, -0.6, seed=11, noise=0.05)
    fast = ncc_score_stack(ref, sec, window_px=W, step_px=S, search_radius_px=R)
    rows, cols = fast.shape[2:]
    masked = _masked_stack(ref, sec, rows, cols)
    assert np.isfinite(fast).all() and np.isfinite(masked).all()
    # float32 box sums in both: agreement to a few 1e-6 of the correlation scale
    np.testing.assert_allclose(fast, masked, atol=2e-5, rtol=0)
    # and the same integer peak in every window
    side = 2 * R + 1
    assert (fast.reshape(side * side, -1).argmax(0) == masked.reshape(side * side, -1).argmax(0)).all()


def test_fast_path_equals_direct_ncc():
    ref, sec = shifted_pair(104, -0.7, 2.2, seed=12, noise=0.05)
    stack = dense_ncc_stack(ref, sec, window_px=W, step_px=S, search_radius_px=R)
    last = stack.shape[2] - 1
    for i, j, dy, dx in [(0, 0, 0, 0), (3, 5, 2, -1), (last, 0, -3, 3)]:
        expected = _direct_ncc(ref, sec, R + i * S, R + j * S, dy, dx)
        assert abs(stack[dy + R, dx + R, i, j] - expected) < 2e-5


def test_window_with_no_data_on_the_masked_path_is_the_ncc_of_its_valid_pixels():
    ref, sec = shifted_pair(104, 0.8, 1.3, seed=13, noise=0.05)
    ref, sec = ref.copy(), sec.copy()
    # holes in both images, covering a quarter of window (2, 2) or less, so it stays above min_valid_fraction
    ref[R + 2 * S + 3 : R + 2 * S + 12, R + 2 * S + 5 : R + 2 * S + 20] = np.nan
    sec[R + 2 * S + 20 : R + 2 * S + 28, R + 2 * S + 10 : R + 2 * S + 16] = np.nan
    stack = ncc_score_stack(ref, sec, window_px=W, step_px=S, search_radius_px=R)
    clean = ncc_score_stack(*shifted_pair(104, 0.8, 1.3, seed=13, noise=0.05), window_px=W, step_px=S,
                            search_radius_px=R)
    checked = 0
    for dy in range(-R, R + 1):
        for dx in range(-R, R + 1):
            expected = _direct_ncc(ref, sec, R + 2 * S, R + 2 * S, dy, dx)
            got = float(stack[dy + R, dx + R, 2, 2])
            assert abs(got - expected) < 2e-5, (dy, dx, got, expected)
            # the holes did change the answer, so this window really went through the masked path
            checked += abs(got - float(clean[dy + R, dx + R, 2, 2])) > 1e-4
    assert checked > 0


@settings(max_examples=25, deadline=None)
@given(window=st.integers(6, 40), step=st.integers(1, 6), radius=st.integers(0, 4), seed=st.integers(0, 10_000),
       holes=st.booleans())
def test_compiled_stack_is_the_numpy_stack(window, step, radius, seed, holes):
    ref, sec = shifted_pair(96, 0.6, -1.3, seed=seed, noise=0.05)
    if holes:
        rng = np.random.default_rng(seed)
        ref, sec = ref.copy(), sec.copy()
        for img in (ref, sec):
            y, x = rng.integers(0, 80, 2)
            img[y : y + 12, x : x + 9] = np.nan
    kw = {"window_px": window, "step_px": step, "search_radius_px": radius}
    compiled, plain = dense_ncc_stack(ref, sec, **kw), ncc_score_stack(ref, sec, **kw)
    assert compiled.shape == plain.shape
    np.testing.assert_array_equal(np.isnan(compiled), np.isnan(plain))
    np.testing.assert_allclose(compiled, plain, atol=2e-5, rtol=0)
    if radius >= 1 and plain.size:
        a, b = peak_search(plain), peak_from_stack(plain)
        for field in ("dx_px", "dy_px", "peak_correlation", "snr"):
            np.testing.assert_allclose(getattr(a, field), getattr(b, field), atol=1e-6, rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(window=st.integers(6, 40), step=st.integers(1, 6), radius=st.integers(1, 5), seed=st.integers(0, 10_000),
       margins=st.lists(st.integers(0, 14), min_size=8, max_size=8), holes=st.booleans(),
       extra_origin=st.integers(0, 3))
def test_windows_at_the_valid_areas_edge_take_the_rectangle_path(window, step, radius, seed, margins, holes,
                                                                 extra_origin):
    """A tile on the image border is padded with no-data: each image is valid on a rectangle. The windows
    that see no-data only there are scored from the fast path's sums and shift-independent tables
    (_rect_scores), the others (holes inside) by the masked path: together the numpy masked stack."""
    ref, sec = shifted_pair(96, 0.6, -1.3, seed=seed, noise=0.05)
    ref, sec = ref.copy(), sec.copy()
    for img, (top, bottom, left, right) in ((ref, margins[:4]), (sec, margins[4:])):
        img[:top] = np.nan
        img[img.shape[0] - bottom :] = np.nan
        img[:, :left] = np.nan
        img[:, img.shape[1] - right :] = np.nan
    if holes:
        rng = np.random.default_rng(seed)
        for img in (ref, sec):
            y, x = rng.integers(10, 70, 2)
            img[y : y + 12, x : x + 9] = np.nan
    origin = radius + extra_origin
    kw = {"window_px": window, "step_px": step, "search_radius_px": radius, "origin_px": origin}
    compiled, plain = dense_ncc_stack(ref, sec, **kw), ncc_score_stack(ref, sec, **kw)
    np.testing.assert_array_equal(np.isnan(compiled), np.isnan(plain))
    np.testing.assert_allclose(compiled, plain, atol=2e-5, rtol=0)
    rows, cols = plain.shape[2:]
    if rows and cols and not holes and extra_origin == 0:
        prep = _prepare(ref, sec, w=window, s=step, r=radius, o=radius, rows=rows, cols=cols,
                        min_valid_fraction=0.6, min_variance=1e-6)
        assert prep.masked is None
        # a no-data top or left edge of the secondary is in the first windows' search
        assert prep.rect is not None or not (margins[4] or margins[6])


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 120), cols=st.integers(1, 120), block=st.one_of(st.none(), st.integers(1, 40)),
       seed=st.integers(0, 10_000), density=st.floats(0.0, 0.3))
def test_the_cover_holds_every_affected_window(rows, cols, block, seed, density):
    rng = np.random.default_rng(seed)
    affected = rng.random((rows, cols)) < density
    if rows > 3:
        affected[:2] = True  # a band, as on a tile's border
    covered = np.zeros_like(affected)
    for i0, i1, j0, j1 in _cover(affected, block_cells=block):
        assert 0 <= i0 < i1 <= rows and 0 <= j0 < j1 <= cols
        covered[i0:i1, j0:j1] = True
    assert not (affected & ~covered).any()


def test_scattered_holes_cost_their_blocks_and_score_as_the_numpy_stack():
    """Clouds scattered over a tile: the masked path covers the blocks around them (not their common bounding
    box, most of the tile), with the same scores as the numpy masked stack."""
    ref, sec = shifted_pair(200, 0.6, -1.3, seed=4, noise=0.05)
    ref, sec = ref.copy(), sec.copy()
    for y, x in ((20, 30), (150, 40), (60, 160), (170, 170)):
        sec[y : y + 6, x : x + 5] = np.nan
    ref[100:104, 100:107] = np.nan
    kw = {"window_px": 10, "step_px": 1, "search_radius_px": 2}
    compiled, plain = dense_ncc_stack(ref, sec, **kw), ncc_score_stack(ref, sec, **kw)
    np.testing.assert_array_equal(np.isnan(compiled), np.isnan(plain))
    np.testing.assert_allclose(compiled, plain, atol=2e-5, rtol=0)
    rows, cols = plain.shape[2:]
    prep = _prepare(ref, sec, w=10, s=1, r=2, o=2, rows=rows, cols=cols, min_valid_fraction=0.6,
                    min_variance=1e-6)
    covered = sum((i1 - i0) * (j1 - j0) for i0, i1, j0, j1 in prep.masked.cover)
    assert covered < 0.1 * rows * cols  # 4.5 %; the holes' common bounding box is 76 % of the grid


def test_compiled_stack_with_a_larger_origin_and_a_flat_patch():
    ref, sec = shifted_pair(120, -2.0, 1.0, seed=5, noise=0.05)
    ref, sec = ref.copy(), sec.copy()
    ref[40:80, 40:80] = 0.25  # flat: no variance, NaN score
    kw = {"window_px": 16, "step_px": 4, "search_radius_px": 3, "origin_px": 7}
    compiled, plain = dense_ncc_stack(ref, sec, **kw), ncc_score_stack(ref, sec, **kw)
    assert np.isnan(plain).any()
    np.testing.assert_array_equal(np.isnan(compiled), np.isnan(plain))
    np.testing.assert_allclose(compiled, plain, atol=2e-5, rtol=0)


@settings(max_examples=25, deadline=None)
@given(window=st.integers(6, 40), step=st.integers(1, 6), radius=st.integers(1, 5), seed=st.integers(0, 10_000),
       holes=st.booleans(), flat=st.booleans())
def test_peaks_row_by_row_are_the_peaks_of_the_whole_stack(window, step, radius, seed, holes, flat):
    ref, sec = shifted_pair(96, 1.6, -2.3, seed=seed, noise=0.05)
    ref, sec = ref.copy(), sec.copy()
    rng = np.random.default_rng(seed)
    if holes:
        for img in (ref, sec):
            y, x = rng.integers(0, 80, 2)
            img[y : y + 12, x : x + 9] = np.nan
    if flat:  # no variance: NaN scores, and windows whose peak ties or sits on the search edge
        y, x = rng.integers(0, 60, 2)
        sec[y : y + 30, x : x + 30] = 0.5
    kw = {"window_px": window, "step_px": step, "search_radius_px": radius}
    whole = peak_search(dense_ncc_stack(ref, sec, **kw))
    rows = dense_ncc_peaks(ref, sec, **kw)
    for field in ("dx_px", "dy_px", "peak_correlation", "snr"):
        np.testing.assert_array_equal(getattr(rows, field), getattr(whole, field), err_msg=field)


def test_peaks_row_by_row_find_the_shift_of_a_pair():
    ref, sec = shifted_pair(160, 2.3, -1.4, seed=3, noise=0.02)
    est = dense_ncc_peaks(ref, sec, window_px=32, step_px=4, search_radius_px=4)
    inner = (slice(2, -2), slice(2, -2))
    assert np.isfinite(est.dx_px[inner]).all()
    # the quadratic fit alone: within a few tenths of a pixel (the matchers refine further)
    assert abs(float(np.median(est.dx_px[inner])) - 2.3) < 0.15
    assert abs(float(np.median(est.dy_px[inner])) + 1.4) < 0.15
