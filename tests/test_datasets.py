"""Data sets read from real files: the Debian Fashion-MNIST idx files, ImageFolder trees, CIFAR pickles."""

from __future__ import annotations

import gzip
import pickle
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from vitfleet.datasets import (
    FASHION_MNIST_CLASSES,
    DatasetError,
    load_cifar,
    load_dataset,
    load_fashion_mnist,
    load_image_folder,
    read_idx,
)


def test_fashion_mnist_reads_the_debian_files() -> None:
    train = load_fashion_mnist("train")
    test = load_fashion_mnist("test")
    assert train.images.shape == (60000, 28, 28, 1) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 28, 28, 1)
    assert train.class_names == FASHION_MNIST_CLASSES
    assert np.bincount(train.labels).tolist() == [6000] * 10  # the published split is balanced
    assert 0 < train.images.mean() < 255


def test_stratified_head_is_balanced_and_deterministic() -> None:
    train = load_fashion_mnist("train")
    a, b = train.stratified_head(500, seed=3), train.stratified_head(500, seed=3)
    assert np.bincount(a.labels).tolist() == [50] * 10
    assert np.array_equal(a.images, b.images)


def test_wrong_data_dir_gives_install_hint(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("train", tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("test", tmp_path)  # exists, but holds no idx files


def test_env_var_overrides_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITFLEET_DATA", str(tmp_path))
    with pytest.raises(DatasetError, match=str(tmp_path)):
        load_fashion_mnist("train")


def test_truncated_idx_file_is_refused(tmp_path: Path) -> None:
    src = Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
    raw = gzip.decompress(src.read_bytes())
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(raw[:100])
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(tmp_path / "t10k-labels-idx1-ubyte")


def test_image_folder_keeps_class_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (tmp_path / "train" / name).mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(tmp_path / "train" / name / f"{i}.png"), rng.integers(0, 255, (40, 30, 3), dtype=np.uint8))
    (tmp_path / "train" / "dog" / "notes.txt").write_text("not an image")
    data = load_image_folder(tmp_path / "train", size=32, channels=3)
    assert data.class_names == ["cat", "dog"]
    assert data.images.shape == (6, 32, 32, 3)
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert load_dataset(f"folder:{tmp_path}", "train", size=16, channels=1).images.shape == (6, 16, 16, 1)


def test_cifar10_python_layout(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = [f"c{i}".encode() for i in range(10)]
    with open(tmp_path / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names}, f)
    for i in range(1, 6):
        with open(tmp_path / f"data_batch_{i}", "wb") as f:
            pickle.dump({b"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8), b"labels": [1, 2, 3, 4]}, f)
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": rng.integers(0, 255, (2, 3072), dtype=np.uint8), b"labels": [0, 9]}, f)
    train = load_cifar("10", "train", tmp_path)
    assert train.images.shape == (20, 32, 32, 3)
    assert train.class_names[0] == "c0"
    assert load_cifar("10", "test", tmp_path).labels.tolist() == [0, 9]


def test_cifar_loader_refuses_code_in_pickles(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": Evil()}, f)
    with pytest.raises(DatasetError, match="refusing"):
        load_cifar("10", "train", tmp_path)


def test_cli_missing_dataset_is_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vitfleet.cli", "teacher", "--data-dir", str(tmp_path), "--out", str(tmp_path / "t")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "apt-get install dataset-fashion-mnist" in result.stderr
    assert "Traceback" not in result.stderr
