"""Deploy's engine step: build each board kind's engines once, locally, before anything is shipped.

ONNX Runtime boards (Pi, x86) get finished engines. Jetsons get the same ONNX (fp16/int8 QDQ)
and build their TensorRT plans themselves (board-install.sh runs `vitfleet engines build
--backend tensorrt` there, cached by key), because a plan is tied to the board's GPU and
TensorRT version. One folder per (target, precision), so two boards of one kind with different
precisions never share a manifest. A folder whose manifest already matches the bundle is not
rebuilt: a redeploy of an unchanged bundle ships the same bytes and stays a no-op.

These folders live under fleet.yaml's `engine_builds:` (deploy's key), never under `engines:`, which is the
one folder an agent loads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vitfleet.choices import EnginePrecision, Target, choice_values
from vitfleet.firmware_scripts.errors import DeployError
from vitfleet.firmware_scripts.fleet_plan import BoardPlan, FleetPlan
from vitfleet.fleet_config import FleetConfig

BUILD_FOLDERS = frozenset(f"{t}-{p}" for t in choice_values(Target) for p in choice_values(EnginePrecision))


def engines_key(plan: BoardPlan) -> str:
    return f"{plan.target}-{plan.precision}"


def builds_root(fleet: FleetConfig) -> Path:
    """The parent of deploy's <target>-<precision>/ folders: `engine_builds:`, else engine-builds/ beside `engines`.

    Before `engine_builds:` existed, `engines:` named this folder; such a file is told to rename the key rather
    than deploy silently building a second copy elsewhere."""
    if fleet.engine_builds is not None:
        return fleet.engine_builds
    old = _old_builds(fleet.engines)
    if old:
        raise DeployError(
            f"fleet.yaml's engines: {fleet.engines} holds deploy's per-target builds "
            f"({', '.join(d + '/' for d in old)}) but no manifest.json; rename the key `engines:` to "
            "`engine_builds:` (`engines:` now names the one folder an agent loads)"
        )
    return fleet.engines.parent / "engine-builds"


def _old_builds(engines: Path) -> list[str]:
    """The <target>-<precision>/ folders in an `engines:` folder that is no engines folder itself (no manifest)."""
    if not engines.is_dir() or (engines / "manifest.json").exists():
        return []
    return sorted(d.name for d in engines.iterdir() if d.name in BUILD_FOLDERS and d.is_dir())


def engine_groups(plan: FleetPlan, boards: list[str]) -> dict[str, tuple[str, str]]:
    """folder name -> (engine target, precision) needed by the given boards."""
    groups: dict[str, tuple[str, str]] = {}
    for b in plan.boards:
        # The aggregator loads the fusion head from the same engines folder.
        if b.board in boards and (b.part is not None or "aggregator" in b.services):
            groups[engines_key(b)] = (b.target, b.precision)
    return groups


def engines_up_to_date(bundle_dir: Path, folder: Path, precision: str) -> bool:
    """Every part at `precision` and the fusion head, made from this bundle's weights, files intact."""
    from vitfleet.decompose.bundle import read_bundle
    from vitfleet.engines.runtime.errors import EngineError
    from vitfleet.engines.runtime.manifest import read_manifest, verified_path

    if not (folder / "manifest.json").exists():
        return False
    try:
        card, manifest = read_bundle(bundle_dir), read_manifest(folder)
        if manifest.bundle_id != card.bundle_id:
            return False
        wanted = [("part", p.index, precision, p.weights_sha256) for p in card.parts]
        wanted.append(("fusion", None, "fp32", card.fusion.weights_sha256))
        for role, part, prec, weights in wanted:
            entry = manifest.lookup(role, part, "onnxruntime", prec)
            if entry.source_weights_sha256 != weights:
                return False
            verified_path(folder, entry)
    except EngineError:
        return False
    return True


def build_local_engines(
    bundle_dir: Path, engines_root: Path, groups: dict[str, tuple[str, str]], echo: Callable[[str], None], dry_run: bool
) -> dict[str, Path]:
    """folder name -> local engines folder to ship. In a dry run only says what would be built."""
    out: dict[str, Path] = {}
    for key, (target, precision) in sorted(groups.items()):
        folder = engines_root / key
        out[key] = folder
        if not dry_run and engines_up_to_date(bundle_dir, folder, precision):
            echo(f"engines {key}: up to date in {folder}")
            continue
        echo(f"vitfleet engines build --bundle {bundle_dir} --out {folder} --precision {precision} --target {target}")
        if dry_run:
            continue
        try:
            from vitfleet.engines.build.from_bundle import build_engines
        except ImportError as exc:
            raise DeployError(f"the engines component is not importable ({exc}); run make setup") from exc
        # No teacher: boards never run it.
        build_engines(bundle_dir, folder, precision=precision, target=target, export_teacher=False)
    return out
