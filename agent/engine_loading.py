"""Load this process's engines through the engines component (which checks each file's sha256)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vitfleet.engines.runtime.manifest import Manifest, read_manifest


def limit_threads(threads: int) -> None:
    """One inference thread per agent: set before numpy/onnxruntime spin up their pools."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))


def load_part(engines_dir: Path, part: int, backend: str = "onnxruntime", threads: int = 1) -> tuple[Any, Manifest]:
    from vitfleet.engines.runtime.backends import load_part_engine

    manifest = read_manifest(engines_dir)
    return load_part_engine(engines_dir, part, backend=backend, threads=threads), manifest


def load_fusion(engines_dir: Path, backend: str = "onnxruntime", threads: int = 1) -> tuple[Any, Manifest]:
    from vitfleet.engines.runtime.backends import load_fusion_engine

    manifest = read_manifest(engines_dir)
    return load_fusion_engine(engines_dir, backend=backend, threads=threads), manifest
