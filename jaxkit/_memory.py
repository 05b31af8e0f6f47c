"""One memory budget and one measurement for the automatic chunk sizes (evaluate, recreation_cost, LipBaB)."""

from __future__ import annotations

__all__ = ["MEMORY_BUDGET", "temp_bytes"]

MEMORY_BUDGET = float(1 << 30)  # bytes of XLA temporaries per device before a batch is chunked


def temp_bytes(jitted, *args, **kwargs) -> int:
    """XLA's temporary-buffer bytes (per device) of ``jitted`` compiled for ``args`` -- the compilation a later call
    with the same arguments reuses. 0 on a backend without memory analysis (treated as fitting)."""
    mem = jitted.lower(*args, **kwargs).compile().memory_analysis()
    return 0 if mem is None else int(mem.temp_size_in_bytes)
