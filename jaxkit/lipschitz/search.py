"""LipBaB best-first branch-and-bound (Bhowmick, D'Souza, Raghavan, ICANN 2021).

Host loop, thin: each iteration pops the ``batch`` nodes with the largest upper
bounds, expands them (feasibility filter + branching, LPs only where no witness
point already decides; the LPs of all popped nodes are solved together, see
:func:`jaxkit.lipschitz.lp.decide`), and bounds **all children in one jitted,
vmapped call** (:func:`jaxkit.lipschitz.bounds.evaluate`), padded to a
size bucket (``2 * batch`` divided by a power of 4, at least 8) so it compiles
once per bucket and small rounds do not pay for a full batch of padding.

* Global upper bound ``gub`` = max(top of the heap, ``glb``); global lower bound
  ``glb`` = best exact (no ``*``) node that has a certified interior witness, or the largest gradient norm at a
  differentiable interior point seen so far (the box centre, 31 fixed random points, the newest witness of each
  open node: :func:`point_lower_bound`), so it is never 0 once the root is bounded.
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
from tqdm.auto import tqdm

from jaxkit import _sharding
from jaxkit._memory import MEMORY_BUDGET, temp_bytes
from jaxkit.lipschitz import bounds as _b
from jaxkit.lipschitz import lp as _lp

MAX_WITNESSES = 8
GROW = 8  # rounds grow up to GROW * batch nodes on a large frontier (round_size)
ROOT_SAMPLES = 32  # the box centre and 31 fixed random interior points seed the lower bound


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
    ``nodes`` the number of sub-problems bounded, ``lp_calls`` the feasibility LPs
    solved (``highs_calls`` of them by HiGHS, the rest by the checked batched simplex),
    ``history`` rows ``(nodes, seconds, lower, upper)`` for convergence plots. ``device_seconds`` is the
    part of ``seconds`` spent in the device batches (node bounds and the batched simplex, transfers included);
    the rest is the host's share (heap, LP set-up, witness and Farkas checks, HiGHS fallbacks); ``rounds`` has
    one ``(seconds, device_seconds)`` row per expansion round (a round expands up to ``batch`` nodes).
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
    highs_calls: int = 0
    device_seconds: float = 0.0
    rounds: tuple = ()

    @property
    def value(self) -> float:
        """The best estimate: ``upper`` (equal to ``lower`` when exact)."""
        return self.upper


class _Search:
    def __init__(
        self,
        net: _b.Net,
        box_lo,
        box_hi,
        p: float,
        batch: int,
        tol: float,
        lp: str = "batched",
        lookahead: int | None = None,
        devices=None,
        memory_budget: float | None = None,
    ):
        self.net, self.p, self.batch = net, p, int(batch)
        self.memory_budget = MEMORY_BUDGET if memory_budget is None else float(memory_budget)
        self.node_chunk = 2 * self.batch  # nodes per evaluator call; halved if its program exceeds the budget
        self._chunk_checked = False
        # node and LP batches split over a one-axis "nodes" mesh (weights replicated); None: one device
        self.mesh = _sharding.mesh(devices, "nodes")
        self.n0, self.H = net.sizes[0], net.n_hidden
        self.layer_of = np.repeat(np.arange(len(net.hidden)), net.hidden)
        self.region = _lp.Region(box_lo, box_hi, self.n0)
        self.tol = tol
        self.lp = lp
        batched = lp == "batched" and box_lo is not None
        # None: every candidate of the node's first * layer at once (their answers fix neurons in the children,
        # see _advance); speculation only pays when LPs are solved together
        self.lookahead = (self.H if lookahead is None else int(lookahead)) if batched else 0
        self.lp_calls = 0
        self.highs_calls = 0
        self.nodes = 0
        self.device_seconds = 0.0
        with jax.enable_x64(True):
            self.w = tuple(jnp.asarray(w, jnp.float64) for w in net.weights)
            self.bias = tuple(jnp.asarray(b, jnp.float64) for b in net.biases)
            inf = np.full(self.n0, np.inf)
            self.lo = jnp.asarray(box_lo if box_lo is not None else -inf, jnp.float64)
            self.hi = jnp.asarray(box_hi if box_hi is not None else inf, jnp.float64)
            if self.mesh is not None:
                _sharding.check_same((net.weights, net.biases, box_lo, box_hi), "params and box")
                rep = _sharding.replicated(self.mesh)
                self.w, self.bias, self.lo, self.hi = jax.tree.map(
                    lambda x: _sharding.put(x, rep), (self.w, self.bias, self.lo, self.hi)
                )

    def bound(self, nodes: list[_Node]) -> None:
        """Evaluate ``nodes`` in place, in chunks of at most ``2 * batch``.

        A chunk is padded to the smallest of the sizes ``2 * batch``, ``2 * batch / 4``, ``2 * batch / 16``, ...
        (at least 8) that holds it: a round with few children does not pay for a full batch of padding, and
        the evaluator compiles once per size used (two or three per search; each compile costs about as
        much as bounding a few thousand nodes, so finer buckets do not pay in short searches).
        """
        if not self._chunk_checked and len(nodes) > self.node_chunk // 4:  # the largest bucket is needed now
            self._chunk_checked = True
            while self.node_chunk > 8 and self._temp_bytes(self.node_chunk) > self.memory_budget:
                self.node_chunk //= 2
        size = self.node_chunk
        for start in range(0, len(nodes), size):
            chunk = nodes[start : start + size]
            rows = size
            while rows // 4 >= max(8, len(chunk)):
                rows //= 4
            rows = self._rows(rows)
            pats = np.full((rows, self.H), -1, np.int8)
            pats[: len(chunk)] = [nd.pattern for nd in chunk]
            t = time.perf_counter()
            with jax.enable_x64(True):
                if self.mesh is not None:
                    pats = _sharding.put(pats, _sharding.members(self.mesh))
                out = _sharding.fetch(_b.evaluate(self.w, self.bias, self.lo, self.hi, pats, p=self.p))
            self.device_seconds += time.perf_counter() - t
            for nd, pat, up, ex, zk, zc in zip(
                chunk, out.pattern, out.upper.tolist(), out.exact.tolist(), out.z_coef, out.z_const
            ):
                nd.pattern, nd.upper, nd.exact, nd.z_coef, nd.z_const = pat, up, ex, zk, zc
            self.nodes += len(chunk)

    def _rows(self, rows: int) -> int:
        return rows if self.mesh is None else -(-rows // self.mesh.size) * self.mesh.size

    def _temp_bytes(self, rows: int) -> int:
        """XLA's temporaries of the evaluator for ``rows`` nodes (the compilation is the one the call reuses)."""
        sharding = None if self.mesh is None else _sharding.members(self.mesh)
        pats = jax.ShapeDtypeStruct((self._rows(rows), self.H), np.int8, sharding=sharding)
        if not hasattr(
            _b.evaluate, "lower"
        ):  # the evaluator was replaced by a plain function (a test's spy): nothing to measure
            return 0
        with jax.enable_x64(True):
            return temp_bytes(_b.evaluate, self.w, self.bias, self.lo, self.hi, pats, p=self.p)

    def _solve(self, problems: list) -> list:
        """Feasibility of ``[(a, c, witnesses, (ar, cr)), ...]``: one batched call, or one HiGHS LP each."""
        self.lp_calls += len(problems)
        if self.lp == "batched" and self.region.bounded:
            timing = {"device_seconds": 0.0}
            out, highs = _lp.decide(problems, self.region, self.tol, mesh=self.mesh, timing=timing)
            self.device_seconds += timing["device_seconds"]
            self.highs_calls += highs
            return out
        self.highs_calls += len(problems)
        return [_lp.interior_point(*_lp.stack_rows(q), self.region, self.tol)[:2] for q in problems]

    def expand_all(self, nodes: list[_Node]) -> list[_Node]:
        """Feasibility filter, then branch on the first neuron with both sides feasible, for every node.

        For each node, the ``*`` neurons of its first ``*`` layer are visited in index order; a side
        ``z_j < 0`` / ``z_j > 0`` is feasible if a witness of the node lies on it, otherwise a feasibility
        LP decides. The LPs of all nodes are gathered per round (with ``lookahead`` further neurons per
        node asked speculatively: a side's LP depends on the node's rows only, never on the neurons
        fixed before it) and solved together by :meth:`_solve`.
        """
        states = []
        for nd in nodes:
            stars = np.flatnonzero(nd.pattern < 0)
            cands = stars[self.layer_of[stars] == self.layer_of[stars[0]]]
            states.append(
                {"node": nd, "cands": cands, "pos": 0, "pattern": nd.pattern.copy(), "kids": None, "by_wit": None}
            )
        while True:
            _witness_sides([st for st in states if st["kids"] is None and st["by_wit"] is None])
            asked = []
            for st in states:
                if st["kids"] is None:
                    self._advance(st, asked)
            if not asked:
                return [kid for st in states for kid in st["kids"]]
            rows = [
                (st["node"].a, st["node"].c, st["node"].witnesses, _side_row(st["node"], j, side))
                for st, j, side in asked
            ]
            for (st, j, side), (ok, wit) in zip(asked, self._solve(rows)):
                st["known"][(j, side)] = ok
                if ok and wit is not None:
                    st["node"].witnesses = (st["node"].witnesses + [wit])[-MAX_WITNESSES:]
                    st["by_wit"] = None  # recomputed with the new witness

    def _advance(self, st: dict, asked: list) -> None:
        """Run one node's filter as far as the known answers go; queue the LPs it (and its lookahead) needs."""
        node, cands = st["node"], st["cands"]
        known = st.setdefault("known", {})
        by_wit = st["by_wit"]
        while st["pos"] < len(cands):
            j = int(cands[st["pos"]])
            neg = known.get((j, 0), True if by_wit[0, st["pos"]] else None)
            pos = known.get((j, 1), True if by_wit[1, st["pos"]] else None)
            if neg is None or pos is None:
                break
            if neg and pos:
                # Sides of later candidates that this node's LPs (the lookahead) proved empty are empty in both
                # children too (their regions are parts of this one): fix those neurons now, so the children are
                # bounded with them decided and never ask the same LP again.
                base = st["pattern"].copy()
                for q in cands[st["pos"] + 1 :]:
                    empty_neg, empty_pos = known.get((int(q), 0)) is False, known.get((int(q), 1)) is False
                    if empty_neg and empty_pos:
                        st["kids"] = []  # no side of q holds a point: the node's own region is empty
                        return
                    if empty_neg or empty_pos:
                        base[q] = 1 if empty_neg else 0
                kids = []
                for side in (0, 1):
                    ar, cr = _side_row(node, j, side)
                    pat = base.copy()
                    pat[j] = side
                    wits = [w for w in node.witnesses if ar @ w - cr < 0]
                    kids.append(_Node(pat, np.vstack([node.a, ar[None]]), np.append(node.c, cr), wits))
                st["kids"] = kids
                return
            if not neg and not pos:
                st["kids"] = []  # the node's own region is empty (only possible without a witness)
                return
            st["pattern"][j] = 1 if pos else 0
            st["pos"] += 1
        else:
            st["kids"] = [_Node(st["pattern"], node.a, node.c, node.witnesses)]  # whole layer fixed: re-bound
            return
        for q in range(st["pos"], min(len(cands), st["pos"] + 1 + self.lookahead)):
            for side in (0, 1):
                if (int(cands[q]), side) not in known and not by_wit[side, q]:
                    asked.append((st, int(cands[q]), side))


