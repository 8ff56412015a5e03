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
import pkgutil
import vitfleet.agent, vitfleet.camera, vitfleet.power
mods = [m.name for pkg in (vitfleet.agent, vitfleet.camera, vitfleet.power)
        for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
assert len(mods) > 30, mods
for m in mods + ["vitfleet.cli"]:
    importlib.import_module(m)
from vitfleet.camera.sources import open_source
print(open_source("dataset://fashion-mnist/test?limit=1").read().label)
"""


def test_board_side_modules_import_without_torch():
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "9"
