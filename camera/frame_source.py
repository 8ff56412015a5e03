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
    # Wall-clock capture time (time.time_ns() scale) taken from the stream's own clock; None when the source has
    # none, and the camera node stamps the frame when it reads it.
    capture_ns: int | None = None


@dataclass(frozen=True)
class SourceInfo:
    """What a source really delivers, as measured or as the stream declares it (None: not known yet)."""

    fps: float | None = None
    width: int | None = None
    height: int | None = None
    clock: str = "read"  # where Frame.capture_ns comes from: "stream" (its timestamps) or "read" (read time)

    def as_dict(self) -> dict[str, object]:
        return {"fps": self.fps, "width": self.width, "height": self.height, "clock": self.clock}


class FrameSource:
    """read() returns the next frame, None at the end of a finite source; live sources raise SourceLost."""

    live: bool = False
    class_names: list[str] | None = None
    reconnects: int = 0  # times a dropped live source was opened again (sources.ReconnectingSource counts them)

    def read(self) -> Frame | None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def describe(self) -> SourceInfo:
        """The source's real frame rate and resolution where it knows them."""
        return SourceInfo()

    def __len__(self) -> int:
        """Number of frames of a finite source; 0 when unknown or live."""
        return 0
