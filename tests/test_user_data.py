"""A user's own ImageFolder: any image size and colour mode, converted once to the teacher's input.

Every folder here is written by the test itself with numpy + OpenCV (real PNG/JPEG files, no mocks).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from vitfleet.cli import app
from vitfleet.datasets import dataset_reference, default_model_size, load_dataset, load_test_split_for, native_shape
from vitfleet.preprocessing import Preprocessing

runner = CliRunner()
RGB40 = Preprocessing(size=40, channels=3, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])


def make_image_folder(
    root: Path, classes: int, per_class: int, size: int, odd_ones: bool = False, seed: int = 0
) -> Path:
    """train/ and test/ with one folder per class: a coloured disc per class on noise (learnable, cheap).

    odd_ones adds, per split, a non-square colour image, a grayscale PNG and a JPEG to class 0."""
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for c in range(classes):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True, exist_ok=True)
            colour = [int(v) for v in rng.integers(60, 256, 3)]
            for i in range(per_class):
                img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
                centre = tuple(int(v) for v in rng.integers(size // 3, 2 * size // 3, 2))
                cv2.circle(img, centre, size // 4, colour, -1)
                cv2.imwrite(str(folder / f"{i}.png"), img)
        if odd_ones:
            folder = root / split / "class0"
            cv2.imwrite(str(folder / "wide.png"), rng.integers(0, 256, (size // 2, size + 17, 3), dtype=np.uint8))
            cv2.imwrite(str(folder / "gray.png"), rng.integers(0, 256, (size + 9, size + 9), dtype=np.uint8))
            cv2.imwrite(str(folder / "photo.jpg"), rng.integers(0, 256, (size * 2, size * 2, 3), dtype=np.uint8))
    return root


def one_line_error(result) -> str:  # noqa: ANN001 - click's Result
    """The CLI's whole answer to a mistake: exit 2, one line, no traceback, no pydantic report."""
    out = result.output.strip()
    assert result.exit_code == 2, (result.exit_code, out, result.exception)
    assert "Traceback" not in out and "pydantic.dev" not in out and "validation error" not in out, out
    assert len(out.splitlines()) == 1, out
    return out


def test_folder_of_any_size_and_mode_loads_at_the_teachers_shape(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path, classes=2, per_class=3, size=40, odd_ones=True)
    rgb = load_dataset(f"folder:{root}", "train", pre=RGB40)
    assert rgb.images.shape == (9, 40, 40, 3) and rgb.images.dtype == np.uint8
    assert rgb.class_names == ["class0", "class1"] and np.bincount(rgb.labels).tolist() == [6, 3]
    gray_index = sorted(p.name for p in (root / "train" / "class0").iterdir()).index("gray.png")
    gray = rgb.images[gray_index]
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 0], gray[..., 2])  # replicated
    small = load_dataset(f"folder:{root}", "train", pre=Preprocessing(size=24, channels=1, mean=[0.5], std=[0.5]))
    assert small.images.shape == (9, 24, 24, 1)


def test_rgb_order_and_luminance(tmp_path: Path) -> None:
    (tmp_path / "test" / "red").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "test" / "red" / "r.png"), np.full((50, 30, 3), (0, 0, 255), np.uint8))  # BGR red
    rgb = load_dataset(f"folder:{tmp_path}", "test", pre=RGB40).images[0]
    assert rgb[..., 0].min() == 255 and rgb[..., 1].max() == 0 and rgb[..., 2].max() == 0
    lum = load_dataset(f"folder:{tmp_path}", "test", pre=Preprocessing(size=40, channels=1, mean=[0.5], std=[0.5]))
    assert int(lum.images.mean().round()) == 76  # BT.601: 0.299 * 255


def test_dataset_and_camera_paths_give_identical_pixels(tmp_path: Path) -> None:
    """A file read by the data set loader and the same picture as a BGR camera frame through prepare()."""
    root = make_image_folder(tmp_path, classes=1, per_class=2, size=40, odd_ones=True)
    files = sorted((root / "test" / "class0").iterdir())
    for pre in (
        RGB40,
        Preprocessing(size=16, channels=1, mean=[0.5], std=[0.5]),
        Preprocessing(size=96, channels=3, mean=[0.5] * 3, std=[0.5] * 3),
    ):  # shrink, gray, enlarge
        loaded = load_test_split_for(f"folder:{root}", pre).images
        camera = np.stack([pre.prepare(cv2.imread(str(f), cv2.IMREAD_COLOR)) for f in files])
        assert np.array_equal(loaded, camera), pre


