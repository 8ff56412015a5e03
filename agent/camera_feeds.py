"""The cameras a camera node reads, from the fleet file's `cameras:` (or its one `camera:`) and the command line."""

from __future__ import annotations

import threading

from vitfleet.agent.camera_loop import CameraFeed
from vitfleet.agent.fleet_resolve import FleetOptionError
from vitfleet.camera.sources import open_source
from vitfleet.fleet_config import FleetConfig


def open_feeds(
    cfg: FleetConfig,
    stop: threading.Event,
    uri: str | None = None,
    fps: float | None = None,
    loop: bool | None = None,
    encoding: str | None = None,
    only: list[str] | None = None,
) -> list[CameraFeed]:
    """Open every camera of the fleet (or those named by `only`); `uri` replaces them with one camera (the first
    one's name), and `fps`, `loop`, `encoding` given on the command line apply to every camera."""
    specs = cfg.camera_feeds()
    indexed = list(enumerate(specs))
    if only:
        names = [c.name for c in specs]
        unknown = [n for n in only if n not in names]
        if unknown:
            raise FleetOptionError(
                f"--only {unknown[0]}: the fleet has no camera of that name; its cameras are {', '.join(names)}"
            )
        indexed = [(i, c) for i, c in indexed if c.name in only]
    if uri is not None:
        if len(indexed) > 1:
            raise FleetOptionError(
                "--uri replaces one camera, and the fleet file has several; pick one with "
                "--only NAME, or leave --uri out to read them all"
            )
        i, spec = indexed[0]
        indexed = [(i, spec.model_copy(update={"uri": uri}))]
    feeds: list[CameraFeed] = []
    try:
        for i, spec in indexed:
            rate = spec.fps if fps is None else fps
            assert rate is not None and spec.loop is not None and spec.encoding is not None  # camera_feeds() fills
            source = open_source(spec.uri, loop=spec.loop if loop is None else loop, stop=stop)
            feeds.append(CameraFeed(spec.name, source, rate, spec.weight, encoding or spec.encoding, i, spec.uri))
    except BaseException:
        for feed in feeds:  # a later camera that cannot be opened must not leave the earlier ones open
            feed.source.close()
        raise
    return feeds
