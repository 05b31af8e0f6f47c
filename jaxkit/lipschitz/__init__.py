"""Exact Lipschitz constants of ReLU MLPs by branch-and-bound (LipBaB).

Bhowmick, D'Souza, Raghavan, "LipBaB: Computing Exact Lipschitz Constant of ReLU
Networks", ICANN 2021. For ``f(x) = W_L relu(... relu(W_1 x + b_1) ...) + b_L``
and a box ``X``, the local Lipschitz constant for a p-norm is

    L_p(f, X) = sup over differentiable x in X of ||J_f(x)||_p   (induced norm),

``J_f(x) = W_L Λ_{L-1}(x) W_{L-1} ... Λ_1(x) W_1``. The search splits the input
box by neuron sign until every sub-region has a fixed activation pattern;
interval Jacobians bound the unsplit ones. See :mod:`.search` for the loop,
:mod:`.bounds` for the vmapped node bounds, :mod:`.lp` for feasibility (checked batched
simplex of :mod:`.simplex`, HiGHS fallback).

Example::

    params = MLP((5, 5, 3)).init(key, x)["params"]
    res = lipschitz_constant(params, (np.zeros(4), np.ones(4)), p=2)
    res.lower, res.upper, res.exact, res.nodes, res.seconds
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxkit.interval import mlp_layers
from jaxkit.lipschitz.bounds import Net, jacobian, np_op_norm
from jaxkit.lipschitz.paper import PAPER_NETWORKS, PaperNetwork, paper_network
from jaxkit.lipschitz.search import Result, search

__all__ = [
    "PAPER_NETWORKS",
    "PaperNetwork",
    "Result",
    "jacobian_norm",
    "lipschitz_constant",
    "naive_upper_bound",
    "paper_network",
    "to_net",
]


def _norm_p(p) -> float:
    if isinstance(p, str) and p.lower() in ("inf", "infinity"):
        return np.inf
    try:
        pf = float(p)
    except (TypeError, ValueError):
        pf = None
    if pf not in (1.0, 2.0, np.inf):
        raise ValueError(f"`p` must be 1, 2 or inf, got {p!r}.")
    return pf


def to_net(params: Any) -> Net:
    """The float64 ``Net`` (``W x + b`` layout, ``W = kernel.T``) that the search works on, from Flax MLP params.

    Args:
      params: Flax ``nn.Dense`` MLP params (anything :func:`jaxkit.interval.mlp_layers` accepts).

    Returns:
      A ``Net`` of float64 NumPy ``weights`` (``[out, in]``) and ``biases``; ``sizes`` lists the layer widths.

    Raises:
      ValueError: params that are not an MLP, or non-finite weights (naming the layer).

    References:
      Bhowmick, D'Souza & Raghavan, "LipBaB: Computing Exact Lipschitz Constant of ReLU Networks", ICANN 2021
      (the networks ``f(x) = W_L relu(... relu(W_1 x + b_1) ...) + b_L`` it bounds).

    Examples:
      >>> net = jaxkit.lipschitz.to_net(jaxkit.lipschitz.paper_network("iris_4-5-5-3").params)
      >>> net.sizes, net.weights[0].shape
      ((4, 5, 5, 3), (5, 4))
    """
    layers = mlp_layers(params)
    ws = tuple(np.asarray(k, np.float64).T for k, _ in layers)
    bs = tuple(np.asarray(b, np.float64) for _, b in layers)
    for i, (w, b) in enumerate(zip(ws, bs)):
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise ValueError(f"`params` layer {i} has non-finite weights.")
    return Net(ws, bs)


def _check_box(box, n0):
    if box is None:
        raise ValueError("`box` is required in mode='local': pass (lo, hi) arrays of the input size.")
    try:
        lo, hi = (box.lo, box.hi) if hasattr(box, "lo") else box
    except (TypeError, ValueError) as e:
        raise ValueError(f"`box` must be (lo, hi) or an Interval, got {type(box).__name__}.") from e
    ends = []
    for name, v in (("lo", lo), ("hi", hi)):
        if np.asarray(v).dtype.kind not in "iuf":
            raise TypeError(f"`box` {name} must hold real numbers, got dtype {np.asarray(v).dtype}.")
        try:
            a = np.asarray(v, np.float64)
        except (TypeError, ValueError) as e:
            raise TypeError(f"`box` {name} must be real numbers, got {type(v).__name__}.") from e
        if a.ndim > 1 or (a.ndim == 1 and a.shape[0] != n0):
            raise ValueError(
                f"`box` {name} must be a scalar or have shape ({n0},) (the network's inputs), got shape {a.shape}."
            )
        ends.append(np.broadcast_to(a, (n0,)).copy())
    lo, hi = ends
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError("`box` bounds must be finite.")
    if np.any(lo > hi):
        i = int(np.argmax(lo > hi))
        raise ValueError(f"`box` is inverted: lo[{i}] = {lo[i]} > hi[{i}] = {hi[i]}.")
    if np.any(lo == hi):
        i = int(np.argmax(lo == hi))
        raise ValueError(f"`box` is empty (has no interior): lo[{i}] == hi[{i}] == {lo[i]}.")
    return lo, hi


def lipschitz_constant(
    params: Any,
    box: Any = None,
    *,
    p: float | str = 2,
    k: float = 1.0,
    mode: str = "local",
    batch: int = 64,
    max_nodes: int | None = None,
    time_limit: float | None = None,
    progress: bool = False,
    tol: float = 1e-9,
    lp: str = "batched",
    lookahead: int | None = None,
    devices: Sequence[Any] | None = None,
    memory_budget: float | None = None,
) -> Result:
    """Exact (k = 1) or k-approximate Lipschitz constant of a ReLU MLP, by best-first branch-and-bound.

    ``L_p(f, X) = sup over differentiable x in X of ||J_f(x)||_p`` (induced norm), found by splitting ``X`` by
    neuron signs: nodes are bounded with interval Jacobians (``||max(|J_lo|, |J_hi|)||_p``), the largest upper
    bound is split first, and the search stops when ``upper <= k * lower``.

    Args:
      params: Flax ``nn.Dense`` MLP params (``Dense_0 ... Dense_{L-1}``; Linen
        variables and NNX state accepted) or a list of ``(kernel, bias)``.
      mode: ``"local"`` (over ``box``) or ``"global"`` (over all of R^n).
      box: ``(lo, hi)`` input bounds (arrays or scalars) or an
        :class:`jaxkit.interval.Interval`; required for ``mode="local"``, must be
        ``None`` for ``mode="global"`` (Lipschitz constant over all of R^n).
      p: 1, 2 or ``inf`` (operator norm of the Jacobian).
      k: stop when ``upper <= k * lower`` (k >= 1; 1 means exact).
      batch: nodes expanded per iteration; all their children are bounded in one
        vmapped call (``batch=1`` is the paper's sequential search).
      max_nodes: budget of sub-problems; on expiry the result still holds valid
        bounds, with ``exact=False, status="budget"``.
      time_limit: budget in seconds, as ``max_nodes``.
      progress: show a tqdm bar with the current bounds.
      tol: feasibility tolerance, relative to the box (see :mod:`.lp`).
      lp: ``"batched"`` (default): each step's feasibility LPs are solved together by a vmapped simplex
        whose answers are checked (witness strictly inside, or a Farkas certificate) with HiGHS for the
        rest; ``"highs"``: one HiGHS LP per question, the paper's way. Global mode always uses HiGHS.
      lookahead: per node and step, how many further ``*`` neurons' LPs are asked speculatively in the
        batched call (our choice); ``None`` (default): every ``*`` neuron of the node's first ``*`` layer. A
        side found empty fixes that neuron in both children, so they are bounded with it decided and never ask
        again (on a random (10, 24, 24, 24, 3) net, p = 2: 47,398 nodes at ``lookahead=3`` without that
        inheritance, 14,469 now). Ignored (0) when the LPs go to HiGHS one at a time.
      devices: devices each round's node batch and LP batch are split over (a one-axis ``"nodes"`` mesh,
        weights replicated; default: every device of every process -- under ``jax.distributed`` each process
        runs the same host search on the gathered results). With one device nothing is sharded; the constants
        do not depend on the split (nodes are bounded independently).
      memory_budget: bytes of the node evaluator's temporaries per device (default 1 GiB): when the largest
        node bucket (``2 * batch`` nodes) is first needed, its compiled program is measured (XLA's memory
        analysis) and the nodes per call halved until it fits. Results do not depend on it.

    Returns:
      :class:`Result` with ``lower``, ``upper``, ``exact``, ``status``, ``nodes``,
      ``lp_calls`` (feasibility LPs asked), ``highs_calls`` (of which solved by HiGHS), ``seconds``,
      ``first_estimate`` and ``history``.

    Raises:
      ValueError: ``p`` not 1, 2 or inf; ``k < 1``; ``batch < 1``; an unknown ``mode`` or ``lp``; a ``box`` of
        the wrong size, with NaN or ``lo > hi``, missing in local mode or given in global mode; non-positive
        budgets; params that are not an MLP.

    References:
      Bhowmick, D'Souza & Raghavan, "LipBaB: Computing Exact Lipschitz Constant of ReLU Networks", ICANN 2021
      (the best-first search with interval Jacobians and LP feasibility; its Table 1 gives the reference networks of
      :func:`paper_network`).

    Examples:
      >>> net = jaxkit.lipschitz.paper_network("iris_4-5-5-3")
      >>> res = jaxkit.lipschitz.lipschitz_constant(net.params, net.box, p=2)
      >>> res.status, round(res.upper, 6), round(net.exact[2], 6)
      ('exact', 6.771455, 6.771455)
    """
    p = _norm_p(p)
    if not np.isfinite(k) or float(k) < 1.0:
        raise ValueError(f"`k` must be a finite number >= 1, got {k}.")
    if int(batch) < 1:
        raise ValueError(f"`batch` must be >= 1, got {batch}.")
    if mode not in ("local", "global"):
        raise ValueError(f"`mode` must be 'local' or 'global', got {mode!r}.")
    net = to_net(params)
    n0 = net.sizes[0]
    if mode == "local":
        lo, hi = _check_box(box, n0)
    else:
        if box is not None:
            raise ValueError("`box` must be None in mode='global' (the global constant has no input box).")
        lo = hi = None
    if lp not in ("batched", "highs"):
        raise ValueError(f"`lp` must be 'batched' or 'highs', got {lp!r}.")
    if lookahead is not None and (
        isinstance(lookahead, bool) or not isinstance(lookahead, (int, np.integer)) or lookahead < 0
    ):
        raise ValueError(f"`lookahead` must be None or an integer >= 0, got {lookahead!r}.")
    if memory_budget is not None and not float(memory_budget) > 0:
        raise ValueError(f"`memory_budget` must be a positive number of bytes, got {memory_budget}.")
    for name, v in (("max_nodes", max_nodes), ("time_limit", time_limit)):
        if v is not None and v <= 0:
            raise ValueError(f"`{name}` must be positive or None, got {v}.")
    if not net.hidden:  # a linear map: its Jacobian is W everywhere, so L = ||W||_p exactly (local and global)
        t0 = time.perf_counter()
        value = np_op_norm(net.weights[0], p)
        seconds = time.perf_counter() - t0
        return Result(
            lower=value,
            upper=value,
            exact=True,
            status="exact",
            nodes=1,
            lp_calls=0,
            seconds=seconds,
            first_estimate=value,
            p=p,
            k=float(k),
            mode=mode,
            batch=int(batch),
            history=((1, seconds, value, value),),
        )
    return search(
        net,
        lo,
        hi,
        p=p,
        k=float(k),
        batch=int(batch),
        max_nodes=max_nodes,
        time_limit=time_limit,
        progress=progress,
        tol=float(tol),
        mode=mode,
        lp=lp,
        lookahead=None if lookahead is None else int(lookahead),
        devices=devices,
        memory_budget=memory_budget,
    )


def naive_upper_bound(params: Any, p: float | str = 2) -> float:
    """The product of the layers' operator norms, ``prod_l ||W_l||_p``: a global upper bound.

    Valid because ReLU is 1-Lipschitz; usually far above the exact constant (the baseline LipBaB improves on).

    Args:
      params: Flax ``nn.Dense`` MLP params.
      p: 1, 2 or ``inf``.

    Returns:
      The bound, a Python float.

    Raises:
      ValueError: ``p`` not 1, 2 or inf; params that are not an MLP.

    References:
      Bhowmick, D'Souza & Raghavan, "LipBaB: Computing Exact Lipschitz Constant of ReLU Networks", ICANN 2021
      (the naive product bound it improves on); Szegedy et al., "Intriguing properties of neural networks",
      ICLR 2014, Sec. 4.3.

    Examples:
      >>> net = jaxkit.lipschitz.paper_network("iris_4-5-5-3")
      >>> round(jaxkit.lipschitz.naive_upper_bound(net.params, 2), 4)  # the exact constant is 6.7715
      7.6757
    """
    p = _norm_p(p)
    net = to_net(params)
    return float(np.prod([np_op_norm(w, p) for w in net.weights]))


def jacobian_norm(params: Any, x: np.ndarray, p: float | str = 2) -> float:
    """The norm of the network's Jacobian at a point, ``||J_f(x)||_p`` (float64).

    ``J_f(x) = W_L Λ_{L-1}(x) ... Λ_1(x) W_1`` with ``Λ_l(x)`` the ReLUs' 0/1 activation pattern at ``x``; a
    lower bound on the local constant of any box holding ``x`` (when ``x`` is a differentiable point).

    Args:
      params: Flax ``nn.Dense`` MLP params.
      x: the input point, shape ``[n_inputs]``.
      p: 1, 2 or ``inf``.

    Returns:
      The norm, a Python float.

    Raises:
      TypeError: ``x`` not real.
      ValueError: ``x`` of the wrong shape or not finite; ``p`` not 1, 2 or inf.

    References:
      Bhowmick, D'Souza & Raghavan, "LipBaB: Computing Exact Lipschitz Constant of ReLU Networks", ICANN 2021
      (the Jacobian of a ReLU network for a fixed activation pattern).

    Examples:
      >>> net = jaxkit.lipschitz.paper_network("iris_4-5-5-3")
      >>> round(jaxkit.lipschitz.jacobian_norm(net.params, np.full(4, 0.5), 2), 4)
      1.7979
    """
    p = _norm_p(p)
    net = to_net(params)
    if np.asarray(x).dtype.kind not in "iuf":
        raise TypeError(f"`x` must hold real numbers, got dtype {np.asarray(x).dtype}.")
    h = np.asarray(x, np.float64)
    if h.shape != (net.sizes[0],):
        raise ValueError(f"`x` must have shape ({net.sizes[0]},) (the network's inputs), got {h.shape}.")
    if not np.all(np.isfinite(h)):
        raise ValueError(f"`x` must be finite, got {h}.")
    pattern = []
    for w, b in zip(net.weights[:-1], net.biases[:-1]):
        z = w @ h + b
        pattern.append((z > 0).astype(np.float64))
        h = np.maximum(z, 0)
    return np_op_norm(jacobian(net, np.concatenate(pattern) if pattern else np.zeros(0)), p)
