import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linprog

from jaxkit import lipschitz as lb
from jaxkit import models
from jaxkit.lipschitz import bounds, simplex
from jaxkit.lipschitz import lp as lplib

# name: (box upper end, exact constants for p = 1, 2, inf), typed in from the paper (see paper_nets/README.md)
GOLDEN = {
    "iris_4-5-5-3": (1.0, (5.958048912394726, 6.771454513402937, 12.605085581416922)),
    "sd_10-15-10-3": (0.1, (10.41286850374477, 9.530716922306004, 16.274810805318676)),
    "sd_10-20-15-10-3": (0.1, (48.04897158493324, 40.05651016370293, 72.28569774866806)),
    "sd_10-30-30-30-3": (0.1, (19.369311332018757, 19.462799793264388, 39.11036425646691)),
}


SHA256 = {  # of the files as copied from the source copy of the paper's networks (see paper_nets/README.md)
    "iris_4-5-5-3": "2ccc7217412e5297598f7c806258d6dc828ab1349c7e46044c7609738e8ced55",
    "sd_10-15-10-3": "f5bfa868de4981581e6e0fd74c628be550ef51cd9b094b90872070ee3871155a",
    "sd_10-20-15-10-3": "bdf9313319c4ec4539a9923046ab130e889e319366515ee0daf24549d1dd2271",
    "sd_10-30-30-30-3": "90ffb932dbe9d1280fa1dd6afb43d1c1b9c38f828e8abcb7da57d6b39997d444",
}


def golden_params(name):
    return lb.paper_network(name).params


@pytest.mark.parametrize("name", list(GOLDEN))
def test_paper_networks_ship_with_the_package_unchanged(name):
    import hashlib
    import importlib.resources

    blob = (importlib.resources.files("jaxkit.lipschitz") / "paper_nets" / f"{name}.npz").read_bytes()
    assert hashlib.sha256(blob).hexdigest() == SHA256[name]
    net = lb.paper_network(name)
    hi, gold = GOLDEN[name]
    n0 = int(name.split("_")[1].split("-")[0])
    assert [net.params[f"Dense_{i}"]["kernel"].shape[1] for i in range(len(net.params))] == [
        int(w) for w in name.split("_")[1].split("-")[1:]
    ]
    assert all(v.dtype == np.float64 for layer in net.params.values() for v in layer.values())
    np.testing.assert_array_equal(net.box[0], np.zeros(n0))
    np.testing.assert_array_equal(net.box[1], np.full(n0, hi))
    assert [net.exact[p] for p in (1, 2, np.inf)] == list(gold)
    assert lb.PAPER_NETWORKS == tuple(GOLDEN)


def test_paper_network_rejects_an_unknown_name():
    with pytest.raises(ValueError, match="`name` must be one of"):
        lb.paper_network("sd_10-30-3")


def random_params(sizes, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return {
        f"Dense_{i}": {"kernel": scale * rng.normal(size=(a, b)) / np.sqrt(a), "bias": 0.3 * rng.normal(size=b)}
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))
    }


def jac_norms_on_points(params, pts, p):
    """Vectorised float64 Jacobian norms at points (reference; independent of jaxkit.lipschitz)."""
    ks = [np.asarray(params[f"Dense_{i}"]["kernel"], np.float64) for i in range(len(params))]
    bs = [np.asarray(params[f"Dense_{i}"]["bias"], np.float64) for i in range(len(params))]
    h, jac = pts, np.broadcast_to(np.eye(pts.shape[1]), (len(pts), pts.shape[1], pts.shape[1]))
    for i, (k, b) in enumerate(zip(ks, bs)):
        z = h @ k + b
        jac = jac @ k  # [N, n0, width]: row-vector convention, J^T
        if i < len(ks) - 1:
            act = (z > 0).astype(np.float64)
            jac, h = jac * act[:, None, :], np.maximum(z, 0)
    jt = np.swapaxes(jac, 1, 2)  # [N, out, n0]
    if p == 1:
        return np.abs(jt).sum(1).max(1)
    if p == np.inf:
        return np.abs(jt).sum(2).max(1)
    return np.linalg.norm(jt, 2, axis=(1, 2))


