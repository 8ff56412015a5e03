"""The bundle: what `vitfleet decompose` writes and `vitfleet engines` consumes.

bundle.json (this schema) + part{i}.safetensors + fusion.safetensors. Never pickles.
A bundle of another format version, a missing or altered part file, or a card that
does not validate is refused with a message that says how to fix it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from vitfleet.decompose.fusion_heads import get_fusion_head, known_fusion_head
from vitfleet.decompose.vit_arch import ViTArch
from vitfleet.errors import UserError
from vitfleet.preprocessing import Preprocessing
from vitfleet.versioned_card import read_versioned_card

BUNDLE_FORMAT_VERSION = 1

# a registered fusion head (decompose/fusion_heads/); a bundle naming another is refused with the registered ones
FusionHeadName = Annotated[str, AfterValidator(known_fusion_head)]


class BundleError(UserError):
    """A bundle is missing, incomplete, altered or from another version."""


class TeacherRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    weights_sha256: str
    params: int
    flops: int
    test_top1: float | None = None


class PartSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0)
    classes: list[int] = Field(min_length=1, description="global class ids this part specialises in")
    other_class: bool = Field(False, description="local head has an extra 'other' logit (ED-ViT option)")
    arch: ViTArch
    feature_dim: int = Field(gt=0, description="length of the CLS feature vector the board sends")
    params: int
    flops: int
    weights: str
    weights_sha256: str


class FusionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FusionHeadName
    feature_dims: list[int]
    hidden_dim: int
    num_classes: int
    part_dropout: float = Field(ge=0, le=1, description="probability a part was masked per sample in training")
    missing_part: Literal["zero-and-flag"] = Field(
        "zero-and-flag", description="how a missing part enters: its slice is zeroed and its mask bit is 0"
    )
    weights: str = "fusion.safetensors"
    weights_sha256: str


class BundleCard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: int = BUNDLE_FORMAT_VERSION
    bundle_id: str
    method: str  # the registered method that made it (decompose/methods/)
    dataset: str
    class_names: list[str]
    partition: list[list[int]]
    teacher: TeacherRef
    parts: list[PartSpec]
    fusion: FusionSpec
    preprocessing: Preprocessing
    placement: dict[str, int] | None = Field(None, description="board name -> part index, when sized for a fleet")
    metrics: dict[str, float] = {}
    recipe: dict[str, Any] | None = Field(
        None, description="the decompose options that made it (absent before the accuracy ablation)"
    )

    @property
    def num_parts(self) -> int:
        return len(self.parts)


def read_bundle(folder: Path) -> BundleCard:
    card = read_versioned_card(
        Path(folder) / "bundle.json",
        BundleCard,
        BUNDLE_FORMAT_VERSION,
        BundleError,
        "bundle",
        f"create a bundle with: vitfleet decompose --teacher DIR --out {folder}",
        "re-run vitfleet decompose",
    )
    for name in [p.weights for p in card.parts] + [card.fusion.weights]:
        if not (Path(folder) / name).exists():
            raise BundleError(f"bundle {folder} lacks {name}; the bundle is incomplete, re-run vitfleet decompose")
    return card


def write_card(folder: Path, card: BundleCard) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "bundle.json.tmp"
    tmp.write_text(card.model_dump_json(indent=2))
    tmp.replace(folder / "bundle.json")


def load_part(folder: Path, index: int, card: BundleCard | None = None):  # -> PartFeatures
    """Part `index` as the deployed module: image -> CLS features (torch; workstation side)."""
    from vitfleet.decompose.checkpoints import load_weights
    from vitfleet.decompose.part_features import PartFeatures
    from vitfleet.decompose.vit_arch import build_vit

    card = card or read_bundle(folder)
    if not 0 <= index < card.num_parts:
        raise BundleError(f"bundle {folder} has parts 0..{card.num_parts - 1}, not {index}")
    spec = card.parts[index]
    vit = load_weights(build_vit(spec.arch), Path(folder) / spec.weights, spec.weights_sha256)
    return PartFeatures(vit).eval()


def load_fusion(folder: Path, card: BundleCard | None = None):  # -> FusionHead
    from vitfleet.decompose.checkpoints import load_weights

    card = card or read_bundle(folder)
    f = card.fusion
    head = get_fusion_head(f.kind).build(f.feature_dims, f.hidden_dim, f.num_classes)
    return load_weights(head, Path(folder) / f.weights, f.weights_sha256).eval()
