"""Synthetic deep-drawn cups: process parameters and deformed meshes (the CupNet pruning study's data)."""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxkit import _checks as _c
from jaxkit.data.core import Split

__all__ = ["CUP_PARAMS", "CupMeshes", "cup_reference", "make_cups"]


@dataclasses.dataclass(frozen=True)
class CupMeshes:
    """Synthetic deep-drawn cups (:func:`make_cups`).

    ``reference``: ``[m, 3]`` undeformed mesh points (use it for
    :func:`jaxkit.prune.cupnet.connectivity`); ``train`` / ``test``: ``x`` the
    ``k`` process parameters in ``[0, 1]`` (float32 ``[N, k]``), ``y`` the
    deformation as ``[N, 3m]`` = (x-displacements of the m points, then y, then z),
    in mm. ``param_names`` names the columns of ``x``.
    """

    reference: np.ndarray
    train: Split
    test: Split
    param_names: tuple[str, ...]

    @property
    def m(self) -> int:
        return len(self.reference)

    def __repr__(self) -> str:
        return f"CupMeshes(m={self.m}, k={len(self.param_names)}, train={len(self.train)}, test={len(self.test)})"


CUP_PARAMS = (
    "depth",
    "blank_holder",
    "friction",
    "anisotropy",
    "dent_angle",
    "dent_depth",
    "springback",
    "thickness",
    "die_radius",
)


