"""`vitfleet demo`: the whole fleet on one machine, in one command.

bundle (trained and cached on first use) -> int8 ONNX Runtime engines (cached) ->
mosquitto on a free port -> aggregator + K agents (one core and one thread each) as
real subprocesses -> the camera node (webcam if present, else a replay of the bundle's own
test split) -> a live view until --frames/--duration is reached or Ctrl-C. `--accuracy`
replays the whole test set in lockstep and compares the fleet's accuracy with the offline
accuracy of the same engines.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitfleet.agent.fleet_resolve import parse_broker
from vitfleet.agent.web.state import FleetSnapshot, WebState
from vitfleet.console import err_console
from vitfleet.engines.runtime.manifest import Manifest
from vitfleet.errors import UserError
from vitfleet.fleet.local_fleet import LocalFleet, LocalFleetOptions
from vitfleet.fleet.processes import ProcessGroup
from vitfleet.fleet_config import CameraFeedConfig
from vitfleet.stats_message import AgentStats, AggregatorStats, first_of, of_role

log = logging.getLogger("vitfleet.demo")


@dataclass
class DemoOptions:
    frames: int | None = None
    duration: float | None = None
    work_dir: Path = Path("runs/demo")
    bundle: Path | None = None
    engines: Path | None = None
    camera_uri: str | None = None
    fps: float = 10.0
    broker: str | None = None
    accuracy: bool = False
    headless: bool = False
    quiet: bool = False
    log_level: str = "warning"
    deadline_ms: float | None = None
    online_timeout: float = 90.0
    max_in_flight: int = 2
    slow_agent: float = 1.0  # the last agent emulates a board this many times slower (heterogeneous fleet)
    http: str | None = "127.0.0.1:0"  # the web view's HOST:PORT (0: a free port); None: no web view
    heal_after_s: float | None = 2.0  # a lost agent's part moves to a survivor after this long; None: never
    cameras: int = 1  # cameras cam0.. on the same source, sharing the fleet by weight
    camera_fps: list[float] | None = None  # each camera's rate (default: fps for every one)


def replay_uri(manifest: Manifest) -> str:
    """The bundle's own test split, at the model's size and channels (what `--accuracy` compares against)."""
    if manifest.dataset is None:
        raise UserError(
            "these engines do not say which data set their bundle was trained on (built by an older "
            "vitfleet); rebuild them with `vitfleet engines build --bundle BUNDLE --out DIR`, or pass "
            "--camera URI"
        )
    pre = manifest.preprocessing
    return f"dataset://{manifest.dataset}/test?size={pre.size}&channels={pre.channels}"


def demo_cameras(opts: DemoOptions, uri: str) -> list[CameraFeedConfig]:
    """`--cameras N`: N cameras on the demo's source, at `--camera-fps` (default: `--fps` each); none for one."""
    rates = opts.camera_fps or []
    if rates and len(rates) != max(opts.cameras, 1) and opts.cameras > 1:
        raise UserError(
            f"--camera-fps gives {len(rates)} rates for {opts.cameras} cameras; give one per camera, "
            "e.g. --cameras 3 --camera-fps 30,15,5"
        )
    count = max(opts.cameras, len(rates))
    if count <= 1:
        return []
    if any(r <= 0 for r in rates):
        raise UserError("--camera-fps rates must be above 0 (a live camera has a frame rate)")
    return [CameraFeedConfig(name=f"cam{i}", uri=uri, fps=rates[i] if rates else opts.fps) for i in range(count)]


def choose_camera(opts: DemoOptions, manifest: Manifest) -> str:
    if opts.accuracy:
        return replay_uri(manifest)
    if opts.camera_uri:
        return opts.camera_uri
    from vitfleet.camera.detect import find_webcam

    return find_webcam() or replay_uri(manifest)


# (engines folder, n images) -> the same engines' offline accuracy on the first n test images: the workstation's
# `vitfleet engines check` when the bundle is at hand (engines/build/demo_engines.py), else the engines run offline here.
OfflineReference = Callable[[Path, int], tuple[float, str]]


