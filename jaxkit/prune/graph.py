"""Channel-dependency graph of a Flax model, from one traced forward pass.

Structured pruning removes an output channel of a conv/dense layer *together
with* everything indexed by that channel: the layer's bias, the following
BatchNorm's scale/bias/mean/var, the next layer's input rows, and -- across a
residual addition -- the channels of every other layer feeding the same sum.
:func:`build_graph` finds these couplings by tracing ``apply_fn(variables,
*args)`` to a jaxpr (public ``jax.make_jaxpr``) and following the **channel
axis** (the last axis, Flax's NHWC / ``[..., features]`` layout) through it:

* ``conv_general_dilated`` / ``dot_general`` whose kernel is a variable leaf
  *produce* a new channel space (the kernel's output axis, role ``"out"``) and
  *consume* their input's space (the kernel's input axis, role ``"in"``).
  Depthwise convs (``feature_group_count == channels``, multiplier 1) pass the
  space through.
* Element-wise ops (``add``, ``mul``, ``max`` ..., ReLU, BatchNorm arithmetic)
  **join** the spaces of their non-broadcast operands; variable leaves that
  enter such an op along their last axis (biases, BN scale/bias/statistics)
  become members (role ``"elem"``). A residual ``add`` therefore merges the
  producing layers into one group.
* Pooling, reductions over other axes and size-1 reshapes keep the space; a
  flatten ``[N, H, W, C] -> [N, H*W*C]`` makes the next dense layer consume
  ``C`` channels each repeated ``H*W`` times (index ``hw * C + c``).
* Anything the analysis does not understand (channel-axis ``pad``/``concat``/
  slicing/transposes, closed-over constants, unknown primitives) **freezes** the
  spaces involved, as does the model output: a frozen group is never pruned,
  so an unsupported construct costs pruning opportunities, not correctness.
  ``Group.reason`` says why. (E.g. ResNet option-A shortcuts pad the channel
  axis, so their residual streams are frozen while each block's inner channels
  stay prunable -- the usual ResNet-56 pruning setting.)

One graph serves masks, gradient masks, physical removal, gates and cost
counting (:mod:`jaxkit.prune.cost`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.extend.core as jcore
import jax.numpy as jnp
import numpy as np

from jaxkit import _checks as _c
from jaxkit import tree as _tree

__all__ = ["Graph", "Group", "Layer", "Member", "build_graph"]

PyTree = Any

# Primitives that act element-wise (with numpy broadcasting) on all operands.
_ELEMENTWISE = frozenset(
    """abs acos acosh add and asin asinh atan atan2 atanh cbrt ceil clamp convert_element_type copy copy_p cos cosh
    div eq erf erf_inv erfc exp exp2 expm1 floor ge gt imag integer_pow is_finite le lgamma digamma log log1p
    logistic lt max min mul ne neg nextafter not or pow real reduce_precision rem round rsqrt select_n sign sin
    sinh sqrt square stop_gradient sub tan tanh xor""".split()
)
_REDUCE = frozenset("reduce_sum reduce_max reduce_min reduce_prod reduce_and reduce_or argmax argmin".split())
_WINDOW = frozenset("reduce_window_sum reduce_window_max reduce_window_min reduce_window cumsum cummax".split())


@dataclasses.dataclass(frozen=True)
class Member:
    """A variable leaf axis indexed by a group's channels.

    ``role``: ``"out"`` (a producer's kernel output axis), ``"in"`` (a consumer's
    kernel input axis) or ``"elem"`` (bias, BN scale/bias/statistics ...).
    ``repeat``: for a dense layer after a flatten, the axis has ``repeat * size``
    entries, entry ``r * size + c`` belonging to channel ``c``.
    """

    path: str
    axis: int
    role: str
    repeat: int = 1


@dataclasses.dataclass(frozen=True)
class Group:
    """Channels that must be pruned together. ``name`` is its first producer's layer path."""

    id: int
    name: str
    size: int
    members: tuple[Member, ...]
    prunable: bool
    reason: str = ""

    @property
    def producers(self) -> tuple[str, ...]:
        """Layer paths (kernel path without ``/kernel``) whose outputs are these channels."""
        return tuple(_layer_of(m.path) for m in self.members if m.role == "out")

    @property
    def consumers(self) -> tuple[str, ...]:
        return tuple(_layer_of(m.path) for m in self.members if m.role == "in")


