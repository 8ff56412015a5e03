"""Engines built once per session from `tiny_bundle`, shared by the engines test modules.

Import with `from engines_fixtures import tiny_bundle, tiny_engines`. Like tiny_bundle, the folder lives in
the session's base temp folder, so several modules importing the fixture build it once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bundle_fixture import tiny_bundle  # noqa: F401 - re-exported fixture


@pytest.fixture(scope="session")
def tiny_engines(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    from vitfleet.engines.build.from_bundle import build_engines

    folder = tmp_path_factory.getbasetemp() / "tiny_engines_int8_cpu"
    if not (folder / "manifest.json").exists():
        build_engines(tiny_bundle, folder, precision="int8", target="cpu", calib_images=256)
    return folder
