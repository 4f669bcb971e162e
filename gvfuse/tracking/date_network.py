"""Per-date geolocation offsets, estimated jointly from the stable-ground shifts of a network of pairs.

A pair's stable-ground shift measures the difference of its two images'
geolocation errors, ``s(a, b) = g(b) - g(a)``. Corrected one pair at a time,
the shifts of a triplet need not add up (each pair's estimate has its own
noise, and one pair may have had its correction skipped where the others had
theirs applied), and the misfit shows as closure error and as steps between
the pairs of a fused month. Solved over the network, with one unknown offset
per date by weighted least squares as in the small-baseline network inversion
of Berardino et al. (2002, IEEE TGRS 40:2375), the corrections of any loop add
up exactly, the redundant pairs average their noise down, a pair whose own
estimate disagrees with the rest of the network is found and outvoted, and a
pair whose correction was skipped receives the network's value when its two
dates are tied to the others by measured pairs.

Only differences ``g(b) - g(a)`` are determined: the offsets of each group of
dates connected by measured pairs are given with zero mean (the minimum-norm
solution), which fixes nothing a pair can see.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from gvfuse.tracking.stable_ground import NOISE_FLOOR_PX


@attrs.frozen
class PairShift:
    """One pair's stable-ground shift (any length unit, two components) and its standard error; ``shift`` is
    None when the pair has no trusted estimate (its correction was skipped): it is then only given one."""

    pair_id: str
    reference: Hashable
    secondary: Hashable
    shift: tuple[float, float] | None
    sigma: float = 1.0


@attrs.frozen
class NetworkShifts:
    """The network's answer: per-date offsets, per-pair shifts, and what it made of each measurement."""

    #: Offset of each date tied to a measured pair (zero mean per connected group).
    date_offsets: dict[Hashable, tuple[float, float]]
    #: ``g(secondary) - g(reference)`` for every pair whose dates are tied by measured pairs; None otherwise.
    pair_shifts: dict[str, tuple[float, float] | None]
    #: Measured minus network shift of every measured pair (the dropped ones included).
    residuals: dict[str, tuple[float, float]]
    #: Measured pairs outvoted by the rest of the network, worst first.
    dropped: tuple[str, ...] = ()
    #: Independent checks of the measurements: measured pairs minus (dates minus groups) used.
    redundancy: int = 0


def shift_sigma_px(scatter_px: float | None, count: int | None) -> float:
    """Standard error (px) of a stable-ground shift fitted on ``count`` points scattered by ``scatter_px``,
    never below the floor of sub-pixel matching (:data:`~gvfuse.tracking.stable_ground.NOISE_FLOOR_PX`),
    which also stands in when the figures are missing."""
    if scatter_px is None or count is None or count <= 0 or not np.isfinite(scatter_px):
        return NOISE_FLOOR_PX
    return float(np.hypot(NOISE_FLOOR_PX, scatter_px / np.sqrt(count)))


def measured_shift(pair_id: str, reference: Hashable, secondary: Hashable,
                   parameters: Mapping[str, Any]) -> PairShift | None:
    """A tracked pair as the network sees it, from its offsets' recorded ``stable_shift_*`` parameters (px).

    None when the pair takes no part: its correction was off, or a plane was
    fitted (its coefficients are in the pair's own cells). ``shift`` is None
    when the pair's correction was skipped: it has no estimate of its own.
    """
    decision = parameters.get("stable_shift_decision")
    if decision not in ("applied", "skipped") or parameters.get("stable_shift_model", "constant") != "constant":
        return None
    if decision == "skipped" or parameters.get("stable_shift_source") == "none":
        return PairShift(pair_id, reference, secondary, None, shift_sigma_px(None, None))
    shift = (float(parameters["stable_shift_dx_px"]), float(parameters["stable_shift_dy_px"]))
    sigma = shift_sigma_px(parameters.get("stable_shift_candidate_scatter_px"), parameters.get("stable_shift_count"))
    return PairShift(pair_id, reference, secondary, shift, sigma)


def _groups(nodes: Sequence[Hashable], edges: Sequence[tuple[int, int]]) -> np.ndarray:
    """Connected-component label of each node."""
    n = len(nodes)
    if not edges:
        return np.arange(n)
    rows, cols = zip(*edges, strict=True)
    graph = coo_matrix((np.ones(len(edges)), (rows, cols)), shape=(n, n))
    return np.asarray(connected_components(graph, directed=False)[1])


