"""Importing a user's own timm ViT checkpoint: the same predictions as timm, timm's normalisation, and one
clear line for every mistake. Checkpoints are random-init timm models saved by the test (no download)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file
from test_user_data import make_image_folder, one_line_error
from timm.data import resolve_model_data_config
from typer.testing import CliRunner

from vitfleet.cli import app
from vitfleet.datasets import load_test_split_for
from vitfleet.decompose.teacher import load_teacher

runner = CliRunner()
CLASSES = 7
SHAPE = {"img_size": 64}  # patch 16 -> a 4x4 grid: small enough for a 2-core test, a real ViT/DeiT layout


def _timm(name: str, seed: int, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    return timm.create_model(
        name, pretrained=False, num_classes=kwargs.pop("num_classes", CLASSES), **{**SHAPE, **kwargs}
    ).eval()


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.contiguous() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def user_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An RGB 64x64 ImageFolder with 7 classes plus checkpoints in the three layouts users save."""
    root = tmp_path_factory.mktemp("user")
    make_image_folder(root / "imgs", classes=CLASSES, per_class=3, size=64)
    save_file(_state(_timm("vit_tiny_patch16_224", 1)), str(root / "vit.safetensors"))
    torch.save(_state(_timm("deit_tiny_patch16_224", 2)), root / "deit.pth")
    wrapped = {"model": {f"module.{k}": v for k, v in _state(_timm("vit_tiny_patch16_224", 3)).items()}, "epoch": 9}
    torch.save(wrapped, root / "ddp.pt")
    save_file(_state(_timm("vit_tiny_patch16_224", 4, num_classes=5)), str(root / "head5.safetensors"))
    save_file(_state(_timm("vit_tiny_patch16_224", 5, in_chans=1)), str(root / "gray.safetensors"))
    partial = _state(_timm("vit_tiny_patch16_224", 6))
    del partial["blocks.3.mlp.fc1.weight"]
    save_file(partial, str(root / "partial.safetensors"))
    torch.save([torch.zeros(3)], root / "list.pth")
    torch.save(_timm("vit_tiny_patch16_224", 7), root / "pickled.pth")
    (root / "notes.pth").write_text("these are not weights")
    return root


def _import(root: Path, checkpoint: str, arch: str, out: Path, *extra: str):
    return runner.invoke(
        app,
        [
            "teacher",
            "--checkpoint",
            str(root / checkpoint),
            "--arch",
            arch,
            "--dataset",
            f"folder:{root / 'imgs'}",
            "--out",
            str(out),
            *extra,
        ],
    )


@pytest.mark.parametrize(
    "checkpoint, arch, seed",
    [
        ("vit.safetensors", "vit_tiny_patch16_224", 1),
        ("deit.pth", "deit_tiny_patch16_224", 2),
        ("ddp.pt", "vit_tiny_patch16_224", 3),
    ],
)
def test_imported_teacher_predicts_like_timm(
    user_files: Path, tmp_path: Path, checkpoint: str, arch: str, seed: int
) -> None:
    result = _import(user_files, checkpoint, arch, tmp_path / "t", "--vit-kwargs", json.dumps(SHAPE))
    assert result.exit_code == 0, result.output
    teacher, card = load_teacher(tmp_path / "t")
    original = _timm(arch, seed)
    original.load_state_dict(
        torch.load(user_files / "deit.pth")
        if arch.startswith("deit")
        else {k.removeprefix("module."): v for k, v in _load_any(user_files / checkpoint).items()}
    )
    cfg = resolve_model_data_config(original)
    assert card.preprocessing.mean == pytest.approx(list(cfg["mean"]))  # ImageNet for DeiT, 0.5 for the AugReg ViT
    assert card.preprocessing.std == pytest.approx(list(cfg["std"]))
    assert (card.preprocessing.size, card.preprocessing.channels, card.arch.patch_size) == (64, 3, 16)
    test = load_test_split_for(card.dataset, card.preprocessing)
    x = torch.from_numpy(card.preprocessing.normalize(test.images))
    with torch.no_grad():
        ours, theirs = teacher(x), original(x)
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert torch.equal(ours.argmax(1), theirs.argmax(1))
    assert card.metrics["test_top1"] == pytest.approx(float((theirs.argmax(1).numpy() == test.labels).mean()))


