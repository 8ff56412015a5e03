"""The fusion-head extension point: a toy head registered from this file alone (no kit file edited) is built,
trained and reloaded from a bundle through the registry; an unknown head is refused in one sentence naming the
registered ones; and the built-in heads keep the state-dict keys every existing bundle was saved with."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from vitfleet.decompose.bundle import (
    BundleCard,
    BundleError,
    FusionSpec,
    TeacherRef,
    load_fusion,
    read_bundle,
    write_card,
)
from vitfleet.decompose.checkpoints import save_weights
from vitfleet.decompose.fusion_heads import (
    FusionHeadKind,
    fusion_head_names,
    get_fusion_head,
    register_fusion_head,
)
from vitfleet.decompose.fusion_heads import registry as head_registry
from vitfleet.decompose.fusion_heads.base import FusionHead
from vitfleet.decompose.fusion_training import FusionRecipe, fused_accuracy, train_fusion
from vitfleet.decompose.methods import get_method, register_method
from vitfleet.decompose.methods import registry as method_registry
from vitfleet.preprocessing import Preprocessing

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FEATURE_DIMS = [6, 10]
NUM_CLASSES = 3


class ToyHead(FusionHead):
    """A head unlike the built-ins: a ReLU token, normalised before the classifier."""

    def __init__(self, feature_dims: list[int], hidden_dim: int, num_classes: int) -> None:
        super().__init__("toy", feature_dims)
        self.mapper = nn.Linear(self.input_dim, hidden_dim)
        self.norm = nn.LayerNorm(hidden_dim)
        self.classifier = nn.Linear(hidden_dim, num_classes)

    def token(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.norm(torch.relu(self.mapper(self.masked_input(features, mask))))


@pytest.fixture
def toy_head() -> Iterator[FusionHeadKind]:
    """The toy head, registered for one test: both registries forget what the test registers, so the toy is
    gone for every other test."""
    with head_registry._HEADS.scratch(), method_registry._METHODS.scratch():
        yield register_fusion_head(
            FusionHeadKind(
                name="toy", summary="Toy: a normalised ReLU token", build=ToyHead, hidden_dim=lambda d: d // 2
            )
        )


def _separable_batch(n: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """Features whose class is written in both parts' first features, so a head can learn it from either."""
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, NUM_CLASSES, (n,), generator=gen)
    feats = 0.1 * torch.randn(n, sum(FEATURE_DIMS), generator=gen)
    feats[torch.arange(n), y] += 3.0
    feats[torch.arange(n), FEATURE_DIMS[0] + y] += 3.0
    return feats, y


def _card(spec: FusionSpec) -> BundleCard:
    """A bundle card around a fusion head alone (no parts): enough for read_bundle and load_fusion."""
    return BundleCard(
        bundle_id="toy-head-bundle",
        method="devit",
        dataset="fashion-mnist",
        class_names=[str(c) for c in range(NUM_CLASSES)],
        partition=[[0, 1], [2]],
        teacher=TeacherRef(path="teacher", weights_sha256="0" * 64, params=1, flops=1),
        parts=[],
        fusion=spec,
        preprocessing=Preprocessing(size=28, channels=1, mean=[0.5], std=[0.5]),
    )


