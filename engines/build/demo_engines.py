"""The workstation half of `vitfleet demo`: the engines it runs, and the offline figure its `--accuracy` run
is compared with. Training the demo bundle needs torch, so this lives above the board runtime
(vitfleet.fleet.demo runs the fleet on what this prepares)."""

from __future__ import annotations

from pathlib import Path

from vitfleet.console import progress_bar


def prepare_demo_engines(
    work_dir: Path, bundle: Path | None, engines: Path | None, quiet: bool = False
) -> tuple[Path, Path | None]:
    """(engines folder, bundle folder or None): given, or built (int8, ONNX Runtime) from the given or demo
    bundle and cached under the work dir by bundle id."""
    from vitfleet.engines.runtime.manifest import MANIFEST_NAME, read_manifest

    if engines is not None:
        read_manifest(engines)
        return engines, bundle
    with progress_bar(disable=quiet) as progress:
        if bundle is None:
            from vitfleet.decompose.pipeline import demo_bundle

            bundle = demo_bundle(work_dir, progress)
        from vitfleet.decompose.bundle import read_bundle
        from vitfleet.engines.build.from_bundle import build_engines

        card = read_bundle(bundle)
        engines_dir = work_dir / "engines" / card.bundle_id[:16]
        if (engines_dir / MANIFEST_NAME).exists():
            manifest = read_manifest(engines_dir)
            if manifest.bundle_id == card.bundle_id and manifest.precision == "int8":
                return engines_dir, bundle
        build_engines(bundle, engines_dir, precision="int8", target="cpu", progress=progress)
    return engines_dir, bundle


def engines_check_reference(bundle_dir: Path):
    """The offline reference of a demo whose bundle is at hand: `vitfleet engines check`'s fused accuracy."""

    def reference(engines_dir: Path, n: int) -> tuple[float, str]:
        from vitfleet.engines.check import check_engines

        return float(
            check_engines(engines_dir, bundle_dir, n_images=n)["fused_accuracy_engine"]
        ), "vitfleet engines check"

    return reference