def run_demo(opts: DemoOptions, engines_dir: Path, offline_reference: OfflineReference | None = None) -> dict[str, Any]:
    """Run the one-machine fleet on prepared engines (`vitfleet demo` builds them on the workstation side)."""
    import signal

    from vitfleet.engines.runtime.manifest import read_manifest

    # SIGTERM (e.g. `timeout`) must tear the fleet down like Ctrl-C: the children run in their own sessions.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    work = opts.work_dir
    work.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(engines_dir)
    camera_uri = choose_camera(opts, manifest)
    run_dir = work / "run"
    summary_path = run_dir / "camera-summary.json"
    from vitfleet.fleet.dashboard import has_display_window

    window = not opts.headless and has_display_window()
    last = f"agent{manifest.num_parts - 1}"
    options = LocalFleetOptions(
        camera_uri=camera_uri,
        fps=opts.fps,
        max_in_flight=opts.max_in_flight,
        heal_after_s=opts.heal_after_s,
        # Accuracy runs go in lockstep, so waiting long for a part costs nothing and never masks one.
        deadline_ms=opts.deadline_ms if opts.deadline_ms is not None else (1000.0 if opts.accuracy else None),
        broker=parse_broker(opts.broker) if opts.broker else None,
        log_level=opts.log_level,
        online_timeout=opts.online_timeout,
        with_frames=window,  # frames only feed the window
        agent_args={last: ["--emulate-slowdown", str(opts.slow_agent)]} if opts.slow_agent > 1 else {},
        cameras=demo_cameras(opts, camera_uri),
    )
    if not opts.quiet:
        err_console.print(f"starting {manifest.num_parts} agents + aggregator …")
    with LocalFleet(engines_dir, run_dir, options) as fleet:
        assert fleet.view is not None and fleet.config is not None and fleet.broker is not None
        web_url = _serve_web(opts, fleet)
        # Several cameras come from the fleet file the demo wrote; one is given on the command line.
        cam_args = (["--uri", camera_uri, "--fps", str(opts.fps)] if not options.cameras else []) + [
            "--max-in-flight",
            str(opts.max_in_flight),
            "--log-level",
            "warning",
        ]
        if opts.frames is not None:
            cam_args += ["--frames", str(opts.frames)]
        if opts.duration is not None:
            cam_args += ["--duration", str(opts.duration)]
        if opts.accuracy:
            cam_args += ["--max-in-flight", "1", "--fps", "0", "--no-loop", "--drain", "5"]
        camera = fleet.spawn_camera(summary_path, cam_args)
        interrupted = _live(fleet.view, fleet.procs, camera.name, opts, manifest.class_names, window)
        if interrupted:
            fleet.procs.stop("camera")
        code = camera.proc.wait(timeout=30)
        codes = fleet.stop_processes()  # SIGTERM: each publishes its last stats and offline, the log is flushed
        final = fleet.view.fleet_snapshot()
        log_path = fleet.log_path
    result = _result(summary_path, final, codes, code, interrupted, camera_uri, log_path)
    result["url"] = web_url
    if opts.accuracy and not interrupted:
        result.update(compare_accuracy(engines_dir, manifest, result, opts.frames, offline_reference))
    return result


def _serve_web(opts: DemoOptions, fleet: LocalFleet) -> str | None:
    """The web view for the demo's fleet; its URL goes to stderr (and into the summary) so a browser can follow."""
    if opts.http is None or fleet.broker is None or fleet.config is None:
        return None
    from vitfleet.agent.web.server import open_view

    web = open_view(
        fleet.broker,
        fleet.config.name,
        opts.http,
        [b.name for b in fleet.config.boards],
        cameras=fleet.config.camera_names(),
        state=fleet.view,
    )
    fleet.on_close(web.stop)
    web.start()
    err_console.print(f"web view: {web.url}", highlight=False)
    return web.url


def _live(
    view: WebState, procs: ProcessGroup, camera: str, opts: DemoOptions, class_names: list[str], window: bool
) -> bool:
    """Show the fleet until the camera node ends; True when the user pressed Ctrl-C (or sent SIGTERM).

    The signal only sets a flag that the loop polls: a KeyboardInterrupt raised wherever the main thread happens
    to be can land inside `Popen.poll()` while it holds the child's wait lock, and every later `wait()` on that
    child (the fleet's teardown) then blocks for ever. The Ctrl-C test hung once in a full `make test`, which this explains.
    """
    import signal
    import threading

    from vitfleet.fleet.dashboard import render, show_window

    cam_proc = procs.children[camera].proc
    stop = threading.Event()
    handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    live = None
    if not opts.headless and not window and err_console.is_terminal:
        from rich.live import Live

        live = Live(render(view.fleet_snapshot(), class_names), console=err_console, refresh_per_second=4)
        live.start()
    try:
        while cam_proc.poll() is None and not stop.is_set():
            # A lost agent is what the fleet is built to survive (the view shows it offline and the predictions
            # degraded); without the aggregator there is nothing left to show.
            procs.check_alive(["aggregator"])
            if window:
                if not show_window(view):
                    return True
                time.sleep(0.03)
            else:
                time.sleep(0.25)
            if live is not None:
                live.update(render(view.fleet_snapshot(), class_names))
        return stop.is_set()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if live is not None:
            live.update(render(view.fleet_snapshot(), class_names))
            live.stop()
        if window:
            import cv2

            cv2.destroyAllWindows()


