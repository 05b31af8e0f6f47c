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

**Batched path** (:func:`decide`, the default in local mode): all the
feasibility questions of one search step go to the vmapped simplex of
:mod:`.simplex` in one jitted call, and its answers are *checked*, never
trusted:

* *feasible* needs a witness: the phase-I point ``y*`` (every row holding with a
  slack of at least ``tol`` in unit-row, box-relative units), blended toward a
  known witness of the node so it is strictly inside the box, must pass
  :func:`strictly_inside` in float64;
* *empty* needs a Farkas certificate: the duals ``lam >= 0`` must give
  ``min over the box of sum_k lam_k (a_k . x - c_k) > delta``, with ``delta`` an
  a-priori bound on the float64 rounding of that evaluation, which proves that
  no point of the box satisfies every row.

Questions neither check settles (iteration cap, a margin below ``tol``, a
certificate below ``delta``) fall back to the Chebyshev LP above, one HiGHS call
each. A certified-empty region is empty, so the batched path never drops a
region HiGHS would keep; a region it certifies non-empty may be thinner than
``tol`` (it holds a checked interior point), which only keeps more nodes.
"""

from __future__ import annotations

import threading
import time
from typing import NamedTuple

import jax
import numpy as np
from scipy.optimize import linprog

from jaxkit import _sharding
from jaxkit.lipschitz import simplex

try:
    import highspy
except ImportError:  # pragma: no cover - scipy's HiGHS is the fallback
    highspy = None

_local = threading.local()


def _highs():
    """One reusable HiGHS instance per thread (creating one per LP costs more than solving it)."""
    h = getattr(_local, "highs", None)
    if h is None:
        assert highspy is not None  # solve_lp falls back to scipy without it
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
    assert sol is not None  # status 0: an optimal point
    r = float(sol[-1])
    if r <= tol:
        return False, None, r
    x = region.to_x(sol[:n])
    a_full, c_full = np.asarray(a, np.float64).reshape(-1, n), np.asarray(c, np.float64)
    return True, (x if strictly_inside(a_full, c_full, x, region) else None), r


def _gamma(n: int) -> float:
    u = np.finfo(np.float64).eps / 2
    return n * u / (1 - n * u)


def _bucket(n: int, least: int = 8) -> int:
    return max(least, 1 << (max(n, 1) - 1).bit_length())


LP_ROWS_LEAST = 16  # rows of a problem: padded to a power of two, at least this many
LP_CHUNK = 128  # problems per simplex call; fewer are padded to 8 or 32 (sizes a factor 4 apart)


def _problem_rows(kn: int) -> int:
    """Padded problem count: 8, 32 or 128, or a multiple of :data:`LP_CHUNK` solved in chunks of it.

    Each simplex shape is one XLA compilation (~0.6 s, as much as the whole warm search of a paper net): powers
    of two from 8 to 256 problems times rows 8/16 compiled 8 programs in the first SDnet search; this family
    keeps it to 3 (problems are independent under ``vmap``, so padding and chunking change no result).
    """
    if kn > LP_CHUNK:
        return -(-kn // LP_CHUNK) * LP_CHUNK
    return next(size for size in (8, 32, LP_CHUNK) if kn <= size)


def _phase1_chunked(g, h, live, max_iter, mesh=None):
    """The simplex over chunks of at most :data:`LP_CHUNK` problems (each split over ``mesh`` when given)."""
    chunk = min(len(g), LP_CHUNK)
    parts = []
    with jax.enable_x64(True):
        for i in range(0, len(g), chunk):
            args = (g[i : i + chunk], h[i : i + chunk], live[i : i + chunk])
            if mesh is not None and chunk % mesh.size == 0:
                args = tuple(_sharding.put(x, _sharding.members(mesh)) for x in args)
            # a sharded chunk stays one vmap (each device solves its share); one device solves it in groups
            group = None if mesh is not None else simplex.GROUP
            parts.append(_sharding.fetch(simplex.phase1(*args, max_iter=max_iter, group=group)))
    return _Solution(*(np.concatenate(field) for field in zip(*parts)))


class _Solution(NamedTuple):  # simplex.Phase1 on the host
    y: np.ndarray
    x0: np.ndarray
    lam: np.ndarray
    done: np.ndarray


def certified_empty(a: np.ndarray, c: np.ndarray, lam: np.ndarray, region: Region) -> np.ndarray:
    """Farkas check per problem: ``min over the box of lam . (a x - c) > delta`` (float64).

    ``a [K, M, n], c [K, M], lam [K, M] >= 0`` (padding rows: ``lam = 0``). ``delta`` bounds the float64
    rounding of the evaluation a priori (``2 gamma_{M+n+2}`` times the sum of magnitudes), so ``True``
    proves that no point of the box satisfies every row ``a_k . x <= c_k``: the region is empty.
    """
    if not region.bounded:
        return np.zeros(len(c), bool)
    lo, hi = region.lo, region.lo + region.scale
    v = np.einsum("km,kmn->kn", lam, a)
    val = np.sum(np.minimum(v * lo, v * hi), axis=1) - np.sum(lam * c, axis=1)
    xmax = np.maximum(np.abs(lo), np.abs(hi))
    mag = np.sum(lam * (np.abs(a) @ xmax + np.abs(c)), axis=1) + np.abs(v) @ xmax
    delta = 2 * _gamma(c.shape[1] + len(lo) + 2) * mag
    return np.all(lam >= 0, axis=1) & np.any(lam > 0, axis=1) & (val > delta)


def _inside_batch(a, c, valid, x, region) -> np.ndarray:
    """:func:`strictly_inside` for ``x [K, n]`` against ``a [K, M, n] x < c`` on the ``valid`` rows."""
    lo, hi = region.lo, region.lo + region.scale
    slack = c - np.einsum("kmn,kn->km", a, x)
    margin = 1e-12 * (np.einsum("kmn,kn->km", np.abs(a), np.abs(x)) + np.abs(c) + 1e-300)
    rows_ok = np.all((slack > margin) | ~valid, axis=1)
    return rows_ok & np.all(x > lo, axis=1) & np.all(x < hi, axis=1)


def _blend_batch(a, c, valid, x, w):
    """Points on the segments ``w -> x`` where every valid row has positive slack (``x`` has slack on all)."""
    sx = c - np.einsum("kmn,kn->km", a, x)
    sw = c - np.einsum("kmn,kn->km", a, w)
    neg = valid & (sw <= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.where(neg, -sw / (sx - sw), 0.0)
    tmin = np.max(need, axis=1)
    t = (1 + tmin) / 2
    return w + t[:, None] * (x - w)


def _blend_inside(a, c, x, witnesses, region):
    """A point strictly inside ``{box, a x < c}`` on a segment from a witness (or the box centre) to ``x``."""
    a3, c2, v = a[None], c[None], np.ones((1, len(c)), bool)
    for w in list(witnesses)[::-1] + [region.lo + region.scale / 2]:
        pt = _blend_batch(a3, c2, v, x[None], np.asarray(w)[None])
        if np.all(np.isfinite(pt)) and _inside_batch(a3, c2, v, pt, region)[0]:
            return pt[0]
    return None


def stack_rows(problem) -> tuple[np.ndarray, np.ndarray]:
    """``(a, c)`` of a problem ``(a, c, witnesses[, (extra_row, extra_rhs)])``."""
    a, c = problem[0], problem[1]
    if len(problem) > 3 and problem[3] is not None:
        ar, cr = problem[3]
        a, c = np.vstack([a, np.asarray(ar)[None]]), np.append(c, cr)
    return a, c


def decide(
    problems: list, region: Region, tol: float = 1e-9, max_iter: int = 200, mesh=None, timing: dict | None = None
):
    """Batched feasibility of ``problems = [(a, c, witnesses[, (ar, cr)]), ...]`` (``{x in box : a x < c}``,
    with the optional extra row ``ar . x < cr``).

    Returns ``(results, highs_calls)`` with ``results[i] = (feasible, witness_or_None)``: one vmapped
    simplex call (:mod:`.simplex`), every answer checked in float64, HiGHS for the rest (see module doc).
    ``mesh``: split each simplex chunk over it; ``timing["device_seconds"]`` accumulates the simplex's wall time.
    """
    n, kn = region.n, len(problems)
    out: list = [None] * kn
    if region.bounded and kn:
        extra = [len(q) > 3 and q[3] is not None for q in problems]
        m, kb = _bucket(max(len(q[1]) + e for q, e in zip(problems, extra)), LP_ROWS_LEAST), _problem_rows(kn)
        a = np.zeros((kb, m, n))
        c = np.zeros((kb, m))
        valid = np.zeros((kb, m), bool)
        w = np.tile(region.lo + region.scale / 2, (kb, 1))  # blend origin: the newest witness, else the centre
        for i, (q, e) in enumerate(zip(problems, extra)):
            k = len(q[1])
            a[i, :k], c[i, :k], valid[i, : k + e] = q[0], q[1], True
            if e:
                a[i, k], c[i, k] = q[3]
            if q[2]:
                w[i] = q[2][-1]
        ay, cy = a * region.scale, c - a @ region.lo
        norms = np.linalg.norm(ay, axis=2)
        live = valid & (norms > 0)
        dead = np.any(valid & (norms == 0) & (cy <= 0), axis=1)  # a row 0 . x < c <= 0: empty
        safe = np.where(live, norms, 1.0)
        g, h = np.where(live[..., None], ay / safe[..., None], 0.0), np.where(live, cy / safe, 0.0)
        t = time.perf_counter()
        sol = _phase1_chunked(g, h, live, max_iter, mesh)
        if timing is not None:
            timing["device_seconds"] = timing.get("device_seconds", 0.0) + time.perf_counter() - t
        x = region.lo + region.scale * sol.y
        pts = _blend_batch(a, c, valid, x, w)
        fine = np.all(np.isfinite(pts), axis=1)
        inside = fine & _inside_batch(a, c, valid, np.where(fine[:, None], pts, w), region)
        empty = certified_empty(a, c, np.where(live, sol.lam / safe, 0.0), region)
        for i in range(kn):
            if dead[i]:
                out[i] = (False, None)
            elif sol.done[i] and sol.x0[i] < -tol:
                if inside[i]:
                    out[i] = (True, pts[i])
                else:
                    wit = _blend_inside(*stack_rows(problems[i]), x[i], problems[i][2], region)
                    if wit is not None:
                        out[i] = (True, wit)
            elif sol.done[i] and sol.x0[i] > 0 and empty[i]:
                out[i] = (False, None)
    highs = 0
    for i, q in enumerate(problems):
        if out[i] is None:
            ok, wit, _ = interior_point(*stack_rows(q), region, tol)
            out[i] = (ok, wit)
            highs += 1
    return out, highs
