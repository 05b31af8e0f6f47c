"""Path-addressed views of Flax parameter pytrees.

Masks, gates, interval bounds and populations all address parameters by *path*:
the ``/``-joined keys from the root of the tree to a leaf, e.g.
``"params/Conv_0/kernel"``. This module turns pytrees into such paths and back,
and selects leaves by glob patterns over them.

Pattern language (see :func:`match`):

* ``*`` matches within one path segment, ``**`` across segments, ``?`` one
  character, ``[...]`` a character class (all as in shell globs, but ``*`` never
  crosses a ``/``).
* A pattern without a leading ``/`` may match any trailing run of whole
  segments: ``"Conv_*/kernel"`` selects ``params/Conv_0/kernel`` and
  ``params/Block_1/Conv_2/kernel``. A leading ``/`` anchors it at the root.
* Several patterns (a list/tuple) select the union; a compiled ``re.Pattern``
  is matched with ``fullmatch`` against the whole path; a callable
  ``predicate(path, leaf) -> bool`` is used as is.

Accepted trees: any pytree of arrays, including Flax Linen variable dicts
(``{"params": ..., "batch_stats": ...}``) and Flax NNX ``State`` objects from
``nnx.split`` (their ``.value`` wrappers do not appear in paths). Use
:func:`params_of` to get the plain ``params`` collection from either.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Union

import jax
import numpy as np

PyTree = Any
Pattern = Union[str, "re.Pattern[str]", Callable[[str, Any], bool], Iterable[str]]

SEP = "/"

__all__ = [
    "SEP",
    "bool_mask",
    "count_params",
    "flatten",
    "map_selected",
    "match",
    "params_of",
    "path_str",
    "paths",
    "predicate",
    "select",
    "unflatten",
    "validate",
]


def _key_name(key: Any) -> str:
    """One path entry as a string."""
    if isinstance(key, jax.tree_util.DictKey):
        return str(key.key)
    if isinstance(key, jax.tree_util.SequenceKey):
        return str(key.idx)
    if isinstance(key, jax.tree_util.GetAttrKey):
        return key.name
    if isinstance(key, jax.tree_util.FlattenedIndexKey):
        return str(key.key)
    return str(key)


def path_str(keypath: tuple) -> str:
    """The ``/``-joined name of a key path from ``jax.tree_util.tree_flatten_with_path``.

    A trailing ``.value`` attribute (how Flax NNX ``Variable`` wrappers flatten) is dropped so that NNX state and
    Linen dicts give the same names.

    Args:
      keypath: a key path (a tuple of ``DictKey`` / ``SequenceKey`` / ``GetAttrKey`` / ...).

    Returns:
      The path, e.g. ``"Conv_0/kernel"``.

    Examples:
      >>> keypath = jax.tree_util.tree_flatten_with_path({"Conv_0": {"kernel": 0}})[0][0][0]
      >>> jaxkit.tree.path_str(keypath)
      'Conv_0/kernel'
    """
    keys = list(keypath)
    if keys and isinstance(keys[-1], jax.tree_util.GetAttrKey) and keys[-1].name == "value":
        keys = keys[:-1]
    return SEP.join(_key_name(k) for k in keys)


def _is_arraylike(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic, int, float, complex, bool)) or (
        hasattr(x, "shape") and hasattr(x, "dtype")
    )


def validate(tree: PyTree, name: str = "tree") -> list[tuple[str, Any]]:
    """Flatten ``tree`` to ``[(path, leaf)]``, checking that it is a pytree of arrays.

    Args:
      tree: the pytree.
      name: the argument name used in error messages.

    Returns:
      ``[(path, leaf), ...]`` in tree-flatten order.

    Raises:
      ValueError: a leaf that is not an array or number (naming ``name`` and the path).

    Examples:
      >>> [path for path, _ in jaxkit.tree.validate({"Dense_0": {"kernel": jnp.ones((2, 2))}})]
      ['Dense_0/kernel']
    """
    if tree is None:
        raise ValueError(f"`{name}` is None; expected a pytree of arrays (e.g. Flax params).")
    # An nnx.Module exists only if its user imported flax.nnx; importing it here cost every first call 0.2 s.
    nnx = sys.modules.get("flax.nnx")
    if nnx is not None and isinstance(tree, nnx.Module):
        raise ValueError(f"`{name}` is an nnx.Module; pass its state: `graphdef, state = nnx.split(module)`.")
    if hasattr(tree, "apply") and hasattr(tree, "init") and not isinstance(tree, Mapping):
        raise ValueError(
            f"`{name}` is a Flax module ({type(tree).__name__}); pass its params, e.g. `module.init(key, x)['params']`."
        )
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    if not flat:
        raise ValueError(f"`{name}` has no leaves; expected a non-empty pytree of arrays.")
    out = []
    for keypath, leaf in flat:
        path = path_str(keypath)
        if not _is_arraylike(leaf):
            raise ValueError(
                f"`{name}` leaf {path!r} is a {type(leaf).__name__}, not an array; "
                "expected a pytree whose leaves are arrays."
            )
        out.append((path, leaf))
    return out


def params_of(variables: PyTree) -> PyTree:
    """The plain ``params`` pytree from Linen variables, NNX state or bare params.

    * ``{"params": p, ...}`` (Linen ``init`` output) -> ``p``
    * ``nnx.State`` -> its pure-dict form, filtered to ``nnx.Param`` when possible
    * anything else -> returned unchanged (already a params tree)

    Args:
      variables: Linen variables, NNX state or params.

    Returns:
      The params pytree.

    Examples:
      >>> jaxkit.tree.params_of({"params": {"Dense_0": {"bias": 0.0}}, "batch_stats": {}})
      {'Dense_0': {'bias': 0.0}}
    """
    try:
        from flax import nnx  # noqa: PLC0415

        if isinstance(variables, nnx.State):
            try:
                variables = variables.filter(nnx.Param)
            except Exception:  # noqa: BLE001  (a state that holds no Param filters to an error)
                pass
            to_pure = getattr(nnx, "to_pure_dict", None)
            return to_pure(variables) if to_pure is not None else variables.to_pure_dict()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(variables, Mapping) and "params" in variables:
        return variables["params"]
    return variables


def flatten(tree: PyTree, name: str = "tree") -> dict[str, Any]:
    """The leaves of ``tree`` as ``{path: leaf}``, in tree-flatten order.

    Args:
      tree: a pytree of arrays (Linen variables, NNX state or plain params).
      name: the argument's name in error messages.

    Returns:
      A dict from ``/``-joined paths to leaves.

    Raises:
      ValueError: ``tree`` is not a pytree of arrays.

    Examples:
      >>> jaxkit.tree.flatten({"Dense_0": {"kernel": 1.0, "bias": 0.0}})
      {'Dense_0/bias': 0.0, 'Dense_0/kernel': 1.0}
    """
    return dict(validate(tree, name))


def unflatten(flat: Mapping[str, Any]) -> dict:
    """Nested dicts from ``{path: leaf}``; the inverse of :func:`flatten` for dict trees.

    Args:
      flat: a mapping from ``/``-joined paths to leaves.

    Returns:
      Nested dicts.

    Raises:
      ValueError: a path that goes through another path's leaf.

    Examples:
      >>> jaxkit.tree.unflatten({"a/b": 1, "a/c": 2})
      {'a': {'b': 1, 'c': 2}}
    """
    if not isinstance(flat, Mapping):
        raise ValueError(f"`flat` must be a mapping from '/'-joined paths to leaves, got {type(flat).__name__}.")
    root: dict = {}
    for path, leaf in flat.items():
        if not isinstance(path, str) or not path:
            raise ValueError(f"`flat` has an invalid path {path!r}; expected a non-empty string.")
        node = root
        *parents, last = path.split(SEP)
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"`flat` path {path!r} goes through leaf {part!r}.")
            node = child
        if last in node:
            raise ValueError(f"`flat` path {path!r} collides with another path.")
        node[last] = leaf
    return root


def paths(tree: PyTree) -> list[str]:
    """All leaf paths of ``tree``, in tree-flatten order.

    Args:
      tree: a pytree of arrays (Linen variables, NNX state or plain params).

    Returns:
      A list of ``/``-joined paths.

    Examples:
      >>> params = {"Conv_0": {"kernel": jnp.ones((3, 3, 1, 4)), "bias": jnp.zeros(4)},
      ...           "Dense_0": {"kernel": jnp.ones((4, 2)), "bias": jnp.zeros(2)}}
      >>> jaxkit.tree.paths(params)
      ['Conv_0/bias', 'Conv_0/kernel', 'Dense_0/bias', 'Dense_0/kernel']
    """
    return [p for p, _ in validate(tree)]


@functools.lru_cache(maxsize=512)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    anchored = pattern.startswith(SEP)
    body = pattern.lstrip(SEP)
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if body.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = body.find("]", i + 1)
            if j < 0:
                raise ValueError(f"pattern {pattern!r} has an unclosed '['.")
            cls = body[i + 1 : j].replace("\\", "\\\\")
            out.append("[" + ("^" + cls[1:] if cls.startswith("!") else cls) + "]")
            i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(prefix + "".join(out))


def predicate(pattern: Pattern) -> Callable[[str, Any], bool]:
    """A pattern as a function ``(path, leaf) -> bool`` (glob, compiled regex, callable, or a list of them: any).

    Args:
      pattern: as :func:`match`.

    Returns:
      The predicate.

    Raises:
      ValueError: ``pattern`` of another kind.

    Examples:
      >>> keep = jaxkit.tree.predicate(["*/bias", re.compile(r".*Dense.*")])
      >>> keep("Dense_0/kernel", None), keep("Conv_0/kernel", None)
      (True, False)
    """
    if isinstance(pattern, str):
        if not pattern.strip(SEP):
            raise ValueError(f"pattern {pattern!r} is empty.")
        rx = _glob_regex(pattern)
        return lambda path, leaf: rx.fullmatch(path) is not None
    if isinstance(pattern, re.Pattern):
        return lambda path, leaf: pattern.fullmatch(path) is not None
    if callable(pattern):
        return lambda path, leaf: bool(pattern(path, leaf))
    if isinstance(pattern, Iterable):
        preds = [predicate(p) for p in pattern]
        if not preds:
            raise ValueError("pattern list is empty; expected at least one pattern.")
        return lambda path, leaf: any(p(path, leaf) for p in preds)
    raise ValueError(
        f"pattern must be a glob string, a list of them, a compiled regex or a callable; got {type(pattern).__name__}."
    )


def match(pattern: Pattern, path: str, leaf: Any = None) -> bool:
    """Whether ``path`` is selected by ``pattern`` (see the module docstring for the pattern language).

    Args:
      pattern: a glob, a compiled regex, a callable ``(path, leaf) -> bool`` or a list of these.
      path: a ``/``-joined leaf path.
      leaf: the leaf, passed to a callable pattern.

    Returns:
      ``True`` or ``False``.

    Raises:
      ValueError: ``pattern`` of another kind.

    Examples:
      >>> jaxkit.tree.match("Conv_*/kernel", "params/Block_1/Conv_2/kernel")  # any trailing run of segments
      True
      >>> jaxkit.tree.match("/Conv_*/kernel", "params/Conv_0/kernel")  # a leading / anchors at the root
      False
    """
    return predicate(pattern)(path, leaf)


def _no_match_error(pattern: Pattern, flat: list[tuple[str, Any]], name: str) -> ValueError:
    shown = ", ".join(p for p, _ in flat[:12]) + (", ..." if len(flat) > 12 else "")
    return ValueError(f"pattern {pattern!r} matched no leaf of `{name}`; its paths are: {shown}")


def select(tree: PyTree, pattern: Pattern, *, name: str = "tree", allow_empty: bool = False) -> dict[str, Any]:
    """``{path: leaf}`` for the leaves of ``tree`` selected by ``pattern``.

    Args:
      tree: a pytree of arrays (Linen variables, NNX state or plain params).
      pattern: a glob over paths (``"Conv_*/kernel"``, ``"**"``), a compiled regex (full match), a callable
        ``(path, leaf) -> bool``, or a list of these (their union); see the module docstring.
      name: the argument's name in error messages.
      allow_empty: return an empty selection instead of raising when nothing matches.

    Returns:
      A dict from paths to the selected leaves.

    Raises:
      ValueError: ``tree`` is not a pytree of arrays, or nothing matches ``pattern`` (the message lists the
        available paths) unless ``allow_empty``.

    Examples:
      >>> params = {"Conv_0": {"kernel": jnp.ones((3, 3, 1, 4)), "bias": jnp.zeros(4)},
      ...           "Dense_0": {"kernel": jnp.ones((4, 2)), "bias": jnp.zeros(2)}}
      >>> list(jaxkit.tree.select(params, "*/kernel"))
      ['Conv_0/kernel', 'Dense_0/kernel']
    """
    flat = validate(tree, name)
    pred = predicate(pattern)
    out = {p: leaf for p, leaf in flat if pred(p, leaf)}
    if not out and not allow_empty:
        raise _no_match_error(pattern, flat, name)
    return out


def bool_mask(tree: PyTree, pattern: Pattern, *, name: str = "tree", allow_empty: bool = False) -> PyTree:
    """A tree of Python bools with ``tree``'s structure: ``True`` where ``pattern`` selects.

    This is the static leaf-selection mask that ``optax.masked`` expects.

    Args:
      tree: a pytree of arrays (Linen variables, NNX state or plain params).
      pattern: a glob over paths (``"Conv_*/kernel"``, ``"**"``), a compiled regex (full match), a callable
        ``(path, leaf) -> bool``, or a list of these (their union); see the module docstring.
      name: the argument's name in error messages.
      allow_empty: return an empty selection instead of raising when nothing matches.

    Returns:
      A pytree of bools.

    Raises:
      ValueError: ``tree`` is not a pytree of arrays, or nothing matches ``pattern`` (the message lists the
        available paths) unless ``allow_empty``.

    Examples:
      >>> params = {"Conv_0": {"kernel": jnp.ones((3, 3, 1, 4)), "bias": jnp.zeros(4)},
      ...           "Dense_0": {"kernel": jnp.ones((4, 2)), "bias": jnp.zeros(2)}}
      >>> jaxkit.tree.bool_mask(params, "*/bias")
      {'Conv_0': {'bias': True, 'kernel': False}, 'Dense_0': {'bias': True, 'kernel': False}}
    """
    chosen = select(tree, pattern, name=name, allow_empty=allow_empty)
    return jax.tree_util.tree_map_with_path(lambda kp, _: path_str(kp) in chosen, tree)


def map_selected(
    fn: Callable[..., Any],
    tree: PyTree,
    pattern: Pattern,
    *rest: PyTree,
    with_path: bool = False,
    name: str = "tree",
    allow_empty: bool = False,
) -> PyTree:
    """Apply ``fn`` to the leaves selected by ``pattern``; other leaves pass through.

    Jittable when used inside a jitted function (selection is on static paths).

    Args:
      fn: ``fn(leaf, *rest_leaves) -> new leaf`` (``fn(path, leaf, ...)`` with ``with_path``).
      tree: a pytree of arrays (Linen variables, NNX state or plain params).
      pattern: a glob over paths (``"Conv_*/kernel"``, ``"**"``), a compiled regex (full match), a callable
        ``(path, leaf) -> bool``, or a list of these (their union); see the module docstring.
      *rest: trees with the same structure as ``tree`` whose corresponding leaves are passed as extra arguments
        (like ``jax.tree.map``).
      with_path: pass the path string first.
      name: the argument's name in error messages.
      allow_empty: return an empty selection instead of raising when nothing matches.

    Returns:
      A tree of ``tree``'s structure.

    Raises:
      ValueError: ``tree`` is not a pytree of arrays, or nothing matches ``pattern`` (the message lists the
        available paths) unless ``allow_empty``.

    Examples:
      >>> params = {"Conv_0": {"kernel": jnp.ones((3, 3, 1, 4)), "bias": jnp.zeros(4)},
      ...           "Dense_0": {"kernel": jnp.ones((4, 2)), "bias": jnp.zeros(2)}}
      >>> out = jaxkit.tree.map_selected(lambda k: 0.5 * k, params, "Dense_*/kernel")
      >>> float(out["Dense_0"]["kernel"][0, 0]), float(out["Conv_0"]["kernel"][0, 0, 0, 0])
      (0.5, 1.0)
    """
    chosen = select(tree, pattern, name=name, allow_empty=allow_empty)

    def go(kp, leaf, *others):
        path = path_str(kp)
        if path not in chosen:
            return leaf
        return fn(path, leaf, *others) if with_path else fn(leaf, *others)

    return jax.tree_util.tree_map_with_path(go, tree, *rest)


def count_params(tree: PyTree, pattern: Pattern | None = None, *, name: str = "tree") -> int:
    """The number of scalar entries in ``tree`` (or in the leaves ``pattern`` selects).

    Args:
      tree: a pytree of arrays (Linen variables, NNX state or plain params).
      pattern: as :func:`select`; ``None`` counts every leaf.
      name: the argument's name in error messages.

    Returns:
      An ``int``.

    Raises:
      ValueError: ``tree`` is not a pytree of arrays, or nothing matches ``pattern`` (the message lists the
        available paths) unless ``allow_empty``.

    Examples:
      >>> params = {"Conv_0": {"kernel": jnp.ones((3, 3, 1, 4)), "bias": jnp.zeros(4)},
      ...           "Dense_0": {"kernel": jnp.ones((4, 2)), "bias": jnp.zeros(2)}}
      >>> jaxkit.tree.count_params(params), jaxkit.tree.count_params(params, "Conv_*/**")
      (50, 40)
    """
    leaves = select(tree, pattern, name=name) if pattern is not None else dict(validate(tree, name))
    return int(sum(int(np.prod(np.shape(x))) for x in leaves.values()))
