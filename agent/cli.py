"""`vitfleet agent`, `vitfleet aggregator`, `vitfleet camera`, `vitfleet view`: the board runtime's commands."""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from vitfleet.camera.uri import sources_help
from vitfleet.choices import Backend, Encoding, LogLevel
from vitfleet.console import emit, user_errors

FleetFile = Annotated[Path | None, typer.Option("--fleet", help="fleet.yaml (broker, boards, camera, aggregator)")]
Board = Annotated[str | None, typer.Option("--board", help="this board's name in the fleet file")]
Broker = Annotated[str | None, typer.Option("--broker", help="HOST:PORT; overrides the fleet file's broker")]
FleetName = Annotated[
    str | None,
    typer.Option("--fleet-name", help="topic namespace vitfleet/<name>/ (default: the fleet file's name, or demo)"),
]
Engines = Annotated[Path | None, typer.Option("--engines", help="engines folder (default: the fleet file's)")]
LogLevelOpt = Annotated[
    LogLevel, typer.Option("--log-level", case_sensitive=False, help="debug, info, warning or error")
]
Json = Annotated[bool, typer.Option("--json", help="print figures as JSON")]
HttpPasswd = Annotated[
    Path | None,
    typer.Option(
        "--http-passwd",
        help="mosquitto password file whose users may open a view bound beyond loopback (default: "
        ".certs/<fleet>/mosquitto.passwd when it exists; the fleet file's broker user also works)",
    ),
]


def hostname_board_name() -> str:
    """This machine's host name as a board name (fleet.yaml's boards[].name allows letters, digits, _ . -)."""
    import re
    import socket

    return re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:64] or "board"


