"""The kit's structure, checked: one import namespace (the wheel's top_level.txt is `vitfleet`), the layers of
pyproject's import-linter contracts (lint-imports passes and every module is classified), and no import cycles."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import grimp
import pytest
from wheel_build import build_wheel

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["name"]: c for c in config["contracts"]}


def test_lint_imports_keeps_every_contract() -> None:
    done = subprocess.run([str(BIN / "lint-imports")], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


def test_every_module_is_in_a_layer() -> None:
    """A new core module or engines module must be placed in the contracts, or the layers silently miss it."""
    contracts = _contracts()
    board = contracts["The board runtime never imports the workstation side, the CLI or torch"]
    core = contracts["The core imports nothing above it"]
    core_modules = {f"vitfleet.{p.stem}" for p in (REPO / "vitfleet").glob("*.py")} - {
        "vitfleet.__init__",
        "vitfleet.cli",
    }
    assert core_modules == set(core["source_modules"])
    engines = {f"vitfleet.engines.{p.stem}" for p in (REPO / "engines").glob("*.py")} - {"vitfleet.engines.__init__"}
    engines |= {f"vitfleet.engines.{p.parent.name}" for p in (REPO / "engines").glob("*/__init__.py")}
    assert {"vitfleet.engines.runtime", "vitfleet.engines.build"} <= engines
    placed = set(board["source_modules"]) | set(board["forbidden_modules"])
    assert engines - placed == set(), "classify these engines modules as board runtime or workstation"
    assert {"torch", "timm"} <= set(board["forbidden_modules"])


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan) of a graph of one package's own imports."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles_between_modules() -> None:
    graph = grimp.build_graph("vitfleet")
    assert len(graph.modules) > 100
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "cyc"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from cyc import b\n")
    (pkg / "b.py").write_text("from cyc import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _cycles(grimp.build_graph("cyc")) == [["cyc.a", "cyc.b"]]


@pytest.mark.slow
def test_the_wheel_installs_one_top_level_package(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        top = next(n for n in names if n.endswith("top_level.txt"))
        assert z.read(top).decode().split() == ["vitfleet"]
    assert "vitfleet/agent/board_agent.py" in names and "vitfleet/agent/web/static/index.html" in names
    assert "vitfleet/firmware_scripts/templates/board-install.sh" in names
    assert not [
        n
        for n in names
        if n.split("/")[0] in ("agent", "camera", "power", "engines", "bench", "decompose", "firmware_scripts")
    ]
