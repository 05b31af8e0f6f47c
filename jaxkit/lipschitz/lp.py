"""Feasibility of LipBaB sub-problems: does a polytope have interior points?

A node's input region is ``{x in box : a_k . x < c_k for all k}`` (strict, since
the supremum of ``||J(x)||`` runs over differentiable points, where no neuron sits
exactly at 0). Such a region is non-empty iff it contains a ball, so we solve the
**Chebyshev-centre LP** (HiGHS through ``scipy.optimize.linprog``)::

    maximise r  s.t.  a_k . y + ||a_k|| r <= c_k,   r <= y_i <= 1 - r,   0 <= r <= r_cap

in coordinates ``y`` where the box is the unit cube (so the tolerance is relative
to the box), and call the region feasible iff ``r* > tol`` (default ``1e-9``,
i.e. regions thinner than a billionth of the box are treated as empty). The
LPs go to HiGHS through ``highspy`` when it is installed (about 3x less
overhead per small LP than ``scipy.optimize.linprog``, which is the fallback and
runs the same HiGHS solver). The centre is returned as a *witness*: a point strictly inside the region, checked
again in float64 before it is trusted. In global mode there is no box: ``y = x``
and ``r`` is capped at 1.

If HiGHS does not return a clear answer the region is reported feasible without
a witness: the search then keeps it for the upper bound (sound) but never uses
it for the lower bound.
"""

from __future__ import annotations

import threading

import numpy as np
from scipy.optimize import linprog

try:
    import highspy
except ImportError:  # pragma: no cover - scipy's HiGHS is the fallback
    highspy = None

_local = threading.local()


def _highs():
    """One reusable HiGHS instance per thread (creating one per LP costs more than solving it)."""
    h = getattr(_local, "highs", None)
    if h is None:
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        _local.highs = h
    return h


def solve_lp(cost, a_ub, b_ub, col_lo, col_hi):
    """``min cost.x  s.t.  a_ub x <= b_ub, col_lo <= x <= col_hi``; returns ``(status, x)``.

    ``status``: 0 optimal, 2 infeasible, 1 anything else (as ``scipy.optimize.linprog``).
    """
    if highspy is None:
        res = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=list(zip(col_lo, col_hi)), method="highs")
        return (res.status if res.status in (0, 2) else 1), res.x
    m, n = a_ub.shape
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, m
    lp.col_cost_ = np.asarray(cost, np.float64)
    lp.col_lower_ = np.where(np.isfinite(col_lo), col_lo, -inf).astype(np.float64)
    lp.col_upper_ = np.where(np.isfinite(col_hi), col_hi, inf).astype(np.float64)
    lp.row_lower_ = np.full(m, -inf)
    lp.row_upper_ = np.asarray(b_ub, np.float64)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.arange(0, m * n + 1, n, dtype=np.int32)
    lp.a_matrix_.index_ = np.tile(np.arange(n, dtype=np.int32), m)
    lp.a_matrix_.value_ = np.ascontiguousarray(a_ub, np.float64).ravel()
    h = _highs()
    h.clearModel()
    h.passModel(lp)
    h.run()
    st = h.getModelStatus()
    if st == highspy.HighsModelStatus.kOptimal:
        return 0, np.array(h.getSolution().col_value)
    if st == highspy.HighsModelStatus.kInfeasible:
        return 2, None
    return 1, None


class Region:
    """Maps between input coordinates ``x`` and the unit-cube coordinates ``y``."""

    def __init__(self, box_lo: np.ndarray | None, box_hi: np.ndarray | None, n: int):
        self.n = n
        if box_lo is None:
            self.lo, self.scale = np.zeros(n), np.ones(n)
            self.bounded = False
        else:
            self.lo, self.scale = np.asarray(box_lo, np.float64), np.asarray(box_hi, np.float64) - box_lo
            self.bounded = True

    def to_y(self, a: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Constraint rows ``a x <= c`` rewritten over ``y``."""
        return a * self.scale[None, :], c - a @ self.lo

    def to_x(self, y: np.ndarray) -> np.ndarray:
        return self.lo + self.scale * y


def strictly_inside(a: np.ndarray, c: np.ndarray, x: np.ndarray, region: Region) -> bool:
    """Float64 check that ``x`` satisfies every row strictly and lies inside the box."""
    if region.bounded and not (np.all(x > region.lo) and np.all(x < region.lo + region.scale)):
        return False
    if len(c) == 0:
        return True
    slack = c - a @ x
    margin = 1e-12 * (np.abs(a) @ np.abs(x) + np.abs(c) + 1e-300)
    return bool(np.all(slack > margin))


def interior_point(a: np.ndarray, c: np.ndarray, region: Region, tol: float = 1e-9):
    """``(feasible, witness_or_None, radius)`` for ``{x in box : a x < c}``; one LP."""
    n = region.n
    ay, cy = region.to_y(np.asarray(a, np.float64).reshape(-1, n), np.asarray(c, np.float64))
    norms = np.linalg.norm(ay, axis=1)
    keep = norms > 0
    if np.any(~keep & (cy <= 0)):  # a row 0 . y < c with c <= 0 can never hold
        return False, None, 0.0
    ay, cy, norms = ay[keep], cy[keep], norms[keep]
    rows = [np.hstack([ay / norms[:, None], np.ones((len(cy), 1))])]
    rhs = [cy / norms]
    if region.bounded:
        eye = np.eye(n)
        rows += [np.hstack([-eye, np.ones((n, 1))]), np.hstack([eye, np.ones((n, 1))])]
        rhs += [np.zeros(n), np.ones(n)]
    a_ub, b_ub = np.vstack(rows), np.concatenate(rhs)
    cost = np.zeros(n + 1)
    cost[-1] = -1.0
    col_lo = np.r_[np.full(n, -np.inf), 0.0]
    col_hi = np.r_[np.full(n, np.inf), 0.5 if region.bounded else 1.0]
    status, sol = solve_lp(cost, a_ub, b_ub, col_lo, col_hi)
    if status == 2:  # infeasible even with r = 0
        return False, None, 0.0
    if status != 0:
        return True, None, np.nan  # unclear: keep the region (sound for the upper bound)
    r = float(sol[-1])
    if r <= tol:
        return False, None, r
    x = region.to_x(sol[:n])
    a_full, c_full = np.asarray(a, np.float64).reshape(-1, n), np.asarray(c, np.float64)
    return True, (x if strictly_inside(a_full, c_full, x, region) else None), r
