"""The exact tree one board receives, built locally in a staging folder, and its content digest.

<install_dir>/
  app/          the vitfleet packages (PYTHONPATH) + requirements.txt (the `board`/`jetson` groups)
  bundle/       bundle.json (+ the fusion weights on the aggregator); never the part weights
  engines/      the engines folder of the board's target (ONNX for a Jetson, built there)
  config/       fleet.yaml with this board's paths and credentials, board.env, services.list
  units/        systemd units            bin/   board-install.sh, vitfleet-services
  secrets/      CA, this board's client cert/key, MQTT password (mode 600)
  broker/       mosquitto.conf, ACL, password file, broker cert (broker board only)
Left alone by the sync (created on the board): venv/, logs/, run/, data/.

The digest covers paths, exec bits and contents, so equal digests mean an identical install.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from vitfleet.board_kinds import board_kind
from vitfleet.firmware_scripts.broker_config import write_broker_files
from vitfleet.firmware_scripts.certs import FleetSecrets
from vitfleet.firmware_scripts.errors import DeployError
from vitfleet.firmware_scripts.fleet_plan import BoardPlan, FleetPlan
from vitfleet.firmware_scripts.templates_render import render, template_text
from vitfleet.fleet_config import BoardConfig, FleetConfig

# The board runtime layer: the core modules of `vitfleet` plus these subpackages. The workstation side
# (decompose, bench, firmware_scripts) stays home; the CLI registers its commands only where it is installed.
BOARD_SUBPACKAGES = ("agent", "camera", "power", "engines")
# Packages inside those that only the workstation runs (ONNX export, int8 calibration, the demo's engines): they
# import torch or the training side, which boards never install. The fleet harness (vitfleet.fleet: demo, local
# fleet, dashboard) is a top-level package of its own and is not shipped at all.
WORKSTATION_PACKAGES = ("engines.build",)
BOARD_LOCAL_DIRS = ("venv", "logs", "run", "data")  # made on the board, never synced or deleted
STAMP_NAME = ".vitfleet-deployed.json"
MOSQUITTO = "/usr/sbin/mosquitto"


@dataclass(frozen=True)
class StagedBoard:
    board: BoardConfig
    plan: BoardPlan
    root: Path
    digest: str
    files: int


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def board_requirements(kind: str) -> list[str]:
    """The `board` dependency group (+ `jetson` on Jetsons) from pyproject.toml: never torch."""
    import tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if pyproject.exists():
        extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    else:  # installed from a wheel: the same lists are in the package metadata
        from importlib.metadata import requires

        extras = {}
        for line in requires("vitfleet") or []:
            spec, _, marker = line.partition(";")
            for group in ("board", "jetson"):
                if f'extra == "{group}"' in marker:
                    extras.setdefault(group, []).append(spec.strip())
    groups = ["board"] + (["jetson"] if kind.startswith("jetson") else [])
    reqs = [r for g in groups for r in extras.get(g, [])]
    if not reqs or any(r.split("=")[0].split("<")[0].split(">")[0].strip() == "torch" for r in reqs):
        raise DeployError("pyproject's `board` group is empty or pulls torch; boards must never install torch")
    return reqs


def python_for(board: BoardConfig) -> str:
    return board.python or f"{board.install_dir}/venv/bin/python"


def service_commands(board: BoardConfig, plan: BoardPlan) -> dict[str, list[str]]:
    home, py = board.install_dir, python_for(board)
    fleet_file = f"{home}/config/fleet.yaml"
    commands: dict[str, list[str]] = {}
    for service in plan.services:
        if service == "broker":
            commands[service] = [MOSQUITTO, "-c", f"{home}/broker/mosquitto.conf"]
        else:
            commands[service] = [py, "-m", "vitfleet.cli", service, "--fleet", fleet_file, "--board", board.name]
            if service == "agent":
                commands[service] += ["--backend", plan.backend]
    return commands


def render_unit(fleet: FleetConfig, board: BoardConfig, service: str, argv: list[str]) -> str:
    after = "vitfleet-broker.service" if service != "broker" else ""
    return render(
        "vitfleet-service.service",
        SERVICE=service,
        FLEET=fleet.name,
        BOARD=board.name,
        USER=board.ssh_user,
        HOME=board.install_dir,
        EXEC=shlex.join(argv),
        AFTER=after,
    )


def board_env(board: BoardConfig, plan: BoardPlan) -> str:
    values = {
        "VITFLEET_BOARD": board.name,
        "VITFLEET_HOME": board.install_dir,
        "VITFLEET_FLEET_FILE": f"{board.install_dir}/config/fleet.yaml",
        "VITFLEET_PYTHON": python_for(board),
        "VITFLEET_MAKE_VENV": "0" if board.python else "1",
        "VITFLEET_SERVICE_MANAGER": board.service_manager,
        "VITFLEET_SERVICES": ",".join(plan.services),
        "VITFLEET_PROVISION_SCRIPT": board_kind(board.kind).provision_script,
        "VITFLEET_TENSORRT_PRECISION": plan.precision if plan.builds_on_board and plan.part is not None else "",
        "PYTHONPATH": f"{board.install_dir}/app",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": str(board.threads),
    }
    for key, value in values.items():
        if any(c in value for c in " \t\n'\"$`\\"):
            raise DeployError(
                f"board {board.name}: {key}={value!r} contains spaces or shell characters; "
                "use a plain path in fleet.yaml"
            )
    return "".join(f"{k}={v}\n" for k, v in values.items())


def board_fleet_yaml(fleet: FleetConfig, plan: FleetPlan, board: BoardConfig, with_secrets: bool) -> str:
    """The fleet as this board sees it: its own paths, the planned parts pinned, its own credentials."""
    home = board.install_dir
    data = fleet.model_dump(mode="json", exclude_none=True)
    data["bundle"], data["engines"] = f"{home}/bundle", f"{home}/engines"
    data.pop("engine_builds", None)  # the workstation's build folders: nothing on the board reads them
    data.pop("ssh", None)  # how the workstation logs in: nothing on the board reads it
    data["aggregator"]["log"] = f"{home}/data/fleet-log.sqlite"
    # None is a setting here ("never move parts"), not an absent key: dropped, the board would heal after the default delay.
    data["aggregator"]["heal_after_s"] = fleet.aggregator.heal_after_s
    for entry in data["boards"]:
        part = plan.placement.get(entry["name"])
        entry.pop("part", None)
        if part is not None:
            entry["part"] = part  # pinned: every process sees the same placement as the deploy
    if with_secrets:
        broker = data["broker"]
        broker.pop("password_env", None)
        broker["username"] = board.name
        broker["password_file"] = f"{home}/secrets/mqtt-password"
        if fleet.broker.tls is not None:
            broker["tls"].update(
                ca_file=f"{home}/secrets/ca.crt",
                cert_file=f"{home}/secrets/client.crt",
                key_file=f"{home}/secrets/client.key",
            )
    return "# generated by vitfleet deploy for board " + board.name + "\n" + yaml.safe_dump(data, sort_keys=False)


def _private_copy(source: Path, dest: Path) -> None:
    if not source.exists():
        raise DeployError(f"{source} is missing; run: make certs FLEET=<fleet.yaml>")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.parent.chmod(0o700)
    shutil.copyfile(source, dest)
    dest.chmod(0o600)


def tree_digest(root: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    count = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        mode = "x" if path.stat().st_mode & 0o100 else "-"
        digest.update(f"{rel}\0{mode}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
        count += 1
    return digest.hexdigest(), count


def _board_only(source: Path, sub: str) -> Callable[[str, list[str]], set[str]]:
    """copytree's ignore: caches, and the workstation packages of `sub` (found by path, not by name alone)."""
    left_out = {source / p.split(".", 1)[1].replace(".", "/") for p in WORKSTATION_PACKAGES if p.split(".")[0] == sub}
    caches = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")

    def ignore(folder: str, names: list[str]) -> set[str]:
        return set(caches(folder, names)) | {n for n in names if Path(folder) / n in left_out}

    return ignore


