"""Hyperspectral scenes for anomaly detection: a deterministic synthetic scene with known targets, readers
for local scene files (``.mat``/``.npz``/ENVI), band scaling and pixel windows.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
from scipy.io import loadmat
from scipy.ndimage import gaussian_filter, maximum_filter

from jaxkit import _checks as _c

__all__ = [
    "TARGET_NAMES",
    "HyperspectralScene",
    "check_cube",
    "load_scene",
    "make_hyperspectral_scene",
    "pixel_windows",
    "scale_cube",
    "window_split",
]


TARGET_NAMES = (
    "bright panel",
    "camouflage panel",
    "low-contrast",
    "panel in shadow",
    "in-ellipsoid",
    "red panel",
    "blue panel",
    "grey metal",
    "small bright",
    "orange panel",
    "dark panel",
    "white tarp",
    "green tarp",
    "yellow panel",
)


ENDMEMBER_NAMES = ("vegetation", "soil", "dry grass", "asphalt", "water/shadow")


@dataclasses.dataclass(frozen=True)
class HyperspectralScene:
    """A cube ``[H, W, B]`` (float32, sqrt-radiance in ``[0, 256)``) with per-target masks ``[T, H, W]``.

    ``inner``: target pixels (fill >= 0.99); ``outer``: target plus its mixed
    border (fill > 0). ``endmembers`` ``[E, B]`` / ``abundances`` ``[H, W, E]``
    are set for synthetic scenes, ``None`` for loaded ones.
    """

    cube: np.ndarray
    inner: np.ndarray
    outer: np.ndarray
    wavelengths: np.ndarray | None = None
    target_names: tuple[str, ...] = ()
    endmembers: np.ndarray | None = None
    abundances: np.ndarray | None = None

    def __post_init__(self):
        check_cube(self.cube)
        h, w, _ = self.cube.shape
        for name in ("inner", "outer"):
            m = np.asarray(getattr(self, name))
            if m.ndim != 3 or m.shape[1:] != (h, w):
                raise ValueError(f"`{name}` masks must be [T, {h}, {w}], got {m.shape}.")
        if np.shape(self.inner) != np.shape(self.outer):
            raise ValueError(f"`inner` and `outer` differ in shape: {np.shape(self.inner)} vs {np.shape(self.outer)}.")

    @property
    def background(self) -> np.ndarray:
        """Bool ``[H, W]``: pixels outside every outer mask."""
        return np.logical_not(np.asarray(self.outer, bool).any(0))

    def __repr__(self) -> str:
        return f"HyperspectralScene(cube={self.cube.shape}, targets={len(self.inner)})"


def check_cube(cube, bands: int | None = None) -> np.ndarray:
    """Validate a cube: ``[H, W, B]``, finite, non-negative (and ``bands`` bands).

    Args:
      cube: the cube.
      bands: the expected band count (``None``: any).

    Returns:
      The cube as a float array.

    Raises:
      ValueError: another shape, non-finite or negative values, another band count.

    Examples:
      >>> scene = jaxkit.data.make_hyperspectral_scene(32, 32)
      >>> jaxkit.data.check_cube(scene.cube, bands=20).shape
      (32, 32, 20)
    """
    c = np.asarray(_c.array(np.asarray(cube), "cube", ndim=3, kind="r"))
    if 0 in c.shape:
        raise ValueError(f"`cube` is empty (shape {c.shape}).")
    if bands is not None and c.shape[-1] != bands:
        raise ValueError(f"`cube` has {c.shape[-1]} bands, expected {bands}.")
    if not np.all(np.isfinite(c)):
        raise ValueError("`cube` contains NaN or inf.")
    if np.any(c < 0):
        raise ValueError(f"`cube` has negative values (min {c.min()}); expected radiance >= 0.")
    return c


def _smooth_field(rng, shape, sigma):
    f = gaussian_filter(rng.normal(size=shape), sigma, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)


def _endmembers(wl: np.ndarray) -> np.ndarray:
    sig = lambda x, c, s: 1 / (1 + np.exp(-(x - c) / s))
    bump = lambda x, c, s: np.exp(-0.5 * ((x - c) / s) ** 2)
    veg = 0.04 + 0.05 * bump(wl, 0.55, 0.03) + 0.46 * sig(wl, 0.72, 0.015)
    soil = 0.12 + 0.25 * (wl - 0.41) / 0.57 - 0.05 * ((wl - 0.7) / 0.3) ** 2
    grass = 0.08 + 0.3 * sig(wl, 0.6, 0.08) + 0.05 * sig(wl, 0.72, 0.02)
    asphalt = 0.07 + 0.03 * (wl - 0.41) / 0.57
    water = 0.07 * np.exp(-(wl - 0.41) / 0.15) + 0.01
    return np.stack([veg, soil, grass, asphalt, water])


def _render(h, w, cy, cx, size, shape, ss=4):
    """Fill fraction of a target (square or disc of ``size`` px centred at ``(cy, cx)``) with ss x ss supersampling."""
    y = (np.arange(h * ss) + 0.5) / ss
    x = (np.arange(w * ss) + 0.5) / ss
    yy, xx = np.meshgrid(y, x, indexing="ij")
    if shape == "disc":
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= (size / 2) ** 2
    else:
        inside = (np.abs(yy - cy) <= size / 2) & (np.abs(xx - cx) <= size / 2)
    return inside.reshape(h, ss, w, ss).mean((1, 3))


def make_hyperspectral_scene(
    height: int = 128, width: int = 128, *, bands: int = 20, seed: int = 0, noise: float = 1.0
) -> HyperspectralScene:
    """A deterministic synthetic airborne scene standing in for the thesis's private image.

    20 bands over 0.41-0.98 um; smooth endmember spectra (vegetation with a
    red edge, soil, dry grass, asphalt, water/shadow); patchy cover from
    smooth random fields (mixed pixels only at patch edges); a thin, scarce
    road with bright dashed markings; an illumination field with cast
    shadows; signal-dependent noise (``noise`` scales it); then the square-root
    transform and quantisation to ``[0, 256)``.

    14 targets (:data:`TARGET_NAMES`) rendered at 4x supersampling so sub-pixel
    placement gives fractional fill (outer = fill > 0, inner = fill >= 0.99):
    a bright panel, a green "camouflage" panel without a red edge, a
    low-contrast target (soil-like, on soil), a panel in shadow, an
    "in-ellipsoid" target whose spectrum is the scene's mean (inside the global
    background ellipsoid, so global RX misses it, but far from every cover
    class), and nine coloured panels/tarps of 2-5 px.

    Args:
      height: rows.
      width: columns.
      bands: spectral bands.
      seed: the seed.
      noise: the noise's scale.

    Returns:
      A ``HyperspectralScene`` (``cube [H, W, B]``, target masks ``inner`` / ``outer`` ``[14, H, W]``, names).

    Raises:
      ValueError: a scene too small for its targets, non-positive sizes, a negative ``noise``.

    References:
      the WGAN-GP hyperspectral anomaly-detection MSc thesis (NTNU/FFI, 2018) that
      ``experiments/hyperspectral_wgan_gp.py`` reproduces.

    Examples:
      >>> scene = jaxkit.data.make_hyperspectral_scene(32, 32)
      >>> scene.cube.shape, scene.inner.shape
      ((32, 32, 20), (14, 32, 32))
    """
    h, w = int(height), int(width)
    if h < 32 or w < 32:
        raise ValueError(f"the scene must be at least 32 x 32 pixels, got {h} x {w}.")
    if int(bands) < 4:
        raise ValueError(f"`bands` must be >= 4, got {bands}.")
    noise = _c.number(noise, "noise", lo=0.0)
    rng = np.random.default_rng(int(seed))
    wl = np.linspace(0.41, 0.98, int(bands))
    em = _endmembers(wl)
    # cover classes: vegetation / soil / dry grass patches, a small lake
    fields = np.stack([_smooth_field(rng, (h, w), 7) for _ in range(3)], -1)
    fields[..., 0] += 0.3
    label = np.argmax(fields, -1)
    lake = _smooth_field(rng, (h, w), 10) > 1.6
    onehot = np.zeros((h, w, len(em)))
    onehot[np.arange(h)[:, None], np.arange(w)[None, :], label] = 1
    onehot[lake] = 0
    onehot[lake, 4] = 1
    ab = np.stack([gaussian_filter(onehot[..., k], 0.6, mode="nearest") for k in range(len(em))], -1)
    # road: 2 px wide, gently curved, across the image, with dashed bright markings on its centre line
    cols = np.arange(w)
    centre = h * 0.78 + 4 * np.sin(cols / w * 2 * np.pi)
    road = np.zeros((h, w))
    for dy in np.linspace(-1.0, 1.0, 9):
        rows = np.clip(np.round(centre + dy).astype(int), 0, h - 1)
        road[rows, cols] += 1 / 9
    road = np.clip(road * 2, 0, 1)
    ab = ab * (1 - road[..., None])
    ab[..., 3] += road
    ab = ab / ab.sum(-1, keepdims=True)
    refl = ab @ em
    marks = np.zeros((h, w), bool)
    marks[np.round(centre).astype(int).clip(0, h - 1), cols] = (cols // 3) % 3 == 0
    refl[marks] = 0.55
    # targets
    names = TARGET_NAMES
    spectra = {
        "bright panel": np.full_like(wl, 0.85),
        # green paint: vegetation-like in the visible, but a slow rise through the NIR instead of a red edge
        "camouflage panel": 0.04
        + 0.06 * np.exp(-0.5 * ((wl - 0.55) / 0.03) ** 2)
        + 0.2 * np.clip((wl - 0.6) / 0.38, 0, 1),
        "low-contrast": em[1] * 1.06,
        "panel in shadow": np.full_like(wl, 0.7),
        "red panel": 0.05 + 0.5 / (1 + np.exp(-(wl - 0.6) / 0.02)),
        "blue panel": 0.05 + 0.35 * np.exp(-0.5 * ((wl - 0.45) / 0.04) ** 2) + 0.2 * (wl > 0.8),
        "grey metal": np.full_like(wl, 0.3),
        "small bright": np.full_like(wl, 0.75),
        "orange panel": 0.05 + 0.45 / (1 + np.exp(-(wl - 0.57) / 0.02)),
        "dark panel": np.full_like(wl, 0.02),
        "white tarp": 0.6 + 0.1 * (wl - 0.41),
        "green tarp": 0.05 + 0.15 * np.exp(-0.5 * ((wl - 0.53) / 0.04) ** 2) + 0.3 / (1 + np.exp(-(wl - 0.8) / 0.03)),
        "yellow panel": 0.05 + 0.55 / (1 + np.exp(-(wl - 0.52) / 0.02)),
    }
    sizes = [4, 4, 5, 4, 4, 3, 3, 3, 2, 3, 3, 4, 3, 3]
    # targets on a jittered 4 x 4 grid in the upper 70 % of the image (the road runs below)
    cells = [(r, c) for r in range(4) for c in range(4)][: len(names)]
    inner = np.zeros((len(names), h, w), bool)
    outer = np.zeros((len(names), h, w), bool)
    illum = 1.0 + 0.12 * _smooth_field(rng, (h, w), 20)
    shadow = np.zeros((h, w))
    for k in range(6):  # cast shadows: soft blobs
        cy, cx = rng.uniform(0, 0.7 * h), rng.uniform(0, w)
        shadow = np.maximum(shadow, _render(h, w, cy, cx, rng.uniform(6, 12), "disc", 2))
    fills = []
    for t, ((r, c), size) in enumerate(zip(cells, sizes)):
        cy = (r + 0.5) * 0.7 * h / 4 + rng.uniform(-0.25, 0.25) * 0.7 * h / 4 * 0.5
        cx = (c + 0.5) * w / 4 + rng.uniform(-0.25, 0.25) * w / 4 * 0.5
        cy, cx = cy + rng.uniform(0, 1), cx + rng.uniform(0, 1)  # sub-pixel placement
        fill = _render(h, w, cy, cx, size, "disc" if (t % 3 == 2 and size >= 3) else "square")
        yy, xx = np.ogrid[:h, :w]
        near = (yy - cy) ** 2 + (xx - cx) ** 2 <= (size + 6) ** 2
        if names[t] == "low-contrast":  # on soil
            refl[near] = em[1]
        if names[t] == "panel in shadow":
            shadow[near] = 1.0
        fills.append(fill)
        inner[t], outer[t] = fill >= 0.99, fill > 0
    light = illum * (1 - 0.7 * shadow)
    solar = 0.6 + 0.4 * np.exp(-0.5 * ((wl - 0.55) / 0.25) ** 2)  # sun x sensor response
    scale = 60_000.0
    radiance = refl * light[..., None] * solar * scale
    mean_rad = radiance[~outer.any(0)].mean(0)
    for t, fill in enumerate(fills):
        if names[t] == "in-ellipsoid":
            target_rad = mean_rad
        else:
            target_rad = spectra[names[t]] * light[..., None] * solar * scale
        radiance = radiance * (1 - fill[..., None]) + fill[..., None] * target_rad
    radiance = radiance + noise * rng.normal(size=radiance.shape) * np.sqrt(40.0 * radiance + 400.0)
    cube = np.floor(np.sqrt(np.clip(radiance, 0, None))).clip(0, 255.99).astype(np.float32)
    return HyperspectralScene(
        cube=cube,
        inner=inner,
        outer=outer,
        wavelengths=wl.astype(np.float32),
        target_names=names,
        endmembers=em.astype(np.float32),
        abundances=ab.astype(np.float32),
    )


def scale_cube(cube, mode: str = "sqrt_radiance") -> np.ndarray:
    """Scale a cube to ``[-1, 1]`` for a tanh generator.

    Args:
      cube: the cube.
      mode: ``"sqrt_radiance"`` (``x * 2 / 255.99 - 1``) or ``"minmax"``.

    Returns:
      The scaled cube.

    Raises:
      ValueError: an unknown ``mode``; as :func:`check_cube`.

    Examples:
      >>> scene = jaxkit.data.make_hyperspectral_scene(32, 32)
      >>> x = jaxkit.data.scale_cube(scene.cube)
      >>> bool(x.min() >= -1 and x.max() <= 1)
      True
    """
    c = check_cube(cube).astype(np.float32)
    if mode == "sqrt_radiance":
        if c.max() >= 256:
            raise ValueError(f"sqrt-radiance cubes lie in [0, 256), got max {c.max()}; use mode='minmax'.")
        return c * (2 / 255.99) - 1
    if mode == "minmax":
        lo, hi = c.min(), c.max()
        return (c - lo) / max(hi - lo, 1e-12) * 2 - 1
    raise ValueError(f"`mode` must be 'sqrt_radiance' or 'minmax', got {mode!r}.")


def pixel_windows(cube, window: int = 1, index: np.ndarray | None = None) -> np.ndarray:
    """``[N, B, W, W]`` windows around pixels (row-major, or the flat ``index`` given); edges reflect.

    Args:
      cube: the cube.
      window: the window's side (odd).
      index: flat pixel indices (default: all).

    Returns:
      ``[N, B, W, W]``.

    Raises:
      ValueError: an even or non-positive ``window``, indices out of range.

    References:
      the WGAN-GP hyperspectral anomaly-detection MSc thesis (NTNU/FFI, 2018) that
      ``experiments/hyperspectral_wgan_gp.py`` reproduces (windowed inputs).

    Examples:
      >>> scene = jaxkit.data.make_hyperspectral_scene(32, 32)
      >>> jaxkit.data.pixel_windows(scene.cube, 3).shape
      (1024, 20, 3, 3)
    """
    c = np.asarray(_c.array(np.asarray(cube), "cube", ndim=3, kind="r"))  # scaled cubes may be negative
    if 0 in c.shape:
        raise ValueError(f"`cube` is empty (shape {c.shape}).")
    w = int(window)
    if w < 1 or w % 2 == 0:
        raise ValueError(f"`window` must be an odd integer >= 1, got {window}.")
    if w > min(c.shape[:2]):
        raise ValueError(f"`window` {w} is larger than the image {c.shape[:2]}.")
    idx = np.arange(c.shape[0] * c.shape[1]) if index is None else np.asarray(index)
    if idx.size and (idx.min() < 0 or idx.max() >= c.shape[0] * c.shape[1]):
        raise ValueError(f"`index` must hold flat pixel indices in [0, {c.shape[0] * c.shape[1]}).")
    r = w // 2
    pad = np.pad(c, ((r, r), (r, r), (0, 0)), mode="reflect") if r else c
    ys, xs = np.divmod(idx, c.shape[1])
    off = np.arange(w)
    patches = pad[ys[:, None, None] + off[None, :, None], xs[:, None, None] + off[None, None, :]]  # [N, W, W, B]
    return np.ascontiguousarray(np.moveaxis(patches, -1, 1))


def window_split(scene: HyperspectralScene, window: int = 1, *, seed: int = 0, val_fraction: float = 0.2):
    """The thesis's split of window centres (flat pixel indices) into train, validation and anomalies.

    Windows with no inner- or outer-mask pixel are background: shuffled with
    ``seed`` and split ``1 - val_fraction`` / ``val_fraction`` into train /
    validation; windows touching only outer-mask pixels are dropped; windows
    containing an inner-mask pixel are anomalies.

    Args:
      scene: the scene.
      window: the window's side.
      seed: the shuffle's seed.
      val_fraction: the validation share of the background.

    Returns:
      ``{"train", "val", "anomaly"}`` index arrays.

    Raises:
      ValueError: ``val_fraction`` outside ``(0, 1)``.

    References:
      the WGAN-GP hyperspectral anomaly-detection MSc thesis (NTNU/FFI, 2018) that
      ``experiments/hyperspectral_wgan_gp.py`` reproduces.

    Examples:
      >>> scene = jaxkit.data.make_hyperspectral_scene(32, 32)
      >>> {k: v.shape for k, v in jaxkit.data.window_split(scene).items()}
      {'train': (628,), 'val': (157,), 'anomaly': (101,)}
    """
    w = int(window)
    if w < 1 or w % 2 == 0:
        raise ValueError(f"`window` must be an odd integer >= 1, got {window}.")
    inner = np.asarray(scene.inner, bool).any(0)
    outer = np.asarray(scene.outer, bool).any(0)
    has_inner = np.asarray(maximum_filter(inner, size=w, mode="reflect"), bool).ravel()
    has_outer = np.asarray(maximum_filter(outer, size=w, mode="reflect"), bool).ravel()
    bg = np.flatnonzero(~has_inner & ~has_outer)
    bg = bg[np.random.default_rng(int(seed)).permutation(len(bg))]
    n_val = int(round(_c.number(val_fraction, "val_fraction", lo=0.0, hi=1.0, hi_open=True) * len(bg)))
    return {"train": bg[n_val:], "val": bg[:n_val], "anomaly": np.flatnonzero(has_inner)}


def load_scene(path: str, *, inner=None, outer=None, cube_key: str = "cube") -> HyperspectralScene:
    """Load a real scene so it runs through the same pipeline as the synthetic one.

    Formats: ``.npy`` (the cube), ``.npz`` / ``.mat`` (arrays ``cube_key``,
    ``inner``, ``outer``), ENVI (``.hdr`` plus its binary file; BSQ/BIL/BIP,
    any ENVI data type, either byte order), GeoTIFF (``.tif``/``.tiff``, needs
    the optional ``tifffile`` package; bands first or last). Masks given as
    arguments (arrays ``[T, H, W]`` or paths to ``.npy``) override those in the
    file; a scene without masks gets zero targets.

    Args:
      path: the file.
      inner: target masks ``[T, H, W]`` (or a ``.npy`` path) overriding the file's.
      outer: outer masks, likewise.
      cube_key: the cube's array name in ``.npz`` / ``.mat``.

    Returns:
      A ``HyperspectralScene``.

    Raises:
      ValueError: an unknown format, masks of another size; as :func:`check_cube`.
      ImportError: a GeoTIFF without ``tifffile``.

    Examples:
      >>> scene = jaxkit.data.make_hyperspectral_scene(32, 32)
      >>> import os, tempfile
      >>> path = os.path.join(tempfile.mkdtemp(), "cube.npy")
      >>> np.save(path, scene.cube)
      >>> loaded = jaxkit.data.load_scene(path)
      >>> loaded.cube.shape, loaded.inner.shape  # no masks in a bare .npy: zero targets
      ((32, 32, 20), (0, 32, 32))
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npy", ".npz", ".mat", ".hdr", ".tif", ".tiff"):
        raise ValueError(f"unsupported scene format {ext!r}: use .npy, .npz, .mat, ENVI .hdr or GeoTIFF.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"scene file {path} does not exist.")
    try:
        cube, stored = _read_scene_file(path, ext, cube_key)
    except Exception as e:
        if isinstance(e, (FileNotFoundError, ImportError)) or str(e).startswith(str(path)):
            raise
        why = (str(e).splitlines() or [""])[0][:150]
        if "pickle" in why:
            why = "not a plain numeric array file (it holds pickled objects, which jaxkit never loads)"
        expected = {
            ".npy": "a NumPy .npy array [H, W, B]",
            ".npz": f"a NumPy .npz archive with {cube_key!r}",
            ".mat": f"a MATLAB .mat file with {cube_key!r}",
            ".hdr": "an ENVI header beside its binary file",
            ".tif": "a GeoTIFF",
            ".tiff": "a GeoTIFF",
        }[ext]
        raise ValueError(f"{path} cannot be read as {expected}: {why}") from None
    try:
        cube = check_cube(np.asarray(cube, np.float32))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: {e} (a scene is a cube [H, W, B] of radiances >= 0)") from None
    h, w, _ = cube.shape

    def mask(v, name):
        if isinstance(v, str):
            v = np.load(v)
        if v is None:
            v = stored.get(name)
        return np.zeros((0, h, w), bool) if v is None else np.asarray(v, bool)

    i_m, o_m = mask(inner, "inner"), mask(outer, "outer")
    if o_m.shape[0] == 0 and i_m.shape[0] > 0:
        o_m = i_m
    return HyperspectralScene(cube=cube, inner=i_m, outer=o_m, target_names=tuple(f"T{i + 1}" for i in range(len(i_m))))


def _read_scene_file(path, ext, cube_key):
    stored: dict = {}
    if ext == ".npy":
        cube = np.load(path, allow_pickle=False)
    elif ext in (".npz", ".mat"):
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as f:
                stored = {k: f[k] for k in f.files}
        else:
            stored = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
        if cube_key not in stored:
            raise ValueError(f"{path} has no array {cube_key!r} (found {sorted(stored)}); pass `cube_key`.")
        cube = stored[cube_key]
    elif ext == ".hdr":
        cube = _read_envi(path)
    else:
        try:
            import tifffile  # noqa: PLC0415  # pyright: ignore[reportMissingImports]  (optional)
        except ImportError as e:
            raise ImportError("reading GeoTIFF needs `pip install tifffile`.") from e
        cube = tifffile.imread(path)
        if cube.ndim == 3 and cube.shape[0] < min(cube.shape[1:]):
            cube = np.moveaxis(cube, 0, -1)  # bands first -> last
    return cube, stored


_ENVI_DTYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8", 15: "u8"}


def _read_envi(hdr_path: str) -> np.ndarray:
    text = open(hdr_path).read()
    if not text.lstrip().upper().startswith("ENVI"):
        raise ValueError(f"{hdr_path} is not an ENVI header (first line must be 'ENVI').")
    meta = {}
    for line in text.replace("{", "{\n").splitlines()[1:]:
        if "=" in line:
            k, v = line.split("=", 1)
            meta[k.strip().lower()] = v.strip()
    try:
        samples, lines, bands = (int(meta[k]) for k in ("samples", "lines", "bands"))
        dtype = np.dtype(_ENVI_DTYPES[int(meta["data type"])])
    except KeyError as e:
        raise ValueError(f"ENVI header {hdr_path} lacks or has an unsupported {e}.") from None
    dtype = dtype.newbyteorder(">" if meta.get("byte order", "0") == "1" else "<")
    interleave = meta.get("interleave", "bsq").lower()
    base = os.path.splitext(hdr_path)[0]
    data_path = next(
        (p for p in (base, base + ".img", base + ".dat", base + ".raw", base + ".bin") if os.path.isfile(p)), None
    )
    if data_path is None:
        raise ValueError(f"no data file next to {hdr_path} (tried no extension, .img, .dat, .raw, .bin).")
    raw = np.fromfile(data_path, dtype=dtype, offset=int(meta.get("header offset", 0)))
    if raw.size < samples * lines * bands:
        raise ValueError(f"{data_path} holds {raw.size} values, the header needs {samples * lines * bands}.")
    raw = raw[: samples * lines * bands]
    if interleave == "bsq":
        return raw.reshape(bands, lines, samples).transpose(1, 2, 0)
    if interleave == "bil":
        return raw.reshape(lines, bands, samples).transpose(0, 2, 1)
    if interleave == "bip":
        return raw.reshape(lines, samples, bands)
    raise ValueError(f"unknown ENVI interleave {interleave!r}.")