def enumerate_exact(params, lo, hi, p):
    """Reference: max ||J||_p over every activation pattern whose region has interior (scipy LP)."""
    ks = [np.asarray(params[f"Dense_{i}"]["kernel"], np.float64).T for i in range(len(params))]
    bs = [np.asarray(params[f"Dense_{i}"]["bias"], np.float64) for i in range(len(params))]
    hidden = [k.shape[0] for k in ks[:-1]]
    n0 = ks[0].shape[1]
    best = 0.0
    for pat in itertools.product([0, 1], repeat=sum(hidden)):
        pat = np.array(pat, np.float64)
        m, c, rows, rhs, off = np.eye(n0), np.zeros(n0), [], [], 0
        for layer, n in enumerate(hidden):
            zm, zc = ks[layer] @ m, ks[layer] @ c + bs[layer]
            s = pat[off : off + n]
            sign = np.where(s > 0, -1.0, 1.0)  # active: -z < 0 ; inactive: z < 0
            rows.append(sign[:, None] * zm)
            rhs.append(-sign * zc)
            m, c = s[:, None] * zm, s * zc
            off += n
        a = np.vstack(rows)
        norms = np.linalg.norm(a, axis=1)
        if lo is None:
            a_ub, b_ub, bnds = np.hstack([a, norms[:, None]]), np.concatenate(rhs), [(None, None)] * n0 + [(0, 1)]
        else:
            eye = np.eye(n0)
            a_ub = np.vstack(
                [
                    np.hstack([a, norms[:, None]]),
                    np.hstack([-eye, np.ones((n0, 1))]),
                    np.hstack([eye, np.ones((n0, 1))]),
                ]
            )
            b_ub = np.concatenate([np.concatenate(rhs), -lo, hi])
            bnds = [(None, None)] * n0 + [(0, None)]
        res = linprog(np.r_[np.zeros(n0), -1.0], A_ub=a_ub, b_ub=b_ub, bounds=bnds, method="highs")
        if res.status != 0 or res.x[-1] <= 1e-9:
            continue
        jac = ks[-1] @ m
        best = max(best, bounds.np_op_norm(jac, p))
    return best


@pytest.mark.parametrize("name", list(GOLDEN))
def test_exact_constants_of_the_paper_networks(name):
    hi, gold = GOLDEN[name]
    params = golden_params(name)
    n0 = params["Dense_0"]["kernel"].shape[0]
    for p, g in zip((1, 2, np.inf), gold):
        r = lb.lipschitz_constant(params, (np.zeros(n0), np.full(n0, hi)), p=p, batch=32)
        assert r.exact and r.status == "exact"
        assert r.lower == r.upper
        assert r.upper == pytest.approx(g, rel=1e-6), (name, p)
        assert r.first_estimate >= r.upper


@pytest.mark.parametrize("p", [1, 2, np.inf])
def test_pattern_enumeration_gives_the_same_constant(p):
    for seed in range(3):
        params = random_params((3, 4, 4, 2), seed, scale=1.5)
        lo, hi = -np.ones(3), np.ones(3)
        ref = enumerate_exact(params, lo, hi, p)
        r = lb.lipschitz_constant(params, (lo, hi), p=p, batch=4)
        assert r.exact
        assert r.upper == pytest.approx(ref, rel=1e-9)


def test_global_mode_matches_enumeration_and_dominates_local():
    params = random_params((2, 5, 3, 2), 7, scale=1.5)
    for p in (1, 2, np.inf):
        ref = enumerate_exact(params, None, None, p)
        g = lb.lipschitz_constant(params, None, p=p, mode="global", batch=8)
        assert g.exact and g.upper == pytest.approx(ref, rel=1e-9)
        loc = lb.lipschitz_constant(params, (-np.ones(2), np.ones(2)), p=p)
        assert loc.upper <= g.upper * (1 + 1e-12)


@pytest.mark.parametrize("n0", [1, 2])
def test_dense_grid_lower_bound_is_reached_never_exceeded(n0):
    params = random_params((n0, 12, 8, 3), 11, scale=1.3)
    lo, hi = -np.ones(n0), np.ones(n0)
    for p in (1, 2, np.inf):
        r = lb.lipschitz_constant(params, (lo, hi), p=p)
        assert r.exact
        prev = 0.0
        for res in (20_000,) if n0 == 1 else (60, 900):
            axes = [np.linspace(lo[i], hi[i], res) for i in range(n0)]
            pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, n0)
            grid = jac_norms_on_points(params, pts, p).max()
            assert grid <= r.upper * (1 + 1e-12)  # never below a grid lower bound
            assert grid >= prev
            prev = grid
        assert prev == pytest.approx(r.upper, rel=1e-6)  # refined grid reaches it