def test_a_registered_head_is_built_trained_and_reloaded_from_a_bundle(
    toy_head: FusionHeadKind, tmp_path: Path
) -> None:
    assert fusion_head_names()[-1] == "toy"
    method = register_method(replace(get_method("edvit"), name="toymethod", fusion_kind="toy"))
    hidden = method.fusion_hidden(32)
    assert hidden == 16

    head = get_fusion_head("toy").build(FEATURE_DIMS, hidden, NUM_CLASSES)
    assert isinstance(head, ToyHead) and head.kind == "toy"
    feats, y = _separable_batch()
    torch.manual_seed(0)
    losses = train_fusion(head, feats, y, FusionRecipe(epochs=20, batch_size=32, lr=1e-2, part_dropout=0.2))
    assert losses[-1] < losses[0] / 2
    assert fused_accuracy(head, feats, y) == 1.0
    assert fused_accuracy(head, feats, y, missing=0) == 1.0  # the other part carries the class too

    spec = FusionSpec(
        kind="toy",
        feature_dims=FEATURE_DIMS,
        hidden_dim=hidden,
        num_classes=NUM_CLASSES,
        part_dropout=0.2,
        weights_sha256=save_weights(head, tmp_path / "fusion.safetensors"),
    )
    write_card(tmp_path, _card(spec))
    loaded = load_fusion(tmp_path)
    mask = torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0]]).repeat(len(feats) // 3, 1)
    with torch.no_grad():
        assert isinstance(loaded, ToyHead) and torch.equal(loaded(feats, mask), head(feats, mask))


def test_an_unknown_head_is_refused_in_one_sentence_naming_the_registered_ones(tmp_path: Path) -> None:
    assert "toy" not in fusion_head_names()  # the other test's registration did not leak
    with pytest.raises(Exception, match=r"^unknown fusion head 'nope'; use one of devit, mlp$"):
        get_fusion_head("nope")
    fields = dict(feature_dims=FEATURE_DIMS, hidden_dim=8, num_classes=NUM_CLASSES, part_dropout=0.0)
    with pytest.raises(ValidationError, match="unknown fusion head 'nope'; use one of devit, mlp"):
        FusionSpec(kind="nope", weights_sha256="0" * 64, **fields)

    write_card(tmp_path, _card(FusionSpec(kind="mlp", weights_sha256="0" * 64, **fields)))
    raw = json.loads((tmp_path / "bundle.json").read_text())
    raw["fusion"]["kind"] = "nope"
    (tmp_path / "bundle.json").write_text(json.dumps(raw))
    with pytest.raises(BundleError) as refused:
        read_bundle(tmp_path)
    message = str(refused.value)
    assert "field fusion.kind" in message and "unknown fusion head 'nope'; use one of devit, mlp" in message
    assert "\n" not in message and message.count(". ") == 0

    # A method naming an unregistered head is refused when it registers, not after its parts have trained.
    with pytest.raises(ValueError, match="method 'nohead': unknown fusion head 'nope'; use one of devit, mlp"):
        register_method(replace(get_method("devit"), name="nohead", fusion_kind="nope"))
    assert "nohead" not in method_registry.method_names()


@pytest.mark.parametrize(
    ("kind", "activation", "hidden"), [("devit", nn.Identity, 48), ("mlp", nn.GELU, 256)], ids=["devit", "mlp"]
)
def test_the_built_in_heads_keep_their_state_dict_keys(kind: str, activation: type[nn.Module], hidden: int) -> None:
    """The names every saved fusion.safetensors holds: a rename would make existing bundles unloadable."""
    head_kind = get_fusion_head(kind)
    assert head_kind.hidden_dim(48) == hidden
    assert head_kind.matches_teacher_cls is (kind == "devit")
    head = head_kind.build(FEATURE_DIMS, hidden, NUM_CLASSES)
    assert head.kind == kind and isinstance(head.act, activation)
    state = head.state_dict()
    assert list(state) == ["mapper.weight", "mapper.bias", "classifier.weight", "classifier.bias"]
    assert state["mapper.weight"].shape == (hidden, sum(FEATURE_DIMS) + len(FEATURE_DIMS))
    assert state["classifier.weight"].shape == (NUM_CLASSES, hidden)
    # The feature -> part index is rebuilt from feature_dims, never saved.
    assert head.slot_of_feature.tolist() == [0] * FEATURE_DIMS[0] + [1] * FEATURE_DIMS[1]
    features, mask = torch.ones(2, sum(FEATURE_DIMS)), torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    masked = head.masked_input(features, mask)
    assert masked[0, FEATURE_DIMS[0] : sum(FEATURE_DIMS)].abs().sum() == 0  # the silent part's slice is zeroed
    assert head.token(features, mask).shape == (2, hidden) and head(features, mask).shape == (2, NUM_CLASSES)