def cup_reference(
    n_theta: int = 24, n_profile: int = 10, *, radius: float = 30.0, height: float = 25.0, flange: float = 10.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference cup mesh: a surface of revolution (bottom, wall, flange) in mm.

    Returns ``(points [m, 3], theta [m], t [m])`` with ``m = n_theta * n_profile``;
    ``t`` in ``[0, 1]`` runs along the profile from the bottom centre (0) over the
    bottom edge (1/3) and the rim (2/3) to the flange's outer edge (1).

    Args:
      n_theta: points around.
      n_profile: points along the profile.
      radius: the cup's radius.
      height: its height.
      flange: the flange's width.

    Returns:
      ``(points [m, 3], theta [m], t [m])``.

    Raises:
      ValueError: non-positive sizes.

    References:
      Heese et al., "CupNet -- Pruning a Network for Geometric Data", ICANN 2021 (the deep-drawn cup geometry).

    Examples:
      >>> points, theta, t = jaxkit.data.cup_reference()
      >>> points.shape, float(t.min()), float(t.max())
      ((240, 3), 0.05, 0.95)
    """
    if int(n_theta) < 3 or int(n_profile) < 3:
        raise ValueError(f"`n_theta` and `n_profile` must be >= 3, got {n_theta}, {n_profile}.")
    radius = _c.number(radius, "radius", lo=0.0, lo_open=True)
    height = _c.number(height, "height", lo=0.0, lo_open=True)
    flange = _c.number(flange, "flange", lo=0.0)
    theta = np.repeat(np.linspace(0, 2 * np.pi, int(n_theta), endpoint=False), int(n_profile))
    t = np.tile((np.arange(int(n_profile)) + 0.5) / int(n_profile), int(n_theta))
    seg = np.clip(t * 3, 0, 3)
    r = np.where(seg < 1, radius * seg, np.where(seg < 2, radius, radius + flange * (seg - 2)))
    z = np.where(seg < 1, 0.0, np.where(seg < 2, height * (seg - 1), height))
    pts = np.stack([r * np.cos(theta), r * np.sin(theta), z], axis=1)
    return pts, theta, t


def make_cups(
    n_samples: int = 1000,
    *,
    k: int = 5,
    n_theta: int = 24,
    n_profile: int = 10,
    test_size: float = 0.1,
    noise: float = 0.0,
    seed: int = 0,
) -> CupMeshes:
    """A deterministic stand-in for the CupNet paper's (private) deep-drawing simulations.

    ``k`` (1..9) process parameters ``p ~ U[0, 1]`` (:data:`CUP_PARAMS`, in that
    order; absent ones fixed at 0.5) deform the reference cup
    (:func:`cup_reference`) by smooth global modes and **local** features:

    * drawing depth scales the wall height, springback opens the wall outward
      (growing with height), thickness shifts the surface normal;
    * earing from anisotropy: the rim and flange rise as ``cos(4 theta)``;
    * flange wrinkling, 8 waves around, where the blank-holder force is low
      (amplitude ``relu(0.6 - blank_holder) * friction``);
    * a dent: a Gaussian bump in the wall at angle ``2 pi dent_angle`` with
      depth ``dent_depth`` -- local, so nearby points move together, the
      structure CupNet's masks exploit;
    * die radius rounds the bottom edge.

    ``noise`` (mm, Gaussian, per coordinate) mimics simulation scatter. The
    ``y`` blocks are x, y, z displacements of all points (``[N, 3m]``).

    Args:
      n_samples: meshes in all.
      k: process parameters (1..9).
      n_theta: points around the cup.
      n_profile: points along its profile.
      test_size: the test split's share.
      noise: Gaussian scatter (mm).
      seed: the seed.

    Returns:
      ``CupMeshes`` (train / test splits of parameters ``x [N, k]`` and displacements ``y [N, 3m]``, the
      reference points).

    Raises:
      ValueError: ``k`` outside ``1..9``, non-positive sizes, a negative ``noise``.

    References:
      Heese et al., "CupNet -- Pruning a Network for Geometric Data", ICANN 2021.

    Examples:
      >>> cups = jaxkit.data.make_cups(20)
      >>> cups.train.x.shape
      (18, 5)
    """
    if not 1 <= int(k) <= len(CUP_PARAMS):
        raise ValueError(f"`k` must lie in [1, {len(CUP_PARAMS)}], got {k}.")
    if int(n_samples) < 2:
        raise ValueError(f"`n_samples` must be >= 2, got {n_samples}.")
    _c.number(test_size, "test_size", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    noise = _c.number(noise, "noise", lo=0.0)
    rng = np.random.default_rng(int(seed))
    ref, theta, t = cup_reference(n_theta, n_profile)
    p = np.full((int(n_samples), len(CUP_PARAMS)), 0.5)
    p[:, : int(k)] = rng.uniform(size=(int(n_samples), int(k)))
    P = {name: p[:, i : i + 1] for i, name in enumerate(CUP_PARAMS)}
    seg = np.clip(t * 3, 0, 3)[None, :]
    wall = np.clip(seg - 1, 0, 1)  # 0 below the wall, rises to 1 at the rim
    flange = np.clip(seg - 2, 0, 1)
    r0 = np.hypot(ref[:, 0], ref[:, 1])[None, :]
    z0 = ref[None, :, 2]
    th = theta[None, :]
    # radial and axial displacement fields
    dz = (P["depth"] - 0.5) * 10.0 * wall
    dz = dz + 3.0 * P["anisotropy"] * np.cos(4 * th) * (seg >= 2) * (0.3 + flange)
    dz = dz + 2.5 * np.maximum(0.6 - P["blank_holder"], 0) * (0.5 + P["friction"]) * np.sin(8 * th) * flange
    dr = 2.0 * P["springback"] * wall**2 * (seg < 2) + 2.0 * P["springback"] * (seg >= 2)
    dr = dr + (P["thickness"] - 0.5) * 0.8 * (seg >= 1)
    corner = np.exp(-(((seg - 1) / 0.25) ** 2))
    dr = dr - 3.0 * P["die_radius"] * corner
    dz = dz + 3.0 * P["die_radius"] * corner
    ang = np.angle(np.exp(1j * (th - 2 * np.pi * P["dent_angle"])))
    dent = np.exp(-((ang / 0.35) ** 2) - ((seg - 1.5) / 0.25) ** 2)
    dr = dr - 4.0 * P["dent_depth"] * dent
    r1 = r0 + dr
    x1, y1, z1 = r1 * np.cos(th), r1 * np.sin(th), z0 + dz
    disp = np.concatenate([x1 - ref[None, :, 0], y1 - ref[None, :, 1], z1 - z0], axis=1)
    if noise > 0:
        disp = disp + rng.normal(scale=noise, size=disp.shape)
    n_test = max(1, int(round(test_size * int(n_samples))))
    perm = rng.permutation(int(n_samples))
    te, tr = perm[:n_test], perm[n_test:]
    x = p[:, : int(k)].astype(np.float32)
    disp = disp.astype(np.float32)
    return CupMeshes(
        reference=ref.astype(np.float32),
        train=Split(x[tr], disp[tr]),
        test=Split(x[te], disp[te]),
        param_names=CUP_PARAMS[: int(k)],
    )
