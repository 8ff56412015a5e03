"""`vitfleet lab check`: the deployed lab fleet answers the bundle's test frames, and its ARM numerics match x86.

1. Live: this machine is the camera. It logs in to the fleet's TLS broker as the operator, replays the first
   --frames images of the bundle's test split as fast as the fleet admits them (credits), and reads every
   prediction back. The reference is the same engines the boards run (deploy's build for their kind) evaluated
   offline here on the same images: live accuracy must equal it, and nothing admitted may be lost.
2. Numerics: the same images through the same int8 engines on one arm64 board (its deployed venv) and here.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import threading
from pathlib import Path
from typing import Any

from vitfleet.fleet_config import BrokerConfig, FleetConfig
from vitfleet.lab.errors import LabError


def operator_broker(fleet: FleetConfig, certs_dir: Path) -> BrokerConfig:
    from vitfleet.firmware_scripts.certs import operator_user, secrets_for

    secrets = secrets_for(fleet, certs_dir)
    user = operator_user(fleet)
    if not secrets.password_file(user).exists():
        raise LabError(
            f"no operator password for fleet {fleet.name} in {certs_dir}; run: make certs FLEET=<the fleet file>"
        )
    broker = fleet.broker.model_copy(deep=True)
    broker.username, broker.password_env, broker.password_file = user, None, secrets.password_file(user)
    if broker.tls is not None:
        broker.tls = broker.tls.model_copy(update={"ca_file": secrets.ca_cert, "cert_file": None, "key_file": None})
    return broker


def agent_engines(fleet: FleetConfig) -> Path:
    """The engines folder deploy built for the fleet's agent boards (one kind of board in the lab)."""
    from vitfleet.firmware_scripts.engine_step import builds_root
    from vitfleet.firmware_scripts.fleet_plan import make_plan, part_costs

    plan = make_plan(fleet, part_costs(fleet.bundle))
    folders = {(b.target, b.precision) for b in plan.boards if b.part is not None}
    if len(folders) != 1:
        raise LabError(f"the lab check compares one kind of agent board with x86; this fleet mixes {sorted(folders)}")
    target, precision = folders.pop()
    engines = builds_root(fleet) / f"{target}-{precision}"
    if not (engines / "manifest.json").exists():
        raise LabError(f"{engines} holds no engines yet; deploy first: make deploy FLEET=<the fleet file>")
    return engines


def live_fleet(fleet: FleetConfig, certs_dir: Path, engines: Path, frames: int) -> dict[str, Any]:
    from vitfleet.agent.camera_node import CameraNode
    from vitfleet.camera.sources import open_source
    from vitfleet.engines.runtime.manifest import read_manifest
    from vitfleet.firmware_scripts.certs import operator_user
    from vitfleet.fleet.demo import replay_uri
    from vitfleet.fleet.offline_accuracy import offline_accuracy

    manifest = read_manifest(engines)
    # Emulated boards take tens of ms a frame and stall now and then: a generous reclaim, so lost means lost.
    node = CameraNode(
        operator_broker(fleet, certs_dir),
        fleet.name,
        operator_user(fleet),
        open_source(replay_uri(manifest), loop=False),
        fps=0,
        encoding=fleet.camera.encoding,
        max_frames=frames,
        in_flight_timeout=60.0,
        drain=60.0,
    )
    summary: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: summary.update(node.run()), daemon=True)
    runner.start()
    runner.join()
    offline = offline_accuracy(engines, manifest.dataset or "fashion-mnist", "test", limit=frames)
    live = summary.get("accuracy")
    return {
        "frames": frames,
        "answered": summary.get("predictions"),
        "degraded": summary.get("degraded"),
        "lost": summary.get("lost"),
        "answered_late": summary.get("answered_late"),
        "live_accuracy": live,
        "offline_accuracy": round(offline, 5),
        "difference_pt": None if live is None else round((live - offline) * 100, 3),
        "e2e_p50_ms": summary.get("e2e_p50_ms"),
        "e2e_p99_ms": summary.get("e2e_p99_ms"),
        "answered_fps": summary.get("answered_fps"),
        "ok": bool(summary.get("ok")),
    }


def arm_numerics(fleet: FleetConfig, engines: Path, board_name: str, images: int) -> dict[str, Any]:
    from vitfleet.datasets import load_dataset
    from vitfleet.engines.runtime.manifest import read_manifest
    from vitfleet.firmware_scripts.board_tree import python_for
    from vitfleet.firmware_scripts.ssh_target import SshOptions, SshTarget
    from vitfleet.lab.arm_numerics import compare, run_here, run_on_board

    manifest = read_manifest(engines)
    data = load_dataset(manifest.dataset or "fashion-mnist", "test", pre=manifest.preprocessing).head(images)
    board = fleet.board(board_name)
    ssh = SshTarget(board, SshOptions.for_fleet(fleet.ssh)).ssh("")[:-1]
    on_board = run_on_board(
        ssh, python_for(board), f"{board.install_dir}/app", f"{board.install_dir}/engines", data.images
    )
    return {"board": board_name, **compare(run_here(engines, data.images), on_board, data.labels)}


def lab_check(
    fleet_file: Path, certs_dir: Path, frames: int, images: int, board: str | None, out: Path | None, command: str
) -> dict[str, Any]:
    from vitfleet.fleet_config import load_fleet

    fleet = load_fleet(fleet_file)
    engines = agent_engines(fleet)
    arm_board = board or next((b.name for b in fleet.boards if "agent" in b.roles), None)
    if arm_board is None:
        raise LabError(f"{fleet_file} has no agent board to compare numerics on")
    report: dict[str, Any] = {
        "command": command,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host_cpu": _cpu_model(),
        "host_machine": platform.machine(),
        "fleet": fleet.name,
        "boards": [{"name": b.name, "kind": b.kind, "roles": list(b.roles)} for b in fleet.boards],
        "engines": str(engines),
        "live": live_fleet(fleet, certs_dir, engines, frames),
        "numerics": arm_numerics(fleet, engines, arm_board, images) if images > 0 else None,
        "timing_note": "boards run under qemu-user: their latency is emulation's, not a Pi's; no speed is claimed",
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
    return report


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"