def snapshot_code(dest: Path) -> Path:
    """Copy the board's packages once per deploy, so every board of one run gets the same code.

    Laid out as the import namespace: dest/vitfleet/ holds the core modules and dest/vitfleet/<sub>/ each board
    subpackage, wherever the checkout or wheel keeps them (the repository maps top-level folders into it).
    """
    core = _package_dir("vitfleet")
    if core is None:
        raise DeployError(
            "cannot ship the board code: the vitfleet package is not importable here; run deploy "
            "from the vitfleet checkout after make setup"
        )
    dest.mkdir(parents=True)
    target = dest / "vitfleet"
    target.mkdir()
    for module in sorted(core.glob("*.py")):
        shutil.copy2(module, target / module.name)
    missing = []
    for sub in BOARD_SUBPACKAGES:
        source = _package_dir(f"vitfleet.{sub}")
        if source is None:
            missing.append(sub)
            continue
        shutil.copytree(source, target / sub, ignore=_board_only(source, sub))
    if missing:
        raise DeployError(
            f"cannot ship the board code: vitfleet.{', vitfleet.'.join(missing)} not importable "
            "here; run deploy from the vitfleet checkout after make setup"
        )
    return dest


def stage_board(
    fleet: FleetConfig,
    plan: FleetPlan,
    board: BoardConfig,
    dest: Path,
    bundle_dir: Path,
    engines_dir: Path | None,
    fleet_secrets: FleetSecrets | None,
    code_snapshot: Path,
    wheels_dir: Path | None = None,
) -> StagedBoard:
    board_plan = plan.board(board.name)
    dest.mkdir(parents=True)
    app = dest / "app"
    shutil.copytree(code_snapshot, app)
    (app / "requirements.txt").write_text("\n".join(board_requirements(board.kind)) + "\n")
    if wheels_dir is not None and wheels_dir.exists():
        shutil.copytree(wheels_dir, app / "wheels", ignore=shutil.ignore_patterns(".complete"))

    bundle = dest / "bundle"
    bundle.mkdir()
    if (bundle_dir / "bundle.json").exists():
        shutil.copyfile(bundle_dir / "bundle.json", bundle / "bundle.json")
        fusion = bundle_dir / "fusion.safetensors"
        if "aggregator" in board_plan.services and fusion.exists():
            shutil.copyfile(fusion, bundle / fusion.name)
    if engines_dir is not None:
        if not (engines_dir / "manifest.json").exists():
            raise DeployError(
                f"{engines_dir} holds no built engines (manifest.json); build them with: "
                f"vitfleet engines build --bundle {bundle_dir} --out {engines_dir}"
            )
        shutil.copytree(engines_dir, dest / "engines", ignore=shutil.ignore_patterns("*.tmp", "*.engine"))

    config = dest / "config"
    config.mkdir()
    (config / "fleet.yaml").write_text(board_fleet_yaml(fleet, plan, board, fleet_secrets is not None))
    (config / "board.env").write_text(board_env(board, board_plan))
    commands = service_commands(board, board_plan)
    (config / "services.list").write_text("".join(f"{n}\t{shlex.join(argv)}\n" for n, argv in commands.items()))
    units = dest / "units"
    units.mkdir()
    for service, argv in commands.items():
        (units / f"vitfleet-{service}.service").write_text(render_unit(fleet, board, service, argv))

    bin_dir = dest / "bin"
    bin_dir.mkdir()
    for script in (
        "board-install.sh",
        "vitfleet-services",
        "provision-common.sh",
        "provision-debian.sh",
        "provision-jetson.sh",
    ):
        (bin_dir / script).write_text(template_text(script))
        (bin_dir / script).chmod(0o755)

    if fleet_secrets is not None:
        secrets_dir = dest / "secrets"
        _private_copy(fleet_secrets.password_file(board.name), secrets_dir / "mqtt-password")
        if fleet.broker.tls is not None:
            shutil.copyfile(fleet_secrets.ca_cert, secrets_dir / "ca.crt")
            _private_copy(fleet_secrets.client_cert(board.name), secrets_dir / "client.crt")
            _private_copy(fleet_secrets.client_key(board.name), secrets_dir / "client.key")
    if "broker" in board_plan.services:
        if fleet_secrets is None:
            raise DeployError(
                f"board {board.name} runs the broker but there are no certificates/passwords for "
                f"fleet {fleet.name}; run: make certs FLEET=<fleet.yaml>"
            )
        write_broker_files(
            fleet,
            plan.placement,
            fleet_secrets,
            dest / "broker",
            f"{board.install_dir}/broker",
            run_user=board.ssh_user,
        )
        (dest / "broker").chmod(0o700)
    digest, count = tree_digest(dest)
    return StagedBoard(board=board, plan=board_plan, root=dest, digest=digest, files=count)
