"""Run by Debian's /usr/bin/python3 (which sees python3-gi), never imported by the tests' venv.

    rtsp PORT PATH FPS WIDTH HEIGHT   serve videotestsrc as H.264 over RTSP on 127.0.0.1:PORT/PATH until killed
    mp4 OUT FRAMES FPS WIDTH HEIGHT   write an H.264 MP4 of FRAMES test-pattern frames and exit

The RTSP server prints "ready" once it listens, so the test knows when to connect.
"""

from __future__ import annotations

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def caps(fps: int, width: int, height: int) -> str:
    return f"video/x-raw,format=I420,width={width},height={height},framerate={fps}/1"


def serve_rtsp(port: int, path: str, fps: int, width: int, height: int) -> None:
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    # is-live: frames at the stream's rate, like a camera; zerolatency + 1-s keyframes: a reconnecting client
    # decodes within a second instead of waiting for x264's default 250-frame GOP.
    factory.set_launch(
        f"( videotestsrc is-live=true pattern=ball ! {caps(fps, width, height)} ! "
        f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} ! "
        "rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(True)  # one encoder for every client, as an IP camera has
    server.get_mount_points().add_factory(f"/{path}", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


def write_mp4(out: str, frames: int, fps: int, width: int, height: int) -> None:
    pipeline = Gst.parse_launch(
        f"videotestsrc num-buffers={frames} pattern=smpte ! {caps(fps, width, height)} ! "
        f"x264enc speed-preset=ultrafast ! h264parse ! mp4mux ! filesink location={out}"
    )
    pipeline.set_state(Gst.State.PLAYING)
    msg = pipeline.get_bus().timed_pop_filtered(Gst.CLOCK_TIME_NONE, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if msg.type == Gst.MessageType.ERROR:
        sys.exit(f"mp4 writer failed: {msg.parse_error()[0].message}")


if __name__ == "__main__":
    Gst.init(None)
    mode, first, *numbers = sys.argv[1:]
    if mode == "rtsp":
        port, fps, width, height = int(first), *map(int, numbers[1:])
        serve_rtsp(port, numbers[0], fps, width, height)
    elif mode == "mp4":
        write_mp4(first, *map(int, numbers))
    else:
        sys.exit(f"unknown mode {mode!r}; use rtsp or mp4")
