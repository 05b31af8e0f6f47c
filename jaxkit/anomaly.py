"""Anomaly scores for hyperspectral images and the detection metrics used to compare them.

Scores are "higher = more anomalous". Pixels are ``[N, B]`` arrays (or cubes
``[H, W, B]``, scored per pixel).

* :func:`rx_fit` / :func:`rx_scores` / :func:`global_rx` -- Reed-Xiaoli:
  Mahalanobis distance ``(x - mu)^T S^-1 (x - mu)`` to the background's mean and
  covariance;
* :func:`local_rx` -- dual-window RX: mean and covariance from the ring between
  a guard window and an outer window around each pixel (box sums, all pixels at once);
* :func:`gmm_scores` -- negative log-likelihood under a Gaussian mixture
  fitted to the background (scikit-learn ``GaussianMixture``);
* :func:`discriminator_scores` -- ``-D(x)`` of a WGAN critic;
* :func:`recreation_cost` -- ``R(x) = min_z mean((x - G(z))^2) + w mean(z^2)``,
  all pixels and all restarts minimised together by momentum SGD in one jitted
  loop, streamed over the image in chunks;
* :func:`anogan_scores` -- AnoGAN's ``(1 - lam) R(x) + lam ||f(x) - f(G(z*))||_1``
  (an extension beyond the thesis);
* metrics (from :mod:`jaxkit.metrics`, re-exported here) -- :func:`roc_curve`, :func:`auc` (rank-based, ties count 1/2),
  :func:`log_auc` (area under TPR vs log10 FPR over ``[l, 1]``, normalised),
  :func:`lg_far`, :func:`log_auc_chance`, :func:`partial_auc`,
  :func:`evaluate_targets` (per-target table); :func:`plot_semilog_roc`,
  :func:`plot_heatmap`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jaxkit import _checks as _c
from jaxkit._memory import MEMORY_BUDGET, temp_bytes
from jaxkit.metrics import auc, far_floor, lg_far, log_auc, log_auc_chance, partial_auc, roc_curve

__all__ = [
    "anogan_scores",
    "as_pixels",
    "auc",
    "discriminator_scores",
    "evaluate_targets",
    "global_rx",
    "gmm_scores",
    "lg_far",
    "local_rx",
    "log_auc",
    "log_auc_chance",
    "partial_auc",
    "plot_heatmap",
    "plot_semilog_roc",
    "recreation_cost",
    "roc_curve",
    "rx_fit",
    "rx_scores",
]


PyTree = Any


def as_pixels(x, name: str = "cube", bands: int | None = None) -> np.ndarray:
    """Pixels as a float64 ``[N, B]`` matrix, from a cube ``[H, W, B]`` or pixels ``[N, B]``.

    Args:
      x: the cube or pixels.
      name: the argument's name in error messages.
      bands: the expected band count ``B`` (``None``: any).

    Returns:
      ``[N, B]`` float64.

    Raises:
      ValueError: non-real, empty, NaN / inf, not 2-D / 3-D, or a band count other than ``bands``.

    Examples:
      >>> jaxkit.anomaly.as_pixels(np.zeros((4, 3, 5))).shape
      (12, 5)
    """
    _c.real_dtype(x, name)
    a = np.asarray(x, np.float64)
    if a.ndim not in (2, 3):
        raise ValueError(f"`{name}` must be [H, W, B] or [N, B], got shape {a.shape}.")
    if a.size == 0:
        raise ValueError(f"`{name}` is empty (shape {a.shape}); expected at least one pixel and one band.")
    a = a.reshape(-1, a.shape[-1])
    if bands is not None and a.shape[1] != bands:
        raise ValueError(f"`{name}` has {a.shape[1]} bands, expected {bands}.")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"`{name}` contains NaN or inf.")
    return a


def rx_fit(background, *, reg: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """The background's mean and inverse covariance (float64), the RX detector's model.

    ``mu = mean(x)``, ``S = cov(x) + reg * trace(cov) / B * I`` (sample covariance, ``1/(N - 1)``).

    Args:
      background: background pixels ``[N, B]`` (or a cube), ``N >= 2``.
      reg: diagonal loading, relative to the mean variance.

    Returns:
      ``(mu [B], S^-1 [B, B])``.

    Raises:
      ValueError: non-real, empty or non-finite pixels, or a band count that differs (naming the argument).
      ValueError: no more pixels than bands, ``reg < 0``.

    References:
      Reed & Yu, "Adaptive multiple-band CFAR detection of an optical pattern with unknown spectral distribution", IEEE
      Trans. ASSP 38(10), 1990.

    Examples:
      >>> mu, cov_inv = jaxkit.anomaly.rx_fit(np.random.default_rng(0).normal(size=(1000, 5)))
      >>> mu.shape, cov_inv.shape
      ((5,), (5, 5))
    """
    x = as_pixels(background, "background")
    if len(x) <= x.shape[1]:
        raise ValueError(f"`background` needs more pixels than bands ({x.shape[1]}), got {len(x)}.")
    if not (np.isfinite(reg) and reg >= 0):
        raise ValueError(f"`reg` must be a finite number >= 0, got {reg}.")
    mu = x.mean(0)
    cov = np.zeros((x.shape[1], x.shape[1]))
    for s in range(0, len(x), 65536):  # the centred Gram matrix in chunks: BLAS, no full-size centred copy
        d = x[s : s + 65536] - mu
        cov += d.T @ d
    cov /= len(x) - 1
    const = np.flatnonzero(np.diag(cov) <= 0)
    if const.size == len(cov):
        raise ValueError("every band of `background` is constant (zero variance): RX has no covariance to invert.")
    if const.size and reg == 0:
        raise ValueError(
            f"`background` band(s) {const.tolist()} are constant (zero variance), so the covariance is "
            "singular with reg=0; pass reg > 0 (e.g. the default 1e-6) or drop those bands."
        )
    cov = cov + reg * np.trace(cov) / len(cov) * np.eye(len(cov))
    rank = np.linalg.matrix_rank(cov)  # inv() of a singular matrix often "succeeds" with huge entries
    if rank < len(cov):
        raise ValueError(
            f"the `background` covariance is singular (rank {rank} of {len(cov)}: bands are linearly "
            "dependent); pass reg > 0 (e.g. the default 1e-6)."
        )
    return mu, np.linalg.inv(cov)


def rx_scores(x, mu: np.ndarray, cov_inv: np.ndarray) -> np.ndarray:
    """Mahalanobis distances ``(x - mu)^T S^-1 (x - mu)`` of pixels to a fitted background (:func:`rx_fit`).

    Args:
      x: pixels ``[N, B]`` or a cube ``[H, W, B]``.
      mu: the background mean ``[B]``.
      cov_inv: its inverse covariance ``[B, B]``.

    Returns:
      ``[N]`` or ``[H, W]`` float64 scores.

    Raises:
      ValueError: non-real, empty or non-finite pixels, or a band count that differs (naming the argument).

    References:
      Reed & Yu, "Adaptive multiple-band CFAR detection of an optical pattern with unknown spectral distribution", IEEE
      Trans. ASSP 38(10), 1990.

    Examples:
      >>> rng = np.random.default_rng(0)
      >>> cube = rng.normal(size=(16, 16, 5))
      >>> cube[8, 8] += 6.0  # one anomalous pixel
      >>> mu, cov_inv = jaxkit.anomaly.rx_fit(cube)
      >>> r = jaxkit.anomaly.rx_scores(cube, mu, cov_inv)
      >>> r.shape, np.unravel_index(np.argmax(r), r.shape) == (8, 8)
      ((16, 16), True)
    """
    mu, cov_inv = np.asarray(mu), np.asarray(cov_inv)
    for name, v in (("mu", mu), ("cov_inv", cov_inv)):
        _c.real_dtype(v, name)
        if not np.all(np.isfinite(v)):
            raise ValueError(f"`{name}` contains NaN or inf.")
    if mu.ndim != 1 or mu.size == 0:
        raise ValueError(f"`mu` must be a vector [B] of band means, got shape {mu.shape}.")
    if cov_inv.shape != (mu.size, mu.size):
        raise ValueError(f"`cov_inv` must be [B, B] = {(mu.size, mu.size)}, got shape {cov_inv.shape}.")
    shape = np.shape(x)[:-1]
    return _mahalanobis(as_pixels(x, "x", len(mu)), mu, cov_inv).reshape(shape)


def _mahalanobis(pixels: np.ndarray, mu: np.ndarray, cov_inv: np.ndarray, chunk: int = 32768) -> np.ndarray:
    """``(x - mu)^T S^-1 (x - mu)`` per row, in chunks: one BLAS product and a fused multiply-sum per chunk (no
    full-size temporaries; the chunk stays in cache)."""
    out = np.empty(len(pixels))
    for s in range(0, len(pixels), chunk):
        d = pixels[s : s + chunk] - mu
        out[s : s + chunk] = np.einsum("ij,ij->i", d @ cov_inv, d)
    return out


def global_rx(cube, background_mask=None, *, reg: float = 1e-6) -> np.ndarray:
    """Global RX over a cube ``[H, W, B]``: each pixel's Mahalanobis distance to the background.

    The background model (:func:`rx_fit`) is fitted to the ``background_mask`` pixels (default: all); equal to
    SPy's ``spectral.rx`` with the same background.

    Args:
      cube: ``[H, W, B]`` image.
      background_mask: bool ``[H, W]`` of background pixels (default: all).
      reg: diagonal loading, as :func:`rx_fit`.

    Returns:
      ``[H, W]`` float64 scores.

    Raises:
      ValueError: non-real, empty or non-finite pixels, or a band count that differs (naming the argument).
      ValueError: a mask of another shape or with no more pixels than bands.

    References:
      Reed & Yu, "Adaptive multiple-band CFAR detection of an optical pattern with unknown spectral distribution", IEEE
      Trans. ASSP 38(10), 1990.

    Examples:
      >>> rng = np.random.default_rng(0)
      >>> cube = rng.normal(size=(16, 16, 5))
      >>> cube[8, 8] += 6.0  # one anomalous pixel
      >>> r = jaxkit.anomaly.global_rx(cube)
      >>> np.unravel_index(np.argmax(r), r.shape) == (8, 8)
      True
    """
    c = np.asarray(cube)
    if c.ndim != 3:
        raise ValueError(f"`cube` must be [H, W, B], got shape {c.shape}.")
    pixels = as_pixels(c)  # converted and checked once, for the fit and the scores
    bg = pixels
    if background_mask is not None:
        m = _c.binary(background_mask, "background_mask")
        if m.shape != c.shape[:2]:
            raise ValueError(f"`background_mask` must have shape {c.shape[:2]}, got {m.shape}.")
        bg = pixels[m.ravel()]
    mu, cov_inv = rx_fit(bg, reg=reg)
    return _mahalanobis(pixels, mu, cov_inv).reshape(c.shape[:2])


LOCAL_RX_MEMORY = 256 * 2**20  # peak bytes local_rx aims for when ``rows`` is not given


def local_rx(cube, inner: int = 3, outer: int = 9, *, reg: float = 1e-3, rows: int | None = None) -> np.ndarray:
    """Dual-window (local) RX: each pixel against the ring between an ``inner`` (guard) and ``outer`` window.

    Windows are odd side lengths; near borders the ring is clipped to the image. ``reg`` adds
    ``reg * trace / B`` to each local covariance (rings have few pixels); the covariance is the ring's biased
    (1/N) one. Streaming over image rows: the window sums of ``x`` and ``x x^T`` are running sums of per-row
    horizontal box sums (one row enters, one leaves per step), on the cube centred by its mean (RX is
    translation-invariant; centring keeps the running sums free of cancellation), so memory is
    ``O(rows * W * B^2)`` whatever the image height: ``rows`` output rows share one batched solve
    (``rows * W * B^2 * 8`` bytes for their covariances, twice that while solving); by default as many rows as
    keep the peak near :data:`LOCAL_RX_MEMORY` (256 MiB: 2 rows of 512 pixels x 100 bands, all of a
    64 x 64 x 20 cube; measured peak 407 MiB at 32 x 512 x 100 with the per-row box-sum temporaries), and it
    does not grow with the image height.
    Float64.

    Args:
      cube: ``[H, W, B]`` image.
      inner: the guard window's side (odd).
      outer: the outer window's side (odd, > ``inner``).
      reg: diagonal loading of each local covariance, relative to its mean variance.
      rows: output rows solved together (default: as many as fit :data:`LOCAL_RX_MEMORY`).

    Returns:
      ``[H, W]`` float64 scores.

    Raises:
      ValueError: non-real, empty or non-finite pixels, or a band count that differs (naming the argument).
      ValueError: even or inverted window sizes, an ``outer`` window larger than the image, ``reg < 0``,
        ``rows < 1``.

    References:
      Reed & Yu, "Adaptive multiple-band CFAR detection of an optical pattern with unknown spectral distribution", IEEE
      Trans. ASSP 38(10), 1990 (the local, dual-window form); Kwon & Nasrabadi, "Kernel RX-algorithm", IEEE TGRS 43(2),
      2005.

    Examples:
      >>> rng = np.random.default_rng(0)
      >>> cube = rng.normal(size=(16, 16, 5))
      >>> cube[8, 8] += 6.0  # one anomalous pixel
      >>> r = jaxkit.anomaly.local_rx(cube, inner=3, outer=9)
      >>> np.unravel_index(np.argmax(r), r.shape) == (8, 8)
      True
    """
    _c.real_dtype(cube, "cube")
    c = np.asarray(cube, np.float64)
    if c.ndim != 3:
        raise ValueError(f"`cube` must be [H, W, B], got shape {c.shape}.")
    as_pixels(c)
    for name, v in (("inner", inner), ("outer", outer)):
        if int(v) < 1 or int(v) % 2 == 0:
            raise ValueError(f"`{name}` must be an odd window size >= 1, got {v}.")
    if not outer > inner:
        raise ValueError(f"`outer` ({outer}) must be larger than `inner` ({inner}).")
    if outer > min(c.shape[:2]):
        raise ValueError(f"`outer` window {outer} is larger than the image {c.shape[:2]}.")
    if not (np.isfinite(reg) and reg >= 0):
        raise ValueError(f"`reg` must be a finite number >= 0, got {reg}.")
    if rows is None:
        rows = max(1, LOCAL_RX_MEMORY // (3 * c.shape[1] * c.shape[2] ** 2 * 8))  # block, solve's copy, slack
    if int(rows) < 1:
        raise ValueError(f"`rows` must be >= 1, got {rows}.")
    c = c - c.reshape(-1, c.shape[-1]).mean(0)
    h, w, b = c.shape
    ro, ri = outer // 2, inner // 2
    cols = np.arange(w)
    spans = {r: (np.clip(cols - r, 0, w), np.clip(cols + r + 1, 0, w)) for r in (ro, ri)}

    def hbox(a, r):  # sums over the columns [j - r, j + r] of each column j (clipped), a: [W, ...]
        cs = np.concatenate([np.zeros((1,) + a.shape[1:]), a.cumsum(0)])
        j0, j1 = spans[r]
        return cs[j1] - cs[j0]

    def row_sums(r, rad):  # (count, sum x, sum x x^T) of row r over the column windows of radius rad
        x = c[r]
        return (hbox(np.ones((w, 1)), rad)[:, 0], hbox(x, rad), hbox(x[:, :, None] * x[:, None, :], rad))

    def window(lo_hi, acc, rad, i):  # slide the row window [i - rad, i + rad] by one row: add / remove
        lo, hi = max(0, i - rad), min(h, i + rad + 1)
        plo, phi = lo_hi
        for r in range(phi, hi):
            for k, t in enumerate(row_sums(r, rad)):
                acc[k] += t
        for r in range(plo, lo):
            for k, t in enumerate(row_sums(r, rad)):
                acc[k] -= t
        return (lo, hi)

    acc_o = [np.zeros(w), np.zeros((w, b)), np.zeros((w, b, b))]
    acc_i = [np.zeros(w), np.zeros((w, b)), np.zeros((w, b, b))]
    span_o = span_i = (0, 0)
    out = np.empty((h, w))
    eye = np.eye(b)
    for r0 in range(0, h, int(rows)):
        r1 = min(h, r0 + int(rows))
        mu_blk, cov_blk = np.empty((r1 - r0, w, b)), np.empty((r1 - r0, w, b, b))
        for i in range(r0, r1):
            span_o = window(span_o, acc_o, ro, i)
            span_i = window(span_i, acc_i, ri, i)
            n = acc_o[0] - acc_i[0]
            mu = (acc_o[1] - acc_i[1]) / n[:, None]
            cov = (acc_o[2] - acc_i[2]) / n[:, None, None] - mu[:, :, None] * mu[:, None, :]
            tr = np.trace(cov, axis1=-2, axis2=-1)
            mu_blk[i - r0], cov_blk[i - r0] = mu, cov + (reg * tr / b + 1e-12)[:, None, None] * eye
        d = c[r0:r1] - mu_blk
        out[r0:r1] = np.sum(d * np.linalg.solve(cov_blk, d[..., None])[..., 0], -1)
    return out


def gmm_scores(
    x, background, *, n_components: int = 5, seed: int = 0, max_fit: int | None = 50_000, **kwargs
) -> np.ndarray:
    """Negative log-likelihood under a Gaussian mixture fitted to ``background`` (scikit-learn).

    ``score(x) = -log sum_k pi_k N(x; mu_k, Sigma_k)``; ``max_fit`` subsamples the background (seeded) to bound
    the fit time; other keyword arguments go to ``sklearn.mixture.GaussianMixture``.

    Args:
      x: pixels ``[N, B]`` or a cube ``[H, W, B]`` to score.
      background: background pixels ``[M, B]`` (or a cube) to fit.
      n_components: mixture components.
      seed: the fit's and the subsample's seed.
      max_fit: at most this many background pixels are fitted (``None``: all).
      **kwargs: further ``GaussianMixture`` arguments.

    Returns:
      ``[N]`` or ``[H, W]`` float64 scores.

    Raises:
      ValueError: non-real, empty or non-finite pixels, or a band count that differs (naming the argument).
      ValueError: ``n_components`` or ``max_fit`` not a positive integer.

    References:
      the WGAN-GP hyperspectral anomaly-detection MSc thesis (NTNU/FFI, 2018) that
      ``experiments/hyperspectral_wgan_gp.py`` reproduces (the mixture baseline that did better than the GAN there).

    Examples:
      >>> rng = np.random.default_rng(0)
      >>> cube = rng.normal(size=(16, 16, 5))
      >>> cube[8, 8] += 6.0  # one anomalous pixel
      >>> g = jaxkit.anomaly.gmm_scores(cube, rng.normal(size=(2000, 5)), n_components=2)
      >>> np.unravel_index(np.argmax(g), g.shape) == (8, 8)
      True
    """
    from sklearn.mixture import GaussianMixture  # noqa: PLC0415

    if int(n_components) < 1:
        raise ValueError(f"`n_components` must be >= 1, got {n_components}.")
    if max_fit is not None and int(max_fit) < 1:
        raise ValueError(f"`max_fit` must be >= 1 or None, got {max_fit}.")
    shape = np.shape(x)[:-1]
    bg = as_pixels(background, "background")
    px = as_pixels(x, "x", bg.shape[1])
    if max_fit is not None and len(bg) > max_fit:
        bg = bg[np.random.default_rng(seed).choice(len(bg), max_fit, replace=False)]
    kwargs.setdefault("covariance_type", "full")
    kwargs.setdefault("reg_covar", 1e-6 * float(np.mean(np.var(bg, 0))) + 1e-9)
    gm = GaussianMixture(n_components=int(n_components), random_state=int(seed), **kwargs).fit(bg)
    return -gm.score_samples(px).reshape(shape)


def _chunks(n: int, chunk: int):
    for s in range(0, n, chunk):
        yield s, min(s + chunk, n)


def _padded(x: np.ndarray, chunk: int):
    """Yield ``(start, stop, batch)`` with every batch padded to ``chunk`` rows (one compilation)."""
    for s, e in _chunks(len(x), chunk):
        b = x[s:e]
        if len(b) < chunk:
            b = np.concatenate([b, np.repeat(b[-1:], chunk - len(b), 0)])
        yield s, e, b


def _samples(x, name: str) -> np.ndarray:
    """A non-empty float32 batch ``[N, ...]`` of finite samples."""
    _c.real_dtype(x, name)
    a = np.asarray(x, np.float32)
    if a.ndim < 2 or a.shape[0] == 0 or a.size == 0:
        raise ValueError(f"`{name}` must be a non-empty batch [N, ...] of samples, got shape {a.shape}.")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"`{name}` contains NaN or inf.")
    return a


def discriminator_scores(critic_apply: Callable, params: PyTree, x, *, chunk: int = 65_536) -> np.ndarray:
    """The critic's anomaly score ``-D(x)`` for samples ``x [N, ...]``, streamed in chunks.

    ``critic_apply`` is a static argument of the jitted scorer: pass the same function object across calls to
    reuse the compilation.

    Args:
      critic_apply: ``(params, x) -> scores [N]`` (or ``[N, 1]``).
      params: the critic's params.
      x: ``[N, ...]`` samples.
      chunk: samples per jitted call.

    Returns:
      ``[N]`` float64 scores (higher = more anomalous).

    Raises:
      ValueError: empty or non-finite ``x``, ``chunk < 1``, a critic that does not return one score per sample.

    References:
      the WGAN-GP hyperspectral anomaly-detection MSc thesis (NTNU/FFI, 2018) that
      ``experiments/hyperspectral_wgan_gp.py`` reproduces (the critic score, which "fares very poorly" there).

    Examples:
      >>> critic = lambda w, x: x @ w
      >>> jaxkit.anomaly.discriminator_scores(critic, jnp.ones(2), np.array([[1.0, 2.0], [0.0, -1.0]]))
      array([-3.,  1.])
    """
    x = _samples(x, "x")
    if int(chunk) < 1:
        raise ValueError(f"`chunk` must be >= 1, got {chunk}.")
    try:
        probe = jax.eval_shape(critic_apply, params, jax.ShapeDtypeStruct((2,) + x.shape[1:], x.dtype))
    except Exception as e:
        raise ValueError(
            f"`x` of sample shape {x.shape[1:]} does not fit `critic_apply`: {type(e).__name__}: {str(e)[:200]}"
        ) from e
    if tuple(probe.shape) not in ((2,), (2, 1)):
        raise ValueError(f"`critic_apply` must return one score per sample ([N] or [N, 1]), got shape {probe.shape}.")
    out = np.empty(len(x), np.float64)
    for s, e, b in _padded(x, min(chunk, len(x))):
        out[s:e] = np.asarray(_neg_critic(critic_apply, params, b))[: e - s]
    return out


@partial(jax.jit, static_argnames=("critic_apply",))
def _neg_critic(critic_apply, params, b):
    return -critic_apply(params, b).reshape(b.shape[0])


@partial(jax.jit, static_argnames=("generator_apply", "runs", "iterations", "noise_dim"))
def _recreate(key, generator_apply, g_params, x, *, runs, iterations, noise_dim, lr, momentum, w):
    n = x.shape[0]
    z0 = jax.random.normal(key, (n * runs, noise_dim), jnp.float32)
    target = jnp.repeat(x, runs, axis=0)
    axes = tuple(range(1, x.ndim))

    def cost(z):
        return jnp.mean((target - generator_apply(g_params, z)) ** 2, axis=axes) + w * jnp.mean(z**2, -1)

    grad = jax.grad(lambda z: jnp.sum(cost(z)))  # each (pixel, start) depends on its own z only

    def body(_, carry):
        z, v = carry
        v = momentum * v - lr * grad(z)
        return z + v, v

    z, _ = jax.lax.fori_loop(0, iterations, body, (z0, jnp.zeros_like(z0)))
    c = cost(z).reshape(n, runs)
    best = jnp.argmin(c, axis=1)
    return jnp.min(c, axis=1), z.reshape(n, runs, noise_dim)[jnp.arange(n), best]


def recreation_cost(
    key: jax.Array,
    generator_apply: Callable,
    g_params: PyTree,
    x,
    *,
    noise_dim: int,
    runs: int = 4,
    iterations: int = 50,
    lr: float = 0.1,
    momentum: float = 0.9,
    noise_weight: float = 100.0,
    chunk: int | None = None,
    return_z: bool = False,
    progress: bool = False,
    memory_budget: float | None = None,
):
    """Recreation cost ``R(x) = min_z mean((x - G(z))^2) + w mean(z^2)``, ``w = 10^-noise_weight``.

    ``z`` starts ``N(0, I)`` (``runs`` starts per pixel) and follows momentum
    SGD (``lr``, ``momentum``) for ``iterations`` steps; each pixel keeps its
    lowest final cost over the starts. The thesis's defaults: 4 x 50
    (``thorough``: 16 x 100), ``noise_weight = 100`` -- i.e. ``w = 0``.

    All pixels of a chunk and all their starts are one batch of ``chunk * runs``
    independent problems inside one jitted ``fori_loop`` (the generator is
    batched, so this is ``vmap`` over pixels and starts); chunks stream over
    ``x`` so memory stays bounded, and every chunk is padded to the same size so
    the loop compiles once. The chunk's key is ``fold_in(key, chunk index)``. ``chunk=None`` (default): 4,096
    pixels, halved until the compiled loop's temporaries (XLA's memory analysis) fit ``memory_budget`` bytes
    (default :data:`MEMORY_BUDGET`, 1 GiB) -- the thesis's thorough setting (16 starts) needs 2,048 and less.

    ``generator_apply`` is a static argument of the jitted loop: pass the same
    function object across calls to reuse the compilation.

    Args:
      key: PRNG key of the starts (chunk ``c`` uses ``fold_in(key, c)``).
      generator_apply: ``(g_params, z [M, noise_dim]) -> x [M, ...]``.
      g_params: the generator's params.
      x: ``[N, ...]`` samples (pixels).
      noise_dim: the length of ``z``.
      runs: starts per sample.
      iterations: SGD steps per start.
      lr: SGD learning rate.
      momentum: SGD momentum.
      noise_weight: ``w = 10^-noise_weight`` weighs ``mean(z^2)``.
      chunk: samples per jitted loop (default: 4,096, halved to fit ``memory_budget``).
      return_z: also return the best ``z``.
      progress: show a progress bar over the chunks.
      memory_budget: bytes for the loop's temporaries (default 1 GiB).

    Returns:
      ``[N]`` float64 costs, and the best ``z`` ``[N, noise_dim]`` with ``return_z``.

    Raises:
      ValueError: empty or non-finite ``x``, or of another sample shape than the generator makes; non-positive
        ``runs``, ``iterations``, ``noise_dim``, ``chunk``, ``lr``, ``memory_budget``; ``momentum`` outside ``[0, 1)``.

    References:
      the WGAN-GP hyperspectral anomaly-detection MSc thesis (NTNU/FFI, 2018) that
      ``experiments/hyperspectral_wgan_gp.py`` reproduces (the recreation cost and its 4 x 50 / 16 x 100 settings).

    Examples:
      >>> gen = lambda p, z: z @ p  # a generator whose outputs span the first 3 of 5 bands
      >>> x = np.random.default_rng(0).normal(size=(4, 5))
      >>> r = jaxkit.anomaly.recreation_cost(jax.random.key(0), gen, jnp.eye(3, 5), x, noise_dim=3, iterations=200)
      >>> np.allclose(r, (x[:, 3:] ** 2).sum(1) / 5, atol=1e-4)  # what no z can recreate
      True
    """
    for name, v in (("runs", runs), ("iterations", iterations), ("chunk", chunk), ("noise_dim", noise_dim)):
        if v is not None and int(v) < 1:
            raise ValueError(f"`{name}` must be >= 1, got {v}.")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"`lr` must be a finite number > 0, got {lr}.")
    if not 0 <= momentum < 1:
        raise ValueError(f"`momentum` must lie in [0, 1), got {momentum}.")
    budget = MEMORY_BUDGET if memory_budget is None else float(memory_budget)
    if not budget > 0:
        raise ValueError(f"`memory_budget` must be a positive number of bytes, got {memory_budget}.")
    x = _samples(x, "x")
    out = jax.eval_shape(generator_apply, g_params, jax.ShapeDtypeStruct((1, int(noise_dim)), jnp.float32))
    if tuple(out.shape[1:]) != x.shape[1:]:
        raise ValueError(f"`x` has sample shape {x.shape[1:]} but the generator makes {tuple(out.shape[1:])}.")
    w = 0.0 if noise_weight >= 100 else 10.0 ** (-float(noise_weight))
    opts = dict(
        runs=int(runs),
        iterations=int(iterations),
        noise_dim=int(noise_dim),
        lr=float(lr),
        momentum=float(momentum),
        w=w,
    )
    if chunk is None:
        chunk = min(4096, len(x))
        while chunk > 1:
            probe = jax.ShapeDtypeStruct((chunk,) + x.shape[1:], jnp.float32)
            if temp_bytes(_recreate, key, generator_apply, g_params, probe, **opts) <= budget:
                break
            chunk //= 2
    chunk = min(int(chunk), len(x))
    costs = np.empty(len(x), np.float64)
    zs = np.empty((len(x), int(noise_dim)), np.float32)
    it = list(_padded(x, chunk))
    if progress:
        it = tqdm(it, desc="recreation cost", unit="chunk", leave=False)
    for i, (s, e, b) in enumerate(it):
        c, z = _recreate(jax.random.fold_in(key, i), generator_apply, g_params, jnp.asarray(b), **opts)
        costs[s:e] = np.asarray(c)[: e - s]
        zs[s:e] = np.asarray(z)[: e - s]
    return (costs, zs) if return_z else costs


def anogan_scores(
    key: jax.Array,
    generator_apply: Callable,
    g_params: PyTree,
    critic_features: Callable,
    d_params: PyTree,
    x,
    *,
    noise_dim: int,
    lam: float = 0.1,
    **kwargs,
) -> np.ndarray:
    """AnoGAN's score ``A(x) = (1 - lam) R(x) + lam * mean|f(x) - f(G(z*))|``.

    ``R`` is :func:`recreation_cost` and ``z*`` its minimiser; ``f = critic_features(d_params, x)`` (e.g.
    ``critic.apply(v, x, method=Critic.features)``). An extension: the thesis used R and -D only.

    Args:
      key: PRNG key of the recreation starts.
      generator_apply: ``(g_params, z) -> x``.
      g_params: the generator's params.
      critic_features: ``(d_params, x) -> features [N, ...]``.
      d_params: the critic's params.
      x: ``[N, ...]`` samples.
      noise_dim: the length of ``z``.
      lam: the feature term's weight in ``[0, 1]``.
      **kwargs: further :func:`recreation_cost` arguments (``runs``, ``iterations``, ...).

    Returns:
      ``[N]`` float64 scores.

    Raises:
      ValueError: ``lam`` outside ``[0, 1]``; as :func:`recreation_cost`.

    References:
      Schlegl et al., "Unsupervised Anomaly Detection with Generative Adversarial Networks to Guide Marker
      Discovery", IPMI 2017, Sec. 2.2 (the residual and discrimination losses).

    Examples:
      >>> gen, features = (lambda p, z: z @ p), (lambda p, x: x)
      >>> x = np.random.default_rng(0).normal(size=(4, 5))
      >>> a = jaxkit.anomaly.anogan_scores(jax.random.key(0), gen, jnp.eye(3, 5), features, None, x,
      ...                                  noise_dim=3, lam=0.5, iterations=200)
      >>> expected = 0.5 * (x[:, 3:] ** 2).sum(1) / 5 + 0.5 * np.abs(x[:, 3:]).sum(1) / 5
      >>> np.allclose(a, expected, atol=1e-4)
      True
    """
    if not 0 <= lam <= 1:
        raise ValueError(f"`lam` must lie in [0, 1], got {lam}.")
    r, z = recreation_cost(key, generator_apply, g_params, x, noise_dim=noise_dim, return_z=True, **kwargs)
    x = np.asarray(x, np.float32)
    chunk = min(4096, len(x))
    f = np.empty(len(x), np.float64)
    for (s, e, xb), (_, _, zb) in zip(
        _padded(x, chunk), _padded(np.asarray(z), chunk)
    ):  # equal-size chunks: one compile
        f[s:e] = np.asarray(_feature_distance(critic_features, generator_apply, d_params, g_params, xb, zb))[: e - s]
    return (1 - lam) * r + lam * f


@partial(jax.jit, static_argnames=("critic_features", "generator_apply"))
def _feature_distance(critic_features, generator_apply, d_params, g_params, x, z):
    diff = critic_features(d_params, x) - critic_features(d_params, generator_apply(g_params, z))
    return jnp.mean(jnp.abs(diff).reshape(x.shape[0], -1), -1)


def evaluate_targets(scores, inner, outer, *, names: Sequence[str] | None = None) -> list[dict]:
    """Per-target and overall AUC / logAUC / lgFAR, the thesis's protocol.

    Args:
      scores: ``[H, W]`` anomaly scores.
      inner: bool ``[T, H, W]`` target masks (the target pixels).
      outer: bool ``[T, H, W]`` masks of each target plus its mixed border.
      names: the targets' names (default ``T1 ... TT``).

    Negatives are all pixels outside every outer mask; positives are inner-mask
    pixels (outer-only pixels are dropped). Row ``"all"`` pools every target's
    inner pixels; each target row uses all negatives vs that target's inner
    pixels. Each row also reports ``chance`` (logAUC of a random detector).

    Returns:
      A list of dicts ``{"target", "pixels", "auc", "log_auc", "lg_far", "chance"}``, ``"all"`` first.

    Raises:
      ValueError: masks of another shape than ``[T, *scores.shape]``, no negative pixel, ``names`` of another
        length. (A target with no inner pixel, e.g. outside a crop, is left out of the table.)

    References:
      the WGAN-GP hyperspectral anomaly-detection MSc thesis (NTNU/FFI, 2018) that
      ``experiments/hyperspectral_wgan_gp.py`` reproduces (its per-target tables).

    Examples:
      >>> rng = np.random.default_rng(0)
      >>> cube = rng.normal(size=(16, 16, 5))
      >>> cube[8, 8] += 6.0  # one anomalous pixel
      >>> inner = np.zeros((1, 16, 16), bool)
      >>> inner[0, 8, 8] = True
      >>> outer = np.zeros((1, 16, 16), bool)
      >>> outer[0, 7:10, 7:10] = True
      >>> rows = jaxkit.anomaly.evaluate_targets(jaxkit.anomaly.global_rx(cube), inner, outer, names=["T1"])
      >>> [(r["target"], r["pixels"], r["auc"]) for r in rows]
      [('all', 1, 1.0), ('T1', 1, 1.0)]
    """
    _c.real_dtype(scores, "scores")
    s = np.asarray(scores, np.float64)
    if s.ndim != 2 or s.size == 0:
        raise ValueError(f"`scores` must be a non-empty [H, W] map, got shape {s.shape}.")
    i_m, o_m = _c.binary(inner, "inner"), _c.binary(outer, "outer")
    for name, m in (("inner", i_m), ("outer", o_m)):
        if m.ndim != 3 or m.shape[1:] != s.shape:
            raise ValueError(f"`{name}` must be [T, {s.shape[0]}, {s.shape[1]}], got {m.shape}.")
    if i_m.shape != o_m.shape:
        raise ValueError(f"`inner` and `outer` must have the same shape, got {i_m.shape} and {o_m.shape}.")
    names = list(names) if names is not None else [f"T{i + 1}" for i in range(len(i_m))]
    if len(names) != len(i_m):
        raise ValueError(f"`names` has {len(names)} entries for {len(i_m)} targets.")
    neg = ~o_m.any(0)
    if not neg.any():
        raise ValueError("`outer` covers every pixel: no negative (background) pixel is left to score against.")
    rows = []
    for name, pos in [("all", i_m.any(0))] + list(zip(names, i_m)):
        if not pos.any():
            continue
        sc = np.r_[s[pos], s[neg]]
        lab = np.r_[np.ones(pos.sum(), bool), np.zeros(neg.sum(), bool)]
        rows.append(
            {
                "target": name,
                "pixels": int(pos.sum()),
                "auc": auc(sc, lab),
                "log_auc": log_auc(sc, lab),
                "lg_far": lg_far(sc, lab),
                "chance": log_auc_chance(int(neg.sum())),
            }
        )
    return rows


def plot_semilog_roc(ax, curves: dict[str, tuple[np.ndarray, np.ndarray]], *, n_neg: int | None = None):
    """Draw semi-log ROC curves (TPR against log10 FPR) on a matplotlib axis; zero FPR drawn at ``l``.

    Args:
      ax: a matplotlib ``Axes``.
      curves: ``{label: (scores, labels)}``.
      n_neg: the negatives' count that sets ``l = 0.5 / n_neg`` (default: from each curve's labels).

    Returns:
      ``ax``.

    Raises:
      ValueError: as :func:`roc_curve` for any curve.

    References:
      The semi-log ROC of :func:`log_auc` (Mysinger & Shoichet, J. Chem. Inf. Model. 50, 2010).

    Examples:
      >>> import matplotlib
      >>> matplotlib.use("Agg")
      >>> import matplotlib.pyplot as plt
      >>> fig, ax = plt.subplots()
      >>> s, y = np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0], bool)
      >>> jaxkit.anomaly.plot_semilog_roc(ax, {"RX": (s, y)}).get_xscale()
      'log'
      >>> plt.close(fig)
    """
    for label, (sc, lab) in curves.items():
        fpr, tpr, _ = roc_curve(sc, lab)
        lo = far_floor(int((~np.asarray(lab, bool)).sum()) if n_neg is None else n_neg, None)
        ax.plot(
            np.maximum(fpr, lo),
            tpr,
            label=f"{label} (AUC {auc(sc, lab):.3f}, logAUC {log_auc(sc, lab):.3f})",
            drawstyle="steps-post",
        )
    ax.set_xscale("log")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=7)
    return ax


def plot_heatmap(ax, scores, *, title: str = "", colorbar: bool = True):
    """Show ``log10`` of (shifted-positive) scores as an image, with a colour bar (``colorbar=False``: none).

    ``log10(s - min(s) + eps)``: the heavy right tail of detection scores stays visible.

    Args:
      ax: a matplotlib ``Axes``.
      scores: ``[H, W]`` scores.
      title: the axis title.
      colorbar: add a colour bar.

    Returns:
      The ``AxesImage``.

    Raises:
      ValueError: scores not ``[H, W]`` or not finite.

    References:
      the WGAN-GP hyperspectral anomaly-detection MSc thesis (NTNU/FFI, 2018) that
      ``experiments/hyperspectral_wgan_gp.py`` reproduces (its log-score heatmaps).

    Examples:
      >>> import matplotlib
      >>> matplotlib.use("Agg")
      >>> import matplotlib.pyplot as plt
      >>> fig, ax = plt.subplots()
      >>> jaxkit.anomaly.plot_heatmap(ax, np.arange(12.0).reshape(3, 4)).get_array().shape
      (3, 4)
      >>> plt.close(fig)
    """
    s = np.asarray(scores, np.float64)
    if s.ndim != 2 or s.size == 0 or not np.all(np.isfinite(s)):
        raise ValueError(f"`scores` must be a finite, non-empty [H, W] map, got shape {s.shape}.")
    s = s - s.min() + 1e-12 * (np.ptp(s) + 1)
    im = ax.imshow(np.log10(s), cmap="inferno")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    if colorbar:
        ax.figure.colorbar(im, ax=ax, shrink=0.8, label="log10 score (shifted)")
    return im
