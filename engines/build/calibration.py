"""Calibration images for int8: real training images through the bundle's own preprocessing."""

from __future__ import annotations

import os

import numpy as np

from vitfleet.datasets import load_dataset
from vitfleet.decompose.bundle import BundleCard
from vitfleet.engines.runtime.errors import EngineError


def bundle_images(
    card: BundleCard, split: str, n: int, data_dir: str | os.PathLike[str] | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """n class-balanced images of the bundle's data set as normalised float32 NCHW, with their labels."""
    pre = card.preprocessing
    data = load_dataset(card.dataset, split, data_dir, pre)
    if data.images.shape[1:] != (pre.size, pre.size, pre.channels):
        raise EngineError(
            f"{card.dataset}/{split} images are {data.images.shape[1:]} but the bundle expects "
            f"({pre.size}, {pre.size}, {pre.channels}); point --data-dir at the data the bundle was made from"
        )
    picked = data.stratified_head(n, seed=seed) if split == "train" else data.head(n)
    return pre.normalize(picked.images), picked.labels


class ArrayCalibrationReader:
    """onnxruntime.quantization.CalibrationDataReader over an in-memory batch, one image per step (the
    exported graphs have a static batch of 1)."""

    def __init__(self, input_name: str, images: np.ndarray, batch: int = 1) -> None:
        self.input_name = input_name
        self.images = np.ascontiguousarray(images, dtype=np.float32)
        self.batch = batch
        self.position = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= len(self.images):
            return None
        x = self.images[self.position : self.position + self.batch]
        self.position += self.batch
        return {self.input_name: x}

    def rewind(self) -> None:
        self.position = 0