def setup_logging(level: LogLevel) -> None:
    logging.basicConfig(
        level=getattr(logging, level.value.upper(), logging.INFO),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


def _stop_event() -> threading.Event:
    """Set on SIGTERM or SIGINT: every long-running command stops cleanly (offline published, log flushed)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@user_errors
def agent(
    fleet: FleetFile = None,
    board: Board = None,
    broker: Broker = None,
    fleet_name: FleetName = None,
    engines: Engines = None,
    part: Annotated[int | None, typer.Option(help="part to run (default: from the fleet file)")] = None,
    backend: Annotated[
        Backend, typer.Option(case_sensitive=False, help="onnxruntime or tensorrt")
    ] = Backend.onnxruntime,
    threads: Annotated[int | None, typer.Option(help="inference threads (default: the board's, 1)")] = None,
    cpu: Annotated[int | None, typer.Option(help="pin this process to this core")] = None,
    camera: Annotated[str | None, typer.Option(help="read frames from this local camera URI instead of MQTT")] = None,
    fps: Annotated[float, typer.Option(help="frame rate of --camera")] = 10.0,
    stats_interval: Annotated[float, typer.Option(help="seconds between stats messages")] = 2.0,
    emulate_slowdown: Annotated[
        float,
        typer.Option(min=1.0, help="testing: behave like a board this many times slower (stays busy longer per frame)"),
    ] = 1.0,
    log_level: LogLevelOpt = LogLevel.info,
) -> None:
    """Run one board's sub-model: frames in, feature messages out (until SIGTERM / Ctrl-C)."""
    setup_logging(log_level)
    from vitfleet.agent.engine_loading import limit_threads
    from vitfleet.agent.fleet_resolve import board_for, part_for, resolve_fleet
    from vitfleet.agent.process_stats import pin_to_core
    from vitfleet.power.board_kind import detect_board_kind

    # Only a broker address: a board that announces itself (its hello) and waits for the fleet plan to give it
    # parts, named after its host unless --board says otherwise.
    announcing = fleet is None and part is None
    if announcing and board is None:
        board = hostname_board_name()
    cfg = resolve_fleet(fleet, broker, fleet_name, board, "agent", part)
    me = board_for(cfg, board, "agent")
    if announcing:
        me.kind = detect_board_kind()
    n_threads = threads or me.threads
    limit_threads(n_threads)
    pin_to_core(cpu)
    from vitfleet.agent.board_agent import AgentOptions, BoardAgent
    from vitfleet.agent.engine_loading import load_part
    from vitfleet.agent.hello import board_hello, measure_speed
    from vitfleet.agent.plan_follower import PartLoader
    from vitfleet.engines.runtime.manifest import MANIFEST_NAME, read_manifest

    engines_dir = engines or cfg.engines
    manifest = None if announcing and not (engines_dir / MANIFEST_NAME).exists() else read_manifest(engines_dir)
    heals = cfg.aggregator.heal_after_s is not None
    # With healing on, a board beyond the K parts is a spare: it starts with no part and takes one from the plan.
    my_part = None if announcing or manifest is None else part_for(cfg, me, manifest.num_parts, part, allow_spare=heals)
    engine = None
    if my_part is not None:
        engine, manifest = load_part(engines_dir, my_part, backend.value, n_threads)
    if manifest is None:
        logging.getLogger("vitfleet.agent").warning(
            "no %s in %s: this board says hello but takes no parts (it could not check an engine it is sent); "
            "copy the fleet's manifest there (deploy does) or pass --engines",
            MANIFEST_NAME,
            engines_dir,
        )
    # Following the fleet plan needs a loader for the parts it may hand this board.
    loader = PartLoader(engines_dir, manifest, backend.value, n_threads) if heals and manifest is not None else None
    speed = measure_speed()

    def hello(host: str | None):
        return board_hello(me.name, me.kind, engines_dir, manifest, backend.value, host, speed)

    own_camera = None
    if camera:
        from vitfleet.agent.camera_loop import CameraFeed
        from vitfleet.camera.sources import open_source

        # Its own camera is the fleet's first camera (index 0, predictions under that camera's name).
        own_camera = CameraFeed(
            cfg.camera_names()[0], open_source(camera, loop=True), fps, 1.0, cfg.camera.encoding, 0, camera
        )
    stop = _stop_event()
    options = AgentOptions(me.kind, stats_interval, emulate_slowdown, cfg.camera.max_in_flight)
    runner = BoardAgent(
        cfg.broker,
        cfg.name,
        me.name,
        my_part,
        engine,
        manifest.preprocessing if manifest is not None else None,
        options,
        own_camera,
        loader,
        hello,
    ).start()
    try:
        runner.wait(stop)
    finally:
        runner.stop()


@user_errors
def aggregator(
    fleet: FleetFile = None,
    board: Board = None,
    broker: Broker = None,
    fleet_name: FleetName = None,
    engines: Engines = None,
    deadline_ms: Annotated[
        float | None,
        typer.Option(help="fuse what arrived this long after the first part (default: fleet file, else measured)"),
    ] = None,
    log: Annotated[Path | None, typer.Option("--log", help="SQLite prediction log (WAL)")] = None,
    max_pending: Annotated[int | None, typer.Option(help="frames waiting for parts, at most")] = None,
    stats_interval: Annotated[float, typer.Option(help="seconds between stats messages")] = 2.0,
    http: Annotated[
        str | None, typer.Option("--http", help="also serve the web view on HOST:PORT (see `vitfleet view`)")
    ] = None,
    http_passwd: HttpPasswd = None,
    log_level: LogLevelOpt = LogLevel.info,
) -> None:
    """Fuse the parts' features into predictions, publish them and log them (until SIGTERM / Ctrl-C)."""
    setup_logging(log_level)
    from vitfleet.agent.aggregator import Aggregator, AggregatorOptions
    from vitfleet.agent.deadline import DeadlinePolicy
    from vitfleet.agent.engine_loading import limit_threads, load_fusion
    from vitfleet.agent.fleet_resolve import resolve_fleet
    from vitfleet.agent.prediction_log import PredictionLog

    limit_threads(1)
    cfg = resolve_fleet(fleet, broker, fleet_name, board, "aggregator")
    holders = cfg.boards_with("aggregator")
    name = board or (holders[0].name if holders else "aggregator")
    fusion, manifest = load_fusion(engines or cfg.engines)
    policy = DeadlinePolicy(fixed_ms=deadline_ms if deadline_ms is not None else cfg.aggregator.deadline_ms)
    web = None
    if http is not None:
        from vitfleet.agent.web.server import open_view

        # Bound before the aggregator starts: a busy port is a one-line error, not a half-started fleet process.
        web = open_view(cfg.broker, cfg.name, http, [b.name for b in cfg.boards], http_passwd, cfg.camera_names())
    plog = PredictionLog(log or cfg.aggregator.log)
    stop = _stop_event()
    runner = Aggregator(
        cfg.broker,
        cfg.name,
        name,
        fusion,
        manifest.feature_dims,
        manifest.class_names,
        AggregatorOptions(plog, policy, max_pending or cfg.aggregator.max_pending, stats_interval, cfg.camera_names()),
    )
    coordinator = None
    # The fleet plan needs the fleet file (which boards, their memory and speed); flags alone run no coordinator.
    if fleet is not None and cfg.aggregator.heal_after_s is not None:
        from vitfleet.agent.coordinator_service import CoordinatorService

        coordinator = CoordinatorService(cfg, engines or cfg.engines, name, plog)
        runner.stats_sources.append(coordinator.stats)
    runner.start()
    if coordinator is not None:
        coordinator.start()
    discovery = None
    if cfg.homeassistant:
        from vitfleet.agent.homeassistant import HomeAssistantDiscovery

        discovery = HomeAssistantDiscovery(cfg, board=name).start()
    if web is not None:
        web.start()
        logging.getLogger("vitfleet.aggregator").warning("web view on %s", web.url)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        if web is not None:
            web.stop()
        if discovery is not None:
            discovery.stop()
        if coordinator is not None:
            coordinator.stop()
        runner.stop()


@user_errors
def camera(
    fleet: FleetFile = None,
    board: Board = None,
    broker: Broker = None,
    fleet_name: FleetName = None,
    uri: Annotated[str | None, typer.Option(help="camera URI (default: the fleet file's): " + sources_help())] = None,
    fps: Annotated[float | None, typer.Option(help="frames per second; 0 = as fast as allowed")] = None,
    frames: Annotated[int | None, typer.Option(help="stop after this many frames")] = None,
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    loop: Annotated[bool | None, typer.Option("--loop/--no-loop", help="restart finite sources at their end")] = None,
    encoding: Annotated[
        Encoding | None, typer.Option(case_sensitive=False, help="frame encoding (default: the fleet file's, raw)")
    ] = None,
    max_in_flight: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="admission credits: frames out at once (default: the fleet file's, 2); a paced camera skips "
            "frames while none is free, --fps 0 waits; 1 = lockstep, for accuracy",
        ),
    ] = None,
    drain: Annotated[float, typer.Option(help="seconds to wait for the last predictions")] = 2.0,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="run only this camera of the fleet file's `cameras` (repeatable)"),
    ] = None,
    summary: Annotated[Path | None, typer.Option(help="also write the summary JSON here")] = None,
    as_json: Json = False,
    log_level: LogLevelOpt = LogLevel.warning,
) -> None:
    """Publish camera frames to the fleet and measure predictions (latency, accuracy) on this clock; with
    several `cameras` in the fleet file, each gets its weighted share of what the fleet computes."""
    setup_logging(log_level)
    from vitfleet.agent.camera_feeds import open_feeds
    from vitfleet.agent.camera_node import CameraNode
    from vitfleet.agent.fleet_resolve import resolve_fleet

    cfg = resolve_fleet(fleet, broker, fleet_name, board, "camera")
    holders = cfg.boards_with("camera")
    name = board or (holders[0].name if holders else "camera")
    stop = threading.Event()
    feeds = open_feeds(cfg, stop, uri=uri, fps=fps, loop=loop, encoding=encoding.value if encoding else None, only=only)
    node = CameraNode(
        cfg.broker,
        cfg.name,
        name,
        feeds,
        max_frames=frames,
        duration=duration,
        max_in_flight=max_in_flight or cfg.camera.max_in_flight,
        drain=drain,
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: (stop.set(), node.stop()))
    result = node.run()
    if summary is not None:
        summary.parent.mkdir(parents=True, exist_ok=True)
        summary.write_text(json.dumps(result, indent=2))
    emit(result, as_json, title="camera node")


