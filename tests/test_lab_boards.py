"""The arm64 lab, end to end, as a user runs it (`make test-lab`; CI's second step):

    make lab-boards                                  two arm64 Debian boards under qemu, systemd + sshd, own netns
    make certs FLEET=docs/lab-fleet.yaml             CA, certificates, MQTT passwords
    make deploy FLEET=docs/lab-fleet.yaml            offline boards get aarch64 wheels, engines, systemd units
    vitfleet lab check                               live accuracy = offline, 0 lost; aarch64 vs x86 numerics
    vitfleet lab restart arm2                        the board comes back online by itself
    make deploy FLEET=docs/lab-fleet.yaml            changes nothing

The tests run in order on one lab (module fixture). Timing under qemu is emulation's: nothing here is timed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FLEET = "docs/lab-fleet.yaml"
VITFLEET = [sys.executable, "-m", "vitfleet.cli"]
pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(3000)]


def run(argv: list[str], timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "COLUMNS": "250"},
    )


def ok(argv: list[str], timeout: float = 1800) -> str:
    done = run(argv, timeout)
    assert done.returncode == 0, f"{' '.join(argv)} -> {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def on_board(address: str, command: str) -> str:
    key, known = REPO / "runs/lab/ssh/id_ed25519", REPO / "runs/lab/ssh/known_hosts"
    return ok(
        [
            "ssh",
            "-i",
            str(key),
            "-o",
            f"UserKnownHostsFile={known}",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "LogLevel=ERROR",
            f"vitfleet@{address}",
            command,
        ],
        300,
    )


def availability(wait: float = 5) -> dict[str, str]:
    """board -> online/offline as the broker sees it (`deploy status` exits 1 while a board is offline)."""
    done = run([*VITFLEET, "deploy", "status", "--fleet", FLEET, "--wait", str(wait), "--json"], 300)
    assert done.stdout.strip(), done.stderr[-2000:]
    return {row["board"]: row["availability"] for row in json.loads(done.stdout)}


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        pytest.fail("the lab needs root (namespaces, binfmt_misc, systemd-nspawn)")
    ok(["make", "lab-boards"], 2400)
    yield
    hub_services = Path("/opt/vitfleet-lab-hub/bin/vitfleet-services")
    if hub_services.exists():
        run([str(hub_services), "stop"], 120)
    run([*VITFLEET, "lab", "stop"], 600)


def test_boards_are_arm64_debian_with_systemd_and_their_own_network(lab):
    seen = {}
    for name, address in (("arm1", "10.231.1.2"), ("arm2", "10.231.2.2")):
        facts = on_board(
            address,
            "uname -m; hostname; systemctl is-system-running --wait; . /etc/os-release; "
            "echo $VERSION_CODENAME; ip -4 -o addr show scope global | awk '{print $4}'; "
            "sudo -n true && echo sudo-ok",
        ).split()
        assert facts[:5] == ["aarch64", name, "running", "bookworm", f"{address}/30"], facts
        assert facts[5] == "sudo-ok", facts
        seen[name] = facts
    # Each board is its own host: a different machine id, and it reaches the host's lab address (the broker's).
    ids = {on_board(a, "cat /etc/machine-id").strip() for a in ("10.231.1.2", "10.231.2.2")}
    assert len(ids) == 2


def test_make_deploy_provisions_the_arm64_boards_and_the_fleet_answers(lab):
    ok(["make", "certs", f"FLEET={FLEET}"], 300)
    ok(["make", "deploy", f"FLEET={FLEET}"], 2400)
    assert availability() == {"hub": "online", "arm1": "online", "arm2": "online"}
    for address in ("10.231.1.2", "10.231.2.2"):
        state = on_board(
            address,
            "systemctl is-enabled vitfleet-agent.service; systemctl is-active "
            "vitfleet-agent.service; /opt/vitfleet/venv/bin/python -c 'import platform, "
            "onnxruntime; print(platform.machine(), onnxruntime.__version__)'; "
            "/opt/vitfleet/venv/bin/python -c 'import torch' 2>/dev/null || echo no-torch",
        )
        assert state.split() == ["enabled", "active", "aarch64", "1.32.0", "no-torch"], state
    report = json.loads(
        ok([*VITFLEET, "lab", "check", "--fleet", FLEET, "--frames", "300", "--images", "1000", "--json"], 2400)
    )
    live = report["live"]
    assert live["answered"] == 300 and live["lost"] == 0 and live["degraded"] == 0, live
    assert abs(live["difference_pt"]) <= 0.1, live
    numerics = report["numerics"]
    assert numerics["machine_board"] == "aarch64" and numerics["machine_here"] == "x86_64"
    assert numerics["images"] == 1000 and numerics["class_agreement"] >= 0.995, numerics
    assert all(p["cosine_mean"] >= 0.99 for p in numerics["parts"]), numerics["parts"]


def test_a_rebooted_board_comes_back_by_itself(lab):
    ok([*VITFLEET, "lab", "restart", "arm2"], 900)
    deadline = time.monotonic() + 300
    while availability().get("arm2") != "online":
        assert time.monotonic() < deadline, "arm2's agent did not come back online within 300 s of its reboot"
        time.sleep(5)
    live = json.loads(
        ok([*VITFLEET, "lab", "check", "--fleet", FLEET, "--frames", "60", "--images", "0", "--json"], 900)
    )["live"]
    assert live["answered"] == 60 and live["lost"] == 0 and live["degraded"] == 0, live


def test_a_second_deploy_changes_nothing(lab):
    rows = json.loads(ok([*VITFLEET, "deploy", "apply", "--fleet", FLEET, "--json"], 1800))
    assert {row["board"]: row["deploy"] for row in rows} == {
        "hub": "unchanged",
        "arm1": "unchanged",
        "arm2": "unchanged",
    }, rows
