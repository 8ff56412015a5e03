"""DeViT and ED-ViT decomposition on a tiny real teacher and a real Fashion-MNIST slice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from vitfleet.decompose.bundle import BundleError, load_fusion, load_part, read_bundle
from vitfleet.decompose.dekd import QKVTap, dekd_loss, relation, relation_loss
from vitfleet.decompose.fusion_training import FusionRecipe
from vitfleet.decompose.part_training import train_part
from vitfleet.decompose.partition import (
    PartitionError,
    confusion_partition,
    local_label_maps,
    random_partition,
    validate_partition,
)
from vitfleet.decompose.pipeline import DecomposeOptions, decompose_teacher
from vitfleet.decompose.prune import prune_classwise
from vitfleet.decompose.students import PartRecipe, subset_data
from vitfleet.decompose.teacher import load_teacher
from vitfleet.decompose.teacher_targets import compute_targets
from vitfleet.decompose.training import to_tensors
from vitfleet.decompose.vit_arch import ViTArch, build_vit, count_params

FAST = dict(
    train_limit=1500,
    test_limit=300,
    part_recipe=PartRecipe(epochs=2, batch_size=64),
    fusion_recipe=FusionRecipe(epochs=3, batch_size=128),
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("k", [2, 3, 4, 10])
def test_random_partition_covers_each_class_once(k: int) -> None:
    partition = random_partition(10, k, seed=1)
    validate_partition(partition, 10)
    assert sorted(c for p in partition for c in p) == list(range(10))
    assert max(map(len, partition)) - min(map(len, partition)) <= 1
    assert partition == random_partition(10, k, seed=1)
    maps = local_label_maps(partition, 10)
    for part, classes in enumerate(partition):
        assert maps[part, classes].tolist() == list(range(len(classes)))


def test_confusion_partition_groups_confused_classes() -> None:
    confusion = np.eye(10) * 100
    confusion[0, 6] = confusion[6, 0] = 40  # shirt vs t-shirt
    confusion[2, 4] = confusion[4, 2] = 30  # pullover vs coat
    confusion[5, 7] = 20  # sandal vs sneaker
    partition = confusion_partition(confusion, 3)
    validate_partition(partition, 10)
    group = {c: i for i, p in enumerate(partition) for c in p}
    assert group[0] == group[6] and group[2] == group[4] and group[5] == group[7]


def test_more_parts_than_classes_is_refused() -> None:
    with pytest.raises(PartitionError, match="--parts <= 10"):
        random_partition(10, 11)


def test_pruned_parts_are_physically_smaller_and_run(tiny_teacher, fmnist_slices) -> None:
    folder, card = tiny_teacher
    teacher, _ = load_teacher(folder)
    x, y = to_tensors(fmnist_slices[0].head(256), card.preprocessing)
    for shape in ("width", "heads"):
        pruned = prune_classwise(teacher, x, y, 0.5, shape)
        assert count_params(pruned) < 0.6 * count_params(teacher)
        assert pruned(x[:4]).shape == (4, 10)
        if shape == "width":
            assert pruned.patch_embed.proj.out_channels < teacher.patch_embed.proj.out_channels
        else:
            assert sum(b.attn.num_heads for b in pruned.blocks) < sum(b.attn.num_heads for b in teacher.blocks)


def test_relation_loss_between_different_widths() -> None:
    big = build_vit(ViTArch(img_size=28, patch_size=7, in_chans=1, num_classes=3, embed_dim=64, depth=4, num_heads=4))
    small = build_vit(ViTArch(img_size=28, patch_size=7, in_chans=1, num_classes=3, embed_dim=16, depth=2, num_heads=2))
    x = torch.randn(8, 1, 28, 28)
    t_tap, s_tap = QKVTap(big, 1), QKVTap(small, 0)
    big(x)
    small(x)
    t_rel, s_rel = t_tap.relations(), s_tap.relations()
    assert t_rel.shape == s_rel.shape == (8, 3, 17, 17)
    loss = relation_loss(t_rel, s_rel, (0.2, 0.1, 0.3), 2)
    assert torch.isfinite(loss) and loss > 0
    assert relation_loss(t_rel, t_rel, (0.2, 0.1, 0.3), 2).abs() < 1e-5  # KL(p‖p) = 0
    m = torch.randn(2, 5, 8)
    assert torch.allclose(relation(m, 4).exp().sum(-1), torch.ones(2, 5))


def test_dekd_losses_are_finite_and_fall(tiny_teacher, fmnist_slices) -> None:
    folder, card = tiny_teacher
    teacher, _ = load_teacher(folder)
    x, y = to_tensors(fmnist_slices[0].head(1000), card.preprocessing)
    targets = compute_targets(teacher, x)
    classes = [0, 3, 6]
    student = prune_classwise(teacher, x, y, 0.6, "width")
    from vitfleet.decompose.prune import replace_head

    student = replace_head(student, teacher.head, classes, other_class=False)
    data = subset_data(x, y, classes, targets)
    assert set(data.y_local.tolist()) == {0, 1, 2}
    parts = {}
    tap = QKVTap(student, 1)
    logits = student(data.x[:32])
    parts["before"] = dekd_loss(
        logits,
        data.y_local[:32],
        data.teacher_local[:32],
        data.teacher_rel[:32].float(),
        tap.relations(),
        len(student.blocks),
    )
    tap.remove()
    assert all(torch.isfinite(v) for v in parts["before"].values())
    assert parts["before"]["relation"] > 0
    losses = train_part(student, data, "devit", PartRecipe(epochs=4, batch_size=32, lr=2e-3))
    assert all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


@pytest.fixture(scope="module")
def devit_bundle(tiny_teacher, tmp_path_factory) -> Path:
    folder, _ = tiny_teacher
    out = tmp_path_factory.mktemp("devit3")
    torch.set_num_threads(1)
    decompose_teacher(folder, out, DecomposeOptions(method="devit", parts=3, part_budget=0.3, **FAST))
    return out


def test_devit_bundle_is_complete_and_accurate(devit_bundle: Path, tiny_teacher) -> None:
    card = read_bundle(devit_bundle)
    validate_partition(card.partition, 10)
    assert [len(p) for p in card.partition] in ([4, 3, 3], [3, 4, 3], [3, 3, 4])
    teacher_params = card.teacher.params
    for spec in card.parts:
        assert spec.params < 0.45 * teacher_params
        assert spec.feature_dim < 48  # narrower than the teacher's 48
        assert 2 * spec.feature_dim <= 512  # fp16 payload per frame
    m = card.metrics
    assert m["fused_top1"] > 0.5, m
    for i in range(3):
        assert m[f"top1_without_part{i}"] > 0.2, m  # degraded, not broken (chance is 0.1)
    x = torch.randn(2, 1, 28, 28)
    feats = torch.cat([load_part(devit_bundle, i)(x) for i in range(3)], dim=1)
    assert load_fusion(devit_bundle)(feats, torch.ones(2, 3)).shape == (2, 10)


def test_edvit_bundle_two_parts(tiny_teacher, tmp_path: Path) -> None:
    folder, _ = tiny_teacher
    card = decompose_teacher(folder, tmp_path, DecomposeOptions(method="edvit", parts=2, part_budget=0.35, **FAST))
    assert card.fusion.kind == "mlp"
    for spec in card.parts:
        assert spec.other_class and spec.arch.num_classes == len(spec.classes) + 1
        assert spec.params <= 0.35 * card.teacher.params
    assert card.metrics["fused_top1"] > 0.5, card.metrics


def test_decompose_resumes_finished_parts(devit_bundle: Path, tiny_teacher) -> None:
    folder, _ = tiny_teacher
    before = {p.name: p.stat().st_mtime_ns for p in devit_bundle.glob("part*.safetensors")}
    decompose_teacher(folder, devit_bundle, DecomposeOptions(method="devit", parts=3, part_budget=0.3, **FAST))
    after = {p.name: p.stat().st_mtime_ns for p in devit_bundle.glob("part*.safetensors")}
    assert before == after


def test_bundle_of_future_version_is_refused(devit_bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "b"
    shutil.copytree(devit_bundle, bad)
    raw = json.loads((bad / "bundle.json").read_text())
    raw["format_version"] = 2
    (bad / "bundle.json").write_text(json.dumps(raw))
    with pytest.raises(BundleError, match="format 2"):
        read_bundle(bad)


def test_bundle_with_missing_part_is_refused(devit_bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "b"
    shutil.copytree(devit_bundle, bad)
    (bad / "part1.safetensors").unlink()
    with pytest.raises(BundleError, match="lacks part1.safetensors"):
        read_bundle(bad)


@pytest.mark.parametrize("method", ["devit", "edvit"])
def test_joint_finetune_keeps_bundle_consistent_and_resumable(method: str, tiny_teacher, tmp_path: Path) -> None:
    folder, _ = tiny_teacher
    opts = DecomposeOptions(method=method, parts=2, part_budget=0.3, joint_epochs=1, **FAST)
    card = decompose_teacher(folder, tmp_path, opts)
    assert card.metrics["fused_top1"] > 0.5, card.metrics
    # Fine-tuning rewrote the part files: the card's checksums must describe the new files.
    for i in range(2):
        assert load_part(tmp_path, i)(torch.zeros(1, 1, 28, 28)).shape[0] == 1
    # The parts it started from are the stage cache: no stage marker beside the fine-tuned files.
    assert not (tmp_path / "part0.json").exists() and (tmp_path / "cache" / "part0.json").exists()
    pre_joint = {p.name: p.read_bytes() for p in (tmp_path / "cache").glob("part*.safetensors")}
    assert pre_joint and all(pre_joint[p.name] != p.read_bytes() for p in tmp_path.glob("part*.safetensors"))

    # A re-run reloads the pre-joint parts (no part retrained) and fine-tunes them again into a valid bundle.
    again = decompose_teacher(folder, tmp_path, opts)
    assert {p.name: p.read_bytes() for p in (tmp_path / "cache").glob("part*.safetensors")} == pre_joint
    assert read_bundle(tmp_path).bundle_id == again.bundle_id

    # Without joint epochs the same parts come back unchanged: the bundle holds the pre-joint files again.
    plain = decompose_teacher(folder, tmp_path, DecomposeOptions(method=method, parts=2, part_budget=0.3, **FAST))
    assert {p.name: p.read_bytes() for p in tmp_path.glob("part*.safetensors")} == pre_joint
    assert read_bundle(tmp_path).bundle_id == plain.bundle_id


def test_partition_cache_is_keyed_by_the_teacher(tmp_path) -> None:
    """A cached partition from another teacher is recomputed, not reused (confusion partitions depend on it)."""
    from vitfleet.decompose.pipeline import DecomposeOptions, _stage_partition

    opts = DecomposeOptions(method="edvit", parts=2)
    y = torch.arange(10)
    first = _stage_partition(tmp_path, opts, y, None, 10, "a" * 64)
    key_a = json.loads((tmp_path / "cache" / "partition.json").read_text())["key"]
    assert _stage_partition(tmp_path, opts, y, None, 10, "a" * 64) == first
    _stage_partition(tmp_path, opts, y, None, 10, "b" * 64)
    assert json.loads((tmp_path / "cache" / "partition.json").read_text())["key"] != key_a


def test_relation_kl_batchmean_is_the_row_mean_times_the_token_count() -> None:
    """DeViT's reference sums the relation KL over the N token rows (KLDivLoss batchmean): N times the row mean."""
    from vitfleet.decompose.dekd import relation_kl

    torch.manual_seed(0)
    t = torch.log_softmax(torch.randn(3, 17, 17), -1)
    s = torch.log_softmax(torch.randn(3, 17, 17), -1)
    row_mean = relation_kl(t, s, "row-mean")
    assert torch.allclose(relation_kl(t, s, "batchmean"), 17 * row_mean)
    reference = torch.nn.KLDivLoss(reduction="batchmean", log_target=True)(s, t)
    assert torch.allclose(relation_kl(t, s, "batchmean"), reference, atol=1e-6)