def _design(index: Mapping[Hashable, int], measured: list[PairShift]) -> tuple[np.ndarray, np.ndarray]:
    """Weighted design matrix (pairs x dates) and weighted shifts (pairs x 2): rows scaled by 1 / sigma."""
    a = np.zeros((len(measured), len(index)))
    b = np.zeros((len(measured), 2))
    for k, p in enumerate(measured):
        assert p.shift is not None
        a[k, index[p.secondary]] += 1.0 / p.sigma
        a[k, index[p.reference]] -= 1.0 / p.sigma
        b[k] = np.asarray(p.shift, float) / p.sigma
    return a, b


#: A pair whose shift the rest of the network contradicts by more than this (estimated error, px) is outvoted.
NETWORK_TOLERANCE_PX = 0.2

#: A measured pair is only outvoted where the network checks it well: at least this share of an error in
#: it shows in its own residual (its redundancy number; Förstner 1987, good controllability >= 0.3-0.5). In a
#: lone triangle each pair has 1/3, and a misfit cannot be pinned on any of the three; four scenes with all six
#: pairs give each exactly 1/2 (in floating point a hair either side), where a single blunder is found.
MIN_REDUNDANCY_NUMBER = 0.4


def solve_date_offsets(pairs: Sequence[PairShift], *, tolerance: float) -> NetworkShifts:
    """Per-date offsets that fit the measured pairs' shifts best, and every pair's shift from them.

    Blunders (data snooping, Baarda 1968): the measured pair with the largest
    normalised residual (residual / (sigma x sqrt(redundancy number))) is
    dropped when the network checks it well (redundancy number >=
    :data:`MIN_REDUNDANCY_NUMBER`) and its estimated error (residual /
    redundancy number) exceeds ``tolerance`` (same unit as the shifts); the
    network is then solved again. It stops at the first pair that is within
    the tolerance or not well checked: a blunder in a weakly checked pair
    spreads into its well-checked neighbours, which must not be blamed for
    it. A pair dropped is given the network's shift, like a pair without a
    measurement.
    """
    for p in pairs:
        if p.reference == p.secondary:
            raise ValueError(f"pair {p.pair_id}: reference and secondary are the same date")
        if p.shift is not None and not (np.all(np.isfinite(p.shift)) and np.isfinite(p.sigma) and p.sigma > 0):
            raise ValueError(f"pair {p.pair_id}: shift {p.shift} and sigma {p.sigma} must be finite, sigma > 0")
    measured = [p for p in pairs if p.shift is not None]
    dropped: list[str] = []
    while True:
        nodes = sorted({d for p in measured for d in (p.reference, p.secondary)}, key=repr)
        index = {d: i for i, d in enumerate(nodes)}
        groups = _groups(nodes, [(index[p.reference], index[p.secondary]) for p in measured])
        redundancy = len(measured) - (len(nodes) - len(set(groups.tolist())))
        if not measured:
            offsets = np.zeros((0, 2))
            break
        a, b = _design(index, measured)
        pinv = np.linalg.pinv(a.T @ a)
        offsets = pinv @ a.T @ b  # minimum norm: zero mean over each connected group
        sigmas = np.array([p.sigma for p in measured])
        residual = (b - a @ offsets) * sigmas[:, None]
        share = np.clip(1.0 - np.einsum("ij,jk,ik->i", a, pinv, a), 0.0, 1.0)  # redundancy numbers
        size = np.hypot(residual[:, 0], residual[:, 1])
        testable = share > 1e-9  # a pair no other path checks fits exactly and says nothing
        if not testable.any():
            break
        normalised = np.where(testable, size / (sigmas * np.sqrt(np.where(testable, share, 1.0))), -np.inf)
        worst = int(np.argmax(normalised))
        if share[worst] < MIN_REDUNDANCY_NUMBER or size[worst] / share[worst] <= tolerance:
            break
        dropped.append(measured.pop(worst).pair_id)

    def fitted(p: PairShift) -> np.ndarray:
        return offsets[index[p.secondary]] - offsets[index[p.reference]]

    group_of = {d: groups[i] for d, i in index.items()}
    pair_shifts: dict[str, tuple[float, float] | None] = {}
    residuals: dict[str, tuple[float, float]] = {}
    for p in pairs:
        tied = (p.reference in group_of and p.secondary in group_of
                and group_of[p.reference] == group_of[p.secondary])
        value = (float(fitted(p)[0]), float(fitted(p)[1])) if tied else None
        pair_shifts[p.pair_id] = value
        if p.shift is not None:
            base = value if value is not None else (0.0, 0.0)
            residuals[p.pair_id] = (float(p.shift[0] - base[0]), float(p.shift[1] - base[1]))
    return NetworkShifts({d: (float(offsets[i, 0]), float(offsets[i, 1])) for d, i in index.items()},
                         pair_shifts, residuals, tuple(dropped), int(redundancy))