@dataclasses.dataclass(frozen=True)
class Layer:
    """A conv/dense call seen in the trace (for cost counting).

    ``macs = spatial * in_per_group * out * window``: ``spatial`` output
    positions per example, ``window`` kernel taps (1 for dense).
    """

    kernel: str
    kind: str  # "conv" | "dense"
    in_group: int | None
    out_group: int | None
    in_size: int
    out_size: int
    in_repeat: int
    groups: int
    spatial: int
    window: int

    @property
    def macs(self) -> int:
        return self.spatial * (self.in_size // self.groups) * self.out_size * self.window


@dataclasses.dataclass(frozen=True)
class Graph:
    """Channel groups of a model plus the conv/dense calls of its forward pass."""

    groups: tuple[Group, ...]
    layers: tuple[Layer, ...]
    shapes: Mapping[str, tuple[int, ...]]  # every variable leaf's shape, by path

    @property
    def prunable(self) -> tuple[Group, ...]:
        return tuple(g for g in self.groups if g.prunable)

    def group(self, name: str | int) -> Group:
        """A group by id, name (``"params/Conv_0"`` or ``"Conv_0"``) or any member layer/leaf path."""
        for g in self.groups:
            if name == g.id or name == g.name or (isinstance(name, str) and _strip(g.name) == _strip(name)):
                return g
        for g in self.groups:
            if any(
                name in (m.path, _layer_of(m.path)) or _strip(str(name)) == _strip(_layer_of(m.path))
                for m in g.members
                if m.role == "out"
            ):
                return g
        known = ", ".join(g.name for g in self.prunable)
        raise ValueError(f"No channel group named {name!r}; prunable groups: {known}.")

    def groups_of(self, path: str) -> list[tuple[Group, Member]]:
        """Every ``(group, member)`` that indexes an axis of the leaf at ``path``."""
        return [(g, m) for g in self.groups for m in g.members if m.path == path]

    def resolve(self, tree: Any, name: str) -> tuple[list[tuple[str, Any]], str]:
        """The checked leaves ``[(path, leaf)]`` of ``tree`` and the prefix (``""`` or ``"params/"``) that maps
        their paths to this graph's variable paths; ``ValueError`` naming ``name`` if none matches."""
        flat = _tree.validate(tree, name)
        paths = [p for p, _ in flat]
        for prefix in ("", "params/"):
            if any(prefix + p in self.shapes for p in paths):
                return flat, prefix
        raise ValueError(
            f"`{name}` does not match the graph: none of its paths (e.g. {paths[0]!r}) is a graph "
            "variable. Build the graph from the same model's variables."
        )

    def group_masks(self, masks: Mapping[str, Any], traced: bool = False) -> dict[int, Any]:
        """``{group id: bool [C]}`` from ``{group name: mask}`` (True = keep), checked: prunable groups, one entry per
        channel, boolean or 0/1 (numpy arrays; jax arrays when ``traced``)."""
        out = {}
        for name, m in masks.items():
            g = self.group(name)
            if not g.prunable:
                raise ValueError(f"Group {g.name!r} cannot be pruned: {g.reason}.")
            if np.shape(m) != (g.size,):
                raise ValueError(f"`masks[{g.name!r}]` must have shape ({g.size},), got {np.shape(masks[name])}.")
            dt = jnp.result_type(m)
            if dt != jnp.bool_:
                if not (jnp.issubdtype(dt, jnp.integer) or jnp.issubdtype(dt, jnp.floating)):
                    raise TypeError(f"`masks[{g.name!r}]` must be boolean (True = keep), got dtype {dt}.")
                if _c.is_concrete(m) and not np.all((np.asarray(m) == 0) | (np.asarray(m) == 1)):
                    raise ValueError(f"`masks[{g.name!r}]` must be boolean (True = keep) or 0/1, got other values.")
            out[g.id] = (jnp.asarray(m) if traced else np.asarray(m)).reshape(-1).astype(bool)
        return out

    def summary(self) -> str:
        rows = []
        for g in self.groups:
            if not any(m.role == "out" for m in g.members):
                continue
            state = "prunable" if g.prunable else f"frozen ({g.reason})"
            rows.append(f"{g.name:40s} {g.size:5d} ch  {len(g.members):3d} members  {state}")
        return "\n".join(rows)


def _layer_of(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else path


def _strip(path: str) -> str:
    for prefix in ("params/", "batch_stats/"):
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


class _Info:
    """What the analysis knows about one jaxpr value's last axis."""

    __slots__ = ("space", "repeat", "refs", "leaf")

    def __init__(self, space=None, repeat=1, refs=frozenset(), leaf=None):
        self.space = space  # int channel-space id or None
        self.repeat = repeat  # flattened spatial factor
        self.refs = refs  # {(path, axis)}: variable axes aligned with this last axis, not yet in a space
        self.leaf = leaf  # path if the value *is* a variable leaf (up to dtype casts)


class _Builder:
    def __init__(self):
        self.parent: list[int] = []
        self.size: list[int] = []
        self.members: list[list[Member]] = []
        self.frozen: list[str] = []
        self.layers: list[dict] = []
        self.frozen_leaves: set[str] = set()  # variables used by ops the analysis does not understand

    # --- union-find over channel spaces -------------------------------------
    def new(self, size: int, reason: str = "") -> int:
        self.parent.append(len(self.parent))
        self.size.append(int(size))
        self.members.append([])
        self.frozen.append(reason)
        return len(self.parent) - 1

    def find(self, s: int) -> int:
        while self.parent[s] != s:
            self.parent[s] = self.parent[self.parent[s]]
            s = self.parent[s]
        return s

    def union(self, a: int, b: int) -> int:
        a, b = self.find(a), self.find(b)
        if a == b:
            return a
        if a > b:
            a, b = b, a
        self.parent[b] = a
        self.members[a] += self.members[b]
        self.frozen[a] = self.frozen[a] or self.frozen[b]
        if self.size[a] != self.size[b]:
            self.frozen[a] = self.frozen[a] or f"channel counts {self.size[a]} and {self.size[b]} meet"
        return a

    def freeze(self, s, reason: str) -> None:
        if s is not None:
            r = self.find(s)
            self.frozen[r] = self.frozen[r] or reason

    def add(self, s: int, member: Member) -> None:
        self.members[self.find(s)].append(member)


def _last(aval) -> int | None:
    shape: tuple = tuple(getattr(aval, "shape", ()))
    return int(shape[-1]) if len(shape) else None


def _sub_jaxpr(eqn):
    for v in eqn.params.values():
        if isinstance(v, jcore.ClosedJaxpr) and len(v.jaxpr.invars) == len(eqn.invars):
            return v.jaxpr
        if isinstance(v, jcore.Jaxpr) and len(v.invars) == len(eqn.invars):
            return v
    return None


def _run(b: _Builder, jaxpr, env: dict) -> None:
    def get(v) -> _Info:
        if isinstance(v, jcore.Literal):
            return _Info()
        return env.get(v, _Info())

    for v in jaxpr.constvars:
        n = _last(v.aval)
        env[v] = _Info(space=b.new(n, "closed-over constant") if n and n > 1 else None)

    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        ins = [get(v) for v in eqn.invars]
        outs = eqn.outvars
        sub = _sub_jaxpr(eqn)
        if sub is not None:
            inner = {iv: info for iv, info in zip(sub.invars, ins)}
            _run(b, sub, inner)
            for ov, iv in zip(outs, sub.outvars):
                env[ov] = inner.get(iv, _Info()) if not isinstance(iv, jcore.Literal) else _Info()
            continue
        if name in ("conv_general_dilated", "dot_general"):
            env[outs[0]] = _linear(b, eqn, ins)
        elif name in _ELEMENTWISE:
            env[outs[0]] = _elementwise(b, eqn, ins)
        elif name in ("broadcast_in_dim", "reshape", "squeeze", "expand_dims", "transpose"):
            env[outs[0]] = _view(b, eqn, ins[0])
        elif name in _REDUCE:
            x, axes = ins[0], tuple(eqn.params.get("axes", eqn.params.get("axis", ())))
            nd = len(eqn.invars[0].aval.shape)
            keeps_last = (nd - 1) not in tuple(a % nd for a in np.atleast_1d(axes))
            if keeps_last and x.repeat == 1:
                env[outs[0]] = _Info(x.space, 1, x.refs)
            else:
                b.freeze(x.space, f"{name} over the channel axis")
                env[outs[0]] = _fresh(b, outs[0], "reduced channel axis")
        elif name in _WINDOW:
            x = ins[0]
            dims = eqn.params.get("window_dimensions") or (1,)
            if name.startswith("cum") or dims[-1] != 1:
                b.freeze(x.space, f"{name} across channels")
                env[outs[0]] = _fresh(b, outs[0], f"{name} across channels")
            else:
                env[outs[0]] = _Info(x.space, x.repeat)
        elif name == "slice":
            x = ins[0]
            full = (
                eqn.params["start_indices"][-1] == 0
                and eqn.params["limit_indices"][-1] == eqn.invars[0].aval.shape[-1]
                and (eqn.params["strides"] or (1,))[-1] == 1
            )
            if full:
                env[outs[0]] = _Info(x.space, x.repeat, x.refs)
            else:
                b.freeze(x.space, "slice of the channel axis")
                env[outs[0]] = _fresh(b, outs[0], "slice of the channel axis")
        elif name == "pad":
            x = ins[0]
            cfg = eqn.params["padding_config"][-1]
            if tuple(cfg) == (0, 0, 0):
                env[outs[0]] = _Info(x.space, x.repeat, x.refs)
            else:
                b.freeze(x.space, "channel-axis pad")
                env[outs[0]] = _fresh(b, outs[0], "channel-axis pad")
        else:
            for x in ins:
                b.freeze(x.space, f"unsupported op {name!r}")
                b.frozen_leaves.update({path for path, _ in x.refs} | ({x.leaf} if x.leaf else set()))
            for ov in outs:
                env[ov] = _fresh(b, ov, f"output of unsupported op {name!r}")


def _fresh(b: _Builder, var, reason: str) -> _Info:
    n = _last(var.aval)
    return _Info(space=b.new(n, reason) if n and n > 1 else None)


def _absorb(b: _Builder, space: int, info: _Info) -> int:
    """Join ``info`` (its space and its pending variable refs) into ``space``."""
    if info.space is not None:
        space = b.union(space, info.space)
    for path, axis in sorted(info.refs):
        b.add(space, Member(path, axis, "elem"))
    return space


def _elementwise(b: _Builder, eqn, ins: list[_Info]) -> _Info:
    if eqn.primitive.name in ("convert_element_type", "copy", "copy_p", "reduce_precision") and ins:
        x = ins[0]  # identity up to dtype: a cast kernel is still the variable leaf
        return _Info(x.space, x.repeat, x.refs, x.leaf)
    n = _last(eqn.outvars[0].aval)
    active = [
        x
        for v, x in zip(eqn.invars, ins)
        if n is not None and n > 1 and _last(v.aval) == n and (x.space is not None or x.refs)
    ]
    if not active:
        return _Info()
    if all(x.space is None for x in active):  # arithmetic among variables only (BN's scale * rsqrt(var))
        return _Info(refs=frozenset().union(*(x.refs for x in active)))
    repeats = {x.repeat for x in active if x.space is not None}
    space = next(x.space for x in active if x.space is not None)
    for x in active:
        space = _absorb(b, space, x)
    if len(repeats) > 1:
        b.freeze(space, "flattened and unflattened channels meet")
    return _Info(space, max(repeats))


def _view(b: _Builder, eqn, x: _Info) -> _Info:
    """broadcast/reshape/squeeze/expand/transpose: where does the output's last axis come from?"""
    name = eqn.primitive.name
    in_shape = tuple(eqn.invars[0].aval.shape)
    out_shape = tuple(eqn.outvars[0].aval.shape)
    if not out_shape:
        return _Info()
    if not in_shape:
        return _Info()
    src = None  # operand axis feeding the output's last axis
    if name == "broadcast_in_dim":
        dims = tuple(eqn.params["broadcast_dimensions"])
        if len(out_shape) - 1 in dims:
            src = dims.index(len(out_shape) - 1)
            if in_shape[src] != out_shape[-1]:
                return _Info()  # size-1 axis broadcast to the channel count: no channel identity
        else:
            return _Info()
    elif name == "transpose":
        src = tuple(eqn.params["permutation"])[-1]
    elif name in ("reshape", "squeeze", "expand_dims"):
        if out_shape[-1] == in_shape[-1] and _nontrivial(out_shape[:-1]) == _nontrivial(in_shape[:-1]):
            src = len(in_shape) - 1
        elif (
            name == "reshape"
            and out_shape[-1] == int(np.prod(in_shape[1:]))
            and len(in_shape) > 2
            and int(np.prod(out_shape[:-1])) == in_shape[0]
            and x.space is not None
        ):
            # flatten [N, ..., C] -> [N, ...*C]: channel fastest, repeated prod(...) times
            return _Info(x.space, x.repeat * int(np.prod(in_shape[1:-1])))
        elif out_shape[-1] == 1 or (x.space is None and not x.refs):
            return _Info()
        else:
            b.freeze(x.space, "reshape that moves the channel axis")
            return _fresh(b, eqn.outvars[0], "reshape that moves the channel axis")
    if src == len(in_shape) - 1:
        return _Info(x.space, x.repeat, x.refs)  # a reshaped kernel is no longer the leaf's layout
    # The channel axis comes from another operand axis.
    if x.leaf is not None and x.space is None:
        return _Info(refs=frozenset({(x.leaf, src)}))
    if x.space is not None or x.refs:
        b.freeze(x.space, f"{name} moves the channel axis")
        return _fresh(b, eqn.outvars[0], f"{name} moves the channel axis")
    return _Info()


def _nontrivial(shape) -> tuple:
    return tuple(d for d in shape if d != 1)


def _linear(b: _Builder, eqn, ins: list[_Info]) -> _Info:
    name = eqn.primitive.name
    lhs, rhs = ins
    lv, rv, ov = eqn.invars[0], eqn.invars[1], eqn.outvars[0]
    out_n = _last(ov.aval)
    assert out_n is not None  # convolutions and matrix products have a channel axis
    if name == "conv_general_dilated":
        dn = eqn.params["dimension_numbers"]
        lhs_spec, rhs_spec, out_spec = dn.lhs_spec, dn.rhs_spec, dn.out_spec
        nd = len(lv.aval.shape)
        groups = int(eqn.params["feature_group_count"])
        ok = (
            rhs.leaf is not None
            and lhs_spec[1] == nd - 1
            and out_spec[1] == nd - 1
            and int(eqn.params.get("batch_group_count", 1)) == 1
            and lhs.repeat == 1
        )
        if not ok:
            _freeze_all(b, ins, "conv whose kernel is not a variable or whose layout is not NHWC")
            return _fresh(b, ov, "output of an unsupported conv")
        assert rhs.leaf is not None
        kshape = rv.aval.shape
        out_axis, in_axis = rhs_spec[0], rhs_spec[1]
        c_in = lv.aval.shape[-1]
        window = int(np.prod([kshape[a] for a in rhs_spec[2:]]))
        spatial = int(np.prod([ov.aval.shape[a] for a in out_spec[2:]]))
        if groups == 1:
            out = b.new(out_n)
            b.add(out, Member(rhs.leaf, out_axis, "out"))
            if lhs.space is not None:
                b.add(lhs.space, Member(rhs.leaf, in_axis, "in"))
            in_group = lhs.space
        elif groups == c_in and kshape[in_axis] == 1 and out_n == c_in and lhs.space is not None:
            out = lhs.space  # depthwise, multiplier 1: channels pass through
            b.add(out, Member(rhs.leaf, out_axis, "out"))
            in_group = lhs.space
        else:
            _freeze_all(b, ins, "grouped conv")
            out = b.new(out_n, "grouped conv")
            b.add(out, Member(rhs.leaf, out_axis, "out"))
            in_group = lhs.space
        b.layers.append(
            dict(
                kernel=rhs.leaf,
                kind="conv",
                in_space=in_group,
                out_space=out,
                in_size=c_in,
                out_size=out_n,
                in_repeat=1,
                groups=groups,
                spatial=spatial,
                window=window,
            )
        )
        return _Info(out)
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    nl = len(lv.aval.shape)
    ok = (
        rhs.leaf is not None
        and len(rv.aval.shape) == 2
        and tuple(lc) == (nl - 1,)
        and tuple(rc) == (0,)
        and not lb
        and not rb
    )
    if not ok:
        _freeze_all(b, ins, "dot_general that is not x @ kernel")
        return _fresh(b, ov, "output of an unsupported dot_general")
    assert rhs.leaf is not None
    out = b.new(out_n)
    b.add(out, Member(rhs.leaf, 1, "out"))
    if lhs.space is not None:
        b.add(lhs.space, Member(rhs.leaf, 0, "in", lhs.repeat))
    spatial = int(np.prod(ov.aval.shape[1:-1])) if len(ov.aval.shape) > 2 else 1
    b.layers.append(
        dict(
            kernel=rhs.leaf,
            kind="dense",
            in_space=lhs.space,
            out_space=out,
            in_size=int(lv.aval.shape[-1]),
            out_size=out_n,
            in_repeat=lhs.repeat,
            groups=1,
            spatial=spatial,
            window=1,
        )
    )
    return _Info(out)


def _freeze_all(b: _Builder, ins: list[_Info], reason: str) -> None:
    for x in ins:
        b.freeze(x.space, reason)


def build_graph(apply_fn: Callable[..., Any] | Any, variables: PyTree, *args, **kwargs) -> Graph:
    """Trace ``apply_fn(variables, *args, **kwargs)`` once and group coupled channels.

    Args:
      apply_fn: ``model.apply`` (or a Flax module, whose ``apply`` is used) or any
        ``fn(variables, *args)``; a ``(output, state)`` return (``mutable=...``)
        is accepted, and only ``output`` counts as the model output.
      variables: the variables pytree (``{"params": ..., "batch_stats": ...}``)
        or bare params; member paths are relative to it.
      *args: an example input (one example is enough; shapes only).
      **kwargs: further keyword arguments of ``apply_fn``.

    Returns:
      A :class:`Graph`. ``graph.prunable`` lists the groups that can be pruned.

    Raises:
      ValueError: ``variables`` with no array leaves; an example input the model does not accept.

    References:
      He et al., "Blending Pruning Criteria for CNNs", ICANN 2021 (channel-level pruning of coupled layers); Fang et
      al., "DepGraph: Towards Any Structural Pruning",
      CVPR 2023 (dependency graphs for structured pruning).

    Examples:
      >>> model = jaxkit.models.VGG(cfg=(4, "M", 8), num_classes=3)
      >>> x = jnp.zeros((1, 8, 8, 1))
      >>> variables = model.init(jax.random.key(0), x)
      >>> graph = jaxkit.prune.build_graph(model, variables, x)
      >>> [g.name for g in graph.prunable]
      ['params/Conv_0', 'params/Conv_1']
    """
    fn = apply_fn.apply if isinstance(apply_fn, nn.Module) else apply_fn
    flat = _tree.validate(variables, "variables")
    if not flat:
        raise ValueError("`variables` has no array leaves; pass the model's variables (e.g. model.init(...)).")

    def model_output(v):
        out = fn(v, *args, **kwargs)
        if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], Mapping):
            out = out[0]
        return out

    try:
        closed = jax.make_jaxpr(model_output)(variables)
    except Exception as e:
        raise ValueError(f"build_graph: could not trace `apply_fn(variables, *args)`: {e}") from e
    jaxpr = closed.jaxpr
    paths = [p for p, _ in flat]
    if len(paths) != len(jaxpr.invars):
        raise ValueError("build_graph: `variables` leaves do not match the traced inputs.")
    b = _Builder()
    env = {
        v: _Info(leaf=p, refs=frozenset({(p, len(v.aval.shape) - 1)}) if v.aval.shape else frozenset())
        for v, p in zip(jaxpr.invars, paths)
    }
    _run(b, jaxpr, env)
    for v in jaxpr.outvars:
        if not isinstance(v, jcore.Literal) and env.get(v) is not None:
            b.freeze(env[v].space, "model output")

    shapes = {p: tuple(np.shape(x)) for p, x in flat}
    roots = sorted({b.find(i) for i in range(len(b.parent))})
    groups, index = [], {}
    for r in roots:
        members = tuple(dict.fromkeys(b.members[r]))  # dedupe, keep order
        outs = [m for m in members if m.role == "out"]
        if not members:
            continue
        name = _layer_of(outs[0].path) if outs else f"space_{r}"
        reason = b.frozen[r] or ("" if outs else "no producing layer")
        shapes_ok = all(shapes[m.path][m.axis] == b.size[r] * m.repeat for m in members)
        if not shapes_ok:
            reason = reason or "member shapes disagree"
        bad = sorted({m.path for m in members} & b.frozen_leaves)
        if bad:
            reason = reason or f"{bad[0]} is used by an unsupported op"
        index[r] = len(groups)
        groups.append(Group(len(groups), name, b.size[r], members, not reason, reason))
    layers = []
    for d in b.layers:
        gi = index.get(b.find(d["in_space"])) if d["in_space"] is not None else None
        go = index.get(b.find(d["out_space"]))
        layers.append(
            Layer(
                d["kernel"],
                d["kind"],
                gi,
                go,
                d["in_size"],
                d["out_size"],
                d["in_repeat"],
                d["groups"],
                d["spatial"],
                d["window"],
            )
        )
    return Graph(tuple(groups), tuple(layers), shapes)
