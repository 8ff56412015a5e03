"""Teacher training, checkpoints and evaluation on a real Fashion-MNIST slice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from vitfleet.decompose.checkpoints import CheckpointError, save_weights
from vitfleet.decompose.evaluation import evaluate_teacher
from vitfleet.decompose.teacher import (
    TrainRecipe,
    arch_for_preset,
    import_checkpoint,
    load_teacher,
    read_card,
    train_teacher,
)
from vitfleet.decompose.vit_arch import build_vit


def test_tiny_teacher_loss_falls_and_card_is_complete(tiny_teacher) -> None:
    folder, card = tiny_teacher
    assert card.metrics["last_loss"] < card.metrics["first_loss"] - 0.3
    assert card.metrics["test_top1"] > 0.5  # 10 classes: chance is 0.1
    assert card.class_names[0] == "T-shirt/top"
    assert card.preprocessing.size == 28 and card.preprocessing.channels == 1
    assert (folder / "teacher.safetensors").exists()


def test_checkpoint_round_trips_exactly(tiny_teacher, tmp_path: Path) -> None:
    folder, _ = tiny_teacher
    model, card = load_teacher(folder)
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    again, _ = load_teacher(copy)
    for (k, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(model(x), again(x))


def test_eval_is_deterministic(tiny_teacher, fmnist_slices) -> None:
    folder, _ = tiny_teacher
    _, test = fmnist_slices
    first = evaluate_teacher(folder, test.head(200))
    second = evaluate_teacher(folder, test.head(200))
    assert first["top1"] == second["top1"]
    assert first["params"] > 0 and first["flops_per_image"] > first["params"]


def test_corrupted_weights_are_refused(tiny_teacher, tmp_path: Path) -> None:
    folder, _ = tiny_teacher
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    data = (bad / "teacher.safetensors").read_bytes()
    (bad / "teacher.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="sha256"):
        load_teacher(bad)


def test_foreign_weights_are_refused_with_the_mismatch(tiny_teacher, tmp_path: Path) -> None:
    folder, card = tiny_teacher
    bad = tmp_path / "foreign"
    shutil.copytree(folder, bad)
    other = build_vit(card.arch.model_copy(update={"depth": 2}))
    sha = save_weights(other, bad / "teacher.safetensors")
    raw = json.loads((bad / "teacher.json").read_text())
    raw["weights_sha256"] = sha  # a consistent card that points at the wrong model's weights
    (bad / "teacher.json").write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match="does not fit the architecture"):
        load_teacher(bad)


def test_future_card_version_is_refused(tiny_teacher, tmp_path: Path) -> None:
    folder, _ = tiny_teacher
    bad = tmp_path / "future"
    shutil.copytree(folder, bad)
    raw = json.loads((bad / "teacher.json").read_text())
    raw["format_version"] = 99
    (bad / "teacher.json").write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match="teacher card format 99 but this vitfleet reads format 1"):
        read_card(bad)


def test_training_resumes_from_its_state(fmnist_slices, tmp_path: Path) -> None:
    train, test = fmnist_slices
    train, test = train.head(256), test.head(64)
    arch = arch_for_preset("tiny", 10)
    torch.set_num_threads(1)
    first = train_teacher(train, test, arch, TrainRecipe(epochs=1, batch_size=64), tmp_path, "fashion-mnist", "t")
    progress = json.loads((tmp_path / "train-state" / "progress.json").read_text())
    assert progress["epoch"] == 1
    second = train_teacher(train, test, arch, TrainRecipe(epochs=2, batch_size=64), tmp_path, "fashion-mnist", "t")
    assert json.loads((tmp_path / "train-state" / "progress.json").read_text())["epoch"] == 2
    assert second.metrics["train_seconds"] >= first.metrics["train_seconds"]


def test_import_timm_checkpoint(tmp_path: Path, fmnist_slices) -> None:
    import timm
    from safetensors.torch import save_file

    _, test = fmnist_slices
    kwargs = dict(img_size=28, patch_size=7, in_chans=1)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10, **kwargs)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "ft.safetensors"))
    card = import_checkpoint(
        tmp_path / "ft.safetensors",
        "vit_tiny_patch16_224",
        tmp_path / "t",
        "fashion-mnist",
        test.class_names,
        test.head(32),
        kwargs,
    )
    assert card.arch.embed_dim == 192 and card.arch.patch_size == 7
    loaded, _ = load_teacher(tmp_path / "t")
    x = torch.randn(2, 1, 28, 28)
    model.eval()
    assert torch.allclose(loaded(x), model(x), atol=1e-5)
    with pytest.raises(CheckpointError, match="does not match"):
        import_checkpoint(
            tmp_path / "ft.safetensors",
            "vit_small_patch16_224",
            tmp_path / "t2",
            "fashion-mnist",
            test.class_names,
            None,
            kwargs,
        )


def test_forward_precision_modes() -> None:
    from vitfleet.decompose.training import autocast_dtype, cpu_has_bf16, forward_precision

    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, "fp32") is None and autocast_dtype(cpu, "bf16") is torch.bfloat16
    # auto: bf16 only where the CPU has native bf16 (emulated bf16 is slower than fp32)
    assert autocast_dtype(cpu, "auto") is (torch.bfloat16 if cpu_has_bf16() else None)
    layer, x = torch.nn.Linear(8, 4), torch.randn(2, 8)
    with forward_precision(cpu, "bf16"):
        assert layer(x).dtype is torch.bfloat16
    with forward_precision(cpu, "fp32"):
        assert layer(x).dtype is torch.float32
    assert layer.weight.dtype is torch.float32  # weights stay fp32 for the optimizer and the checkpoint


def test_augment_flips_per_image_and_translates_only_when_asked(fmnist_slices) -> None:
    from vitfleet.decompose.training import augment, to_tensors
    from vitfleet.preprocessing import Preprocessing

    train, _ = fmnist_slices
    x, _ = to_tensors(train.head(64), Preprocessing(size=28, channels=1, mean=[0.286], std=[0.353]))
    flipped_only = augment(x, torch.Generator().manual_seed(0), pad=0)
    same = (flipped_only == x).flatten(1).all(1)
    mirrored = (flipped_only == x.flip(3)).flatten(1).all(1)
    assert bool((same | mirrored).all())  # the default teacher recipe: no pixel moves except by a mirror
    assert 10 < int(mirrored.sum()) < 54  # flips are drawn per image, about half of them
    shifted = [augment(x, torch.Generator().manual_seed(s), pad=2, flip=False) for s in range(8)]
    assert any(not torch.equal(s, x) for s in shifted)  # translation moves the pixels when it is asked for
    assert all(s.shape == x.shape for s in shifted)


def test_presets_fit_the_data_size_and_channels() -> None:
    from vitfleet.decompose.vit_arch import ArchError

    assert arch_for_preset("fmnist", 10).model_dump(include={"img_size", "patch_size", "in_chans"}) == {
        "img_size": 28,
        "patch_size": 4,
        "in_chans": 1,
    }  # the Fashion-MNIST teacher is unchanged
    tiny40 = arch_for_preset("tiny", 7, img_size=40, in_chans=3)
    assert (tiny40.img_size, tiny40.patch_size, tiny40.in_chans) == (40, 10, 3)  # tiny's 4x4 token grid kept
    assert arch_for_preset("small", 10, img_size=32, in_chans=3).patch_size == 4
    assert arch_for_preset("small", 10, img_size=64, in_chans=3).patch_size == 8
    with pytest.raises(ArchError, match="image size 32 is not a multiple of patch size 7: use patch_size 4 or 8"):
        arch_for_preset("tiny", 7, {"img_size": 32, "patch_size": 7}, in_chans=3)
    with pytest.raises(ArchError, match="unknown key 'depht'"):
        arch_for_preset("tiny", 7, {"depht": 3})
