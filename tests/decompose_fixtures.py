"""Session fixtures for the model-side tests: a tiny teacher trained for real on a Fashion-MNIST slice."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vitfleet.datasets import ImageDataset, load_fashion_mnist
from vitfleet.decompose.teacher import TeacherCard, TrainRecipe, arch_for_preset, train_teacher

TRAIN_IMAGES = 3000
TEST_IMAGES = 500


@pytest.fixture
def one_torch_thread():
    """Tiny models on a shared 2-core machine train faster on one thread (and leave the other to the suite)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def fmnist_slices() -> tuple[ImageDataset, ImageDataset]:
    return (load_fashion_mnist("train").stratified_head(TRAIN_IMAGES), load_fashion_mnist("test").head(TEST_IMAGES))


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory: pytest.TempPathFactory, fmnist_slices) -> tuple[Path, TeacherCard]:
    """preset `tiny` (48 wide, depth 4, patch 7) trained four epochs on 3,000 images (~74 % test top-1)."""
    train, test = fmnist_slices
    out = tmp_path_factory.mktemp("teacher")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model on a shared 2-core machine: one thread is faster
    try:
        recipe = TrainRecipe(epochs=4, batch_size=64, lr=3e-3, augment=False, warmup_epochs=0.25)
        card = train_teacher(train, test, arch_for_preset("tiny", 10), recipe, out, "fashion-mnist", "trained:tiny")
    finally:
        torch.set_num_threads(threads)
    return out, card