def _load_any(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    obj = torch.load(path)
    return obj["model"] if "model" in obj else obj


def test_user_mean_std_override(user_files: Path, tmp_path: Path) -> None:
    result = _import(
        user_files,
        "vit.safetensors",
        "vit_tiny_patch16_224",
        tmp_path / "t",
        "--img-size",
        "64",
        "--mean",
        "0.4,0.45,0.5",
        "--std",
        "0.25",
    )
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "t" / "teacher.json").read_text())
    assert card["preprocessing"]["mean"] == [0.4, 0.45, 0.5] and card["preprocessing"]["std"] == [0.25] * 3


MISTAKES = [
    ("head5.safetensors", "vit_tiny_patch16_224", SHAPE, "head has 5 outputs but"),
    ("gray.safetensors", "vit_tiny_patch16_224", SHAPE, 'has 1 input channels but in_chans is 3; set "in_chans": 1'),
    ("vit.safetensors", "vit_tiny_patch16_224", {**SHAPE, "in_chans": 1}, 'set "in_chans": 3'),
    ("vit.safetensors", "vit_tiny_patch16_224", {}, 'set {"img_size": 64}'),
    ("vit.safetensors", "vit_tiny_patch16_224", {"img_size": 64, "patch_size": 8}, '"patch_size": 16'),
    ("vit.safetensors", "vit_tiny_patch16_224", {"img_size": 60}, "image size"),
    ("vit.safetensors", "vit_tny_patch16_224", SHAPE, "did you mean vit_tiny_patch16_224"),
    ("vit.safetensors", "resnet18", SHAPE, "not a Vision Transformer"),
    ("vit.safetensors", "deit_tiny_distilled_patch16_224", SHAPE, "without a plain class token"),
    ("vit.safetensors", "vit_small_patch16_224", SHAPE, "give --arch the timm name"),
    ("vit.safetensors", "vit_tiny_patch16_224", {"img_size": 64, "imgsize": 64}, "unknown key 'imgsize'"),
    ("partial.safetensors", "vit_tiny_patch16_224", SHAPE, "missing blocks.3.mlp.fc1.weight"),
    ("list.pth", "vit_tiny_patch16_224", SHAPE, "not a state dict"),
    ("pickled.pth", "vit_tiny_patch16_224", SHAPE, "torch.save(model.state_dict()"),
    ("notes.pth", "vit_tiny_patch16_224", SHAPE, "neither a torch checkpoint nor a safetensors file"),
    ("absent.safetensors", "vit_tiny_patch16_224", SHAPE, "does not exist"),
]


@pytest.mark.parametrize("checkpoint, arch, kwargs, fix", MISTAKES, ids=[m[3][:30] for m in MISTAKES])
def test_import_mistakes_are_one_line(
    user_files: Path, tmp_path: Path, checkpoint: str, arch: str, kwargs: dict, fix: str
) -> None:
    result = _import(user_files, checkpoint, arch, tmp_path / "t", "--vit-kwargs", json.dumps(kwargs))
    assert fix in one_line_error(result)
    assert not (tmp_path / "t").exists()


def test_head_mismatch_in_a_real_process(user_files: Path, tmp_path: Path) -> None:
    """The same contract seen from a shell: stderr holds one line, exit code 2."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vitfleet.cli",
            "teacher",
            "--checkpoint",
            str(user_files / "head5.safetensors"),
            "--arch",
            "vit_tiny_patch16_224",
            "--vit-kwargs",
            json.dumps(SHAPE),
            "--dataset",
            f"folder:{user_files / 'imgs'}",
            "--out",
            str(tmp_path / "t"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "pydantic.dev" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "head has 5 outputs but" in lines[0] and "has 7 classes" in lines[0]


def test_create_model_never_downloads() -> None:
    """pretrained=False builds the module tree only: no hub access even with the network forbidden."""
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network access attempted')\n"
        "socket.socket.connect = refuse\nsocket.create_connection = refuse\n"
        "import timm\nm = timm.create_model('vit_base_patch16_224', pretrained=False, num_classes=5, weight_init='skip')\n"
        "print(type(m).__name__, m.pretrained_cfg['mean'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("VisionTransformer")