def test_naive_layer_norm_product_is_an_upper_bound():
    params = golden_params("sd_10-15-10-3")
    for p, g in zip((1, 2, np.inf), GOLDEN["sd_10-15-10-3"][1]):
        assert lb.naive_upper_bound(params, p) >= g
    small = random_params((2, 5, 3, 2), 7, scale=1.5)
    assert lb.naive_upper_bound(small, 2) >= lb.lipschitz_constant(small, None, mode="global").upper


def test_batched_and_one_node_at_a_time_agree():
    params = golden_params("sd_10-20-15-10-3")
    box = (np.zeros(10), np.full(10, 0.1))
    one = lb.lipschitz_constant(params, box, p=2, batch=1)
    many = lb.lipschitz_constant(params, box, p=2, batch=16)
    assert one.exact and many.exact
    assert one.upper == pytest.approx(many.upper, rel=1e-12)
    assert len(one.history) > len(many.history)  # fewer, larger steps


def test_rounds_grow_with_the_frontier_and_the_constant_does_not_change(monkeypatch):
    """round_size: batch while the frontier is small, then an eighth of it, capped at GROW * batch; batch = 1 is
    never grown (the paper's search). Growing changes the visiting order only: same exact constant as without."""
    import importlib

    srch = importlib.import_module("jaxkit.lipschitz.search")  # the module (the face exports a function)
    assert [srch.round_size(4, f) for f in (0, 8, 32, 40, 64, 1000)] == [4, 4, 4, 5, 8, 4 * srch.GROW]
    assert srch.round_size(1, 10**6) == 1
    params = golden_params("sd_10-30-30-30-3")
    box = (np.zeros(10), np.full(10, 0.1))
    grown = lb.lipschitz_constant(params, box, p=2, batch=2)
    monkeypatch.setattr(srch, "GROW", 1)
    fixed = lb.lipschitz_constant(params, box, p=2, batch=2)
    assert grown.exact and fixed.exact
    assert grown.upper == pytest.approx(fixed.upper, rel=1e-12)
    assert grown.upper == pytest.approx(GOLDEN["sd_10-30-30-30-3"][1][1], rel=1e-9)
    assert len(grown.rounds) < len(fixed.rounds)  # some rounds expanded more than `batch` nodes


def test_sides_the_lookahead_proved_empty_are_fixed_in_both_children():
    """A node's filter asks LPs for every candidate of its first * layer; when it branches on candidate j, a later
    candidate q with one side proved empty is fixed to the other side in both children (their regions lie inside
    the node's), and a later candidate with both sides empty means the node's region is empty: no children."""
    import importlib

    srch = importlib.import_module("jaxkit.lipschitz.search")  # the module (the face exports a function)
    net = bounds.Net((np.eye(2), np.ones((1, 2))), (np.zeros(2), np.zeros(1)))  # 2 inputs, 2 hidden, 1 output
    s = srch._Search(net, np.zeros(2), np.ones(2), 2.0, 4, 1e-9)

    def state(known):
        node = srch._Node(np.array([-1, -1], np.int8), np.zeros((0, 2)), np.zeros(0), [])
        node.z_coef, node.z_const = np.eye(2), np.array([-0.5, -0.5])
        st = {"node": node, "cands": np.array([0, 1]), "pos": 0, "pattern": node.pattern.copy(), "kids": None}
        st["by_wit"], st["known"] = np.zeros((2, 2), bool), dict(known)
        return st

    both = {(0, 0): True, (0, 1): True}  # neuron 0: both sides feasible -> branched on
    for later, fixed in ((False, 1), (True, 0)):  # neuron 1's side 0 (z < 0) / side 1 (z > 0) proved empty
        st = state({**both, (1, 0 if later is False else 1): False})
        asked = []
        s._advance(st, asked)
        assert not asked and [k.pattern.tolist() for k in st["kids"]] == [[0, fixed], [1, fixed]]
    st = state(both)  # nothing known about neuron 1: it stays undecided in the children, as before
    s._advance(st, [])
    assert [k.pattern.tolist() for k in st["kids"]] == [[0, -1], [1, -1]]
    st = state({**both, (1, 0): False, (1, 1): False})
    s._advance(st, [])
    assert st["kids"] == []


