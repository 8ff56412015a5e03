"""Security checks that tests/test_broker_security.py does not already make.

That file proves, against the broker config `make deploy` generates, that an unauthenticated client and a client
without the CA are refused, that a board cannot publish another part's features or predictions, and that a board
cannot read another fleet. Here:

- secrets never appear in logs: real agent and camera processes connect over TLS with a per-board password
  (debug logging on), one with a wrong password; their logs and `vitfleet camera --json` output are searched;
- `vitfleet deploy plan --json` on a fleet with credentials prints no secret;
- no pickle is ever loaded: every Python file of the kit is parsed and every call that could unpickle
  (pickle/dill/joblib/cloudpickle load, torch.load without weights_only=True, numpy load with allow_pickle=True,
  pandas.read_pickle) is refused, except the restricted CIFAR unpickler in vitfleet/datasets.py.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from engines_fixtures import tiny_bundle, tiny_engines  # noqa: F401
from test_broker_security import login, start_shared_broker, wait_for

from vitfleet.firmware_scripts.certs import secrets_for
from vitfleet.topics import ONLINE

pytestmark = pytest.mark.timeout(300, func_only=True)

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["agent", "camera", "decompose", "engines", "power", "vitfleet", "firmware_scripts", "bench"]


# ---- no pickle ----------------------------------------------------------------------------------------------------
UNPICKLING_MODULES = {"pickle", "cPickle", "_pickle", "dill", "joblib", "cloudpickle", "shelve"}
ALLOWED_UNPICKLERS = {"vitfleet/datasets.py"}  # CIFAR batches: a restricted Unpickler (find_class allow-list)


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _keyword_is(call: ast.Call, name: str, value: object) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value == value for k in call.keywords)


def unpickling_calls(source: str, path: str) -> list[str]:
    """Every place in `source` that can unpickle data, as 'path:line: what'."""
    found = []
    tree = ast.parse(source, path)
    aliases: dict[str, str] = {}  # local name -> module, for `import pickle as pk` / `from pickle import loads`
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                full = _dotted(base)
                full = aliases.get(full.split(".")[0], full.split(".")[0]) + full[len(full.split(".")[0]) :]
                if full.split(".")[0] in UNPICKLING_MODULES and full.endswith("Unpickler"):
                    found.append(f"{path}:{node.lineno}: subclass of {full}")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        head = name.split(".")[0]
        full = aliases.get(head, head) + name[len(head) :]
        module, _, func = full.rpartition(".")
        if module.split(".")[0] in UNPICKLING_MODULES and func in {"load", "loads", "Unpickler", "open"}:
            found.append(f"{path}:{node.lineno}: {full}")
        elif full in {"torch.load", "torch.serialization.load"} and not _keyword_is(node, "weights_only", True):
            found.append(f"{path}:{node.lineno}: {full} without weights_only=True")
        elif full in {"numpy.load", "np.load"} and _keyword_is(node, "allow_pickle", True):
            found.append(f"{path}:{node.lineno}: {full} with allow_pickle=True")
        elif full.endswith("read_pickle") or full in {"torch.jit.load"}:
            found.append(f"{path}:{node.lineno}: {full}")
    return found


def test_the_scanner_finds_every_way_to_unpickle():
    planted = """
