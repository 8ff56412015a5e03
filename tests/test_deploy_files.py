"""What deploy generates, checked without boards: plan, units, board tree, first-boot files, process runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from deploy_sshd import loopback_sshd  # noqa: F401

from vitfleet.errors import UserError
from vitfleet.firmware_scripts.board_tree import (
    board_env,
    board_requirements,
    render_unit,
    service_commands,
    snapshot_code,
    stage_board,
)
from vitfleet.firmware_scripts.certs import make_certs, secrets_for
from vitfleet.firmware_scripts.deploy import DeployOptions, deploy_fleet
from vitfleet.firmware_scripts.engine_step import builds_root
from vitfleet.firmware_scripts.errors import DeployError
from vitfleet.firmware_scripts.first_boot import read_public_key, write_first_boot
from vitfleet.firmware_scripts.fleet_plan import make_plan
from vitfleet.firmware_scripts.speed_profile import profile_board, speeds_path, store_speed
from vitfleet.firmware_scripts.ssh_target import Shell, SshOptions
from vitfleet.firmware_scripts.templates_render import template_text
from vitfleet.fleet_config import load_fleet, parse_fleet
from vitfleet.placement import BoardSlot, PartCost, PlacementError, place, place_parts

pytestmark = pytest.mark.timeout(120)

PARTS = [PartCost(0, params=200_000, flops=9_000_000), PartCost(1, params=300_000, flops=20_000_000)]


def home_fleet(**broker) -> dict:
    return {
        "name": "home",
        "broker": {"host": "10.0.0.3", "port": 8883, "tls": {"ca_file": "ca.crt"}, **broker},
        "boards": [
            {"name": "pi-a", "host": "10.0.0.1", "kind": "pi4", "memory_mb": 4096, "speed": 1.0},
            {"name": "pi-b", "host": "10.0.0.2", "kind": "pi5", "memory_mb": 8192, "speed": 2.5},
            {
                "name": "orin",
                "host": "10.0.0.3",
                "kind": "jetson-orin",
                "memory_mb": 8192,
                "speed": 9.0,
                "roles": ["agent", "broker", "aggregator", "camera"],
            },
        ],
    }


def test_plan_places_the_heaviest_part_on_the_fastest_board_and_picks_engines_per_kind():
    plan = make_plan(parse_fleet(home_fleet()), PARTS)
    by = {b.board: b for b in plan.boards}
    assert by["orin"].part == 1 and by["pi-b"].part == 0 and by["pi-a"].part is None
    assert (by["orin"].backend, by["orin"].precision, by["orin"].builds_on_board) == ("tensorrt", "int8", True)
    assert (by["pi-b"].backend, by["pi-b"].precision) == ("onnxruntime", "int8")
    assert by["orin"].services == ("broker", "agent", "aggregator", "camera")
    assert by["pi-a"].services == ()
    assert plan.broker.startswith("orin") and plan.aggregator == "orin" and plan.camera == "orin"


def test_one_part_per_board_is_the_general_placement_with_one_slot():
    # Equal boards: the heaviest part goes to the board listed first (fleet.yaml order), as deploy always did.
    fleet = parse_fleet({"boards": [{"name": n, "memory_mb": 2048} for n in ("z", "a", "m")]})
    assert place_parts(PARTS, fleet.boards) == {"z": 1, "a": 0}
    slots = [BoardSlot(b.name, b.gflops, b.memory_mb) for b in fleet.boards]
    assert place({p.index: p.load for p in PARTS}, slots, parts_per_board=1).assignments == {
        "z": [1],
        "a": [0],
        "m": [],
    }
    # A pinned part stays as written; the others take the free boards.
    pinned = parse_fleet({"boards": [{"name": "z", "part": 0}, {"name": "a"}, {"name": "m", "speed": 50.0}]})
    assert place_parts(PARTS, pinned.boards) == {"z": 0, "m": 1}


def test_plan_refuses_a_broker_host_that_is_not_the_broker_board():
    with pytest.raises(DeployError, match="broker.host"):
        make_plan(parse_fleet(home_fleet(host="10.0.0.9")), PARTS)


def test_plan_reports_a_part_that_fits_no_board():
    doc = home_fleet()
    for b in doc["boards"]:
        b["memory_mb"] = 100
    with pytest.raises(PlacementError, match="part 1 needs"):
        make_plan(parse_fleet(doc), PARTS)


def test_measured_speeds_override_the_fleet_file(tmp_path):
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(home_fleet()))
    store_speed(speeds_path(fleet_file), "pi-a", 50.0)
    fleet = load_fleet(fleet_file)  # measured speeds are applied on load
    by = {b.board: b for b in make_plan(fleet, PARTS).boards}
    assert by["pi-a"].speed == 50.0 and by["pi-a"].part == 1 and by["orin"].part == 0


def test_profile_measures_a_board_over_ssh(loopback_sshd, tmp_path):  # noqa: F811
    board = parse_fleet(
        {
            "boards": [
                {
                    "name": "loop",
                    "ssh_user": "root",
                    "ssh_port": loopback_sshd.port,
                    "python": sys.executable,
                    "install_dir": str(tmp_path),
                }
            ]
        }
    ).boards[0]
    gflops = profile_board(board, SshOptions(loopback_sshd.client_key, loopback_sshd.known_hosts), Shell(), 0.3)
    assert gflops > 0.05


def test_systemd_units_verify(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    fleet = parse_fleet(
        {
            **home_fleet(),
            "boards": [
                {
                    "name": "hub",
                    "host": "10.0.0.3",
                    "roles": ["broker", "agent", "aggregator", "camera"],
                    "part": 0,
                    "install_dir": str(tmp_path),
                    "python": sys.executable,
                    "ssh_user": "root",
                }
            ],
        }
    )
    plan = make_plan(fleet, PARTS[:1])
    board = fleet.boards[0]
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "board.env").write_text(board_env(board, plan.board("hub")))
    units = []
    for service, argv in service_commands(board, plan.board("hub")).items():
        unit = tmp_path / f"vitfleet-{service}.service"
        unit.write_text(render_unit(fleet, board, service, argv))
        units.append(str(unit))
    assert len(units) == 4
    done = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    text = Path(units[1]).read_text()
    assert "Restart=on-failure" in text and "User=root" in text and "StandardOutput=journal" in text
    # The checker itself rejects a broken unit (so a pass above means something).
    bad = tmp_path / "vitfleet-bad.service"
    bad.write_text(text.replace(f"ExecStart={sys.executable}", "ExecStart=/nonexistent/python"))
    assert subprocess.run(["systemd-analyze", "verify", str(bad)], capture_output=True, timeout=60).returncode != 0


def test_board_tree_holds_board_config_secrets_and_no_torch(tmp_path):
    doc = {**home_fleet(), "engine_builds": str(tmp_path / "builds")}
    fleet = parse_fleet(doc)
    make_certs(fleet, tmp_path / "certs")
    plan = make_plan(fleet, PARTS)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "bundle.json").write_text("{}")
    code = snapshot_code(tmp_path / "code")
    staged = stage_board(
        fleet, plan, fleet.board("orin"), tmp_path / "stage", bundle, None, secrets_for(fleet, tmp_path / "certs"), code
    )
    root = staged.root
    cfg = yaml.safe_load((root / "config" / "fleet.yaml").read_text())
    assert cfg["broker"]["username"] == "orin" and "password_env" not in cfg["broker"]
    assert cfg["engines"] == f"{fleet.board('orin').install_dir}/engines" and "engine_builds" not in cfg
    assert [b.get("part") for b in cfg["boards"]] == [None, 0, 1]
    env = (root / "config" / "board.env").read_text()
    assert "VITFLEET_TENSORRT_PRECISION=int8" in env and "VITFLEET_PROVISION_SCRIPT=provision-jetson.sh" in env
    reqs = (root / "app" / "requirements.txt").read_text()
    assert "onnxruntime" in reqs and "pycuda" in reqs and "torch" not in reqs
    assert "torch" not in " ".join(board_requirements("pi4"))
    assert "--backend tensorrt" in (root / "config" / "services.list").read_text()
    for private in ("secrets/mqtt-password", "secrets/client.key", "broker/broker.key", "broker/mosquitto.passwd"):
        assert (root / private).stat().st_mode & 0o077 == 0, private
    password = secrets_for(fleet, tmp_path / "certs").password("orin")
    assert all(
        password.encode() not in p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and "secrets" not in p.parts and p.suffix != ".pyc" and p.stat().st_size < 1_000_000
    )
    assert not (root / "app" / "bench" / "results").exists()  # report artifacts are not shipped to boards
    # Same inputs, same digest: what makes a redeploy a no-op.
    again = stage_board(
        fleet,
        plan,
        fleet.board("orin"),
        tmp_path / "stage2",
        bundle,
        None,
        secrets_for(fleet, tmp_path / "certs"),
        code,
    )
    assert again.digest == staged.digest
    (tmp_path / "stage2" / "config" / "board.env").write_text(env + "X=1\n")
    from vitfleet.firmware_scripts.board_tree import tree_digest

    assert tree_digest(tmp_path / "stage2")[0] != staged.digest


def test_board_env_refuses_paths_with_spaces():
    fleet = parse_fleet({"boards": [{"name": "a", "install_dir": "/opt/my fleet"}]})
    plan = make_plan(fleet, PARTS[:1])
    with pytest.raises(DeployError, match="spaces"):
        board_env(fleet.boards[0], plan.board("a"))


def test_first_boot_files(tmp_path):
    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "me@laptop", "-f", str(key_dir / "k")], check=True
    )
    fleet = parse_fleet(home_fleet())
    files = write_first_boot(fleet, fleet.board("pi-a"), key_dir / "k.pub", tmp_path / "boot")
    user_data = (tmp_path / "boot" / "user-data").read_text()
    assert user_data.startswith("#cloud-config\n")
    parsed = yaml.safe_load(user_data)
    assert parsed["hostname"] == "pi-a"
    assert parsed["users"][0]["name"] == "vitfleet"
    assert parsed["users"][0]["ssh_authorized_keys"] == [(key_dir / "k.pub").read_text().strip()]
    firstrun = tmp_path / "boot" / "firstrun.sh"
    assert subprocess.run(["bash", "-n", str(firstrun)]).returncode == 0
    text = firstrun.read_text()
    assert "NEW_HOSTNAME=pi-a" in text and "'$6$" in text and "@@" not in text
    assert "systemd.run=/boot/firmware/firstrun.sh" in (tmp_path / "boot" / "cmdline.txt.append").read_text()
    assert len(files) == 4
    with pytest.raises(DeployError, match="private key"):
        read_public_key(key_dir / "k")


def test_shell_scripts_parse():
    for name in ("board-install.sh", "vitfleet-services", "provision-debian.sh", "provision-jetson.sh"):
        script = Path(__file__).parents[1] / "firmware_scripts" / "templates" / name
        assert script.read_text() == template_text(name)
        assert subprocess.run(["sh", "-n", str(script)]).returncode == 0, name


def _runner_home(tmp_path: Path, services: dict[str, str]) -> Path:
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    (home / "config").mkdir()
    runner = home / "bin" / "vitfleet-services"
    runner.write_text(template_text("vitfleet-services"))
    runner.chmod(0o755)
    (home / "config" / "board.env").write_text("VITFLEET_BOARD=t\n")
    (home / "config" / "services.list").write_text("".join(f"{n}\t{c}\n" for n, c in services.items()))
    return home


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _run(home: Path, action: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(home / "bin" / "vitfleet-services"), action], capture_output=True, text=True, timeout=30)


def test_process_runner_starts_restarts_on_failure_and_stops(tmp_path):
    counter = tmp_path / "starts"
    home = _runner_home(
        tmp_path,
        {
            "steady": "sleep 300",
            # Exits at once every time: the runner must keep restarting it (every 3 s).
            "flaky": f"sh -c 'echo start >> {counter}; exit 1'",
        },
    )
    try:
        assert "started: steady" in _run(home, "start").stdout
        steady_pid = (home / "run" / "steady.pid").read_text()
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline and (not counter.exists() or len(counter.read_text().split()) < 2):
            time.sleep(0.2)
        assert len(counter.read_text().split()) >= 2, "the failing service was not restarted"
        assert "exited (1), restarting" in (home / "logs" / "flaky.log").read_text()
        ensure = _run(home, "ensure")
        assert "started" not in ensure.stdout and (home / "run" / "steady.pid").read_text() == steady_pid
        assert _run(home, "status").returncode == 0
        # A service removed from the list is stopped by the next start/ensure.
        (home / "config" / "services.list").write_text("steady\tsleep 300\n")
        assert "stopped: flaky" in _run(home, "ensure").stdout
        group = [p for p in psutil.process_iter(["pid"]) if _pgid(p.pid) == int(steady_pid)]
        assert any("sleep" in " ".join(p.cmdline()) for p in group), "the service itself is not in the group"
    finally:
        _run(home, "stop")
    status = _run(home, "status")
    assert status.returncode == 3 and "stopped: steady" in status.stdout
    # The loop and the service it ran are gone (zombies waiting for a non-reaping init count as gone).
    for proc in group:
        try:
            assert proc.status() == psutil.STATUS_ZOMBIE, f"{proc.cmdline()} survived stop"
        except psutil.NoSuchProcess:
            pass


def test_certs_json_names_files_but_never_prints_secrets(tmp_path):
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(home_fleet()))
    argv = [
        sys.executable,
        "-m",
        "vitfleet.cli",
        "deploy",
        "certs",
        "--fleet",
        str(fleet_file),
        "--certs-dir",
        str(tmp_path / "certs"),
        "--json",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert "password:pi-a" in out["created"]
    s = secrets_for(load_fleet(fleet_file), tmp_path / "certs")
    for user in ("pi-a", "pi-b", "orin", "operator-home"):
        assert s.password(user) not in done.stdout + done.stderr


def test_example_fleet_file_loads_and_plans():
    example = Path(__file__).parents[1] / "docs" / "fleet.example.yaml"
    fleet = load_fleet(example)
    plan = make_plan(fleet, PARTS)
    assert plan.broker.startswith("orin") and {b.part for b in plan.boards} == {0, 1, None}


def test_engines_is_the_folder_agents_load_and_engine_builds_where_deploy_builds(tmp_path):
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump({**home_fleet(), "engines": "runs/engines/cpu", "engine_builds": "builds"}))
    fleet = load_fleet(fleet_file)  # both relative to the fleet file
    assert fleet.engines == tmp_path / "runs" / "engines" / "cpu" and builds_root(fleet) == tmp_path / "builds"
    fleet_file.write_text(yaml.safe_dump({**home_fleet(), "engines": "runs/engines"}))
    assert builds_root(load_fleet(fleet_file)) == tmp_path / "runs" / "engine-builds"  # the default


def test_an_old_fleet_file_whose_engines_holds_deploy_builds_is_told_to_rename_the_key(tmp_path):
    for build in ("pi-int8", "jetson-int8"):  # what deploy built under `engines:` before `engine_builds:`
        (tmp_path / "runs" / "engines" / build).mkdir(parents=True)
    doc = home_fleet()
    doc["boards"][2]["roles"] = ["agent", "aggregator", "camera"]  # an external broker: no certificates needed
    doc["broker"]["host"] = "10.0.0.9"
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump({**doc, "engines": "runs/engines"}))
    fleet = load_fleet(fleet_file)
    with pytest.raises(DeployError) as err:
        deploy_fleet(fleet, make_plan(fleet, PARTS), None, DeployOptions(dry_run=True))
    assert isinstance(err.value, UserError) and "\n" not in str(err.value)  # one line, exit 2 from the CLI
    assert str(err.value) == (
        f"fleet.yaml's engines: {tmp_path / 'runs' / 'engines'} holds deploy's per-target "
        "builds (jetson-int8/, pi-int8/) but no manifest.json; rename the key `engines:` to "
        "`engine_builds:` (`engines:` now names the one folder an agent loads)"
    )
    fleet_file.write_text(yaml.safe_dump({**doc, "engine_builds": "runs/engines"}))  # renamed: the same builds
    assert builds_root(load_fleet(fleet_file)) == tmp_path / "runs" / "engines"


def test_shipped_code_covers_the_cli_and_runs_without_torch(tmp_path):
    """Boards never install torch: the shipped CLI must import and answer --help with torch absent."""
    from vitfleet.firmware_scripts.board_tree import BOARD_SUBPACKAGES

    code = snapshot_code(tmp_path / "app")
    for command in ("agent", "aggregator", "camera"):
        # Drop this checkout's editable-install finder: only the shipped copy may satisfy an import.
        probe = (
            f"import sys; sys.modules['torch'] = None; sys.argv = ['vitfleet', {command!r}, '--help']\n"
            "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
            "from vitfleet.cli import main\nmain()"
        )
        done = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(code)},
        )
        assert done.returncode == 0, f"{command}: {done.stderr[-800:]}"
    shipped = {p.name for p in (code / "vitfleet").iterdir() if p.is_dir()}
    assert shipped == set(BOARD_SUBPACKAGES) == {"agent", "camera", "power", "engines"}
    assert (code / "vitfleet" / "preprocessing.py").exists() and not (code / "vitfleet" / "decompose").exists()


def test_the_board_tree_holds_no_demo_harness_and_no_build_module(tmp_path):
    """Boards get the runtime only: no demo, local fleet, dashboard or probe (the fleet harness), no ONNX export,
    calibration or demo-engine building; every left-out module is one the board runtime may not import."""
    import tomllib

    from vitfleet.firmware_scripts.board_tree import WORKSTATION_PACKAGES

    code = snapshot_code(tmp_path / "app") / "vitfleet"
    modules = {p.relative_to(code).with_suffix("").as_posix().replace("/", ".") for p in code.rglob("*.py")}
    harness = {
        "demo",
        "local_fleet",
        "local_broker",
        "processes",
        "dashboard",
        "fleet_view",
        "hop_probe",
        "offline_accuracy",
    }
    assert not {m for m in modules if m.rsplit(".", 1)[-1] in harness}, modules
    assert not (code / "fleet").exists() and (code / "agent" / "web" / "server.py").exists()
    left_out = {f"vitfleet.{p}" for p in WORKSTATION_PACKAGES}
    assert left_out == {"vitfleet.engines.build"} and not (code / "engines" / "build").exists()
    assert not {f"vitfleet.{m}" for m in modules if any(f"vitfleet.{m}".startswith(f"{p}.") for p in left_out)}
    assert (code / "engines" / "runtime" / "backends.py").exists()
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    board = next(
        c
        for c in tomllib.loads(pyproject.read_text())["tool"]["importlinter"]["contracts"]
        if c["name"].startswith("The board runtime")
    )
    assert left_out <= set(board["forbidden_modules"]) and "vitfleet.fleet" in board["forbidden_modules"]
    assert {
        "vitfleet.engines.runtime.manifest",
        "vitfleet.engines.runtime.backends",
        "vitfleet.engines.tensorrt_build",
        "vitfleet.engines.check",
    } <= {f"vitfleet.{m}" for m in modules}  # what a Jetson runs and checks


def test_jetson_install_runs_the_tensorrt_build_with_flags_the_engines_cli_accepts(tmp_path):
    """board-install.sh on a Jetson calls `vitfleet engines build --backend tensorrt` before any service starts.

    No GPU here: the engines CLI must accept the flags and stop at the empty engines folder (a UserError
    about the manifest, not a usage error), and the script must stop before starting services.
    """
    home = tmp_path / "orin"
    fleet = parse_fleet(
        {
            "name": "j",
            "boards": [
                {
                    "name": "orin",
                    "kind": "jetson-orin",
                    "install_dir": str(home),
                    "python": sys.executable,
                    "service_manager": "process",
                }
            ],
        }
    )
    plan = make_plan(fleet, PARTS[:1])
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    stage_board(fleet, plan, fleet.board("orin"), home, bundle, None, None, snapshot_code(tmp_path / "code"))
    (home / "engines").mkdir()
    env = (home / "config" / "board.env").read_text()
    # kind jetson-* would run apt provisioning (needs a real JetPack); this test covers the TensorRT step only.
    (home / "config" / "board.env").write_text(
        env.replace("VITFLEET_PROVISION_SCRIPT=provision-jetson.sh", "VITFLEET_PROVISION_SCRIPT=")
    )
    done = subprocess.run(
        [str(home / "bin" / "board-install.sh"), "install"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "manifest.json not found" in done.stderr and "No such option" not in done.stderr, done.stderr[-800:]
    assert not (home / "run").exists(), "services were started although the engine build failed"


def test_board_config_keeps_never_heal_and_leaves_the_workstations_ssh_settings_home(tmp_path):
    doc = {**home_fleet(), "aggregator": {"heal_after_s": None}, "ssh": {"key": "keys/id", "known_hosts": "kh"}}
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(doc))
    fleet = load_fleet(fleet_file)
    assert fleet.ssh.key == tmp_path / "keys" / "id" and fleet.ssh.known_hosts == tmp_path / "kh"
    assert SshOptions.for_fleet(fleet.ssh).key == tmp_path / "keys" / "id"
    assert SshOptions.for_fleet(fleet.ssh, key=Path("/k")).key == Path("/k")  # the command line wins
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "bundle.json").write_text("{}")
    make_certs(fleet, tmp_path / "certs")
    staged = stage_board(
        fleet,
        make_plan(fleet, PARTS),
        fleet.board("pi-a"),
        tmp_path / "stage",
        bundle,
        None,
        secrets_for(fleet, tmp_path / "certs"),
        snapshot_code(tmp_path / "code"),
    )
    cfg = yaml.safe_load((staged.root / "config" / "fleet.yaml").read_text())
    # null means "never move parts"; dropped, the board's default would heal after 2 s.
    assert "heal_after_s" in cfg["aggregator"] and cfg["aggregator"]["heal_after_s"] is None
    assert parse_fleet(cfg).aggregator.heal_after_s is None
    assert "ssh" not in cfg


def test_an_offline_board_gets_its_kinds_wheels_in_its_tree(tmp_path):
    from vitfleet.firmware_scripts.wheelhouse import platform_tags, wheelhouse

    assert platform_tags("aarch64")[0] == "manylinux_2_28_aarch64"
    with pytest.raises(DeployError, match="offline"):
        wheelhouse("cpu", ["numpy"], tmp_path, echo=lambda line: None)  # a kind with no known CPU
    commands: list[str] = []
    planned = wheelhouse("debian-arm64", ["numpy==2.4.6"], tmp_path, echo=commands.append, dry_run=True)
    assert "--platform manylinux_2_28_aarch64" in commands[0] and "--python-version 3.11" in commands[0]
    assert "--only-binary=:all:" in commands[0] and not planned.exists()
    # What a finished download looks like: the board's tree carries it (and the digest covers it).
    planned.mkdir(parents=True)
    (planned / "numpy-2.4.6-cp311-cp311-manylinux_2_28_aarch64.whl").write_bytes(b"wheel")
    (planned / ".complete").write_text("numpy==2.4.6\n")
    assert wheelhouse("debian-arm64", ["numpy==2.4.6"], tmp_path, echo=commands.append) == planned
    fleet = parse_fleet(
        {
            **home_fleet(),
            "boards": [
                {**home_fleet()["boards"][0], "kind": "debian-arm64", "offline": True},
                home_fleet()["boards"][2],
            ],
        }
    )
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "bundle.json").write_text("{}")
    make_certs(fleet, tmp_path / "certs")
    staged = stage_board(
        fleet,
        make_plan(fleet, PARTS),
        fleet.board("pi-a"),
        tmp_path / "stage",
        bundle,
        None,
        secrets_for(fleet, tmp_path / "certs"),
        snapshot_code(tmp_path / "code"),
        planned,
    )
    assert [p.name for p in (staged.root / "app" / "wheels").iterdir()] == [
        "numpy-2.4.6-cp311-cp311-manylinux_2_28_aarch64.whl"
    ]


def test_the_lab_fleet_file_loads_and_plans():
    lab = load_fleet(Path(__file__).parents[1] / "docs" / "lab-fleet.yaml")
    plan = make_plan(lab, PARTS)
    assert {b.board: b.part for b in plan.boards} == {"hub": None, "arm1": 1, "arm2": 0} or {
        b.board: b.part for b in plan.boards
    } == {"hub": None, "arm1": 0, "arm2": 1}
    assert [b.offline for b in lab.boards] == [False, True, True] and lab.aggregator.heal_after_s is None
