"""This board's speed in GFLOP/s, by the benchmark `vitfleet deploy profile` runs over SSH (the unit of fleet.yaml's
`speed:`): float32 256x256 matrix products for a fixed time. The agent measures it once at start for its hello.

`matmul_gflops` is self-contained (numpy only, no vitfleet import): deploy sends its source to boards that may not
have vitfleet installed yet, so both measure with the very same code.
"""

from __future__ import annotations


def matmul_gflops(seconds: float = 0.3, n: int = 256) -> dict[str, float]:
    import time

    import numpy as np

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = a.T.copy()
    a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    dt = time.perf_counter() - t0
    return {"gflops": 2 * n**3 * reps / dt / 1e9, "reps": reps, "seconds": dt}
