"""Board-side code (agent/, camera/) imports and runs without torch, as on a Raspberry Pi."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import importlib, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "timm", "torchvision", "torch_pruning"):
            raise ImportError("torch is not installed on this board")
sys.meta_path.insert(0, Block())
for m in ["agent.cli", "agent.board_agent", "agent.aggregator", "agent.camera_node", "agent.demo", "agent.dashboard",
          "agent.engine_loading", "camera.sources", "camera.still_sources", "camera.opencv_source",
          "camera.jetson_source", "camera.picam_source", "vitfleet.cli"]:
    importlib.import_module(m)
from camera.sources import open_source
print(open_source("dataset://fashion-mnist/test?limit=1").read().label)
"""


def test_board_side_modules_import_without_torch():
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "9"
