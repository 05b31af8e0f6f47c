"""LipBaB best-first branch-and-bound (Bhowmick, D'Souza, Raghavan, ICANN 2021).

Host loop, thin: each iteration pops the ``batch`` nodes with the largest upper
bounds, expands them on the host (feasibility filter + branching, LPs only where
no witness point already decides), and bounds **all children in one jitted,
vmapped call** (:func:`jaxkit.lipschitz.bounds.evaluate`), padded to the static
size ``2 * batch`` so it compiles once.

* Global upper bound ``gub`` = max(top of the heap, ``glb``); global lower bound
  ``glb`` = best exact (no ``*``) node that has a certified interior witness.
  The search stops when ``gub <= k * glb`` (k = 1: exact) or a budget runs out,
  and always returns valid ``[glb, gub]``.
* **Feasibility filter** (on expansion, in the first layer ``l`` holding a
  ``*``): for each ``*`` neuron in order, side ``z < 0`` / ``z > 0`` is feasible if a
  witness point of the node lies on it, otherwise one Chebyshev LP decides (and
  yields a new witness). A neuron with one infeasible side is fixed; the first
  neuron with both sides feasible is branched on (our choice of branching neuron:
  the first in index order). If the whole layer gets fixed, the node is
  re-bounded instead of branched. Children inherit the witnesses on their side,
  so branching itself needs no LP.
"""

from __future__ import annotations

import dataclasses
import heapq
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxkit.lipschitz import bounds as _b
from jaxkit.lipschitz import lp as _lp

MAX_WITNESSES = 8


@dataclasses.dataclass
class _Node:
    pattern: np.ndarray  # int8 [H], refined by the last evaluation
    a: np.ndarray  # [m, n0] half-space rows, a x < c
    c: np.ndarray  # [m]
    witnesses: list
    upper: float = np.inf
    exact: bool = False
    z_coef: np.ndarray | None = None
    z_const: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Result:
    """Outcome of :func:`jaxkit.lipschitz.lipschitz_constant`.

    ``lower <= L_p(f, X) <= upper`` always holds. ``exact`` is True when the
    search closed the gap (``upper == lower``); ``status`` is ``"exact"``,
    ``"approx"`` (stopped at ``upper <= k * lower``) or ``"budget"`` (a node or
    time budget ran out first). ``first_estimate`` is the root node's bound,
    ``nodes`` the number of sub-problems bounded, ``lp_calls`` the LPs solved,
    ``history`` rows ``(nodes, seconds, lower, upper)`` for convergence plots.
    """

    lower: float
    upper: float
    exact: bool
    status: str
    nodes: int
    lp_calls: int
    seconds: float
    first_estimate: float
    p: float
    k: float
    mode: str
    batch: int
    history: tuple = ()

    @property
    def value(self) -> float:
        """The best estimate: ``upper`` (equal to ``lower`` when exact)."""
        return self.upper


class _Search:
    def __init__(self, net: _b.Net, box_lo, box_hi, p: float, batch: int, tol: float):
        self.net, self.p, self.batch = net, p, int(batch)
        self.n0, self.H = net.sizes[0], net.n_hidden
        self.layer_of = np.repeat(np.arange(len(net.hidden)), net.hidden)
        self.region = _lp.Region(box_lo, box_hi, self.n0)
        self.tol = tol
        self.lp_calls = 0
        self.nodes = 0
        with jax.enable_x64(True):
            self.w = tuple(jnp.asarray(w, jnp.float64) for w in net.weights)
            self.bias = tuple(jnp.asarray(b, jnp.float64) for b in net.biases)
            inf = np.full(self.n0, np.inf)
            self.lo = jnp.asarray(box_lo if box_lo is not None else -inf, jnp.float64)
            self.hi = jnp.asarray(box_hi if box_hi is not None else inf, jnp.float64)

    def bound(self, nodes: list[_Node]) -> None:
        """Evaluate ``nodes`` in place, in chunks of the static size ``2 * batch``."""
        size = 2 * self.batch
        for start in range(0, len(nodes), size):
            chunk = nodes[start : start + size]
            pats = np.full((size, self.H), -1, np.int8)
            for i, nd in enumerate(chunk):
                pats[i] = nd.pattern
            with jax.enable_x64(True):
                out = _b.evaluate(self.w, self.bias, self.lo, self.hi, jnp.asarray(pats), p=self.p)
                out = jax.device_get(out)
            for i, nd in enumerate(chunk):
                nd.pattern = out.pattern[i].astype(np.int8)
                nd.upper = float(out.upper[i])
                nd.exact = bool(out.exact[i])
                nd.z_coef, nd.z_const = out.z_coef[i], out.z_const[i]
            self.nodes += len(chunk)

    def _side_feasible(self, node: _Node, a_row, c_val, wits) -> bool:
        """Is ``{node region} ∩ {a_row . x < c_val}`` non-empty? Witnesses first, then one LP."""
        for w in wits:
            if a_row @ w - c_val < -1e-12 * (np.abs(a_row) @ np.abs(w) + abs(c_val) + 1e-300):
                return True
        self.lp_calls += 1
        ok, wit, _ = _lp.interior_point(np.vstack([node.a, a_row[None]]), np.append(node.c, c_val), self.region,
                                        self.tol)
        if ok and wit is not None:
            node.witnesses = (node.witnesses + [wit])[-MAX_WITNESSES:]
        return ok

    def expand(self, node: _Node) -> list[_Node]:
        """Feasibility filter, then branch on the first neuron with both sides feasible."""
        stars = np.flatnonzero(node.pattern < 0)
        layer = self.layer_of[stars[0]]
        pattern = node.pattern.copy()
        for j in stars[self.layer_of[stars] == layer]:
            a_j, c_j = node.z_coef[j], node.z_const[j]  # z_j = a_j . x + c_j
            neg = self._side_feasible(node, a_j, -c_j, node.witnesses)  # z_j < 0
            pos = self._side_feasible(node, -a_j, c_j, node.witnesses)  # z_j > 0
            if neg and pos:
                kids = []
                for side, (ar, cr) in ((0, (a_j, -c_j)), (1, (-a_j, c_j))):
                    pat = pattern.copy()
                    pat[j] = side
                    wits = [w for w in node.witnesses if ar @ w - cr < 0]
                    kids.append(_Node(pat, np.vstack([node.a, ar[None]]), np.append(node.c, cr), wits))
                return kids
            if not neg and not pos:
                return []  # the node's own region is empty (only possible without a witness)
            pattern[j] = 1 if pos else 0
        return [_Node(pattern, node.a, node.c, node.witnesses)]


