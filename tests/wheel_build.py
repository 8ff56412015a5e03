"""Build vitfleet's wheel from a clean copy of the checkout: setuptools packs whatever sits in ./build/lib, so a
stale build folder from an older layout would leak into a wheel built in place."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_SKIP = shutil.ignore_patterns(
    ".venv", "runs", "build", "dist", ".git", "__pycache__", "*.egg-info", ".pytest_cache", ".hypothesis", "results"
)


def build_wheel(work: Path) -> Path:
    source = work / "src"
    shutil.copytree(REPO, source, symlinks=True, ignore=_SKIP)  # vitfleet/<folder> stay symlinks, as in git
    out = work / "wheel"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return next(out.glob("vitfleet-*.whl"))