# what the demo's summary reports per agent, from its last stats
AGENT_FIGURES = {
    "part",
    "fps",
    "frames",
    "infer_p50_ms",
    "infer_p99_ms",
    "own_fps",
    "slowdown",
    "drops",
    "cpu_percent",
    "rss_mb",
    "malformed",
}
# ... and for the fleet, from the aggregator's
AGGREGATOR_FIGURES = {
    "hop_p50_ms",
    "hop_p99_ms",
    "late",
    "deadline_ms",
    "fleet_watts",
    "mj_per_frame",
    "power_estimated",
}


def _result(
    summary_path: Path,
    final: FleetSnapshot,
    codes: dict[str, int | None],
    camera_code: int,
    interrupted: bool,
    camera_uri: str,
    log_path: Path,
) -> dict[str, Any]:
    camera = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    stats = final.reports.stats
    agg = first_of(stats, AggregatorStats)
    fleet_figures = agg.model_dump(include=AGGREGATOR_FIGURES) if agg else dict.fromkeys(AGGREGATOR_FIGURES)
    boards = {name: s.model_dump(include=AGENT_FIGURES) for name, s in of_role(stats, AgentStats).items()}
    # After Ctrl-C the camera may have been stopped (by us) before it could even install its handler.
    crashed = {n: c for n, c in codes.items() if c not in (0, None) and not (interrupted and n == "camera")}
    # A lost agent is a board loss the fleet is built to survive (answers degrade, none is lost); a lost
    # aggregator or camera is a failure of the run.
    board_lost = any(n.startswith("agent") for n in crashed)
    failed = {n for n in crashed if not n.startswith("agent")}
    admission = admission_report(camera, boards)
    # ok: nothing admitted was lost, and nothing was answered degraded unless a board was lost.
    ok = (
        not failed
        and (interrupted or (camera_code == 0 and camera.get("predictions", 0) > 0))
        and camera.get("lost", 1) == 0
        and (camera.get("degraded", 1) == 0 or board_lost)
    )
    return {
        "ok": ok,
        "interrupted": interrupted,
        "camera": camera_uri,
        **camera,
        **admission,
        **fleet_figures,
        "boards": boards,
        "exit_codes": codes,
        "prediction_log": str(log_path),
    }


def admission_report(camera: dict[str, Any], boards: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Did every board compute the same admitted frames, and how close is the goodput to the slowest board?"""
    admitted = camera.get("admitted")
    frames = [b.get("frames") for b in boards.values()]
    rates = [b["own_fps"] for b in boards.values() if b.get("own_fps")]
    slowest = min(rates) if rates else None
    goodput = camera.get("whole_fps")
    return {
        "every_board_computed_every_admitted_frame": bool(frames)
        and admitted is not None
        and all(f == admitted for f in frames),
        "slowest_board_fps": slowest,
        "goodput_of_slowest_board": None if not slowest or goodput is None else round(goodput / slowest, 4),
    }


def compare_accuracy(
    engines_dir: Path,
    manifest: Manifest,
    result: dict[str, Any],
    limit: int | None,
    offline_reference: OfflineReference | None = None,
) -> dict[str, Any]:
    """The fleet's accuracy on the replay next to the same engines' offline accuracy on the same images.

    With the bundle at hand the reference is `vitfleet engines check`'s fused engine accuracy (first N test
    images, like the replay); with engines only, the same engines run offline in this process.
    """
    from vitfleet.datasets import load_dataset

    total = len(load_dataset(manifest.dataset or "fashion-mnist", "test", pre=manifest.preprocessing))
    n = min(limit, total) if limit else total
    if offline_reference is not None:
        offline, source = offline_reference(engines_dir, n)
    else:
        from vitfleet.fleet.offline_accuracy import offline_accuracy

        offline = offline_accuracy(engines_dir, manifest.dataset or "fashion-mnist", "test", n)
        source = "engines run offline"
    fleet = result.get("accuracy")
    diff = None if fleet is None else 100.0 * (fleet - offline)
    ok = (
        diff is not None
        and abs(diff) <= 0.1 + 1e-9
        and result.get("lost", 1) == 0
        and result.get("degraded", 1) == 0
        and result.get("predictions") == n
    )
    if not ok:
        result["ok"] = False
    return {
        "offline_accuracy": round(offline, 5),
        "offline_source": source,
        "accuracy_diff_pt": None if diff is None else round(diff, 3),
        "accuracy_matches": ok,
    }
