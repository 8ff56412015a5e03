"""The path a real user takes, end to end, on data this test makes: their own RGB photos at 48x48 in an
ImageFolder (7 classes), their own fine-tuned timm ViT with patch 16 saved as .safetensors, decomposed into
K=3 parts (3 does not divide 7), int8 engines, then a live fleet over real mosquitto replaying *their* test
split — accuracy equal to the same engines offline — and a camera faster than the fleet.

Every step is the `vitfleet` CLI in a subprocess, as the user runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.timeout(600, func_only=True)

CLASSES = ["red", "green", "blue", "yellow", "cyan", "magenta", "grey"]
COLOURS = [(220, 30, 30), (30, 200, 40), (30, 40, 220), (230, 220, 30), (30, 220, 220), (220, 30, 220), (128, 128, 128)]
SIDE = 48  # neither 28 nor 32: the sizes the demo's data sets come in
TIMM_NAME = "vit_tiny_patch16_224"
TIMM_KWARGS = {"img_size": SIDE, "depth": 4}  # 3x3 patches of 16 px: a patch-16 ViT at the user's size


def _vitfleet(*args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    run = subprocess.run([sys.executable, "-m", "vitfleet.cli", *args], capture_output=True, text=True, timeout=timeout)
    return run


def _ok(run: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-2000:]
    return run


def _make_folder(root: Path, per_class: dict[str, int], seed: int) -> None:
    """Noisy colour photos with a shape in them; mixed sizes and a grayscale file, as real folders have."""
    import cv2

    rng = np.random.default_rng(seed)
    for split, n in per_class.items():
        for c, (name, colour) in enumerate(zip(CLASSES, COLOURS)):
            d = root / split / name
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                h, w = (SIDE + int(rng.integers(-8, 24)), SIDE + int(rng.integers(-8, 24)))
                img = np.clip(rng.normal(0, 40, (h, w, 3)) + np.asarray(colour[::-1]), 0, 255).astype(np.uint8)
                cv2.circle(
                    img, (int(rng.integers(10, w - 10)), int(rng.integers(10, h - 10))), 6 + c, (255, 255, 255), -1
                )
                if i == 0 and split == "train":
                    img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)  # one grayscale file per class
                cv2.imwrite(str(d / f"{i:03d}.png"), img)


def _fine_tune(folder: Path, out: Path) -> None:
    """The user's own checkpoint: a timm ViT trained a little on their folder, weights saved as safetensors."""
    import timm
    import torch
    from safetensors.torch import save_file

    from vitfleet.datasets import load_dataset
    from vitfleet.preprocessing import Preprocessing

    torch.manual_seed(0)
    model = timm.create_model(TIMM_NAME, pretrained=False, num_classes=len(CLASSES), **TIMM_KWARGS)
    cfg = model.pretrained_cfg
    pre = Preprocessing(size=SIDE, channels=3, mean=list(cfg["mean"]), std=list(cfg["std"]))
    data = load_dataset(f"folder:{folder}", "train", pre=pre)
    x, y = torch.from_numpy(pre.normalize(data.images)), torch.from_numpy(data.labels)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for step in range(40):
        idx = torch.randint(0, len(y), (32,), generator=torch.Generator().manual_seed(step))
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out))


@pytest.fixture(scope="module")
def user_engines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("user_path")
    folder = root / "photos"
    _make_folder(folder, {"train": 14, "test": 6}, seed=0)
    ckpt = root / "ft.safetensors"
    _fine_tune(folder, ckpt)
    teacher, bundle, engines = root / "teacher", root / "bundle", root / "engines"
    _ok(
        _vitfleet(
            "teacher",
            "--checkpoint",
            str(ckpt),
            "--arch",
            TIMM_NAME,
            "--vit-kwargs",
            json.dumps(TIMM_KWARGS),
            "--dataset",
            f"folder:{folder}",
            "--out",
            str(teacher),
        )
    )
    _ok(
        _vitfleet(
            "decompose",
            "--teacher",
            str(teacher),
            "--method",
            "edvit",
            "--parts",
            "3",
            "--epochs",
            "1",
            "--fusion-epochs",
            "2",
            "--out",
            str(bundle),
        )
    )
    _ok(_vitfleet("engines", "build", "--bundle", str(bundle), "--out", str(engines), "--precision", "int8"))
    return {"folder": folder, "teacher": teacher, "bundle": bundle, "engines": engines}


def test_user_checkpoint_becomes_a_k3_bundle_of_their_classes(user_engines: dict[str, Path]):
    card = json.loads((user_engines["bundle"] / "bundle.json").read_text())
    assert card["class_names"] == sorted(CLASSES)
    assert card["preprocessing"]["size"] == SIDE and card["preprocessing"]["channels"] == 3
    assert card["dataset"] == f"folder:{user_engines['folder'].resolve()}"
    sizes = sorted(len(p) for p in card["partition"])
    assert len(card["partition"]) == 3 and sizes == [2, 2, 3]
    assert sorted(c for p in card["partition"] for c in p) == list(range(7))
    manifest = json.loads((user_engines["engines"] / "manifest.json").read_text())
    assert manifest["dataset"] == card["dataset"] and manifest["num_parts"] == 3


def test_live_accuracy_on_the_users_own_test_split_equals_offline(user_engines: dict[str, Path], tmp_path: Path):
    run = _vitfleet(
        "demo",
        "--accuracy",
        "--headless",
        "--json",
        "--engines",
        str(user_engines["engines"]),
        "--bundle",
        str(user_engines["bundle"]),
        "--work-dir",
        str(tmp_path / "demo"),
    )
    result = json.loads(_ok(run).stdout)
    n = 6 * len(CLASSES)
    # The replay is the user's folder at the model's size, not Fashion-MNIST.
    assert result["camera"] == f"dataset://folder:{user_engines['folder'].resolve()}/test?size={SIDE}&channels=3"
    assert result["ok"] and result["predictions"] == n and result["lost"] == 0 and result["degraded"] == 0
    assert result["accuracy_matches"] and abs(result["accuracy_diff_pt"]) <= 0.1 + 1e-9
    assert result["accuracy"] > 1.5 / len(CLASSES)  # the fine-tuned teacher learnt something, and the parts kept it


def test_users_fleet_under_an_unpaced_camera_loses_nothing(user_engines: dict[str, Path], tmp_path: Path):
    run = _vitfleet(
        "demo",
        "--frames",
        "150",
        "--fps",
        "0",
        "--headless",
        "--json",
        "--engines",
        str(user_engines["engines"]),
        "--work-dir",
        str(tmp_path / "demo"),
    )
    result = json.loads(_ok(run).stdout)
    assert result["ok"] and result["admitted"] == 150 and result["lost"] == 0 and result["degraded"] == 0
    assert set(result["boards"]) == {"agent0", "agent1", "agent2"}
    assert result["every_board_computed_every_admitted_frame"], result["boards"]
