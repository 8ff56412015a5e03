"""Extension points from outside the kit: a decomposition method and a camera source, each registered by a plugin
module the test writes (no kit file edited), found through a real entry point or $VITFLEET_PLUGINS, and listed by
the CLI's --help."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN = textwrap.dedent('''
    """A toy vitfleet plugin: one decomposition method and one camera source."""
    from dataclasses import replace

    import numpy as np

    from vitfleet.camera.frame_source import Frame, FrameSource, SourceInfo
    from vitfleet.camera.source_registry import SourceKind, register_source
    from vitfleet.decompose.methods import get_method, register_method

    # DeViT's mechanics under another name, with its own default recipe.
    register_method(replace(get_method("devit"), name="toymethod", summary="Toy: DeViT with a 1/20 budget",
                            defaults=get_method("devit").defaults.model_copy(update={"part_budget": 0.05})))


    class ToySource(FrameSource):
        def __init__(self, spec):
            self.left = int(spec.target or 3)

        def read(self):
            if self.left == 0:
                return None
            self.left -= 1
            return Frame(np.full((8, 8, 1), self.left, np.uint8), label=self.left)

        def describe(self):
            return SourceInfo(fps=None, width=8, height=8)

        def close(self):
            pass


    register_source(SourceKind("toyframes", ToySource, "toyframes://N (N toy frames)", example_target="3"))
''')

CHECK = textwrap.dedent("""
    from vitfleet.plugins import load_plugins
    print(load_plugins())
    from vitfleet.camera.sources import open_source
    from vitfleet.decompose.default_options import default_options
    from vitfleet.bench.settings import BenchSettings
    src = open_source("toyframes://4")
    print([int(src.read().image[0, 0, 0]) for _ in range(4)], src.read())
    print(default_options("toymethod", 2).part_budget, "toymethod" in BenchSettings().methods)
""")


def _write_plugin(folder: Path, entry_point: bool) -> None:
    (folder / "toy_vitfleet_plugin.py").write_text(PLUGIN)
    if entry_point:  # what `pip install` of a package with [project.entry-points."vitfleet.plugins"] leaves
        info = folder / "toy_vitfleet_plugin-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-vitfleet-plugin\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text("[vitfleet.plugins]\ntoy = toy_vitfleet_plugin\n")


def _run(args: list[str], folder: Path, plugins: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(folder), "COLUMNS": "250"}
    env.pop("VITFLEET_PLUGINS", None)
    if plugins is not None:
        env["VITFLEET_PLUGINS"] = plugins
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=120)


def test_a_plugin_installed_as_an_entry_point_adds_a_method_and_a_camera_source(tmp_path: Path):
    _write_plugin(tmp_path, entry_point=True)
    decompose_help = _run(["-m", "vitfleet.cli", "decompose", "--help"], tmp_path)
    assert decompose_help.returncode == 0, decompose_help.stderr
    assert "devit|edvit|toymethod" in decompose_help.stdout and "Toy: DeViT with a 1/20 budget" in decompose_help.stdout
    camera_help = _run(["-m", "vitfleet.cli", "camera", "--help"], tmp_path)
    assert camera_help.returncode == 0 and "toyframes://N (N toy frames)" in camera_help.stdout
    check = _run(["-c", CHECK], tmp_path)
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines() == ["['toy_vitfleet_plugin']", "[3, 2, 1, 0] None", "0.05 True"]


def test_a_plugin_named_in_the_environment_is_loaded_too(tmp_path: Path):
    _write_plugin(tmp_path, entry_point=False)
    assert "toymethod" not in _run(["-m", "vitfleet.cli", "decompose", "--help"], tmp_path).stdout
    check = _run(["-c", CHECK], tmp_path, plugins="toy_vitfleet_plugin")
    assert check.returncode == 0 and check.stdout.splitlines()[0] == "['toy_vitfleet_plugin']", check.stderr


def test_a_plugin_that_does_not_import_is_one_sentence(tmp_path: Path):
    run = _run(["-m", "vitfleet.cli", "--help"], tmp_path, plugins="no_such_vitfleet_plugin")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "plugin no_such_vitfleet_plugin (named by $VITFLEET_PLUGINS) could not be imported" in run.stderr
    assert len(run.stderr.strip().splitlines()) <= 2


def test_an_unknown_method_or_scheme_names_the_registered_ones():
    import pytest
    from pydantic import ValidationError

    from vitfleet.bench.settings import BenchSettings
    from vitfleet.camera.uri import CameraUriError, parse_uri
    from vitfleet.decompose.methods import get_method

    with pytest.raises(Exception, match="unknown decomposition method 'nope'; use one of devit, edvit"):
        get_method("nope")
    with pytest.raises(ValidationError, match="use one of devit, edvit"):
        BenchSettings(methods=["nope"])
    with pytest.raises(CameraUriError, match="unknown camera scheme 'nope'.*synthetic://"):
        parse_uri("nope://x")
