"""`vitfleet deploy profile`: measure each board's speed over SSH and keep it beside fleet.yaml.

The benchmark is a fixed float32 matrix-multiply workload (the bulk of a ViT's FLOPs) run with
the board's configured thread count; speed = measured GFLOP/s. Only ratios matter to the
placement, so GFLOP/s is a convenient unit with a physical meaning, and it is the one unit of
`speed:` everywhere (boards never profiled get their kind's typical figure, vitfleet/board_kinds.py).
Results go to `<fleet>.speeds.json` next to the fleet file (fleet.yaml stays hand-written) and
replace the `speed:` entries whenever the fleet file is loaded (vitfleet/fleet_config.py).
"""

from __future__ import annotations

import inspect
import json
import shlex
import time
from pathlib import Path

from vitfleet.agent.speed_probe import matmul_gflops
from vitfleet.firmware_scripts.errors import DeployError
from vitfleet.firmware_scripts.ssh_target import SSH_UNREACHABLE, Shell, SshOptions, SshTarget
from vitfleet.fleet_config import BoardConfig, read_speeds, speeds_path  # noqa: F401 - speeds_path: the CLI's

# Runs on the board with numpy (installed by provisioning/deploy); prints one JSON line. The agent's own
# measurement for its hello (agent/speed_probe.py) is the same function, sent here as source.
BENCH_SCRIPT = (
    "import json\n"
    + inspect.getsource(matmul_gflops).replace("{", "{{").replace("}", "}}")
    + "\nprint(json.dumps(matmul_gflops({seconds})))\n"
)


class ProfileError(DeployError):
    """A board could not be benchmarked; the message says why."""


def board_python(board: BoardConfig) -> str:
    """Shell snippet: the interpreter services use, falling back to python3 before the first deploy."""
    if board.python:
        return shlex.quote(board.python)
    venv = shlex.quote(f"{board.install_dir}/venv/bin/python")
    return f'"$( [ -x {venv} ] && echo {venv} || echo python3 )"'


def bench_command(board: BoardConfig, seconds: float) -> str:
    threads = str(board.threads)
    env = " ".join(f"{var}={threads}" for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"))
    return f"{env} {board_python(board)} -c {shlex.quote(BENCH_SCRIPT.format(seconds=seconds))}"


def profile_board(board: BoardConfig, options: SshOptions, shell: Shell, seconds: float = 2.0) -> float:
    done = shell.run(SshTarget(board, options).ssh(bench_command(board, seconds)), timeout=seconds + 60)
    if shell.dry_run:
        return board.speed
    if done.returncode == SSH_UNREACHABLE:
        raise ProfileError(
            f"{board.name}: cannot reach {board.ssh_user}@{board.host}:{board.ssh_port} over SSH "
            f"({done.stderr.strip() or 'no detail'}); check the host, the port and that your key is "
            "in the board's authorized_keys"
        )
    if not done.ok:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ProfileError(
            f"{board.name}: the benchmark failed ({tail}); provision the board first "
            "(firmware_scripts provisioning script or make deploy) so python3 + numpy exist"
        )
    try:
        gflops = float(json.loads(done.stdout.strip().splitlines()[-1])["gflops"])
    except (ValueError, KeyError, IndexError) as exc:
        raise ProfileError(f"{board.name}: unexpected benchmark output {done.stdout[-200:]!r}") from exc
    if gflops <= 0:
        raise ProfileError(f"{board.name}: benchmark measured {gflops} GFLOP/s, which cannot be right")
    return gflops


def store_speed(path: Path, board: str, gflops: float) -> None:
    data = read_speeds(path)
    data[board] = {"speed": round(gflops, 3), "measured_at": time.time()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
