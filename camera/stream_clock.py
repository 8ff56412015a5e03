"""Map a live stream's presentation times onto the wall clock, so a frame carries when it was captured.

OpenCV's FFmpeg backend gives each decoded frame its presentation time (CAP_PROP_POS_MSEC, from the RTP
timestamps of an RTSP stream) but not the sender's wall clock (the RTCP sender reports stay inside FFmpeg). So
the offset between the two clocks is estimated: offset = min over frames of (arrival wall time - presentation
time). The least-delayed frame anchors the mapping (NTP's minimum-delay filter): frames that sat in a socket or
decoder buffer keep their older capture time instead of looking fresh, and the anchor frame's own network and
decode delay (milliseconds on a LAN) is the one part not counted.
"""

from __future__ import annotations

import time


class StreamClock:
    def __init__(self) -> None:
        self.offset_ns: int | None = None
        self._last_pts_ns: int | None = None

    def capture_ns(self, pts_ms: float, arrival_ns: int | None = None) -> int | None:
        """Wall-clock capture time of the frame at pts_ms; None when the stream has no usable timestamps."""
        if pts_ms < 0 or pts_ms != pts_ms:  # NaN or negative: the backend knows no presentation time
            return None
        arrival = time.time_ns() if arrival_ns is None else arrival_ns
        pts_ns = int(pts_ms * 1e6)
        if self._last_pts_ns is not None and pts_ns < self._last_pts_ns:
            self.offset_ns = None  # the stream's clock went back (server restarted it): anchor afresh
        self._last_pts_ns = pts_ns
        candidate = arrival - pts_ns
        if self.offset_ns is None or candidate < self.offset_ns:
            self.offset_ns = candidate
        return min(arrival, pts_ns + self.offset_ns)
