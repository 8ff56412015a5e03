"""Finite sources that need no camera: an image folder, a data set replay, synthetic frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vitfleet.camera.frame_source import CameraError, Frame, FrameSource
from vitfleet.camera.opencv_source import IMAGE_SUFFIXES, as_hwc
from vitfleet.camera.source_spec import CameraUriError, SourceSpec


class DirectorySource(FrameSource):
    def __init__(self, spec: SourceSpec) -> None:
        self.root = Path(spec.target).expanduser()
        if not self.root.is_dir():
            raise CameraError(f"image folder {self.root} does not exist; give dir://<folder with images>")
        self.files = sorted(p for p in self.root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise CameraError(f"image folder {self.root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self._i = 0

    def read(self) -> Frame | None:
        import cv2

        while self._i < len(self.files):
            path, index = self.files[self._i], self._i
            self._i += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return Frame(image, None, index)
            # An unreadable file in a watched folder is skipped, not fatal.
        return None

    def __len__(self) -> int:
        return len(self.files)


class DatasetSource(FrameSource):
    """dataset://<name>/<split>: the split's images in order, each with its label.

    Images come out exactly as training saw them (uint8, same size); 3-channel sets
    are handed out in BGR so that Preprocessing.prepare's BGR->RGB turns them back
    into the RGB arrays training normalised.
    """

    def __init__(self, spec: SourceSpec) -> None:
        from vitfleet.datasets import load_dataset  # numpy-only module, no torch

        name, sep, split = spec.target.rstrip("/").rpartition("/")
        if not sep or not name or split not in ("train", "test"):
            raise CameraUriError(
                f"dataset URI {spec.uri!r} must look like dataset://<name>/<train|test>, "
                "e.g. dataset://fashion-mnist/test"
            )
        # size/channels only matter for folder: data sets (resized at load, as training did).
        data = load_dataset(
            name,
            split,
            spec.options.get("data_dir"),
            size=spec.int_option("size", 32) or 32,
            channels=spec.int_option("channels", 3) or 3,
        )
        start = spec.int_option("start", 0) or 0
        limit = spec.int_option("limit", None)
        stop = len(data) if limit is None else min(len(data), start + limit)
        self.images = data.images[start:stop]
        self.labels = data.labels[start:stop]
        self.class_names = data.class_names
        self.start = start
        self._i = 0

    def read(self) -> Frame | None:
        if self._i >= len(self.images):
            return None
        image = self.images[self._i]
        if image.shape[2] == 3:
            image = np.ascontiguousarray(image[..., ::-1])
        frame = Frame(image, int(self.labels[self._i]), self.start + self._i)
        self._i += 1
        return frame

    def __len__(self) -> int:
        return len(self.images)


class SyntheticSource(FrameSource):
    """A moving gradient with the frame number burnt in: deterministic, no hardware, no files."""

    def __init__(self, spec: SourceSpec) -> None:
        self.size = spec.int_option("size", 64) or 64
        self.channels = spec.int_option("channels", 3)
        if self.channels not in (1, 3):
            raise CameraUriError(f"synthetic://?channels= must be 1 or 3, got {self.channels}")
        self.count = spec.int_option("count", None)
        self._i = 0
        ramp = np.linspace(0, 255, self.size, dtype=np.float32)
        self._base = (ramp[None, :] + ramp[:, None]) / 2

    def read(self) -> Frame | None:
        if self.count is not None and self._i >= self.count:
            return None
        shifted = np.roll(self._base, self._i % self.size, axis=1)
        image = shifted.astype(np.uint8)
        image = as_hwc(image) if self.channels == 1 else np.stack([image, image[::-1], image.T], axis=2)
        image = np.ascontiguousarray(image)
        image[:4, : min(self.size, 32)] = self._i % 256  # a visible per-frame marker
        frame = Frame(image, None, self._i)
        self._i += 1
        return frame

    def __len__(self) -> int:
        return self.count or 0
