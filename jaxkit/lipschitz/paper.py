"""The LipBaB paper's four reference networks, shipped as package data, with their exact constants.

Bhowmick, D'Souza, Raghavan, "LipBaB: Computing Exact Lipschitz Constant of ReLU Networks", ICANN 2021,
Table 1. The files (``paper_nets/*.npz``, float64, Flax ``nn.Dense`` layout) and their provenance are
described in ``paper_nets/README.md``; nothing is downloaded.

Example::

    net = paper_network("sd_10-30-30-30-3")
    res = lipschitz_constant(net.params, net.box, p=2)
    abs(res.upper - net.exact[2]) / net.exact[2]   # ~1e-16
"""

from __future__ import annotations

import dataclasses
import importlib.resources
from typing import Any

import numpy as np

__all__ = ["PAPER_NETWORKS", "PaperNetwork", "paper_network"]

# name: (box upper end (box = [0, b]^n), exact constants for p = 1, 2, inf, paper's seconds for p = 1, 2, inf)
_TABLE = {
    "iris_4-5-5-3": (1.0, (5.958048912394726, 6.771454513402937, 12.605085581416922), (0.11, 0.09, 0.06)),
    "sd_10-15-10-3": (0.1, (10.41286850374477, 9.530716922306004, 16.274810805318676), (0.25, 0.25, 0.25)),
    "sd_10-20-15-10-3": (0.1, (48.04897158493324, 40.05651016370293, 72.28569774866806), (3.0, 3.0, 3.0)),
    "sd_10-30-30-30-3": (0.1, (19.369311332018757, 19.462799793264388, 39.11036425646691), (56.0, 79.0, 60.0)),
}
PAPER_NETWORKS = tuple(_TABLE)
_PS = (1.0, 2.0, np.inf)


@dataclasses.dataclass(frozen=True)
class PaperNetwork:
    """One of the paper's networks.

    Attributes:
      name: file stem, e.g. ``"sd_10-30-30-30-3"`` (input size, hidden widths, outputs).
      params: ``{"Dense_i": {"kernel": (in, out), "bias": (out,)}}``, float64 numpy.
      box: ``(lo, hi)`` input box of the paper's Table 1 ([0, 1]^4 for Iris, [0, 0.1]^10 otherwise).
      exact: ``{1.0: L_1, 2.0: L_2, inf: L_inf}``, the paper's exact local constants on ``box``.
      paper_seconds: the paper's times for the exact values (sequential Python + GLPK on Colab), same keys.
    """

    name: str
    params: Any
    box: tuple
    exact: dict
    paper_seconds: dict


def paper_network(name: str) -> PaperNetwork:
    """Loads one of the LipBaB paper's networks (``PAPER_NETWORKS``) from the package's own data.

    Args:
      name: one of ``PAPER_NETWORKS``.

    Returns:
      :class:`PaperNetwork` with float64 params, the paper's box and its exact constants.

    Raises:
      ValueError: ``name`` is not one of ``PAPER_NETWORKS``.

    References:
      Bhowmick, D'Souza & Raghavan, "LipBaB: Computing Exact Lipschitz Constant of ReLU Networks", ICANN 2021,
      Table 1 (the networks, boxes and exact constants); provenance in ``paper_nets/README.md``.

    Examples:
      >>> net = jaxkit.lipschitz.paper_network("sd_10-30-30-30-3")
      >>> net.box[1][:3], round(net.exact[2], 4), net.paper_seconds[2]
      (array([0.1, 0.1, 0.1]), 19.4628, 79.0)
    """
    if name not in _TABLE:
        raise ValueError(f"`name` must be one of {PAPER_NETWORKS}, got {name!r}.")
    b, exact, seconds = _TABLE[name]
    with importlib.resources.as_file(importlib.resources.files("jaxkit.lipschitz") / "paper_nets" / f"{name}.npz") as f:
        with np.load(f) as d:
            params = {
                f"Dense_{i}": {"kernel": d[f"kernel_{i}"], "bias": d[f"bias_{i}"]} for i in range(len(d.files) // 2)
            }
    n0 = params["Dense_0"]["kernel"].shape[0]
    return PaperNetwork(name, params, (np.zeros(n0), np.full(n0, b)), dict(zip(_PS, exact)), dict(zip(_PS, seconds)))
