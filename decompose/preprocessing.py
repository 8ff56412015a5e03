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
                "resize and convert with Preprocessing.prepare()"
            )
        x = images.astype(np.float32) / 255.0
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        """Any uint8 camera frame (H, W), (H, W, 1) or BGR (H, W, 3) -> uint8 (size, size, channels).

        Grayscale models get a luminance image; RGB models get RGB (OpenCV delivers BGR).
        """
        import cv2  # board dependency, kept out of the training import path

        if frame.dtype != np.uint8:
            raise ValueError(f"frames must be uint8, got {frame.dtype}")
        if frame.ndim == 2:
            frame = frame[..., None]
        if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4):
            raise ValueError(f"frames must be (H, W[, 1|3|4]) arrays, got shape {frame.shape}")
        if frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
        if self.channels == 1 and frame.shape[2] == 3:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)[..., None]
        elif self.channels == 3 and frame.shape[2] == 1:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        elif self.channels == 3:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        if frame.shape[:2] != (self.size, self.size):
            frame = cv2.resize(frame, (self.size, self.size), interpolation=cv2.INTER_AREA)
            if frame.ndim == 2:
                frame = frame[..., None]
        return frame