@user_errors
def view(
    fleet: FleetFile = None,
    broker: Broker = None,
    fleet_name: FleetName = None,
    http: Annotated[
        str,
        typer.Option(
            "--http",
            help="HOST:PORT to serve on (0 = a free port); beyond loopback "
            "every request needs the fleet's MQTT credentials",
        ),
    ] = "127.0.0.1:8080",
    http_passwd: HttpPasswd = None,
    remove_homeassistant: Annotated[
        bool,
        typer.Option(
            "--remove-homeassistant",
            help="delete the fleet's Home Assistant entities (empty retained discovery "
            "configs) and exit; set homeassistant: false first or the aggregator "
            "publishes them again",
        ),
    ] = False,
    log_level: LogLevelOpt = LogLevel.warning,
) -> None:
    """Serve the fleet's live web view: page, /api/state (JSON), /stream.mjpg, /metrics (Prometheus)."""
    setup_logging(log_level)
    from vitfleet.agent.fleet_resolve import FleetOptionError, parse_broker, resolve_fleet
    from vitfleet.console import err_console

    if fleet is None and not broker:
        raise FleetOptionError("vitfleet view needs --fleet fleet.yaml, or --broker HOST:PORT (with --fleet-name)")
    if fleet is not None:
        cfg = resolve_fleet(fleet, broker, fleet_name, None, "view")
        broker_cfg, name, boards = cfg.broker, cfg.name, [b.name for b in cfg.boards]
        cameras: list[str] | None = cfg.camera_names()
    else:
        broker_cfg, name, boards = parse_broker(broker or ""), fleet_name or "demo", []
        cameras = None  # learned from the fleet's messages
    if remove_homeassistant:
        if fleet is None:
            raise FleetOptionError("--remove-homeassistant needs --fleet fleet.yaml (it names the boards)")
        from vitfleet.agent.homeassistant import HomeAssistantDiscovery

        count = HomeAssistantDiscovery(cfg).remove()
        err_console.print(f"removed {count} Home Assistant discovery configs of fleet {name}")
        return
    from vitfleet.agent.web.server import open_view

    web = open_view(broker_cfg, name, http, boards, http_passwd, cameras)
    stop = _stop_event()
    web.start()
    err_console.print(
        f"vitfleet view of fleet {name} ({broker_cfg.host}:{broker_cfg.port}): {web.url}", highlight=False
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        web.stop()
