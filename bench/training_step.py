"""Time one training step of a teacher preset in fp32 and under bf16 autocast (why `--precision auto` exists).

    python bench/training_step.py [--preset fmnist fmnist-p7] [--batch 128] [--steps 8] [--json]

Median of the timed steps after two warm-up steps, with all CPU threads (as `vitfleet teacher` uses them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def step_ms(preset: str, bf16: bool, batch: int, steps: int) -> float:
    import torch

    from vitfleet.decompose.teacher import arch_for_preset
    from vitfleet.decompose.training import forward_precision
    from vitfleet.decompose.vit_arch import build_vit

    model = build_vit(arch_for_preset(preset, 10))
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    times = []
    for _ in range(steps + 2):
        t0 = time.perf_counter()
        with forward_precision(torch.device("cpu"), "bf16" if bf16 else "fp32"):  # the trainers' own switch
            logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    timed = sorted(times[2:])
    return timed[len(timed) // 2] * 1000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", nargs="+", default=["fmnist", "fmnist-p7"])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from vitfleet.decompose.training import cpu_has_bf16, pick_device

    pick_device()
    rows = []
    for preset in args.preset:
        fp32 = step_ms(preset, False, args.batch, args.steps)
        bf16 = step_ms(preset, True, args.batch, args.steps)
        rows.append(
            {"preset": preset, "fp32_ms": round(fp32, 1), "bf16_ms": round(bf16, 1), "speedup": round(fp32 / bf16, 2)}
        )
    report = {"cpu_has_native_bf16": cpu_has_bf16(), "batch": args.batch, "rows": rows}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for r in rows:
            print(f"{r['preset']}: fp32 {r['fp32_ms']} ms, bf16 {r['bf16_ms']} ms per step ({r['speedup']}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