def search(net: _b.Net, box_lo, box_hi, *, p: float, k: float, batch: int, max_nodes: int | None,
           time_limit: float | None, progress: bool, tol: float, mode: str) -> Result:
    from tqdm.auto import tqdm  # noqa: PLC0415

    t0 = time.perf_counter()
    s = _Search(net, box_lo, box_hi, p, batch, tol)
    center = (np.asarray(box_lo) + np.asarray(box_hi)) / 2 if box_lo is not None else np.zeros(s.n0)
    root = _Node(np.full(s.H, -1, np.int8), np.zeros((0, s.n0)), np.zeros(0), [center])
    s.bound([root])
    first = root.upper
    glb, heap, tick = 0.0, [], 0
    if root.exact:
        glb = root.upper
    else:
        heap.append((-root.upper, 0, root))
    history = [(s.nodes, time.perf_counter() - t0, glb, max(first, glb))]
    bar = tqdm(desc="LipBaB", unit="node", disable=not progress, leave=False)
    status = "exact"
    try:
        while True:
            gub = max(-heap[0][0], glb) if heap else glb
            if gub <= glb:
                status = "exact"
                break
            if gub <= k * glb:
                status = "approx"
                break
            if (max_nodes is not None and s.nodes >= max_nodes) or (
                time_limit is not None and time.perf_counter() - t0 >= time_limit
            ):
                status = "budget"
                break
            popped = [heapq.heappop(heap)[2] for _ in range(min(s.batch, len(heap)))]
            children = [kid for nd in popped for kid in s.expand(nd)]
            s.bound(children)
            for kid in children:
                if kid.exact:
                    if kid.witnesses:  # certified non-empty: its value is attained
                        glb = max(glb, kid.upper)
                    else:
                        tick += 1
                        heapq.heappush(heap, (-kid.upper, tick, kid))  # keep for the upper bound only
                elif kid.upper > glb:
                    tick += 1
                    heapq.heappush(heap, (-kid.upper, tick, kid))
            # Exact nodes without witness are never expanded again: drop them from the frontier top.
            while heap and heap[0][2].exact and not heap[0][2].witnesses and -heap[0][0] <= glb:
                heapq.heappop(heap)
            gub = max(-heap[0][0], glb) if heap else glb
            history.append((s.nodes, time.perf_counter() - t0, glb, gub))
            bar.update(len(children))
            bar.set_postfix(lower=f"{glb:.6g}", upper=f"{gub:.6g}", frontier=len(heap))
            if heap and heap[0][2].exact:
                # Only unwitnessed exact nodes can be on top; they cannot be refined further.
                status = "budget" if gub > k * glb else status
                break
    finally:
        bar.close()
    gub = max(-heap[0][0], glb) if heap else glb
    return Result(lower=glb, upper=gub, exact=gub <= glb, status="exact" if gub <= glb else status,
                  nodes=s.nodes, lp_calls=s.lp_calls, seconds=time.perf_counter() - t0, first_estimate=first,
                  p=p, k=k, mode=mode, batch=batch, history=tuple(history))
