"""The frame-source interface every camera implements (the implementations import this, the factory in
camera/sources.py imports them).

Every source yields uint8 (H, W, C) frames with C = 1 or 3, colour in OpenCV's BGR order (what
Preprocessing.prepare expects), plus the ground-truth label when the source knows it (data set replays).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vitfleet.errors import UserError


class CameraError(UserError):
    """A source that cannot be opened; the message says what to check."""


class SourceLost(RuntimeError):
    """A live source stopped delivering frames (unplugged camera, dropped stream)."""


@dataclass(frozen=True)
class Frame:
    image: np.ndarray
    label: int | None = None
    index: int = 0


class FrameSource:
    """read() returns the next frame, None at the end of a finite source; live sources raise SourceLost."""

    live: bool = False
    class_names: list[str] | None = None

    def read(self) -> Frame | None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __len__(self) -> int:
        """Number of frames of a finite source; 0 when unknown or live."""
        return 0