@pytest.mark.parametrize("p", [1, 2, np.inf])
def test_every_lookahead_finds_the_same_exact_constant(p):
    """lookahead=None (the whole first * layer, with its answers inherited), 3 and 0 visit different trees but
    certify the same constant (different searches: tolerance 1e-9 relative); the whole layer uses fewer nodes."""
    params = golden_params("sd_10-30-30-30-3")
    box = (np.zeros(10), np.full(10, 0.1))
    runs = {la: lb.lipschitz_constant(params, box, p=p, batch=32, lookahead=la) for la in (None, 3, 0)}
    for r in runs.values():
        assert r.exact and r.upper == pytest.approx(GOLDEN["sd_10-30-30-30-3"][1][(1, 2, np.inf).index(p)], rel=1e-9)
    assert runs[None].nodes < runs[0].nodes


def test_node_evaluator_compiles_once_per_search(monkeypatch):
    calls = []
    orig = bounds._evaluate_one

    def counting(*args, **kw):
        calls.append(1)
        return orig(*args, **kw)

    monkeypatch.setattr(bounds, "_evaluate_one", counting)
    bounds.evaluate.clear_cache()
    params = random_params((3, 6, 5, 2), 3)
    r = lb.lipschitz_constant(params, (-np.ones(3), np.ones(3)), p=2, batch=3)
    assert r.nodes > 6  # several batched calls ...
    assert len(calls) == 1  # ... one trace (2 * batch = 6 is below the smallest size bucket, 8)
    bounds.evaluate.clear_cache()
    calls.clear()
    r = lb.lipschitz_constant(params, (-np.ones(3), np.ones(3)), p=2, batch=16)
    assert r.exact and 1 <= len(calls) <= 2  # chunks padded to 8 or 32 nodes: one trace per bucket
    bounds.evaluate.clear_cache()


def test_budget_returns_valid_bounds_and_says_not_exact():
    params = golden_params("sd_10-30-30-30-3")
    box = (np.zeros(10), np.full(10, 0.1))
    gold = GOLDEN["sd_10-30-30-30-3"][1][1]
    r = lb.lipschitz_constant(params, box, p=2, max_nodes=40, batch=8)
    assert not r.exact and r.status == "budget"
    assert r.lower <= gold <= r.upper
    a = lb.lipschitz_constant(params, box, p=2, k=2.0, batch=8)
    assert a.status in ("approx", "exact") and a.upper <= 2 * a.lower and a.lower <= gold <= a.upper


@pytest.mark.parametrize("p", [1, 2, np.inf])
def test_a_budget_stopped_search_has_a_positive_sound_lower_bound(p):
    """Stopped before any leaf (1 node), lower was 0; the gradient norm at differentiable interior points is a
    lower bound from the first round: lower > 0 and lower <= the exact constant, for every p."""
    params = golden_params("sd_10-30-30-30-3")
    box = (np.zeros(10), np.full(10, 0.1))
    gold = GOLDEN["sd_10-30-30-30-3"][1][{1: 0, 2: 1, np.inf: 2}[p]]
    for nodes in (1, 40):
        r = lb.lipschitz_constant(params, box, p=p, max_nodes=nodes, batch=8)
        assert r.status == "budget" and 0 < r.lower <= gold <= r.upper, (nodes, r.lower, gold, r.upper)
    # an exact search with the sampled bound still ends at the golden constant
    assert lb.lipschitz_constant(params, box, p=p).upper == pytest.approx(gold, rel=1e-9)


