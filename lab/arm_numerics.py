"""The same int8 engines on aarch64 (ARM kernels of ONNX Runtime, under qemu) and on this x86 machine, compared.

The board runs the engines deploy installed, with the Python and wheels deploy installed (its own venv), on the
same uint8 images the host uses; only the board runtime's modules are used there (no lab code is shipped). Per
part: cosine similarity of the feature vectors; fused: how often the predicted classes agree. qemu emulates the
ARM instructions exactly (the numerics are ARM's); its timing is meaningless and is not reported.
"""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vitfleet.lab.errors import LabError

# Runs on the board with the board's interpreter: argv = engines folder; stdin = .npy images; stdout = .npz.
BOARD_SCRIPT = r"""
import io, sys
import numpy as np
from pathlib import Path
from vitfleet.agent.engine_loading import load_fusion, load_part
engines = Path(sys.argv[1])
images = np.load(io.BytesIO(sys.stdin.buffer.read()))
fusion, manifest = load_fusion(engines)
x = manifest.preprocessing.normalize(images)
out = {}
for p in range(manifest.num_parts):
    part = load_part(engines, p)[0]
    out[f"part{p}"] = np.concatenate([np.asarray(part.infer(x[i:i + 50]), np.float32) for i in range(0, len(x), 50)])
feats = np.concatenate([out[f"part{p}"] for p in range(manifest.num_parts)], axis=1)
mask = np.ones((len(x), manifest.num_parts), np.float32)
out["classes"] = np.argmax(np.asarray(fusion.fuse(feats, mask)), axis=1)
import os, platform
out["machine"] = np.array(platform.machine())
out["qemu_cpu"] = np.array(os.environ.get("QEMU_CPU", ""))  # the CPU qemu-user emulates (lab boards)
buf = io.BytesIO()
np.savez(buf, **out)
sys.stdout.buffer.write(buf.getvalue())
"""


@dataclass(frozen=True)
class FeatureRun:
    parts: list[np.ndarray]
    classes: np.ndarray
    machine: str
    emulated_cpu: str = ""


def run_here(engines_dir: Path, images: np.ndarray) -> FeatureRun:
    from vitfleet.agent.engine_loading import load_fusion, load_part

    fusion, manifest = load_fusion(engines_dir)
    x = manifest.preprocessing.normalize(images)
    parts = [
        np.concatenate(
            [np.asarray(load_part(engines_dir, p)[0].infer(x[i : i + 50]), np.float32) for i in range(0, len(x), 50)]
        )
        for p in range(manifest.num_parts)
    ]
    mask = np.ones((len(x), manifest.num_parts), np.float32)
    classes = np.argmax(np.asarray(fusion.fuse(np.concatenate(parts, axis=1), mask)), axis=1)
    import platform

    return FeatureRun(parts, classes, platform.machine())


def run_on_board(
    ssh_argv: list[str], board_python: str, app_dir: str, engines_dir: str, images: np.ndarray, timeout: float = 1800
) -> FeatureRun:
    """`ssh_argv`: the ssh command line up to (not including) the remote command."""
    buf = io.BytesIO()
    np.save(buf, images)
    remote = f"PYTHONPATH={app_dir} OMP_NUM_THREADS=1 {board_python} -c {_quote(BOARD_SCRIPT)} {engines_dir}"
    done = subprocess.run([*ssh_argv, remote], input=buf.getvalue(), capture_output=True, timeout=timeout, check=False)
    if done.returncode != 0:
        last = (done.stderr.decode(errors="replace").strip() or "no output").splitlines()[-1]
        raise LabError(
            f"running the engines on the board failed ({last}); deploy the lab fleet first: "
            "make deploy FLEET=docs/lab-fleet.yaml"
        )
    data = np.load(io.BytesIO(done.stdout))
    n = len([k for k in data.files if k.startswith("part")])
    return FeatureRun(
        [data[f"part{p}"] for p in range(n)],
        data["classes"],
        str(data["machine"]),
        str(data["qemu_cpu"]) if "qemu_cpu" in data.files else "",
    )


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def compare(here: FeatureRun, board: FeatureRun, labels: np.ndarray | None) -> dict[str, Any]:
    parts = []
    for p, (a, b) in enumerate(zip(here.parts, board.parts)):
        cos = np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
        parts.append(
            {
                "part": p,
                "cosine_mean": round(float(cos.mean()), 6),
                "cosine_min": round(float(cos.min()), 6),
                "max_abs_diff": round(float(np.abs(a - b).max()), 6),
                "identical_vectors": int(np.sum(np.all(a == b, axis=1))),
            }
        )
    out: dict[str, Any] = {
        "images": int(len(here.classes)),
        "machine_here": here.machine,
        "machine_board": board.machine,
        "board_emulated_cpu": board.emulated_cpu or None,
        "class_agreement": round(float(np.mean(here.classes == board.classes)), 5),
        "parts": parts,
    }
    if labels is not None:
        out["accuracy_here"] = round(float(np.mean(here.classes == labels)), 5)
        out["accuracy_board"] = round(float(np.mean(board.classes == labels)), 5)
    return out