def test_a_part_that_fits_no_board_is_pruned_harder_and_retrained(
    tiny_teacher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ED-ViT's loop: place after training; a part too big for the board left to it is re-derived smaller.

    The tiny teacher's parts weigh kilobytes, so each parameter is made to cost 200x its usual runtime memory:
    one 1 GB board takes the first part, the 180 MB board cannot hold the second at the asked budget."""
    import vitfleet.placement as placement
    from vitfleet.fleet_config import BoardConfig, FleetConfig

    monkeypatch.setattr(placement, "BYTES_PER_PARAM_AT_RUNTIME", 12 * 200)
    folder, _ = tiny_teacher
    fleet = FleetConfig(
        boards=[
            BoardConfig(name="big", memory_mb=1024, speed=2.0),
            BoardConfig(name="small", memory_mb=180, speed=1.0),
            BoardConfig(name="agg", roles=["aggregator", "camera"]),
        ]
    )
    card = decompose_teacher(
        folder, tmp_path, DecomposeOptions(method="edvit", parts=2, part_budget=0.35, **FAST), fleet=fleet
    )
    assert card.placement is not None and set(card.placement) == {"big", "small"}
    small_part = card.parts[card.placement["small"]]
    assert small_part.params <= placement.params_fitting(180)
    big_part = card.parts[card.placement["big"]]
    assert big_part.params > placement.params_fitting(180)  # only the part that did not fit was shrunk
    assert card.metrics["fused_top1"] > 0.3, card.metrics
