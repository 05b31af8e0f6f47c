"""Batched dense-tableau simplex for LipBaB's small feasibility LPs (JAX, float64, vmapped).

Each problem asks whether ``{y in [0, 1]^n : g_k . y < h_k for all valid k}`` is
empty, with unit rows ``g_k`` (the node's half-spaces in box coordinates, see
:class:`jaxkit.lipschitz.lp.Region`). We solve the *auxiliary* (phase-I) LP of
Chvátal, with the violation ``x0 = u - cap`` shifted so it may go negative::

    maximise -u   s.t.   g_k . y - u <= h_k - cap,   0 <= y <= 1,   u >= 0

whose optimum ``x0* = u* - cap`` is the smallest uniform violation of the rows
(``x0* < 0``: every row holds with slack ``-x0*`` at ``y*``; ``x0* > 0``: the
closed region is empty). The first pivot brings ``u`` in on the most violated
row so the dictionary starts feasible; then Dantzig pivots with an iteration
cap. Every problem of the batch runs in one ``lax.while_loop`` under ``vmap``.

Nothing returned here is trusted as is: the caller (:func:`jaxkit.lipschitz.lp.decide`)
turns ``y*`` into a witness checked strictly inside in float64, or the duals
``lam`` into a Farkas certificate ``min over the box of sum_k lam_k (a_k.x - c_k) > 0``
evaluated with a rounding margin; anything that fails its check (or hit the
iteration cap) goes to HiGHS.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

PIVOT_EPS = 1e-9  # smallest pivot element accepted in the ratio test
COST_EPS = 1e-12  # a reduced cost must exceed this for its column to enter


class Phase1(NamedTuple):
    y: jax.Array  # [K, n] optimal point (box coordinates)
    x0: jax.Array  # [K] smallest uniform violation (negative: margin)
    lam: jax.Array  # [K, M] duals of the rows (>= 0)
    done: jax.Array  # [K] bool: optimal before the iteration cap


def _pivot(t, basis, r, col):
    row = t[r] / t[r, col]
    t = t - t[:, col][:, None] * row[None, :]
    t = t.at[r].set(row)
    return t, basis.at[r].set(col)


def _phase1_one(g, h, valid, *, cap: float, max_iter: int) -> Phase1:
    m, n = g.shape
    dtype = g.dtype
    # Columns: y (n), u (1), row slacks (m), box slacks (n), rhs.
    ncol = n + 1 + m + n
    gen = jnp.concatenate(
        [
            jnp.where(valid[:, None], g, 0.0),
            -valid[:, None].astype(dtype),
            jnp.eye(m, dtype=dtype),
            jnp.zeros((m, n), dtype),
            jnp.where(valid, h - cap, 1.0)[:, None],
        ],
        axis=1,
    )
    box = jnp.concatenate(
        [jnp.eye(n, dtype=dtype), jnp.zeros((n, 1 + m), dtype), jnp.eye(n, dtype=dtype), jnp.ones((n, 1), dtype)],
        axis=1,
    )
    obj = jnp.zeros((1, ncol + 1), dtype).at[0, n].set(-1.0)  # reduced costs of max -u; rhs = -objective
    t = jnp.concatenate([gen, box, obj])
    basis = jnp.arange(n + 1, n + 1 + m + n)
    rows = m + n
    # Chvátal's first pivot: u enters on the most violated row, after which every rhs is >= 0.
    b = jnp.where(valid, t[:m, -1], jnp.inf)
    r0 = jnp.argmin(b)
    t, basis = jax.lax.cond(b[r0] < 0, lambda: _pivot(t, basis, r0, n), lambda: (t, basis))

    def cond(state):
        t, basis, it, fin, _ = state
        return (~fin) & (it < max_iter)

    def body(state):
        t, basis, it, _, _ = state
        d = t[rows, :ncol]
        col = jnp.argmax(d)
        optimal = d[col] <= COST_EPS
        a = t[:rows, col]
        ratio = jnp.where(a > PIVOT_EPS, t[:rows, -1] / jnp.where(a > PIVOT_EPS, a, 1.0), jnp.inf)
        r = jnp.argmin(ratio)
        stuck = ~jnp.isfinite(ratio[r])  # unbounded: cannot happen here (all variables bounded); stop
        t2, b2 = _pivot(t, basis, r, col)
        go = ~(optimal | stuck)
        t = jnp.where(go, t2, t)
        basis = jnp.where(go, b2, basis)
        return t, basis, it + 1, optimal | stuck, optimal

    false = jnp.asarray(False)
    t, basis, _, _, done = jax.lax.while_loop(cond, body, (t, basis, 0, false, false))
    values = jnp.zeros(ncol, dtype).at[basis].set(t[:rows, -1])
    lam = -t[rows, n + 1 : n + 1 + m]  # duals of the general rows: minus their slacks' reduced costs
    return Phase1(values[:n], values[n] - cap, jnp.where(valid, jnp.maximum(lam, 0.0), 0.0), done)


GROUP = 4  # problems vmapped together; the groups run one after another (lax.map)


@functools.partial(jax.jit, static_argnames=("cap", "max_iter", "group"))
def phase1(g, h, valid, cap: float = 0.5, max_iter: int = 200, group: int | None = GROUP) -> Phase1:
    """Solve a batch ``g [K, M, n], h [K, M], valid [K, M]`` of auxiliary LPs (call under ``jax.enable_x64``).

    ``group`` problems are vmapped together and the groups run in sequence (``None``: all ``K`` in one vmap,
    which a sharded batch needs). A vmapped ``while_loop`` runs until its slowest problem is done, and 128
    problems' tableaux (2.4 MB at 32 rows) do not stay in cache across pivots: groups of 4 keep them there and
    stop at their own slowest problem -- measured on 2 CPU cores, 128 problems of 32 rows: 7.8 ms in one vmap,
    4-5 ms in groups of 4-8, 14 ms one at a time; a (10, 24, 24, 24, 3) search spent 2.4 s instead of 3.4 s in
    its device calls. Padding problems (no valid row) are added to fill the last group; results do not depend
    on ``group`` (problems are independent).
    """
    solve = jax.vmap(functools.partial(_phase1_one, cap=cap, max_iter=max_iter))
    k = g.shape[0]
    if group is None or group >= k:
        return solve(g, h, valid)
    pad = -k % group
    if pad:
        g, h = jnp.pad(g, ((0, pad), (0, 0), (0, 0))), jnp.pad(h, ((0, pad), (0, 0)))
        valid = jnp.pad(valid, ((0, pad), (0, 0)))
    split = lambda x: x.reshape((-1, group) + x.shape[1:])
    out = jax.lax.map(lambda args: solve(*args), (split(g), split(h), split(valid)))
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:])[:k], out)
