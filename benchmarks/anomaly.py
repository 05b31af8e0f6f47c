"""Global RX against SPy (``spectral.rx``), the library a hyperspectral user would pick; dual-window local RX
against a plain NumPy loop (per-pixel ring covariance with BLAS and ``np.linalg.solve``), with its peak memory.

Same process, same float32 cube (512 x 512 x 100, Gaussian, fixed seed), best of ``--repeat`` runs. RX is a
host computation (NumPy / BLAS, float64, no XLA), so there is no compilation and the first call costs what a
warm call does. jaxkit fits the background with a chunked centred Gram matrix and scores in chunks (one BLAS
product and a fused multiply-sum per chunk). On float64 input the scores equal SPy's to 1e-12 relative
(``tests/test_anomaly.py::test_global_rx_equals_spy``); on this float32 cube SPy keeps part of its arithmetic in
float32, and the line prints the measured difference (3.8e-5). Without ``spectral`` installed (``pip install
'jaxkit-papers[bench]'``) the line says "not run".

Local RX (inner 3, outer 9) streams over rows: memory ``O(rows * W * B^2)`` with ``rows`` chosen from a 256 MiB
budget, whatever the image height; the line prints tracemalloc's peak on a 32 x 512 x 100 cube too.

    python benchmarks/anomaly.py [--size 512] [--bands 100] [--repeat 3]    # ~40 s on 2 CPU cores
"""

from __future__ import annotations

import argparse

import numpy as np
from benchkit import best_time, parse, report

from jaxkit import anomaly


def loop_local_rx(c, inner=3, outer=9, reg=1e-3):
    """The baseline: each pixel's ring gathered, its biased covariance with BLAS, one solve."""
    h, w, b = c.shape
    ro, ri = outer // 2, inner // 2
    out = np.empty((h, w))
    for i in range(h):
        for j in range(w):
            i0, i1, j0, j1 = max(0, i - ro), min(h, i + ro + 1), max(0, j - ro), min(w, j + ro + 1)
            keep = np.ones((i1 - i0, j1 - j0), bool)
            keep[max(0, i - ri) - i0 : min(h, i + ri + 1) - i0, max(0, j - ri) - j0 : min(w, j + ri + 1) - j0] = False
            x = c[i0:i1, j0:j1][keep]
            mu = x.mean(0)
            d = x - mu
            cov = d.T @ d / len(x)
            cov += (reg * np.trace(cov) / b + 1e-12) * np.eye(b)
            v = c[i, j] - mu
            out[i, j] = v @ np.linalg.solve(cov, v)
    return out


# --full: the sizes meant for an accelerator (run_all.py --full passes it)
FULL = {"size": 1024, "bands": 200}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--bands", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    args = parse(ap, argv, FULL)
    rng = np.random.default_rng(0)
    cube = (rng.normal(size=(args.size, args.size, args.bands)) + 5).astype(np.float32)
    what = f"global RX {args.size}x{args.size}x{args.bands} vs SPy spectral.rx"
    t_j, ours = best_time(lambda: anomaly.global_rx(cube, reg=0.0), args.repeat)
    try:
        import spectral
    except ImportError:
        print(f"{what}: not run (spectral is not installed; pip install 'jaxkit-papers[bench]'); jaxkit {t_j:.3f} s")
        t_s = None
    else:
        t_s, theirs = best_time(lambda: spectral.rx(cube), args.repeat)
        rel = float(np.max(np.abs(ours - theirs) / np.abs(theirs)))
        report(what + f" (max rel. difference {rel:.1e}; no compilation: first call = warm)", t_s, t_j)

    import tracemalloc

    small = rng.gamma(3.0, size=(64, 64, 20))
    t_l, ref = best_time(lambda: loop_local_rx(small), 1)
    t_r, got = best_time(lambda: anomaly.local_rx(small, 3, 9), args.repeat)
    rel = float(np.max(np.abs(got - ref) / np.abs(ref)))
    report(f"local RX (3, 9) 64x64x20 vs a NumPy loop with BLAS covariances (max rel. difference {rel:.1e})", t_l, t_r)
    wide = rng.gamma(3.0, size=(32, 512, 100))
    tracemalloc.start()
    anomaly.local_rx(wide, 3, 9)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"local RX (3, 9) 32x512x100: peak memory {peak / 2**20:.0f} MiB (target "
        f"{anomaly.LOCAL_RX_MEMORY / 2**20:.0f} MiB; the strip version of 54be995: ~2.6 GB per strip array)",
        flush=True,
    )


if __name__ == "__main__":
    main()
