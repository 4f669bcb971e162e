"""Fusing per-sensor velocity maps of one month into one map.

The maths behind the bundled weighting plugins, as plain functions on stacks of
arrays: ``(n_sensors, rows, cols)``, NaN where a sensor has no value. Sensors
are always stacked in sorted name order, so the result does not depend on the
order they were given in.

Fusion combines vx and vy, never speeds: speeds are Rician-distributed, and
averaging them biases slow ice upward (GUIDE section 2).

Error model: every sensor carries a 1-sigma error per component
(``quality["error_m_per_day"]`` on its field, in m/day). For cell weights
``w_s`` summing to one over the sensors with a value, the fused component is
``sum(w_s v_s)``; its propagated error, for independent sensor errors, is
``sqrt(sum(w_s^2 sigma_s^2))``; where the sensors disagree more than their
errors say, that error is inflated by ``sqrt(chi2_nu)`` with
``chi2_nu = sum((v_s - v_fused)^2 / sigma_s^2) / (n - 1)`` (Bevington &
Robinson 2003, *Data Reduction and Error Analysis*, ch. 4; Taylor 1997 ch. 7).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gvfuse.errors import InputError
from gvfuse.model import ERROR_BAND, FusionResult, Provenance, SensorStack, VelocityField, WeightFit

#: Tukey biweight tuning constant: 95 % efficiency under Gaussian errors (Holland & Welsch 1977).
TUKEY_C = 4.685


def stack_fields(fields: Mapping[str, VelocityField]) -> SensorStack:
    """Stack per-sensor fields (all on one grid) in sorted sensor order.

    A field without an ``error_m_per_day`` quality band is an error: fusion
    without errors would have to invent them.
    """
    if not fields:
        raise InputError("no sensor fields to fuse")
    sensors = tuple(sorted(fields))
    grid = fields[sensors[0]].grid
    for name in sensors:
        if fields[name].grid != grid:
            raise InputError(f"is on grid {fields[name].grid}, expected {grid}", source=f"sensor {name!r}")
        if ERROR_BAND not in fields[name].quality:
            raise InputError(f"has no {ERROR_BAND!r} quality band", source=f"sensor {name!r}", field="quality")
    f = [fields[n] for n in sensors]
    return SensorStack(
        sensors=sensors,
        vx=np.stack([x.vx_m_per_day for x in f]).astype("float64"),
        vy=np.stack([x.vy_m_per_day for x in f]).astype("float64"),
        sigma=np.stack([np.broadcast_to(x.quality[ERROR_BAND], grid.shape) for x in f]).astype("float64"),
        grid=grid,
    )


def renormalise(weights: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Cell weights from per-sensor weights: the mask function of the reference method.

    ``weights`` is ``(n_sensors,)`` or ``(n_sensors, rows, cols)``; where a sensor has
    no value its weight is dropped and the others are scaled to sum to one.
    Cells where no weighted sensor has a value get NaN weights.
    """
    w = np.where(valid, np.broadcast_to(np.reshape(weights, weights.shape + (1,) * (valid.ndim - weights.ndim)),
                                        valid.shape), 0.0)
    total = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, w / total, np.nan)


