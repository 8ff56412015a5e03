"""The camera-source registry: one record per URI scheme, and the one place `parse_uri` and `open_source` ask.

Like Frigate's detector plugins: a source is a module that calls `register_source` with its scheme, how to open a
parsed URI, and what `--help` says about it; the kit's own are registered in camera/builtin_sources.py, one from
outside the kit is loaded as a plugin (vitfleet/plugins.py). Openers import their libraries (OpenCV, Picamera2,
jetson_utils) only when a source is opened, so listing the sources costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vitfleet.registry import SCHEME, Registry

if TYPE_CHECKING:
    from vitfleet.camera.frame_source import FrameSource
    from vitfleet.camera.source_spec import SourceSpec


@dataclass(frozen=True)
class SourceKind:
    scheme: str
    open: Callable[[SourceSpec], FrameSource]
    usage: str  # `scheme://example` and what it reads, for --help and error messages
    live: bool = False  # a stream that may drop: reopened with backoff, never looped
    whole_uri: bool = False  # the query belongs to the stream URL (rtsp://, http://), not to vitfleet
    example_target: str | None = None  # the target a URI must name (file://clip.mp4); None: optional
    default_target: str = ""  # the target when the URI names none (v4l2://, csi://: device 0)


_SOURCES: Registry[SourceKind] = Registry("camera scheme", lambda k: k.scheme, SCHEME, "lower-case letters and digits")


register_source = _SOURCES.register
source_kind = _SOURCES.get  # None for an unknown scheme (parse_uri words the error, with the URI)
schemes = _SOURCES.names


def sources_help() -> str:
    """One line per registered source, for `vitfleet camera --help`."""
    return "; ".join(kind.usage for kind in _SOURCES.records())
