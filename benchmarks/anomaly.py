"""Global RX against SPy (``spectral.rx``), the library a hyperspectral user would pick.

Same process, same float32 cube (512 x 512 x 100, Gaussian, fixed seed), best of ``--repeat`` runs. RX is a
host computation (NumPy / BLAS, float64, no XLA), so there is no compilation and the first call costs what a
warm call does. jaxkit fits the background with a chunked centred Gram matrix and scores in chunks (one BLAS
product and a fused multiply-sum per chunk). On float64 input the scores equal SPy's to 1e-12 relative
(``tests/test_anomaly.py::test_global_rx_equals_spy``); on this float32 cube SPy keeps part of its arithmetic in
float32, and the line prints the measured difference (3.8e-5). Without ``spectral`` installed (``pip install
'jaxkit[bench]'``) the line says "not run".

    python benchmarks/anomaly.py [--size 512] [--bands 100] [--repeat 3]    # ~15 s on 2 CPU cores
"""

from __future__ import annotations

import argparse

import numpy as np

from common import best_time, report
from jaxkit import anomaly


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--bands", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    cube = (rng.normal(size=(args.size, args.size, args.bands)) + 5).astype(np.float32)
    what = f"global RX {args.size}x{args.size}x{args.bands} vs SPy spectral.rx"
    t_j, ours = best_time(lambda: anomaly.global_rx(cube, reg=0.0), args.repeat)
    try:
        import spectral  # noqa: PLC0415
    except ImportError:
        print(f"{what}: not run (spectral is not installed; pip install 'jaxkit[bench]'); jaxkit {t_j:.3f} s")
        return
    t_s, theirs = best_time(lambda: spectral.rx(cube), args.repeat)
    rel = float(np.max(np.abs(ours - theirs) / np.abs(theirs)))
    report(what + f" (max rel. difference {rel:.1e}; no compilation: first call = warm)", t_s, t_j)


if __name__ == "__main__":
    main()
