"""Inputs of a run: the teacher, one bundle per (method, K), engines per precision, all reused when present.

Layout under --runs: bundle-<method>-<K>/ (K=4 ones are usually made beforehand by `vitfleet decompose`;
missing ones are decomposed here with the settings' recipe), bench/engines/<bundle id>-<precision>/.
Quick mode also trains a tiny teacher under --runs/teacher.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vitfleet.bench.settings import BenchSettings
from vitfleet.errors import UserError


class BenchInputError(UserError):
    """The teacher or a bundle the benchmark needs is missing or unusable."""


@dataclass(frozen=True)
class FleetInputs:
    method: str
    parts: int
    bundle_dir: Path
    engines: dict[str, Path]  # precision -> engines folder
    created_here: bool  # decomposed by this run (recipe in the report)
    deviations: tuple[str, ...] = ()  # how its recipe differs from `vitfleet decompose`'s defaults

    def label(self, precision: str, mark: bool = True) -> str:
        """The contender's name; a bundle not made with the default recipe is marked † in every table."""
        return f"{self.method} K={self.parts} {precision}" + (" †" if mark and self.deviations else "")


def ensure_teacher(settings: BenchSettings, progress=None) -> Path:
    if settings.teacher is not None:
        if not (settings.teacher / "teacher.json").exists():
            raise BenchInputError(
                f"{settings.teacher}/teacher.json not found; train it first (make teacher) or "
                "pass --teacher DIR pointing at a trained teacher"
            )
        return settings.teacher
    if not settings.quick:
        raise BenchInputError(
            "the full benchmark needs --teacher DIR (e.g. runs/teacher); use --quick for the tiny self-made setup"
        )
    teacher_dir = settings.runs / "teacher"
    if not (teacher_dir / "teacher.json").exists():
        from vitfleet.datasets import load_dataset
        from vitfleet.decompose.teacher import TrainRecipe, arch_for_preset, train_teacher

        train = load_dataset("fashion-mnist", "train").stratified_head(settings.quick_teacher_images)
        test = load_dataset("fashion-mnist", "test").head(settings.test_images)
        # One head: vit_arch.build_vit builds timm's ViT with the part's embed_dim before it swaps in the pruned
        # blocks, and timm asserts embed_dim % num_heads == 0 -- a pruned width like 26 with 4 heads fails.
        arch = arch_for_preset("tiny", train.num_classes, {"num_heads": 1})
        train_teacher(
            train,
            test,
            arch,
            TrainRecipe(epochs=settings.quick_teacher_epochs),
            teacher_dir,
            "fashion-mnist",
            "trained:tiny",
            progress,
        )
    return teacher_dir


def _same_teacher(bundle_dir: Path, teacher_dir: Path) -> bool:
    from vitfleet.decompose.bundle import read_bundle
    from vitfleet.decompose.teacher import read_card

    return read_bundle(bundle_dir).teacher.weights_sha256 == read_card(teacher_dir).weights_sha256


def ensure_bundle(
    settings: BenchSettings, teacher_dir: Path, method: str, parts: int, progress=None
) -> tuple[Path, bool]:
    from vitfleet.decompose.default_options import default_options
    from vitfleet.decompose.pipeline import decompose_teacher

    bundle_dir = settings.runs / f"bundle-{method}-{parts}"
    if (bundle_dir / "bundle.json").exists():
        if not _same_teacher(bundle_dir, teacher_dir):
            raise BenchInputError(
                f"{bundle_dir} was decomposed from another teacher than {teacher_dir}; move it "
                "away or pass the --teacher it came from"
            )
        return bundle_dir, False
    # The bench's own bundles use a shorter recipe (time), marked † in the report; `make decompose` makes the
    # default-recipe ones it reuses.
    opts = default_options(
        method,
        parts,
        train_limit=settings.train_limit,
        test_limit=settings.test_images,
        epochs=settings.part_epochs,
        fusion_epochs=settings.fusion_epochs,
        part_budget=settings.quick_part_budget if settings.quick else None,
    )
    decompose_teacher(teacher_dir, bundle_dir, opts, progress=progress)
    return bundle_dir, True


def ensure_engines(settings: BenchSettings, bundle_dir: Path, precision: str, progress=None) -> Path:
    from vitfleet.decompose.bundle import read_bundle
    from vitfleet.engines.build.from_bundle import build_engines
    from vitfleet.engines.runtime.errors import EngineError
    from vitfleet.engines.runtime.manifest import read_manifest

    card = read_bundle(bundle_dir)
    out = settings.runs / "bench" / "engines" / f"{card.bundle_id[:16]}-{precision}"
    try:
        manifest = read_manifest(out)
        if (
            manifest.bundle_id == card.bundle_id
            and manifest.precision == precision
            and any(e.role == "teacher" for e in manifest.entries)
        ):
            return out
    except EngineError:
        pass
    build_engines(
        bundle_dir, out, precision=precision, target="cpu", calib_images=settings.calib_images, progress=progress
    )
    return out


def prepare_fleets(settings: BenchSettings, teacher_dir: Path, progress=None) -> list[FleetInputs]:
    from vitfleet.decompose.bundle import read_bundle
    from vitfleet.decompose.default_options import recipe_deviations

    fleets = []
    for parts in settings.parts:
        for method in settings.methods:
            bundle_dir, created = ensure_bundle(settings, teacher_dir, method, parts, progress)
            engines = {p: ensure_engines(settings, bundle_dir, p, progress) for p in settings.precisions}
            card = read_bundle(bundle_dir)
            deviations = tuple(recipe_deviations(method, parts, card.recipe))
            fleets.append(FleetInputs(method, parts, bundle_dir, engines, created, deviations))
    return fleets