def _side_row(node: _Node, j: int, side: int):
    """Side 0 (``z_j < 0``) or 1 (``z_j > 0``) of neuron ``j`` as a row ``ar . x < cr`` (``z_j = a_j . x + c_j``)."""
    assert node.z_coef is not None and node.z_const is not None  # set when the node was bounded
    a_j, c_j = node.z_coef[j], node.z_const[j]
    return (a_j, -c_j) if side == 0 else (-a_j, c_j)


def _witness_sides(states: list) -> None:
    """Set each state's ``by_wit [2, len(cands)]``: does a witness lie strictly on side 0 / 1 of each candidate?

    Float64 with a relative margin; all states in one vectorised pass (witnesses and candidates padded).
    """
    if not states:
        return
    nw = max(len(st["node"].witnesses) for st in states)
    nc = max(len(st["cands"]) for st in states)
    n0 = states[0]["node"].z_coef.shape[1]
    w = np.zeros((len(states), max(nw, 1), n0))
    has = np.zeros((len(states), max(nw, 1)), bool)
    a = np.zeros((len(states), nc, n0))
    c = np.zeros((len(states), nc))
    for i, st in enumerate(states):
        nd, k = st["node"], len(st["node"].witnesses)
        if k:
            w[i, :k], has[i, :k] = nd.witnesses, True
        a[i, : len(st["cands"])], c[i, : len(st["cands"])] = nd.z_coef[st["cands"]], nd.z_const[st["cands"]]
    z = np.einsum("swn,scn->swc", w, a) + c[:, None, :]
    margin = 1e-12 * (np.einsum("swn,scn->swc", np.abs(w), np.abs(a)) + np.abs(c)[:, None, :] + 1e-300)
    neg = np.any((z < -margin) & has[..., None], axis=1)
    pos = np.any((z > margin) & has[..., None], axis=1)
    for i, st in enumerate(states):
        st["by_wit"] = np.stack([neg[i, : len(st["cands"])], pos[i, : len(st["cands"])]])


