"""The stream's picture: the latest frame, enlarged, with the prediction drawn on it, as JPEG.

Drawn on the server (OpenCV is already a board dependency) so the stream is right on its own too: opened
directly, saved, or embedded in another dashboard, it still says what the fleet answered.
"""

from __future__ import annotations

import cv2
import numpy as np

from vitfleet.agent.web.state import PredictionRow

SIDE = 360  # the longest side on screen: Fashion-MNIST's 28 px would be a speck
BAR = 64  # text band under the picture
GREEN, ORANGE, GREY, WHITE = (80, 200, 80), (0, 160, 255), (150, 150, 150), (240, 240, 240)


def _fit(frame: np.ndarray) -> np.ndarray:
    img = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 or frame.shape[2] == 1 else frame
    h, w = img.shape[:2]
    scale = SIDE / max(h, w)
    # Nearest neighbour keeps a tiny image's pixels honest instead of smearing them.
    interp = cv2.INTER_NEAREST if scale >= 1 else cv2.INTER_AREA
    return cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp)


def _text(canvas: np.ndarray, text: str, org: tuple[int, int], scale: float, colour: tuple[int, int, int]) -> None:
    cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 2 if scale >= 0.7 else 1, cv2.LINE_AA)


def render(
    frame: np.ndarray | None, pred: PredictionRow | None, same_frame: bool, quality: int = 80, camera: str | None = None
) -> bytes:
    """JPEG bytes: the frame (or a placeholder) above a band with class, score, degraded and missing parts, and
    the camera's name in the corner when given (a stream opened on its own must say which camera it is)."""
    body = _fit(frame) if frame is not None else np.full((SIDE, SIDE, 3), 32, np.uint8)
    h, w = body.shape[:2]
    canvas = np.full((h + BAR, max(w, SIDE), 3), 24, np.uint8)
    canvas[:h, (canvas.shape[1] - w) // 2 : (canvas.shape[1] - w) // 2 + w] = body
    if frame is None:
        _text(canvas, "waiting for frames", (20, h // 2), 0.7, GREY)
    if camera is not None:
        _text(canvas, camera, (8, 20), 0.55, WHITE)
    if pred is None:
        _text(canvas, "waiting for the first prediction", (10, h + 40), 0.6, GREY)
    else:
        colour = ORANGE if pred.degraded else GREEN
        _text(canvas, f"{pred.class_name}  {pred.score:.2f}", (10, h + 28), 0.8, colour)
        detail = (
            f"DEGRADED - missing part{'s' if len(pred.missing_parts) > 1 else ''} "
            f"{', '.join(map(str, pred.missing_parts))}"
            if pred.degraded
            else "all parts"
        )
        if not same_frame:
            detail += "  (latest answer; its frame has passed)"
        _text(canvas, detail, (10, h + 54), 0.5, colour if pred.degraded else WHITE)
    ok, buf = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()
