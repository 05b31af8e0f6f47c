"""The networks of the papers' experiments, kept in the library so scripts, benchmarks and notebooks share them.

* :class:`CCSANet` -- the digits network of the distribution-shift (HIR) study;
* :class:`LeNet` -- a modernised LeNet-5 for the Jacobian-regularisation / UAP study;
* :class:`NormCNN` -- conv blocks with BatchNorm or :class:`jaxkit.normalize.LocalNorm` (the LocalNorm study).
"""

from __future__ import annotations

import flax.linen as nn

from jaxkit.normalize import LocalNorm

__all__ = ["CCSANet", "LeNet", "NormCNN"]


class CCSANet(nn.Module):
    """The CCSA / HIR digits network (Motiian et al. 2017, used by the HIR study): 2 conv layers x 32 kernels
    (3x3, ReLU, 2x2 max-pool after the second) + dense 128 -> 64 -> classes."""

    num_classes: int = 10

    @nn.compact
    def __call__(self, x, features=False):
        x = nn.relu(nn.Conv(32, (3, 3), padding="SAME")(x))
        x = nn.max_pool(nn.relu(nn.Conv(32, (3, 3), padding="SAME")(x)), (2, 2), (2, 2))
        x = nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1)))
        f = nn.relu(nn.Dense(64)(x))
        z = nn.Dense(self.num_classes)(f)
        return (z, f) if features else z


class LeNet(nn.Module):
    """The Jacobian-regularisation study's network: a modernised LeNet-5 (ReLU, max-pool) sized for the input."""

    num_classes: int = 10
    widths: tuple = (16, 32)
    hidden: int = 128

    @nn.compact
    def __call__(self, x):
        for w in self.widths:
            x = nn.relu(nn.Conv(w, (3, 3), padding="SAME")(x))
            x = nn.max_pool(x, (2, 2), (2, 2))
        x = nn.relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.num_classes)(x)


class NormCNN(nn.Module):
    """The LocalNorm study's network: conv -> (BatchNorm | LocalNorm) -> ReLU -> max-pool blocks, global average
    pool, dense classifier.

    Norm layers are named ``norm0, norm1, ...`` in both variants so BN params convert to LocalNorm by path.
    """

    num_classes: int = 10
    norm: str = "bn"
    groups: int = 8
    widths: tuple = (16, 32)

    @nn.compact
    def __call__(self, x, group=None, train=False):
        for i, w in enumerate(self.widths):
            x = nn.Conv(w, (3, 3), padding="SAME", use_bias=False, name=f"conv{i}")(x)
            if self.norm == "local":
                x = LocalNorm(self.groups, name=f"norm{i}")(x, group)
            else:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name=f"norm{i}")(x)
            x = nn.max_pool(nn.relu(x), (2, 2), (2, 2))
        return nn.Dense(self.num_classes, name="head")(x.mean((1, 2)))