def point_lower_bound(net: _b.Net, points: np.ndarray, p: float, box_lo=None, box_hi=None) -> float:
    """``max ||J_f(x)||_p`` over the ``points`` where it is a valid lower bound on the box's Lipschitz constant.

    A point counts only if it lies strictly inside the box (so every direction stays in the box for a small step)
    and every pre-activation is clearly non-zero there (so ``f`` is differentiable and ``J`` is its gradient, not
    the Jacobian of a pattern that may be empty around the point: with several neurons at exactly 0 that can
    exceed the true constant). Then ``L >= ||J v|| / ||v||`` for every ``v``. Vectorised over points (float64);
    the result is rounded down by a relative 1e-12 against the last bits of the norm. 0 when no point counts.
    """
    x = np.atleast_2d(np.asarray(points, np.float64))
    if x.size == 0:
        return 0.0
    ok = np.all(np.isfinite(x), axis=1)
    if box_lo is not None:
        lo, hi = np.asarray(box_lo, np.float64), np.asarray(box_hi, np.float64)
        margin = 1e-9 * (hi - lo)
        ok &= np.all((x > lo + margin) & (x < hi - margin), axis=1)
    h, masks = x.T, []  # [n0, P]
    for w, b in zip(net.weights[:-1], net.biases[:-1]):
        z = w @ h + b[:, None]
        scale = np.abs(w) @ np.abs(h) + np.abs(b)[:, None]
        ok &= np.all(np.abs(z) > 1e-9 * scale + 1e-300, axis=0)
        masks.append((z > 0).astype(np.float64))
        h = np.maximum(z, 0.0)
    if not ok.any():
        return 0.0
    j = np.broadcast_to(net.weights[0], (x.shape[0],) + net.weights[0].shape)  # [P, n1, n0]
    for layer, d in enumerate(masks):
        j = np.einsum("oh,ph,phi->poi", net.weights[layer + 1], d.T, j)
    j = j[ok]
    if p == 1:
        norms = np.abs(j).sum(1).max(-1)
    elif p == np.inf:
        norms = np.abs(j).sum(2).max(-1)
    else:
        norms = np.linalg.norm(j, 2, axis=(1, 2))
    return float(norms.max()) * (1.0 - 1e-12)


