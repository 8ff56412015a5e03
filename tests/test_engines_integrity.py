"""An engine that is truncated, altered, missing or described by a foreign/malformed manifest is refused
with a message saying what is wrong and how to fix it; never loaded. And the board-side runtime imports
and runs without torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from engines_fixtures import tiny_bundle, tiny_engines  # noqa: F401

from vitfleet.engines.runtime.backends import load_fusion_engine, load_part_engine
from vitfleet.engines.runtime.errors import EngineError
from vitfleet.engines.runtime.manifest import read_manifest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def engines_copy(tiny_engines: Path, tmp_path: Path) -> Path:  # noqa: F811
    return Path(shutil.copytree(tiny_engines, tmp_path / "engines"))


def test_truncated_engine_is_refused(engines_copy: Path) -> None:
    path = engines_copy / "part0.int8.onnx"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(EngineError, match=r"truncated \(\d+ of \d+ bytes\).*copy it again or rebuild"):
        load_part_engine(engines_copy, 0)


def test_sha256_mismatch_is_refused(engines_copy: Path) -> None:
    path = engines_copy / "fusion.onnx"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # same size, one byte changed
    path.write_bytes(bytes(data))
    with pytest.raises(EngineError, match=r"sha256 .* but the manifest expects .*rebuild"):
        load_fusion_engine(engines_copy)


def test_missing_engine_file_is_refused(engines_copy: Path) -> None:
    (engines_copy / "part1.int8.onnx").unlink()
    with pytest.raises(EngineError, match="missing; copy the whole engines folder"):
        load_part_engine(engines_copy, 1)


def test_manifest_missing_foreign_or_malformed(engines_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="not found; build engines first"):
        read_manifest(tmp_path / "nowhere")
    path = engines_copy / "manifest.json"
    raw = json.loads(path.read_text())
    path.write_text(json.dumps({**raw, "format_version": 99}))
    with pytest.raises(EngineError, match="manifest format 99 but this vitfleet reads format 1"):
        read_manifest(engines_copy)
    path.write_text(json.dumps({**raw, "entries": [{"role": "part"}]}))
    with pytest.raises(EngineError, match=r"field entries\.0\..*rebuild the engines"):
        read_manifest(engines_copy)
    path.write_text("{not json")
    with pytest.raises(EngineError, match="not valid JSON"):
        read_manifest(engines_copy)


def test_wrong_part_backend_and_input_shape(tiny_engines: Path) -> None:  # noqa: F811
    with pytest.raises(EngineError, match="holds parts 0..1, not 5"):
        load_part_engine(tiny_engines, 5)
    with pytest.raises(EngineError, match="no int8 tensorrt engine for part 0.*--backend tensorrt"):
        load_part_engine(tiny_engines, 0, backend="tensorrt")
    with pytest.raises(EngineError, match="unknown backend"):
        load_part_engine(tiny_engines, 0, backend="openvino")
    engine = load_part_engine(tiny_engines, 0)
    with pytest.raises(EngineError, match=r"expects image of shape \(N, 1, 28, 28\)"):
        engine.infer(np.zeros((2, 3, 28, 28), np.float32))


def test_board_runtime_runs_without_torch(tiny_engines: Path) -> None:  # noqa: F811
    script = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
        "import numpy as np\n"
        "from vitfleet.engines.runtime.backends import load_part_engine, load_fusion_engine\n"
        f"d = {str(tiny_engines)!r}\n"
        "x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)\n"
        "f = np.concatenate([load_part_engine(d, i).infer(x) for i in range(2)], 1)\n"
        "logits = load_fusion_engine(d).fuse(f, np.ones((3, 2), np.float32))\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "print(logits.shape)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(3, 10)"


def test_check_jetson_script_explains_what_is_missing_off_a_jetson(tmp_path: Path) -> None:
    env = {**os.environ, "ENGINES_DIR": str(tmp_path / "none"), "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(REPO / "engines" / "check_jetson.sh")], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 2
    assert "cannot import tensorrt; run this on a Jetson" in done.stderr
