"""The small traps: Makefile chain and default goal, choice options, piped tables, fleet errors.

All fast (no model, no broker): `make -n` dry runs, `--help`, one subprocess through a pipe.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from vitfleet.cli import app
from vitfleet.fleet_config import FleetConfigError, parse_fleet

ROOT = Path(__file__).resolve().parents[1]
WIDE = {"COLUMNS": "300", "TERMINAL_WIDTH": "300"}  # typer's help boxes: one option per line
runner = CliRunner()
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def _make(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "ENGINES", "BUNDLE")}
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, env=env
    )


def _argv(lines: str, *prefix: str) -> list[str]:
    """The command line of the dry run that starts with `prefix` (after the vitfleet executable)."""
    for line in lines.replace("\\\n", " ").splitlines():
        words = shlex.split(line)
        if len(words) > len(prefix) and words[0].endswith("vitfleet") and tuple(words[1 : 1 + len(prefix)]) == prefix:
            return words
    raise AssertionError(f"no `vitfleet {' '.join(prefix)}` in:\n{lines}")


def _flag(words: list[str], flag: str) -> str:
    return words[words.index(flag) + 1]


@needs_make
@pytest.mark.parametrize("extra", [[], ["METHOD=edvit", "PARTS=2"]])
def test_make_engines_reads_the_bundle_make_decompose_writes(tmp_path, extra):
    done = _make("-n", "decompose", "engines", f"RUNS={tmp_path}", *extra)
    assert done.returncode == 0, done.stderr
    out = _flag(_argv(done.stdout, "decompose"), "--out")
    assert _flag(_argv(done.stdout, "engines", "build"), "--bundle") == out
    assert _flag(_argv(done.stdout, "engines", "check"), "--bundle") == out
    if extra:
        assert out.endswith("bundle-edvit-2")


@needs_make
def test_make_demo_runs_the_engines_make_engines_built_last(tmp_path):
    runs = tmp_path / "runs"
    # Nothing built: the demo trains its own bundle (no --engines, no --bundle).
    demo = _argv(_make("-n", "demo", f"RUNS={runs}").stdout, "demo")
    assert "--engines" not in demo and "--bundle" not in demo
    # `make engines` records what it built and checked (its last recipe line; run it alone, the others need a model).
    dry = _make("-n", "engines", f"RUNS={runs}").stdout.strip().splitlines()[-1]
    assert "last.mk" in dry
    subprocess.run(["bash", "-c", dry], check=True, cwd=ROOT)
    (runs / "engines" / "cpu").mkdir(parents=True)
    (runs / "engines" / "cpu" / "manifest.json").write_text("{}")
    (runs / "bundle-devit-4").mkdir()
    (runs / "bundle-devit-4" / "bundle.json").write_text("{}")
    demo = _argv(_make("-n", "demo", f"RUNS={runs}").stdout, "demo")
    assert _flag(demo, "--engines") == str(runs / "engines" / "cpu")
    assert _flag(demo, "--bundle") == str(runs / "bundle-devit-4")
    # Other engines on request (their bundle unknown), or none: the demo's own bundle.
    demo = _argv(_make("-n", "demo", f"RUNS={runs}", "ENGINES=/elsewhere").stdout, "demo")
    assert _flag(demo, "--engines") == "/elsewhere" and "--bundle" not in demo
    demo = _argv(_make("-n", "demo", f"RUNS={runs}", "ENGINES=").stdout, "demo")
    assert "--engines" not in demo and "--bundle" not in demo


@needs_make
def test_bare_make_prints_the_help_and_runs_nothing_else():
    dry = _make("-n")
    assert dry.returncode == 0, dry.stderr
    assert "apt-get" not in dry.stdout and "pip" not in dry.stdout and "vitfleet " not in dry.stdout
    done = _make()
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0] for line in done.stdout.splitlines() if line.startswith("  ")}
    assert {"help", "setup", "test", "demo", "teacher", "decompose", "engines", "deploy", "bench"} <= listed
    assert "list the targets" in done.stdout and _make("help").stdout == done.stdout


@pytest.mark.parametrize(
    "command, choices",
    [
        (["decompose"], ["devit|edvit", "random|confusion", "cosine|linear|constant"]),
        (["teacher"], ["auto|fp32|bf16"]),
        (["engines", "build"], ["cpu|pi|jetson", "fp32|fp16|int8|all", "onnxruntime|tensorrt"]),
        (["engines", "check"], ["fp32|fp16|int8", "onnxruntime|tensorrt"]),
        (["engines", "latency"], ["onnxruntime|tensorrt"]),
        (["agent"], ["onnxruntime|tensorrt", "debug|info|warning|error"]),
        (["camera"], ["raw|jpeg", "debug|info|warning|error"]),
        (["demo"], ["debug|info|warning|error"]),
    ],
)
def test_choice_options_list_their_values_in_help(command, choices):
    result = runner.invoke(app, [*command, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    for choice in choices:
        assert choice in result.output, f"{' '.join(command)} --help lacks {choice}"


def test_a_wrong_choice_is_a_usage_error_and_values_stay_plain_strings(tmp_path, monkeypatch):
    result = runner.invoke(app, ["decompose", "--teacher", "t", "--out", "o", "--method", "devitt"], env=WIDE)
    assert result.exit_code == 2 and "Invalid value for '--method'" in result.output
    assert "'devitt' is not one of 'devit', 'edvit'" in result.output
    # Case-insensitive, and the command receives the plain string it always did.
    import vitfleet.engines.runtime.latency as latency

    seen = {}
    monkeypatch.setattr(
        latency,
        "measure_latency",
        lambda engines_dir, threads, runs, warmup, backend: seen.setdefault("backend", backend) and [],
    )
    result = runner.invoke(app, ["engines", "latency", str(tmp_path), "--backend", "TensorRT", "--json"])
    assert result.exit_code == 0, result.output
    assert seen["backend"] == "tensorrt" and type(seen["backend"]) is str


def test_tables_printed_to_a_pipe_are_not_cut_to_80_columns(tmp_path):
    host = "jetson-orin-nano-devkit-in-the-living-room.fleet.example.internal"
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        yaml.safe_dump(
            {
                "name": "home",
                "broker": {"host": host},
                "boards": [
                    {"name": "pi-a", "host": "192.168.100.121", "kind": "pi5", "memory_mb": 8192},
                    {
                        "name": "orin-in-the-living-room",
                        "host": host,
                        "kind": "jetson-orin",
                        "memory_mb": 8192,
                        "roles": ["agent", "broker", "aggregator", "camera"],
                    },
                ],
            }
        )
    )
    # The real CLI in a child whose stdout is a pipe; only the bundle's part sizes are stubbed (no bundle needed).
    probe = (
        "import sys\nimport vitfleet.firmware_scripts.fleet_plan as fp\n"
        "fp.part_costs = lambda d: [fp.PartCost(0, 200_000, 9_000_000), fp.PartCost(1, 300_000, 20_000_000)]\n"
        f"sys.argv = ['vitfleet', 'deploy', 'plan', '--fleet', {str(fleet)!r}]\n"
        "from vitfleet.cli import main\nmain()\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    assert host in done.stdout.split("\n", 3)[3] and "192.168.100.121" in done.stdout  # in the table, whole
    assert "orin-in-the-living-room" in done.stdout and "jetson-orin" in done.stdout
    assert "…" not in done.stdout


def _dupes() -> dict:
    return {
        "name": "home",
        "boards": [
            {"name": "pi-a", "host": "10.0.0.1"},
            {"name": "pi-b", "host": "10.0.0.2"},
            {"name": "pi-a", "host": "10.0.0.3", "kind": "pi5", "memory_mb": 4096},
        ],
    }


def test_a_duplicate_board_name_is_one_sentence_that_names_it():
    with pytest.raises(FleetConfigError) as err:
        parse_fleet(_dupes(), "fleet.yaml")
    message = str(err.value)
    assert message == (
        "fleet.yaml: board name 'pi-a' appears more than once in 'boards'; give every board its own "
        "name (it is the board's MQTT identity)"
    )
    two_cameras = {"boards": [{"name": "a", "roles": ["camera"]}, {"name": "b", "roles": ["camera"]}]}
    with pytest.raises(
        FleetConfigError,
        match=r"^fleet.yaml: only one board may have role 'camera', found a, b; "
        r"remove 'camera' from the roles of all but one$",
    ):
        parse_fleet(two_cameras, "fleet.yaml")


def test_a_duplicate_board_name_in_fleet_yaml_is_one_line_exit_2(tmp_path):
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(yaml.safe_dump(_dupes()))
    result = runner.invoke(app, ["deploy", "plan", "--fleet", str(fleet)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'pi-a' appears more than once" in lines[0], result.stderr
    assert "10.0.0.3" not in result.stderr and "{" not in result.stderr