def combine(stack: SensorStack, cell_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weighted vx, vy and their 1-sigma errors, inflated where the sensors disagree.

    ``cell_weights`` (n_sensors, rows, cols) sum to one over valid sensors (NaN
    where no sensor is valid). Returns ``(vx, vy, sigma_vx, sigma_vy)``.
    """
    valid = stack.valid & np.isfinite(cell_weights) & (cell_weights > 0)
    w = np.where(valid, cell_weights, 0.0)
    has = valid.any(axis=0)
    n = valid.sum(axis=0)
    out = []
    for comp in (stack.vx, stack.vy):
        v = np.where(valid, comp, 0.0)
        fused = (w * v).sum(axis=0)
        s2 = np.where(valid, stack.sigma**2, 0.0)
        propagated = np.sqrt((w**2 * s2).sum(axis=0))
        with np.errstate(invalid="ignore", divide="ignore"):
            chi2 = np.where(valid, (v - fused) ** 2 / np.where(valid, s2, 1.0), 0.0).sum(axis=0)
            chi2_nu = np.where(n > 1, chi2 / np.maximum(n - 1, 1), 1.0)
        err = propagated * np.sqrt(np.maximum(chi2_nu, 1.0))
        out += [np.where(has, fused, np.nan), np.where(has, err, np.nan)]
    vx, svx, vy, svy = out
    return vx, vy, svx, svy


def speed_error(vx: np.ndarray, vy: np.ndarray, sigma_vx: np.ndarray, sigma_vy: np.ndarray) -> np.ndarray:
    """1-sigma error of the speed from the component errors (first-order propagation).

    ``sqrt((vx sx)^2 + (vy sy)^2) / v``; at zero speed, where that is undefined,
    the root mean square of the component errors.
    """
    v = np.hypot(vx, vy)
    with np.errstate(invalid="ignore", divide="ignore"):
        linear = np.sqrt((vx * sigma_vx) ** 2 + (vy * sigma_vy) ** 2) / v
    return np.where(v > 0, linear, np.sqrt((sigma_vx**2 + sigma_vy**2) / 2))


def fusion_result(
    stack: SensorStack,
    cell_weights: np.ndarray,
    *,
    dt_days: float,
    weights: Mapping[str, float] | None = None,
    details: Mapping[str, Any] | None = None,
) -> FusionResult:
    """Combine with the given cell weights and package the fused field and where each sensor contributed."""
    vx, vy, svx, svy = combine(stack, cell_weights)
    contributing = stack.valid & np.isfinite(cell_weights) & (cell_weights > 0)
    quality = {
        "v_error_m_per_day": speed_error(vx, vy, svx, svy).astype("float32"),
        "vx_error_m_per_day": svx.astype("float32"),
        "vy_error_m_per_day": svy.astype("float32"),
    }
    field = VelocityField(
        vx.astype("float32"), vy.astype("float32"), stack.grid, dt_days=dt_days, quality=quality,
        provenance=Provenance(parameters={"sensors": list(stack.sensors), **dict(details or {})}),
    )
    return FusionResult(field, dict(zip(stack.sensors, contributing)), dict(weights or {}), dict(details or {}))


def equal_weights(stack: SensorStack) -> np.ndarray:
    """Cell weights of the plain mean over the sensors with a value."""
    return renormalise(np.ones(len(stack.sensors)), stack.valid)


def inverse_variance_weights(stack: SensorStack) -> np.ndarray:
    """Cell weights ``1/sigma^2``, normalised: the minimum-variance unbiased combination."""
    with np.errstate(divide="ignore"):
        w = np.where(stack.valid, 1.0 / stack.sigma**2, 0.0)
    return renormalise(w, stack.valid)


def robust_weights(stack: SensorStack, iterations: int = 10, c: float = TUKEY_C) -> np.ndarray:
    """Cell weights by iteratively reweighted least squares with Tukey's biweight.

    Starts from the component-wise median of the sensors with a value (so one
    blunder cannot pull the starting point), then weights each sensor by
    ``(1/sigma^2) * (1 - (r/c)^2)^2`` for its vector residual ``r`` in units of
    its own sigma (``0`` beyond ``c``). Beaton & Tukey 1974, Technometrics
    16(2); Holland & Welsch 1977, Commun. Stat. 6(9).
    """
    valid = stack.valid
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells stay NaN
        vx = np.nanmedian(np.where(valid, stack.vx, np.nan), axis=0)
        vy = np.nanmedian(np.where(valid, stack.vy, np.nan), axis=0)
        base = np.where(valid, 1.0 / stack.sigma**2, 0.0)
        w = renormalise(base, valid)
        for _ in range(iterations):
            r = np.hypot(stack.vx - vx, stack.vy - vy) / stack.sigma
            tukey = np.where(r < c, (1 - (r / c) ** 2) ** 2, 0.0)
            raw = np.where(valid, base * tukey, 0.0)
            # Where every sensor is rejected (all disagree wildly), fall back to the median sensor set.
            raw = np.where(raw.sum(axis=0) > 0, raw, base)
            w = renormalise(raw, valid)
            vx = np.nansum(np.where(valid, w * stack.vx, 0.0), axis=0)
            vy = np.nansum(np.where(valid, w * stack.vy, 0.0), axis=0)
    return w


def fit_reference_weights(stack: SensorStack, reference_vx: np.ndarray, reference_vy: np.ndarray,
                          min_cells: int = 10) -> WeightFit:
    """Fit sensor weights by weighted least squares of the sensors' velocities to a reference.

    On cells where the reference and every sensor have a value, minimise
    ``sum_cells sum_{x,y} (sum_s W_s v_s - v_ref)^2`` subject to ``W_s >= 0`` and
    ``sum W_s = 1``: the reference method of the Gangrigab 2023 product (weights
    WL8, WS1, WS2 fitted to UAV velocities). Solved exactly as a small
    constrained quadratic programme (SLSQP; Kraft 1988, DFVLR-FB 88-28).
    """
    all_valid = stack.valid.all(axis=0) & np.isfinite(reference_vx) & np.isfinite(reference_vy)
    n_cells = int(all_valid.sum())
    if n_cells < min_cells:
        raise InputError(f"only {n_cells} cells where the reference and all sensors {list(stack.sensors)} "
                         f"have a value; at least {min_cells} needed", source="reference velocity")
    a = np.concatenate([stack.vx[:, all_valid], stack.vy[:, all_valid]], axis=1).T  # (2N, S)
    b = np.concatenate([reference_vx[all_valid], reference_vy[all_valid]])
    ata, atb = a.T @ a, a.T @ b
    n_s = len(stack.sensors)
    scale = max(float(np.trace(ata)), 1e-12)

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        return float(w @ ata @ w - 2 * w @ atb) / scale, (2 * ata @ w - 2 * atb) / scale

    from scipy.optimize import minimize  # here, not at the top: ~0.5 s to import, few commands need it

    result = minimize(
        objective, np.full(n_s, 1.0 / n_s), jac=True, method="SLSQP",
        bounds=[(0.0, 1.0)] * n_s,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}],
        options={"ftol": 1e-15, "maxiter": 200},
    )
    w = np.clip(result.x, 0.0, None)
    w = w / w.sum()
    residual = a @ w - b
    return WeightFit(dict(zip(stack.sensors, map(float, w))), n_cells, float(np.sqrt(np.mean(residual**2))))


def weights_vector(stack: SensorStack, weights: Mapping[str, float]) -> np.ndarray:
    """Per-sensor weights in stack order; a sensor without a weight gets 0."""
    unknown = set(weights) - set(stack.sensors)
    missing: Sequence[str] = [s for s in stack.sensors if s not in weights]
    if unknown and missing:
        raise InputError(f"weights are for sensors {sorted(weights)}, fields are {list(stack.sensors)}",
                         source="sensor weights")
    return np.array([float(weights.get(s, 0.0)) for s in stack.sensors])
