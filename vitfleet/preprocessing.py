"""The one preprocessing every stage shares: training, calibration, the camera, the agents.

numpy only, so a board without torch runs exactly the arithmetic training ran.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class Preprocessing(BaseModel):
    """How uint8 HWC pixels become the float32 NCHW tensor a model was trained on."""

    model_config = ConfigDict(extra="forbid")

    size: int = Field(gt=0, description="square input side in pixels")
    channels: int = Field(description="1 (grayscale) or 3 (RGB)")
    mean: list[float]
    std: list[float]

    def model_post_init(self, __context: object) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"mean/std need {self.channels} values each, got {self.mean} / {self.std}")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std values must be positive, got {self.std}")

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, C) already at size x size -> float32 (N, C, H, W)."""
        if images.ndim == 3:
            images = images[None]
        if images.shape[1:] != (self.size, self.size, self.channels):
            raise ValueError(
                f"expected images of shape (N, {self.size}, {self.size}, {self.channels}), got {images.shape}; "
                "load data sets with vitfleet.datasets.load_dataset(..., pre=this) and camera frames "
                "through Preprocessing.prepare()"
            )
        x = images.astype(np.float32) / 255.0
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        """Any uint8 camera frame (H, W), (H, W, 1), BGR (H, W, 3) or BGRA -> uint8 (size, size, channels).

        OpenCV delivers BGR, so the frame is turned into RGB first; from there it is exactly the
        conversion every data set goes through at load time (`fit_image`), so a camera frame and the
        same picture read from a data set give the model identical tensors.
        """
        import cv2  # board dependency, kept out of the training import path

        if frame.dtype != np.uint8:
            raise ValueError(f"frames must be uint8, got {frame.dtype}")
        if frame.ndim == 2:
            frame = frame[..., None]
        if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4):
            raise ValueError(f"frames must be (H, W[, 1|3|4]) arrays, got shape {frame.shape}")
        if frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
        elif frame.shape[2] == 3:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        return fit_image(frame, self.size, self.channels)


def fit_image(image: np.ndarray, size: int, channels: int) -> np.ndarray:
    """The one conversion to a model's input: uint8 RGB (H, W, 3) or gray (H, W[, 1]) -> (size, size, channels).

    Colour first (gray -> RGB by replication, RGB -> luminance with OpenCV's BT.601 weights), then a
    square resize: INTER_AREA when shrinking on both sides (it averages, no aliasing), INTER_LINEAR
    otherwise (INTER_AREA degenerates to nearest-neighbour when enlarging). Non-square images are
    stretched, not cropped, so nothing at the edges of a photo is thrown away.
    """
    import cv2

    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] == channels:
        pass
    elif channels == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif channels == 1 and image.shape[2] == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)[..., None]
    else:
        raise ValueError(f"cannot turn a {image.shape[2]}-channel image into {channels} channels")
    h, w = image.shape[:2]
    if (h, w) != (size, size):
        interpolation = cv2.INTER_AREA if h >= size and w >= size else cv2.INTER_LINEAR
        image = cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=interpolation)
        if image.ndim == 2:
            image = image[..., None]
    return np.ascontiguousarray(image)


def fit_images(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    """`fit_image` over a uint8 (N, H, W, C) batch; a batch already in shape is returned as is."""
    if images.shape[1:] == (size, size, channels):
        return images
    out = np.empty((len(images), size, size, channels), np.uint8)
    for i, image in enumerate(images):
        out[i] = fit_image(image, size, channels)
    return out
