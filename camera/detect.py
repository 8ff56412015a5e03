"""Is there a webcam to use? (the demo's choice between a camera and a data set replay)"""

from __future__ import annotations

from pathlib import Path


def find_webcam(max_index: int = 4) -> str | None:
    """The first /dev/videoN that opens and delivers a frame, else None."""
    import cv2

    for i in range(max_index):
        if not Path(f"/dev/video{i}").exists():
            continue
        cap = cv2.VideoCapture(i, cv2.CAP_V4L2)
        try:
            if cap.isOpened() and cap.read()[0]:
                return f"/dev/video{i}"
        finally:
            cap.release()
    return None
