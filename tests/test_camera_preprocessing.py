"""The camera path (source -> wire -> Preprocessing.prepare -> normalize) feeds a model exactly what training fed it."""

from __future__ import annotations

import cv2
import numpy as np

from vitfleet.agent.protocol import FrameMessage, decode_frame, encode_frame
from vitfleet.camera.sources import open_source
from vitfleet.datasets import load_dataset, load_fashion_mnist
from vitfleet.preprocessing import Preprocessing

FMNIST = Preprocessing(size=28, channels=1, mean=[0.2860], std=[0.3530])


def _through_the_fleet(uri: str, pre: Preprocessing, n: int) -> np.ndarray:
    src = open_source(uri)
    out = []
    for _ in range(n):
        frame = src.read()
        wire = decode_frame(encode_frame(FrameMessage(0, 0, frame.image, frame.label or 0)))
        out.append(pre.normalize(pre.prepare(wire.image))[0])
    return np.stack(out)


def test_fashion_mnist_replay_matches_training_tensors_exactly():
    test = load_fashion_mnist("test")
    fleet = _through_the_fleet("dataset://fashion-mnist/test?limit=64", FMNIST, 64)
    training = FMNIST.normalize(test.images[:64])  # what decompose.training.to_tensors feeds the model
    assert fleet.dtype == np.float32 and fleet.shape == (64, 1, 28, 28)
    assert np.array_equal(fleet, training)


def test_rgb_dataset_replay_matches_training_tensors_exactly(tmp_path):
    """3-channel sets: the source hands out BGR like a camera, prepare() turns it back into training's RGB."""
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / "test" / cls).mkdir(parents=True)
        for i in range(3):
            img = rng.integers(0, 256, (21, 19, 3), dtype=np.uint8)  # not the model size: both paths resize
            cv2.imwrite(str(tmp_path / "test" / cls / f"{i}.png"), img)
    pre = Preprocessing(size=16, channels=3, mean=[0.4, 0.5, 0.6], std=[0.2, 0.25, 0.3])
    data = load_dataset(f"folder:{tmp_path}", "test", size=16, channels=3)
    fleet = _through_the_fleet(f"dataset://folder:{tmp_path}/test?size=16&channels=3", pre, len(data))
    assert np.array_equal(fleet, pre.normalize(data.images))
    # A channel swap would be caught: the red and blue planes differ in this data.
    assert not np.array_equal(fleet[:, 0], fleet[:, 2])


def test_camera_frames_of_another_size_are_resized_to_the_model():
    src = open_source("synthetic://?size=64&channels=3&count=1")
    x = FMNIST.normalize(FMNIST.prepare(src.read().image))
    assert x.shape == (1, 1, 28, 28) and x.dtype == np.float32