def test_point_lower_bound_ignores_points_where_several_neurons_sit_at_zero():
    """f(x) = 3 relu(x + 10) - 3 relu(x) + 3 relu(-x) is constant (slope 0) on (-1, 0): at x = 0 both relu(x) and
    relu(-x) sit at 0, and the 'both inactive' Jacobian there is 3 although no point near 0 has that gradient."""
    import importlib

    from jaxkit.lipschitz import bounds as b_

    s_ = importlib.import_module("jaxkit.lipschitz.search")  # the module (the package re-exports a function)

    net = b_.Net(
        (np.array([[1.0], [1.0], [-1.0]]), np.array([[3.0, -3.0, 3.0]])), (np.array([10.0, 0.0, 0.0]), np.zeros(1))
    )
    lo, hi = np.array([-1.0]), np.array([0.5])
    assert s_.point_lower_bound(net, np.array([[0.0]]), 2, lo, hi) == 0.0  # not differentiable there: ignored
    assert s_.point_lower_bound(net, np.array([[-0.5]]), 2, lo, hi) == 0.0  # slope 0 on the left
    assert s_.point_lower_bound(net, np.array([[0.25]]), 2, lo, hi) == pytest.approx(0.0, abs=1e-12)
    assert s_.point_lower_bound(net, np.array([[0.6]]), 2, lo, hi) == 0.0  # outside the box: ignored
    r = lb.lipschitz_constant(
        {
            "Dense_0": {"kernel": net.weights[0].T, "bias": net.biases[0]},
            "Dense_1": {"kernel": net.weights[1].T, "bias": net.biases[1]},
        },
        (lo, hi),
        p=2,
    )
    assert r.exact and r.upper == pytest.approx(0.0, abs=1e-12)


def test_accepts_flax_linen_variables_and_jacobian_norm_is_a_lower_bound():
    model = models.MLP((5, 4, 2))
    variables = model.init(jax.random.key(0), jnp.ones((1, 3)))
    r = lb.lipschitz_constant(variables, (-np.ones(3), np.ones(3)), p=2)
    x = np.array([0.1, -0.2, 0.3])
    j = np.asarray(jax.jacobian(lambda v: model.apply(variables, v[None])[0])(jnp.asarray(x, jnp.float32)))
    assert lb.jacobian_norm(variables, x, 2) == pytest.approx(np.linalg.norm(j, 2), rel=1e-5)
    assert lb.jacobian_norm(variables, x, 2) <= r.upper * (1 + 1e-6)


def test_bad_inputs_raise_clear_errors():
    params = random_params((3, 4, 2), 0)
    box = (np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="`p` must be 1, 2 or inf"):
        lb.lipschitz_constant(params, box, p=3)
    with pytest.raises(ValueError, match="`k` must be a finite number >= 1"):
        lb.lipschitz_constant(params, box, k=0.5)
    with pytest.raises(ValueError, match="inverted"):
        lb.lipschitz_constant(params, (np.ones(3), np.zeros(3)))
    with pytest.raises(ValueError, match="empty"):
        lb.lipschitz_constant(params, (np.zeros(3), np.zeros(3)))
    with pytest.raises(ValueError, match="`box` is required"):
        lb.lipschitz_constant(params)
    with pytest.raises(ValueError, match="must be None in mode='global'"):
        lb.lipschitz_constant(params, box, mode="global")
    with pytest.raises(ValueError, match="not an MLP"):
        lb.lipschitz_constant({"Conv_0": {"kernel": np.ones((3, 3, 1, 4))}}, box)
    with pytest.raises(ValueError, match="kernel expects"):
        lb.lipschitz_constant([(np.ones((3, 4)), np.ones(4)), (np.ones((5, 2)), np.ones(2))], box)
    with pytest.raises(ValueError, match="`lp` must be 'batched' or 'highs'"):
        lb.lipschitz_constant(params, box, lp="glpk")
    for bad in (-1, True, 2.5, "3"):
        with pytest.raises(ValueError, match="`lookahead` must be None or an integer >= 0"):
            lb.lipschitz_constant(params, box, lookahead=bad)
    with pytest.raises(ValueError, match="`batch` must be >= 1"):
        lb.lipschitz_constant(params, box, batch=0)
    with pytest.raises(ValueError, match="`mode`"):
        lb.lipschitz_constant(params, box, mode="semi")
    with pytest.raises(ValueError, match="non-finite"):
        lb.lipschitz_constant({"Dense_0": {"kernel": np.full((3, 2), np.nan), "bias": np.zeros(2)}}, box)
    with pytest.raises(ValueError, match=r"`box` lo must be a scalar or have shape \(3,\)"):
        lb.lipschitz_constant(params, (np.zeros(4), np.ones(4)))
    with pytest.raises(ValueError, match="`box` bounds must be finite"):
        lb.lipschitz_constant(params, (np.zeros(3), np.array([1.0, np.nan, 1.0])))
    with pytest.raises(ValueError, match="`x` must be finite"):
        lb.jacobian_norm(params, np.array([0.0, np.nan, 0.0]))  # used to return 0.0
    with pytest.raises(ValueError, match=r"`x` must have shape \(3,\)"):
        lb.jacobian_norm(params, np.zeros(2))


