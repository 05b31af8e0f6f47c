"""Channel-wise activation hooks on any Flax Linen model, placed by the dependency graph.

A transform that scales or replaces the channels of a group (BFRIFP's
pruned-channel multiplier, Gator's gates) acts **after every BatchNorm coupled
to the group** -- so both branches of a residual sum see the same factor -- or,
for a group without BatchNorm, on the **input of every consuming layer**
(a dense layer after a flatten sees the channel vector tiled ``repeat`` times).
:func:`intercept` applies such a transform with
:func:`flax.linen.intercept_methods`, so the model's code is untouched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import NamedTuple

import flax.linen as nn

from jaxkit.prune.graph import Graph

__all__ = ["Hook", "channel_hooks", "intercept"]


class Hook(NamedTuple):
    slot: int  # index of the group in the ``names`` passed to channel_hooks
    repeat: int  # the activation's channel axis holds the group's channels tiled this many times
    where: str  # "output" (after a BatchNorm) | "input" (of a consuming layer)


def _module_path(leaf_path: str) -> str:
    return "/".join(leaf_path.split("/")[1:-1])  # drop the collection and the leaf name


def channel_hooks(graph: Graph, names: Sequence[str]) -> dict[str, list[Hook]]:
    """``{module path: [Hook, ...]}`` for the groups ``names`` (see the module docstring)."""
    hooks: dict[str, list[Hook]] = {}
    for slot, name in enumerate(names):
        g = graph.group(name)
        bns = sorted({_module_path(m.path) for m in g.members if m.role == "elem" and m.path.endswith("/scale")})
        if bns:
            for b in bns:
                hooks.setdefault(b, []).append(Hook(slot, 1, "output"))
        else:
            for m in g.members:
                if m.role == "in":
                    hooks.setdefault(_module_path(m.path), []).append(Hook(slot, m.repeat, "input"))
    return hooks


@contextlib.contextmanager
def intercept(hooks: dict[str, list[Hook]], modify: Callable):
    """Within the context, every hooked module call passes through ``modify(x, hook, module_path, call)``.

    ``call`` counts the calls of that module (inputs odd, outputs even) so
    stochastic transforms can fold it into their key.
    """
    calls: dict[str, int] = {}

    def interceptor(next_fun, args, kwargs, context):
        if context.method_name != "__call__":
            return next_fun(*args, **kwargs)
        mpath = "/".join(context.module.path)
        if mpath not in hooks:
            return next_fun(*args, **kwargs)
        call = calls[mpath] = calls.get(mpath, -1) + 1
        args = list(args)
        for h in hooks[mpath]:
            if h.where == "input":
                args[0] = modify(args[0], h, mpath, 2 * call + 1)
        out = next_fun(*args, **kwargs)
        for h in hooks[mpath]:
            if h.where == "output":
                out = modify(out, h, mpath, 2 * call)
        return out

    with nn.intercept_methods(interceptor):
        yield
