import fnmatch
import re

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxkit import models
from jaxkit import tree as jt


@pytest.fixture(scope="module")
def vgg_vars():
    return models.VGG(cfg=(4, "M", 6), num_classes=3).init(jax.random.key(0), jnp.ones((1, 8, 8, 1)))


def test_flatten_paths_of_real_flax_params(vgg_vars):
    flat = jt.flatten(vgg_vars)
    assert set(flat) == {
        "params/Conv_0/kernel",
        "params/Conv_1/kernel",
        "params/BatchNorm_0/scale",
        "params/BatchNorm_0/bias",
        "params/BatchNorm_1/scale",
        "params/BatchNorm_1/bias",
        "params/Dense_0/kernel",
        "params/Dense_0/bias",
        "batch_stats/BatchNorm_0/mean",
        "batch_stats/BatchNorm_0/var",
        "batch_stats/BatchNorm_1/mean",
        "batch_stats/BatchNorm_1/var",
    }
    assert flat["params/Conv_1/kernel"].shape == (3, 3, 4, 6)
    assert jt.unflatten(flat) == jax.tree.map(lambda x: x, dict(vgg_vars))


def test_select_conv_kernels_anywhere(vgg_vars):
    sel = jt.select(vgg_vars, "Conv_*/kernel")
    assert list(sel) == ["params/Conv_0/kernel", "params/Conv_1/kernel"]
    assert list(jt.select(vgg_vars, "/params/Dense_0/*")) == ["params/Dense_0/bias", "params/Dense_0/kernel"]
    assert jt.select(vgg_vars, "/Conv_0/kernel", allow_empty=True) == {}  # anchored at the root
    assert len(jt.select(vgg_vars, "batch_stats/**")) == 4
    assert len(jt.select(vgg_vars, "BatchNorm_[!0]/*")) == 4  # scale, bias, mean, var of BatchNorm_1
    assert len(jt.select(vgg_vars, re.compile(r"params/.*/bias"))) == 3
    assert len(jt.select(vgg_vars, ["Conv_0/kernel", "Dense_0/bias"])) == 2
    assert len(jt.select(vgg_vars, lambda p, x: x.ndim == 4)) == 2


def _reference_match(pattern: str, path: str) -> bool:
    """Independent reference: segment-wise fnmatch for patterns without '**'."""
    pat, segs = pattern.strip("/").split("/"), path.split("/")
    if pattern.startswith("/"):
        return len(pat) == len(segs) and all(fnmatch.fnmatchcase(s, p) for s, p in zip(segs, pat))
    return len(pat) <= len(segs) and all(fnmatch.fnmatchcase(s, p) for s, p in zip(segs[-len(pat) :], pat))


seg = st.text(alphabet="ab_0", min_size=1, max_size=3)
pseg = st.text(alphabet="ab_0*?", min_size=1, max_size=3).filter(lambda s: "**" not in s)


@settings(max_examples=300, deadline=None)
@given(st.lists(pseg, min_size=1, max_size=3), st.lists(seg, min_size=1, max_size=4), st.booleans())
def test_glob_matches_segmentwise_fnmatch(pat, path, anchored):
    pattern = ("/" if anchored else "") + "/".join(pat)
    p = "/".join(path)
    assert jt.match(pattern, p) == _reference_match(pattern, p)


def test_double_star_crosses_segments():
    assert jt.match("/a/**/k", "a/b/c/k") and jt.match("/a/**/k", "a/b/k")
    assert not jt.match("/a/*/k", "a/b/c/k")
    assert jt.match("**", "x/y") and not jt.match("/a/**", "b/a/c")