def test_fashion_mnist_goes_through_the_same_conversion() -> None:
    native = load_dataset("fashion-mnist", "test")
    same = load_dataset("fmnist", "test", pre=Preprocessing(size=28, channels=1, mean=[0.286], std=[0.353]))
    assert same.images is native.images or np.array_equal(same.images, native.images)  # no-op at its own shape
    rgb32 = load_dataset(
        "fashion-mnist", "test", pre=Preprocessing(size=32, channels=3, mean=[0.5] * 3, std=[0.5] * 3)
    ).head(50)
    assert rgb32.images.shape == (50, 32, 32, 3)
    first = Preprocessing(size=32, channels=3, mean=[0.5] * 3, std=[0.5] * 3).prepare(native.images[0])
    assert np.array_equal(rgb32.images[0], first)  # a gray camera frame gets the same pixels


def test_folder_shape_survey_and_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_image_folder(tmp_path / "rgb", classes=2, per_class=4, size=40, odd_ones=True)
    assert native_shape(f"folder:{root}").channels == 3
    assert default_model_size(f"folder:{root}") == 40
    (tmp_path / "gray" / "train" / "a").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "gray" / "train" / "a" / "0.png"), np.zeros((37, 45), np.uint8))
    assert native_shape(f"folder:{tmp_path / 'gray'}").channels == 1
    assert default_model_size(f"folder:{tmp_path / 'gray'}") == 40  # 37 rounded to a multiple of 8
    monkeypatch.chdir(tmp_path)
    assert dataset_reference("folder:rgb") == f"folder:{root.resolve()}"
    assert dataset_reference("Fashion_MNIST") == "fashion-mnist" and dataset_reference("cifar-10") == "cifar10"


def test_cli_trains_a_teacher_on_an_rgb_folder(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "imgs", classes=3, per_class=10, size=40, odd_ones=True)
    out = tmp_path / "teacher"
    result = runner.invoke(
        app,
        [
            "teacher",
            "--dataset",
            f"folder:{root}",
            "--preset",
            "tiny",
            "--epochs",
            "1",
            "--train-limit",
            "24",
            "--batch-size",
            "8",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    card = json.loads((out / "teacher.json").read_text())
    assert card["preprocessing"]["size"] == 40 and card["preprocessing"]["channels"] == 3
    assert card["arch"]["in_chans"] == 3 and card["arch"]["patch_size"] == 10  # tiny keeps its 4x4 token grid
    assert card["dataset"] == f"folder:{root.resolve()}"
    cwd = os.getcwd()
    os.chdir(tmp_path.parent)  # another directory: the card's absolute folder reference still reloads the data
    try:
        evaluated = runner.invoke(app, ["eval", "--teacher", str(out), "--json"])
    finally:
        os.chdir(cwd)
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["images"] == 33


@pytest.mark.parametrize(
    "args, fix",
    [
        (["--vit-kwargs", '{"img_size": 32, "in_chans": 3, "patch_size": 7}'], "use patch_size 4 or 8"),
        (["--vit-kwargs", "{img_size: 32}"], "not valid JSON"),
        (["--vit-kwargs", '{"img_sise": 32}'], "known keys: img_size"),
        (["--vit-kwargs", '{"depth": 0}'], "depth"),
        (["--preset", "huge"], "choose one of fmnist"),
        (["--mean", "0.5"], "apply to --checkpoint imports"),
    ],
)
def test_training_mistakes_are_one_line(tmp_path: Path, args: list[str], fix: str) -> None:
    root = make_image_folder(tmp_path / "imgs", classes=2, per_class=2, size=40)
    result = runner.invoke(
        app, ["teacher", "--dataset", f"folder:{root}", "--epochs", "1", "--out", str(tmp_path / "t"), *args]
    )
    assert fix in one_line_error(result)
    assert not (tmp_path / "t" / "teacher.json").exists()