import pickle, torch, numpy as np
import dill as d
from pickle import loads as L
from joblib import load
pickle.load(f); L(b); d.loads(b); load("x.joblib")
torch.load("w.pt"); torch.load("w.pt", weights_only=False); torch.load("w.pt", weights_only=True)
np.load("a.npy", allow_pickle=True); np.load("a.npy")
class U(pickle.Unpickler): pass
import pandas as pd; pd.read_pickle("x")
"""
    hits = unpickling_calls(planted, "planted.py")
    # weights_only=True and a plain np.load are safe; the other nine are not.
    assert len(hits) == 9, hits
    assert not any("weights_only=True" in h and "without" not in h for h in hits)


def test_no_pickle_is_ever_loaded():
    files = [p for pkg in PACKAGES if (REPO / pkg).is_dir() for p in sorted((REPO / pkg).rglob("*.py"))]
    assert len(files) > 50
    hits: dict[str, list[str]] = {}
    for path in files:
        rel = path.relative_to(REPO).as_posix()
        found = unpickling_calls(path.read_text(), rel)
        if found:
            hits[rel] = found
    allowed = {k: v for k, v in hits.items() if k in ALLOWED_UNPICKLERS}
    refused = {k: v for k, v in hits.items() if k not in ALLOWED_UNPICKLERS}
    assert refused == {}, f"code that can unpickle untrusted data: {refused}"
    # The one allowed unpickler really restricts what it builds.
    for rel in allowed:
        source = (REPO / rel).read_text()
        assert "def find_class" in source, f"{rel} unpickles without a find_class allow-list"


# ---- secrets stay out of logs and JSON ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secured")
    broker, fleets, certs = start_shared_broker(tmp, tls=True)
    try:
        yield tmp, broker, fleets, certs
    finally:
        broker.stop()


def _fleet_file(tmp: Path, broker, fleets, certs, engines: Path, user: str, password: str) -> Path:
    s = secrets_for(fleets[0], certs)
    pw_file = tmp / f"{user}-{abs(hash(password)) % 10**6}.pw"
    pw_file.write_text(password + "\n")
    pw_file.chmod(0o600)
    data = fleets[0].model_dump(mode="json")
    data["engines"] = str(engines)
    data["broker"] = {
        "host": "127.0.0.1",
        "port": broker.port,
        "tls": {"ca_file": str(s.ca_cert)},
        "username": user,
        "password_file": str(pw_file),
    }
    data["camera"] = {"uri": "dataset://fashion-mnist/test", "fps": 20}
    path = tmp / f"fleet-{user}-{pw_file.stem}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "vitfleet.cli", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_secrets_never_appear_in_process_logs_or_json(secured, tiny_engines):  # noqa: F811
    tmp, broker, fleets, certs = secured
    s = secrets_for(fleets[0], certs)
    secrets = {user: s.password(user) for user in ("alpha-a", "alpha-hub")}
    assert all(len(p) >= 16 for p in secrets.values())
    wrong = "Wr0ng-but-secret-" + "x" * 12
    agent_fleet = _fleet_file(tmp, broker, fleets, certs, tiny_engines, "alpha-a", secrets["alpha-a"])
    hub_fleet = _fleet_file(tmp, broker, fleets, certs, tiny_engines, "alpha-hub", secrets["alpha-hub"])
    wrong_fleet = _fleet_file(tmp, broker, fleets, certs, tiny_engines, "alpha-a", wrong)
    op = login(broker, fleets, certs, "alpha-hub")
    op.subscribe("vitfleet/alpha/boards/+/available")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    agent_log = tmp / "agent.log"
    with open(agent_log, "w") as out:
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vitfleet.cli",
                "agent",
                "--fleet",
                str(agent_fleet),
                "--board",
                "alpha-a",
                "--log-level",
                "debug",
                "--stats-interval",
                "0.5",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        # The agent really connected over TLS with its password (the broker relays its retained "online").
        assert wait_for(lambda: ("vitfleet/alpha/boards/alpha-a/available", ONLINE) in op.messages, 150), (
            agent_log.read_text()[-2000:]
        )
        camera = _run(
            [
                "camera",
                "--fleet",
                str(hub_fleet),
                "--board",
                "alpha-hub",
                "--frames",
                "5",
                "--fps",
                "20",
                "--drain",
                "0.5",
                "--json",
                "--log-level",
                "debug",
            ],
            90,
        )
        assert camera.returncode == 0, camera.stderr[-2000:]
        assert json.loads(camera.stdout)["frames_sent"] == 5
        refused = _run(
            [
                "camera",
                "--fleet",
                str(wrong_fleet),
                "--board",
                "alpha-a",
                "--frames",
                "1",
                "--json",
                "--log-level",
                "debug",
            ],
            60,
        )
        assert refused.returncode != 0  # a wrong password is refused, and says so
        plan = _run(["deploy", "plan", "--fleet", str(hub_fleet), "--json"], 60)
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(10)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
        op.close()
    texts = {
        "agent log": agent_log.read_text(),
        "camera --json stdout": camera.stdout,
        "camera log": camera.stderr,
        "refused camera": refused.stdout + refused.stderr,
        "deploy plan --json": plan.stdout + plan.stderr,
    }
    assert "alpha-a" in texts["agent log"] or "agent" in texts["agent log"]
    for what, text in texts.items():
        for secret in [*secrets.values(), wrong]:
            assert secret not in text, f"a password appears in the {what}"
    assert "refused" in texts["refused camera"].lower() or "not authori" in texts["refused camera"].lower(), texts[
        "refused camera"
    ][-1500:]
