"""Deploy's engine step: build each board kind's engines once, locally, before anything is shipped.

ONNX Runtime boards (Pi, x86) get finished engines. Jetsons get the same ONNX (fp16/int8 QDQ)
and build their TensorRT plans themselves (board-install.sh runs `vitfleet engines build
--backend tensorrt` there), because a plan is tied to the board's GPU and TensorRT version.
Both the local build and the board build are cached by key in the engines component, so a
redeploy with an unchanged bundle rebuilds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from firmware_scripts.errors import DeployError
from firmware_scripts.fleet_plan import FleetPlan


def engine_groups(plan: FleetPlan, boards: list[str]) -> dict[str, list[str]]:
    """engine target -> precisions needed by the given boards' agents."""
    groups: dict[str, list[str]] = {}
    for b in plan.boards:
        # The aggregator loads the fusion head from the same engines folder.
        if b.board in boards and (b.part is not None or "aggregator" in b.services):
            wanted = groups.setdefault(b.target, [])
            if b.precision not in wanted:
                wanted.append(b.precision)
    return groups


def build_local_engines(bundle_dir: Path, engines_root: Path, groups: dict[str, list[str]],
                        echo: Callable[[str], None], dry_run: bool) -> dict[str, Path]:
    """target -> local engines folder to ship. In a dry run only says what would be built."""
    out: dict[str, Path] = {}
    for target, precisions in sorted(groups.items()):
        folder = engines_root / target
        out[target] = folder
        for precision in precisions:
            echo(f"vitfleet engines build --bundle {bundle_dir} --out {folder} --precision {precision} "
                 f"--target {target}")
            if dry_run:
                continue
            try:
                from engines.build import build_engines
            except ImportError as exc:
                raise DeployError(f"the engines component is not importable ({exc}); run make setup") from exc
            build_engines(bundle_dir, folder, precision=precision, target=target)
    return out
