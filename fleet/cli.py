"""`vitfleet demo`: the whole fleet on this machine (the workstation's harness, fleet/demo.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vitfleet.agent.cli import Json, LogLevelOpt, setup_logging
from vitfleet.choices import LogLevel
from vitfleet.console import emit, user_errors
from vitfleet.errors import UserError


def _demo_engines(opts):
    """Engines given, or built on this workstation (the training side is not installed on boards)."""
    import importlib.util

    from vitfleet.engines.runtime.manifest import read_manifest

    if (
        importlib.util.find_spec("vitfleet.engines.build.demo_engines") is None
        or importlib.util.find_spec("vitfleet.decompose") is None
    ):
        if opts.engines is None:
            raise UserError(
                "this install has no training side to build the demo's engines; pass --engines DIR "
                "(from `vitfleet engines build` on your workstation)"
            )
        read_manifest(opts.engines)
        return opts.engines, None, None
    from vitfleet.engines.build.demo_engines import engines_check_reference, prepare_demo_engines

    engines_dir, bundle_dir = prepare_demo_engines(opts.work_dir, opts.bundle, opts.engines, opts.quiet)
    return engines_dir, bundle_dir, None if bundle_dir is None else engines_check_reference(bundle_dir)


def _rates(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise UserError(f"--camera-fps {text!r} must be numbers separated by commas, e.g. 30,15,5") from None


@user_errors
def demo(
    frames: Annotated[int | None, typer.Option(help="stop after this many frames")] = None,
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    work_dir: Annotated[
        Path,
        typer.Option(
            help="bundle, engines, logs and the fleet.yaml the demo writes for its own one-machine fleet go here"
        ),
    ] = Path("runs/demo"),
    bundle: Annotated[Path | None, typer.Option(help="use this bundle instead of training the demo one")] = None,
    engines: Annotated[
        Path | None,
        typer.Option(
            "--engines",
            help="use this engines folder (from `vitfleet "
            "engines build`, e.g. `make engines`) instead of building int8 "
            "engines from the bundle",
        ),
    ] = None,
    camera_uri: Annotated[
        str | None,
        typer.Option(
            "--camera", help="camera URI (default: a webcam if present, else a replay of the bundle's test split)"
        ),
    ] = None,
    fps: Annotated[float, typer.Option(help="camera frames per second (0 = as fast as the fleet allows)")] = 10.0,
    broker: Annotated[
        str | None,
        typer.Option(
            "--broker",
            help="HOST:PORT of a running broker to use (default: start a private mosquitto on a free loopback port)",
        ),
    ] = None,
    accuracy: Annotated[
        bool,
        typer.Option(
            "--accuracy",
            help="replay the whole test set in lockstep and compare the "
            "fleet's accuracy with the engines' offline accuracy",
        ),
    ] = False,
    headless: Annotated[bool, typer.Option("--headless", help="no live view, only the final summary")] = False,
    max_in_flight: Annotated[
        int,
        typer.Option(
            min=1,
            help="admission credits: frames the fleet computes at once; a faster camera's other frames are skipped",
        ),
    ] = 2,
    slow_agent: Annotated[
        float,
        typer.Option(
            min=1.0,
            help="the last agent emulates a board this many times slower (a heterogeneous fleet on one machine)",
        ),
    ] = 1.0,
    cameras: Annotated[
        int,
        typer.Option(
            "--cameras", min=1, help="this many cameras on the demo's source, each with its fair share of the fleet"
        ),
    ] = 1,
    camera_fps: Annotated[
        str | None, typer.Option("--camera-fps", help="each camera's frame rate, e.g. 30,15,5 (default: --fps each)")
    ] = None,
    http: Annotated[
        str,
        typer.Option(
            "--http", help="serve the web view on HOST:PORT (default: a free loopback port; the URL is printed)"
        ),
    ] = "127.0.0.1:0",
    no_http: Annotated[bool, typer.Option("--no-http", help="no web view")] = False,
    as_json: Json = False,
    log_level: LogLevelOpt = LogLevel.warning,
) -> None:
    """One machine, whole fleet: bundle -> engines -> mosquitto -> K agents + aggregator + camera, with a live view."""
    setup_logging(log_level)
    from vitfleet.fleet.demo import DemoOptions, run_demo

    opts = DemoOptions(
        frames=frames,
        duration=duration,
        work_dir=work_dir,
        bundle=bundle,
        engines=engines,
        camera_uri=camera_uri,
        fps=fps,
        broker=broker,
        accuracy=accuracy,
        headless=headless,
        quiet=as_json,
        log_level=log_level.value,
        max_in_flight=max_in_flight,
        slow_agent=slow_agent,
        http=None if no_http else http,
        cameras=cameras,
        camera_fps=_rates(camera_fps),
    )
    engines_dir, bundle_dir, reference = _demo_engines(opts)
    result = run_demo(opts, engines_dir, reference)
    emit(result, as_json, title="vitfleet demo")
    if result.get("ok") is False:
        raise typer.Exit(1)
