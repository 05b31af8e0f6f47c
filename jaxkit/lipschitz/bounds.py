"""Batched node bounds for LipBaB (pure JAX, float64, vmapped over nodes).

A *node* is an activation pattern ``P`` over the ``H`` hidden neurons (1 active,
0 inactive, -1 undecided ``*``) plus half-space constraints on the input; only
the pattern enters here (constraints are the host's business, see ``lp.py``).

For each node :func:`evaluate` does, in one jitted call for the whole batch:

1. **Symbolic propagation** (LinProp generalised): each layer's pre-activations
   are affine expressions over the inputs ``x`` and one fresh variable per
   undecided neuron (its output, bounded by ``[0, upper]``), so deeper layers keep
   the dependency. Expressions are concretised over the input box to decide
   further neurons: active if ``lower > delta``, inactive if ``upper < -delta``,
   with ``delta`` the a-priori rounding error bound of the concretisation, so a
   decision never rests on rounding. A neuron the node already fixes stays fixed.
2. The **interval Jacobian** ``[J] = W_L [Λ_{L-1}] W_{L-1} ... [Λ_1] W_1`` with
   ``[Λ]`` entries ``[1,1]``, ``[0,0]`` or ``[0,1]``, widened for rounding like
   :func:`jaxkit.interval.matmul`; ``U = max(|lo|, |hi|)`` and the node's upper
   bound is ``||U||_p`` (valid by elementwise dominance: ``||J||_p <= || |J| ||_p
   <= ||U||_p``). With no ``*`` left, ``[J]`` is a point and the node's value is
   the exact ``||J||_p`` (p = 2: largest singular value of ``J`` itself).
3. The affine pre-activation ``z = a.x + c`` of every neuron (exact in ``x`` up to
   and including the first layer holding a ``*``): what branching and the
   feasibility filter need.

Operator norms: p = 1 max column sum, p = inf max row sum, p = 2 spectral norm.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

P_NORMS = (1, 2, np.inf)


class Net(NamedTuple):
    """An MLP in the ``W x + b`` layout (``W = kernel.T``), float64 numpy arrays."""

    weights: tuple
    biases: tuple

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.weights[0].shape[1],) + tuple(w.shape[0] for w in self.weights)

    @property
    def hidden(self) -> tuple[int, ...]:
        return self.sizes[1:-1]

    @property
    def n_hidden(self) -> int:
        return int(sum(self.hidden))

    @property
    def offsets(self) -> tuple[int, ...]:
        return tuple(int(o) for o in np.concatenate([[0], np.cumsum(self.hidden)]))


class NodeEval(NamedTuple):
    pattern: jax.Array  # [H] int8, refined
    upper: jax.Array  # [] bound on ||J||_p over the node (exact value if exact)
    exact: jax.Array  # [] bool, no undecided neuron left
    z_coef: jax.Array  # [H, n0] affine pre-activation coefficients (exact up to the first layer with a *)
    z_const: jax.Array  # [H]


def op_norm(m: jax.Array, p: float) -> jax.Array:
    """Induced operator norm ``||m||_p`` for p in {1, 2, inf}."""
    if p == 1:
        return jnp.max(jnp.sum(jnp.abs(m), axis=0))
    if p == np.inf:
        return jnp.max(jnp.sum(jnp.abs(m), axis=1))
    return jnp.linalg.svd(m, compute_uv=False)[0]


def _gamma(n: int, dtype) -> float:
    u = float(jnp.finfo(dtype).eps) / 2
    return n * u / (1 - n * u)


def _concretise(coef, const, vlo, vhi):
    """Range of ``coef @ v + const`` over the box ``vlo <= v <= vhi``; infinite bounds allowed."""

    def part(c, b):
        return jnp.where(c == 0, 0.0, c * b)

    cp, cn = jnp.maximum(coef, 0), jnp.minimum(coef, 0)
    lo = jnp.sum(part(cp, vlo[None]) + part(cn, vhi[None]), axis=1) + const
    hi = jnp.sum(part(cp, vhi[None]) + part(cn, vlo[None]), axis=1) + const
    mag = jnp.sum(part(jnp.abs(coef), jnp.maximum(jnp.abs(vlo), jnp.abs(vhi))[None]), axis=1) + jnp.abs(const)
    delta = _gamma(coef.shape[1] + 1, coef.dtype) * mag
    return lo, hi, delta


def _evaluate_one(weights, biases, box_lo, box_hi, pattern, *, p: float) -> NodeEval:
    dtype = box_lo.dtype
    n0 = weights[0].shape[1]
    hidden = [w.shape[0] for w in weights[:-1]]
    # Variables: the inputs, then one fresh variable per undecided neuron of each layer so far; the
    # expression matrices grow by one layer's columns at a time (no work on columns still zero).
    vlo, vhi = box_lo, box_hi
    expr = jnp.eye(n0, dtype=dtype)  # [n0, n0 + neurons of the layers before]
    const = jnp.zeros(n0, dtype)
    pats, zc, zk = [], [], []
    off = 0
    for layer, n in enumerate(hidden):
        w, b = weights[layer], biases[layer]
        ze, zcst = w @ expr, w @ const + b
        lo, hi, delta = _concretise(ze, zcst, vlo, vhi)
        given = pattern[off : off + n]
        s = jnp.where(given >= 0, given, jnp.where(lo > delta, 1, jnp.where(hi < -delta, 0, -1))).astype(jnp.int8)
        # Next layer's expressions: active keeps z, inactive is 0, undecided becomes its fresh variable.
        keep = jnp.where((s == 1)[:, None], ze, 0.0)
        fresh = jnp.diag((s == -1).astype(dtype))
        expr = jnp.concatenate([keep, fresh], axis=1)
        const = jnp.where(s == 1, zcst, 0.0)
        ub = jnp.where(s == -1, jnp.maximum(hi + delta, 0.0), 0.0)
        vlo = jnp.concatenate([vlo, jnp.zeros(n, dtype)])
        vhi = jnp.concatenate([vhi, ub])
        pats.append(s)
        zk.append(ze[:, :n0])
        zc.append(zcst)
        off += n
    pat = jnp.concatenate(pats)

    # Interval Jacobian, rows = outputs; start with W_1 as a point interval.
    jlo = jhi = weights[0]
    off = 0
    for layer, n in enumerate(hidden):
        s = pat[off : off + n][:, None]
        jlo = jnp.where(s == 1, jlo, jnp.where(s == 0, 0.0, jnp.minimum(jlo, 0.0)))
        jhi = jnp.where(s == 1, jhi, jnp.where(s == 0, 0.0, jnp.maximum(jhi, 0.0)))
        w = weights[layer + 1]
        wp, wn = jnp.maximum(w, 0), jnp.minimum(w, 0)
        err = _gamma(w.shape[1], dtype) * (jnp.abs(w) @ jnp.maximum(jnp.abs(jlo), jnp.abs(jhi)))
        jlo, jhi = wp @ jlo + wn @ jhi - err, wp @ jhi + wn @ jlo + err
        off += n
    exact = jnp.all(pat >= 0)
    u = jnp.maximum(jnp.abs(jlo), jnp.abs(jhi))
    # Exact node: J is a point (up to rounding); its midpoint's norm is the value.
    value_exact = op_norm((jlo + jhi) / 2, p)
    bound = op_norm(u, p) * (1 + 64 * float(jnp.finfo(dtype).eps))
    upper = jnp.where(exact, value_exact, bound)
    return NodeEval(pat, upper, exact, jnp.concatenate(zk), jnp.concatenate(zc))


@functools.partial(jax.jit, static_argnames=("p",))
def evaluate(weights, biases, box_lo, box_hi, patterns, p: float) -> NodeEval:
    """Bound a batch of nodes: ``patterns`` is ``[B, H]``; everything float64 (call under ``jax.enable_x64``)."""
    return jax.vmap(lambda pat: _evaluate_one(weights, biases, box_lo, box_hi, pat, p=p))(patterns)


def jacobian(net: Net, pattern: np.ndarray) -> np.ndarray:
    """The point Jacobian ``W_L Λ_{L-1} ... Λ_1 W_1`` for a full 0/1 pattern (float64 numpy)."""
    j = net.weights[0]
    off = 0
    for layer, n in enumerate(net.hidden):
        j = net.weights[layer + 1] @ (pattern[off : off + n, None] * j)
        off += n
    return j


def np_op_norm(m: np.ndarray, p: float) -> float:
    if p == 1:
        return float(np.abs(m).sum(0).max())
    if p == np.inf:
        return float(np.abs(m).sum(1).max())
    return float(np.linalg.norm(m, 2))