def test_no_match_and_bad_trees_raise_clear_errors(vgg_vars):
    with pytest.raises(ValueError, match=r"pattern 'Linear_\*' matched no leaf of `tree`.*params/Conv_0/kernel"):
        jt.select(vgg_vars, "Linear_*")
    with pytest.raises(ValueError, match="`params` is None"):
        jt.select(None, "kernel", name="params")
    with pytest.raises(ValueError, match="leaf 'a' is a str"):
        jt.count_params({"a": "not an array"})
    with pytest.raises(ValueError, match="Flax module"):
        jt.flatten(nn.Dense(3))
    with pytest.raises(ValueError, match="nnx.Module"):
        jt.flatten(nnx.Linear(2, 3, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match="no leaves"):
        jt.flatten({})
    with pytest.raises(ValueError, match="pattern must be"):
        jt.select(vgg_vars, 3)
    with pytest.raises(ValueError, match="unclosed"):
        jt.select(vgg_vars, "Conv_[0")


def test_count_params_against_brute_force(vgg_vars):
    p = vgg_vars["params"]
    brute = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(p))
    assert jt.count_params(p) == brute == 3 * 3 * 1 * 4 + 4 * 2 + 3 * 3 * 4 * 6 + 6 * 2 + 6 * 3 + 3
    assert jt.count_params(p, "kernel") == 36 + 216 + 18


def test_map_selected_is_jittable_and_traces_once(vgg_vars):
    p = vgg_vars["params"]

    @jax.jit
    @chex.assert_max_traces(n=1)
    def halve_kernels(params, scale):
        return jt.map_selected(lambda k, s: k * s, params, "kernel", jax.tree.map(lambda _: scale, params))

    out = halve_kernels(p, 0.5)
    out = halve_kernels(out, 0.5)
    np.testing.assert_allclose(out["Conv_0"]["kernel"], p["Conv_0"]["kernel"] * 0.25)
    np.testing.assert_array_equal(out["BatchNorm_0"]["scale"], p["BatchNorm_0"]["scale"])
    with_path = jt.map_selected(lambda path, x: path, p, "bias", with_path=True)
    assert with_path["Dense_0"]["bias"] == "Dense_0/bias"


def test_bool_mask_drives_optax_masked(vgg_vars):
    p = vgg_vars["params"]
    mask = jt.bool_mask(p, "kernel")
    assert mask["Conv_0"]["kernel"] is True and mask["BatchNorm_0"]["scale"] is False
    tx = optax.masked(optax.set_to_zero(), mask)
    upd, _ = tx.update(jax.tree.map(jnp.ones_like, p), tx.init(p))
    assert float(jnp.abs(upd["Conv_0"]["kernel"]).sum()) == 0.0
    assert float(upd["Dense_0"]["bias"].sum()) == 3.0


def test_nnx_state_and_linen_variables_give_the_same_paths():
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.Dense_0 = nnx.Linear(4, 5, rngs=rngs)
            self.Dense_1 = nnx.Linear(5, 3, rngs=rngs)

    _, state = nnx.split(Net(nnx.Rngs(0)))
    linen = models.MLP((5, 3)).init(jax.random.key(0), jnp.ones((1, 4)))
    assert sorted(jt.paths(state)) == sorted(jt.paths(linen["params"]))
    assert sorted(jt.paths(jt.params_of(state))) == sorted(jt.paths(jt.params_of(linen)))
    assert jt.count_params(state, "kernel") == 4 * 5 + 5 * 3
    doubled = jt.map_selected(lambda x: 2 * x, state, "Dense_1/bias")
    assert isinstance(doubled, nnx.State)


def test_unflatten_rejects_conflicting_paths():
    with pytest.raises(ValueError, match="goes through leaf"):
        jt.unflatten({"a": 1, "a/b": 2})
    with pytest.raises(ValueError, match="mapping"):
        jt.unflatten([1, 2])


def test_validate_does_not_import_flax_nnx():
    """Checking for an nnx.Module must not import flax.nnx (0.2 s on every first call that selects leaves): a user
    holding an nnx.Module has imported it already. Run in a fresh interpreter, where nothing else imported it."""
    import subprocess
    import sys

    code = (
        "import sys, jax.numpy as jnp, optax\n"
        "from jaxkit import normalize as nz, tree as jt\n"
        "jt.flatten({'a': jnp.ones((2, 2))})\n"
        "nz.centralize_gradients().update({'k': jnp.ones((3, 2))}, optax.EmptyState())\n"
        "print('flax.nnx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