def round_size(batch: int, frontier: int) -> int:
    """Nodes expanded in one round: ``batch`` while the frontier is small, then an eighth of the frontier, up to
    ``GROW * batch`` (``batch = 1`` stays the paper's one node at a time). A large frontier means a hard net whose
    search is long: bigger rounds amortise each round's device calls (node bounds, each LP batch) over more nodes,
    and the best-first order changes only among nodes that are all expanded anyway."""
    if batch <= 1:
        return 1
    return int(min(GROW * batch, max(batch, frontier // 8)))


def search(
    net: _b.Net,
    box_lo,
    box_hi,
    *,
    p: float,
    k: float,
    batch: int,
    max_nodes: int | None,
    time_limit: float | None,
    progress: bool,
    tol: float,
    mode: str,
    lp: str = "batched",
    lookahead: int | None = None,
    devices=None,
    memory_budget: float | None = None,
) -> Result:
    t0 = time.perf_counter()
    s = _Search(net, box_lo, box_hi, p, batch, tol, lp, lookahead, devices, memory_budget)
    center = (np.asarray(box_lo) + np.asarray(box_hi)) / 2 if box_lo is not None else np.zeros(s.n0)
    root = _Node(np.full(s.H, -1, np.int8), np.zeros((0, s.n0)), np.zeros(0), [center])
    s.bound([root])
    first = root.upper
    glb, heap, tick = 0.0, [], 0
    # A lower bound from the start: the gradient norm at the centre and at fixed random interior points (valid as
    # soon as any point is evaluated, so a budget-stopped search never reports 0); witnesses improve it below.
    if box_lo is not None:
        lo, hi = np.asarray(box_lo, np.float64), np.asarray(box_hi, np.float64)
        u = np.random.default_rng(0).uniform(0.01, 0.99, (ROOT_SAMPLES - 1, s.n0))
        samples = np.concatenate([center[None], lo + (hi - lo) * u])
    else:
        samples = np.concatenate([center[None], np.random.default_rng(0).normal(size=(ROOT_SAMPLES - 1, s.n0))])
    glb = point_lower_bound(net, samples, p, box_lo, box_hi)
    if root.exact:
        glb = max(glb, root.upper)
    else:
        heap.append((-root.upper, 0, root))
    history = [(s.nodes, time.perf_counter() - t0, glb, max(first, glb))]
    rounds: list = []
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
            t_round, dev_round = time.perf_counter(), s.device_seconds
            popped = [heapq.heappop(heap)[2] for _ in range(min(round_size(s.batch, len(heap)), len(heap)))]
            children = s.expand_all(popped)
            s.bound(children)
            wits = [kid.witnesses[-1] for kid in children if kid.witnesses and not kid.exact]
            if wits:  # interior points of regions still open: their gradients are lower bounds too
                glb = max(glb, point_lower_bound(net, np.stack(wits), p, box_lo, box_hi))
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
            rounds.append((time.perf_counter() - t_round, s.device_seconds - dev_round))
            bar.update(len(children))
            bar.set_postfix(lower=f"{glb:.6g}", upper=f"{gub:.6g}", frontier=len(heap))
            if heap and heap[0][2].exact:
                # Only unwitnessed exact nodes can be on top; they cannot be refined further.
                status = "budget" if gub > k * glb else status
                break
    finally:
        bar.close()
    gub = max(-heap[0][0], glb) if heap else glb
    return Result(
        lower=glb,
        upper=gub,
        exact=gub <= glb,
        status="exact" if gub <= glb else status,
        nodes=s.nodes,
        lp_calls=s.lp_calls,
        highs_calls=s.highs_calls,
        device_seconds=s.device_seconds,
        seconds=time.perf_counter() - t0,
        first_estimate=first,
        p=p,
        k=k,
        mode=mode,
        batch=batch,
        history=tuple(history),
        rounds=tuple(rounds),
    )