@pytest.mark.parametrize("mode", ["local", "global"])
def test_a_linear_map_has_the_exact_constant_of_its_matrix(mode):
    """No hidden layer: the Jacobian is W everywhere, so L_p = ||W||_p (this crashed before)."""
    rng = np.random.default_rng(5)
    kernel, bias = rng.normal(size=(4, 3)), rng.normal(size=3)  # Flax layout: W = kernel.T
    box = (np.zeros(4), np.ones(4)) if mode == "local" else None
    w = kernel.T
    for p, ref in (
        (1, np.abs(w).sum(0).max()),
        (2, np.linalg.svd(w, compute_uv=False)[0]),
        (np.inf, np.abs(w).sum(1).max()),
    ):
        r = lb.lipschitz_constant({"Dense_0": {"kernel": kernel, "bias": bias}}, box, p=p, mode=mode)
        assert r.exact and r.status == "exact" and r.lower == r.upper
        assert r.upper == pytest.approx(ref, rel=1e-12)
        assert lb.jacobian_norm({"Dense_0": {"kernel": kernel, "bias": bias}}, np.full(4, 0.3), p) == pytest.approx(ref)


def random_polytopes(seed, count, n=4, rows=6):
    """Random half-space systems in the box [0, 1]^n: thick, empty and thin ones (rows through a common point)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        a = rng.normal(size=(rows, n))
        centre = rng.uniform(0.2, 0.8, n)
        c = a @ centre + rng.uniform(-0.3, 0.3, rows)  # some rows cut the centre off: feasible or empty
        if i % 7 == 0:
            c = a @ centre  # every row through one point: an empty open region (thin)
        out.append((a, c))
    return out


def test_batched_feasibility_agrees_with_highs_and_every_answer_is_checked():
    region = lplib.Region(np.zeros(4), np.ones(4), 4)
    probs = random_polytopes(0, 120)
    batched, highs = lplib.decide([(a, c, []) for a, c in probs], region)
    assert highs <= 6  # the checked simplex settles nearly every question
    n_feas = n_empty = 0
    for (a, c), (ok, wit) in zip(probs, batched):
        ref_ok, _, r = lplib.interior_point(a, c, region)  # HiGHS Chebyshev LP: the independent reference
        if ok:
            n_feas += 1
            assert wit is not None and np.all(a @ wit < c) and np.all((wit > 0) & (wit < 1))
            assert ref_ok or r <= 1e-9  # only a region thinner than tol may be kept where HiGHS drops it
        else:
            n_empty += 1
            assert not ref_ok  # an empty answer is never wrong
    assert n_feas > 20 and n_empty > 20


def test_phase1_optimum_equals_scipy_on_the_same_auxiliary_lp():
    rng = np.random.default_rng(1)
    k, m, n, cap = 24, 8, 3, 0.5
    g = rng.normal(size=(k, m, n))
    g /= np.linalg.norm(g, axis=2, keepdims=True)
    h = rng.uniform(-0.3, 0.8, size=(k, m))
    valid = rng.uniform(size=(k, m)) < 0.8
    with jax.enable_x64(True):
        sol = jax.device_get(simplex.phase1(g, h, valid, cap=cap))
    assert sol.done.all()
    for i in range(k):
        v = valid[i]
        # min u  s.t.  g y - u <= h - cap,  0 <= y <= 1,  u >= 0   (variables y, u)
        res = linprog(
            np.r_[np.zeros(n), 1.0],
            A_ub=np.hstack([g[i][v], -np.ones((v.sum(), 1))]),
            b_ub=h[i][v] - cap,
            bounds=[(0, 1)] * n + [(0, None)],
            method="highs",
        )
        assert sol.x0[i] == pytest.approx(res.fun - cap, abs=1e-9)
        viol = g[i][v] @ sol.y[i] - h[i][v]
        assert np.max(viol, initial=-cap) <= sol.x0[i] + 1e-9  # y* attains the violation it reports
        assert np.all(sol.lam[i] >= 0) and np.all(sol.lam[i][~v] == 0)


def random_phase1_problems(seed, k, m, n):
    """``k`` auxiliary LPs of ``m`` unit rows in ``n`` box coordinates, about 70 % of the rows valid."""
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(k, m, n))
    g /= np.linalg.norm(g, axis=2, keepdims=True)
    return g, rng.normal(size=(k, m)) * 0.3, rng.random((k, m)) < 0.7


def test_phase1_in_groups_equals_one_vmap():
    """Groups of problems solved in sequence (with padding problems filling the last group) give the one-vmap
    answers: the same pivots on the same problems, compared to 1e-12 (different programs)."""
    k, n = 30, 5
    g, h, valid = random_phase1_problems(2, k, 16, n)
    with jax.enable_x64(True):
        whole = jax.device_get(simplex.phase1(g, h, valid, group=None))
        for group in (4, 7, 64):  # 30 = 7 * 4 + 2: two padding problems; 64 > 30: one vmap
            got = jax.device_get(simplex.phase1(g, h, valid, group=group))
            assert got.y.shape == whole.y.shape == (k, n)
            for a, b in zip(got, whole):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert whole.done.all() and (whole.x0 < 0).any() and (whole.x0 > 0).any()  # feasible and empty ones


def test_farkas_certificate_hand_example_and_no_false_certificate():
    region = lplib.Region(np.zeros(1), np.ones(1), 1)
    a = np.array([[[1.0], [-1.0]]])  # x < 0.2 and x > 0.5: empty
    c = np.array([[0.2, -0.5]])
    assert lplib.certified_empty(a, c, np.array([[1.0, 1.0]]), region)[0]  # 0.2 - 0.5 < 0 summed: 0.3 > 0
    assert not lplib.certified_empty(a, c, np.array([[1.0, 0.0]]), region)[0]
    c_ok = np.array([[0.6, -0.5]])  # 0.5 < x < 0.6: no multipliers can certify it empty
    rng = np.random.default_rng(0)
    assert not lplib.certified_empty(
        np.repeat(a, 200, 0), np.repeat(c_ok, 200, 0), rng.exponential(size=(200, 2)), region
    ).any()


def test_lp_solvers_agree_and_the_simplex_compiles_once():
    params = golden_params("sd_10-15-10-3")
    box = (np.zeros(10), np.full(10, 0.1))
    gold = GOLDEN["sd_10-15-10-3"][1][1]
    traces = []
    orig = simplex._phase1_one
    simplex.phase1.clear_cache()
    try:
        simplex._phase1_one = lambda *a, **k: traces.append(1) or orig(*a, **k)
        fast = lb.lipschitz_constant(params, box, p=2, batch=8)
    finally:
        simplex._phase1_one = orig
        simplex.phase1.clear_cache()
    slow = lb.lipschitz_constant(params, box, p=2, batch=8, lp="highs")
    assert fast.exact and slow.exact
    assert fast.upper == pytest.approx(gold, rel=1e-9) and slow.upper == pytest.approx(gold, rel=1e-9)
    assert fast.lp_calls > 0 and fast.highs_calls < fast.lp_calls and slow.highs_calls == slow.lp_calls
    assert 0 < len(traces) <= 4  # one trace per (problems, rows) size bucket, not per step


def test_simplex_shapes_form_one_small_family_and_chunking_changes_nothing():
    """Problem counts pad to 8, 32, 128 or a multiple of 128 solved in chunks of 128 (rows to a power of two,
    at least 16): the first SDnet search compiled 8 simplex programs with power-of-two counts, now at most 3.
    Chunked and one-call solutions agree (different programs: stated tolerance 1e-12)."""
    assert [lplib._problem_rows(k) for k in (1, 8, 9, 32, 33, 128, 129, 300)] == [8, 8, 32, 32, 128, 128, 256, 384]
    k = 300
    g, h, live = random_phase1_problems(0, k, 16, 6)
    g, h, live = (np.concatenate([x, np.zeros((384 - k,) + x.shape[1:], x.dtype)]) for x in (g, h, live))
    chunked = lplib._phase1_chunked(g, h, live, 200)
    with jax.enable_x64(True):
        whole = jax.device_get(simplex.phase1(g, h, live, max_iter=200))
    for a, b in zip(chunked, whole):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    net = lb.paper_network("sd_10-30-30-30-3")
    before = simplex.phase1._cache_size()
    res = lb.lipschitz_constant(net.params, net.box, p=2, batch=128)
    assert simplex.phase1._cache_size() - before <= 3
    assert res.exact and abs(res.upper - net.exact[2.0]) <= 1e-9 * net.exact[2.0]


def test_node_and_lp_batches_shard_over_devices_with_the_same_constants():
    """On 4 forced host devices every node batch and simplex batch is split over a "nodes" mesh (checked on the
    evaluator's and the simplex's inputs); constants, node counts and LP counts equal the one-device search
    (nodes are bounded independently; tolerance 1e-12 relative: two different programs)."""
    from conftest import run_forced_devices

    run_forced_devices(
        4,
        """
        import jax, numpy as np
        from jaxkit import lipschitz as lb
        from jaxkit.lipschitz import bounds, simplex
        seen = {"evaluate": set(), "phase1": set()}
        ev, ph = bounds.evaluate, simplex.phase1
        def evaluate(*a, **k):
            seen["evaluate"].add(len(a[4].sharding.device_set) if hasattr(a[4], "sharding") else 1)
            return ev(*a, **k)
        def phase1(*a, **k):
            seen["phase1"].add(len(a[0].sharding.device_set) if hasattr(a[0], "sharding") else 1)
            return ph(*a, **k)
        bounds.evaluate, simplex.phase1 = evaluate, phase1
        net = lb.paper_network("sd_10-30-30-30-3")
        for p in (2.0,):  # p = 1 and inf run the same batches (CI time)
            one = lb.lipschitz_constant(net.params, net.box, p=p, batch=32, devices=jax.devices()[:1])
            assert seen == {"evaluate": {1}, "phase1": {1}}, seen
            seen = {"evaluate": set(), "phase1": set()}
            four = lb.lipschitz_constant(net.params, net.box, p=p, batch=32)
            assert seen == {"evaluate": {4}, "phase1": {4}}, seen
            seen = {"evaluate": set(), "phase1": set()}
            assert one.exact and four.exact
            np.testing.assert_allclose(four.upper, one.upper, rtol=1e-12)
            np.testing.assert_allclose(four.upper, net.exact[p], rtol=1e-9)
            assert (four.nodes, four.lp_calls) == (one.nodes, one.lp_calls), (four, one)
        print("ok")
        """,
    )


def test_node_chunk_is_halved_to_fit_the_memory_budget_with_the_same_result():
    """When the evaluator's program for 2 * batch nodes exceeds memory_budget, calls carry fewer nodes: the largest
    call stays within the budget, and the constant, node and LP counts are those of the default search."""
    import importlib

    srch = importlib.import_module("jaxkit.lipschitz.search")  # the module (the face exports a function)

    net = lb.paper_network("sd_10-30-30-30-3")
    ref = lb.lipschitz_constant(net.params, net.box, p=2, batch=64)
    s = srch._Search(lb.to_net(net.params), *map(np.asarray, net.box), 2.0, 64, 1e-9)
    budget = s._temp_bytes(128) * 0.6
    rows = []
    ev = bounds.evaluate

    def spy(*a, **k):
        rows.append(a[4].shape[0])
        return ev(*a, **k)

    spy.lower = ev.lower  # the chunk check measures the real program (a spy without it skips the check)
    bounds.evaluate = spy
    try:
        got = lb.lipschitz_constant(net.params, net.box, p=2, batch=64, memory_budget=budget)
    finally:
        bounds.evaluate = ev
    assert max(rows) == 64 and s._temp_bytes(64) <= budget
    assert got.upper == pytest.approx(ref.upper, rel=1e-12) and (got.nodes, got.lp_calls) == (ref.nodes, ref.lp_calls)
