"""`vitfleet deploy apply` against a real sshd on loopback: three "boards" (install directories).

hub runs the broker (generated TLS + ACL config), the aggregator and the camera node; board-a and
board-b each run one part. No systemd here, so the boards use the process runner
(bin/vitfleet-services). The tests run in order: dry run, first deploy (fleet answers), second
deploy (no-op), a board that refuses SSH.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from bundle_fixture import tiny_bundle  # noqa: F401
from deploy_sshd import free_port, loopback_sshd  # noqa: F401

from vitfleet.firmware_scripts.certs import make_certs, operator_user, secrets_for
from vitfleet.fleet_config import load_fleet

# 600 s like the suite default: the shared tiny_bundle fixture alone took > 300 s at load average 18 here.
pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
BOARDS = ("hub", "board-a", "board-b")


def fleet_doc(root: Path, bundle: Path, sshd, broker_port: int, extra_boards: list[dict] | None = None) -> dict:
    def board(name: str, **extra) -> dict:
        return {
            "name": name,
            "host": "127.0.0.1",
            "kind": "cpu",
            "precision": "fp32",
            "ssh_user": "root",
            "ssh_port": sshd.port,
            "install_dir": str(root / "boards" / name),
            "python": sys.executable,
            "service_manager": "process",
            **extra,
        }

    return {
        "name": "loop",
        "bundle": str(bundle),
        "engine_builds": str(root / "engine-builds"),  # deploy's per-target builds (boards get their own engines)
        "broker": {"host": "127.0.0.1", "port": broker_port, "tls": {"ca_file": str(root / "unused-ca.crt")}},
        "boards": [
            board("hub", roles=["broker", "aggregator", "camera"]),
            board("board-a"),
            board("board-b"),
            *(extra_boards or []),
        ],
        "camera": {"uri": "dataset://fashion-mnist/test", "fps": 20, "loop": True},
        "aggregator": {"deadline_ms": 500},
    }


@pytest.fixture(scope="module")
def fleet_env(tmp_path_factory, tiny_bundle, loopback_sshd):  # noqa: F811
    root = tmp_path_factory.mktemp("deploy")
    doc = fleet_doc(root, tiny_bundle, loopback_sshd, free_port())
    fleet_file = root / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(doc))
    make_certs(load_fleet(fleet_file), root / ".certs")
    env = {"root": root, "fleet_file": fleet_file, "doc": doc, "sshd": loopback_sshd}
    yield env
    for name in BOARDS:  # stop what the deploy started
        runner = root / "boards" / name / "bin" / "vitfleet-services"
        if runner.exists():
            subprocess.run([str(runner), "stop"], capture_output=True, timeout=60)


def apply(env: dict, *extra: str, fleet_file: Path | None = None, wait: float = 90) -> subprocess.CompletedProcess:
    argv = [
        sys.executable,
        "-m",
        "vitfleet.cli",
        "deploy",
        "apply",
        "--fleet",
        str(fleet_file or env["fleet_file"]),
        "--ssh-key",
        str(env["sshd"].client_key),
        "--known-hosts",
        str(env["sshd"].known_hosts),
        "--certs-dir",
        str(env["root"] / ".certs"),
        "--wait",
        str(wait),
        *extra,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=280, env={**os.environ, "COLUMNS": "250"})


def rows_of(done: subprocess.CompletedProcess) -> dict[str, dict]:
    assert done.stdout.strip(), f"no output; stderr: {done.stderr[-2000:]}"
    return {row["board"]: row for row in json.loads(done.stdout)}


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """path -> (mtime_ns, size) of everything the deploy owns (not the logs/pids the services write)."""
    skip = {"logs", "run", "data"}
    return {
        str(p): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] not in skip
    }


def test_dry_run_prints_every_command_and_touches_nothing(fleet_env):
    done = apply(fleet_env, "--dry-run")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for name in BOARDS:
        install = fleet_env["doc"]["boards"][BOARDS.index(name)]["install_dir"]
        assert "rsync -rlp --checksum --delete" in out and f"{install}/" in out
        assert f"{install}/bin/board-install.sh install" in out
    assert out.count("root@127.0.0.1") >= 3 * 4  # stamp read, mkdir, rsync, install, stamp write per board
    assert "vitfleet engines build --bundle" in out
    assert not (fleet_env["root"] / "boards").exists(), "a dry run created install directories"
    assert not (fleet_env["root"] / "engine-builds").exists(), "a dry run built engines"


def test_deploy_installs_every_board_and_the_fleet_answers(fleet_env):
    done = apply(fleet_env, "--json")
    rows = rows_of(done)
    assert done.returncode == 0, f"{rows}\n{done.stderr[-3000:]}"
    for name in BOARDS:
        assert rows[name]["deploy"] == "installed", rows[name]
        assert rows[name]["availability"] == "online", rows[name]
        home = fleet_env["root"] / "boards" / name
        for rel in (
            "app/vitfleet/cli.py",
            "app/vitfleet/agent/board_agent.py",
            "app/requirements.txt",
            "config/fleet.yaml",
            "config/board.env",
            "bin/board-install.sh",
            "units/vitfleet-agent.service" if name != "hub" else "units/vitfleet-aggregator.service",
            ".vitfleet-deployed.json",
            "secrets/mqtt-password",
        ):
            assert (home / rel).exists(), f"{name}: {rel} missing"
        assert (home / "secrets" / "mqtt-password").stat().st_mode & 0o077 == 0
        board_cfg = yaml.safe_load((home / "config" / "fleet.yaml").read_text())
        assert board_cfg["broker"]["username"] == name
        assert board_cfg["broker"]["tls"]["ca_file"] == f"{home}/secrets/ca.crt"
        assert "torch" not in (home / "app" / "requirements.txt").read_text()
    assert (fleet_env["root"] / "boards" / "hub" / "broker" / "acl").exists()
    assert not (fleet_env["root"] / "boards" / "board-a" / "broker").exists()
    parts = {
        yaml.safe_load((fleet_env["root"] / "boards" / n / "config" / "fleet.yaml").read_text())["boards"][i].get(
            "part"
        )
        for i, n in enumerate(BOARDS)
    }
    assert parts == {None, 0, 1}

    # The deployed fleet answers: predictions arrive over the TLS broker, fused from both parts.
    fleet = load_fleet(fleet_env["fleet_file"])
    s = secrets_for(fleet, fleet_env["root"] / ".certs")
    predictions: list[dict] = []
    got = threading.Event()

    def on_message(client, userdata, msg):
        predictions.append(json.loads(msg.payload))
        if sum(not p["degraded"] for p in predictions) >= 3:
            got.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-deploy-reader")
    client.username_pw_set(operator_user(fleet), s.password(operator_user(fleet)))
    client.tls_set(ca_certs=str(s.ca_cert), cert_reqs=ssl.CERT_REQUIRED)
    client.on_connect = lambda c, *a: c.subscribe("vitfleet/loop/predictions/+", qos=1)
    client.on_message = on_message
    client.connect("127.0.0.1", fleet.broker.port)
    client.loop_start()
    try:
        assert got.wait(60), f"only {len(predictions)} predictions in 60 s: {predictions[:2]}"
    finally:
        client.disconnect()
        client.loop_stop()
    full = [p for p in predictions if not p["degraded"]]
    assert all(p["missing_parts"] == [] and 0 <= p["class_id"] < 10 for p in full)
    assert {t["part"] for t in full[0]["parts"]} == {0, 1}


def test_second_deploy_changes_nothing_and_says_so(fleet_env):
    homes = [fleet_env["root"] / "boards" / n for n in BOARDS]
    before = {str(h): tree_state(h) for h in homes}
    pids = {str(h): sorted(p.read_text() for p in (h / "run").glob("*.pid")) for h in homes}
    done = apply(fleet_env, "--json")
    rows = rows_of(done)
    assert done.returncode == 0, rows
    assert {rows[n]["deploy"] for n in BOARDS} == {"unchanged"}, rows
    assert all(rows[n]["availability"] == "online" for n in BOARDS)
    assert {str(h): tree_state(h) for h in homes} == before, "a no-change deploy modified files on a board"
    assert {str(h): sorted(p.read_text() for p in (h / "run").glob("*.pid")) for h in homes} == pids, (
        "a no-change deploy restarted services"
    )
    human = apply(fleet_env)
    assert "nothing changed" in human.stdout, human.stdout


def test_board_that_refuses_ssh_is_reported_and_the_others_go_on(fleet_env):
    env = fleet_env
    ghost = {
        "name": "board-c",
        "host": "127.0.0.1",
        "kind": "cpu",
        "ssh_user": "no-such-user",
        "ssh_port": env["sshd"].port,
        "install_dir": str(env["root"] / "boards" / "board-c"),
        "python": sys.executable,
        "service_manager": "process",
        "speed": 0.5,
    }
    doc = fleet_doc(env["root"], Path(env["doc"]["bundle"]), env["sshd"], env["doc"]["broker"]["port"], [ghost])
    fleet_file = env["root"] / "fleet-with-c.yaml"
    fleet_file.write_text(yaml.safe_dump(doc))
    make_certs(load_fleet(fleet_file), env["root"] / ".certs")  # adds board-c's password; keeps the rest
    done = apply(env, "--json", "--board", "board-c", "--board", "board-b", fleet_file=fleet_file, wait=60)
    rows = rows_of(done)
    assert done.returncode == 1
    assert set(rows) == {"board-b", "board-c"}  # --board: the other boards are not touched
    assert rows["board-c"]["deploy"] == "failed" and "unreachable over SSH" in rows["board-c"]["detail"]
    assert rows["board-b"]["deploy"] == "updated" and rows["board-b"]["availability"] == "online", rows
    assert not (env["root"] / "boards" / "board-c").exists()
