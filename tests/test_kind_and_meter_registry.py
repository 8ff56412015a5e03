"""Board kinds and power meters are registries: a toy kind and a toy meter registered from this file alone (no kit
file edited) are taken by fleet.yaml, recognised from the device tree, given a power profile, probed and detected
in their place in the order, and listed by `vitfleet power --list`. Each test works on copies of the registries,
so the toys are gone once it ends."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from vitfleet import board_kinds
from vitfleet.board_kinds import KindSpec, board_kind, board_kind_names, known_board_kind, register_board_kind
from vitfleet.errors import UserError
from vitfleet.fleet_config import FleetConfigError, load_fleet, parse_fleet
from vitfleet.hello_message import BoardHello
from vitfleet.power import meter_registry
from vitfleet.power.board_kind import detect_board_kind
from vitfleet.power.detect import MeterEnvironment, MeterKind, detect_meter, meter_names, probe_meters, register_meter
from vitfleet.power.estimate import PsutilEstimateMeter
from vitfleet.power.meter import Meter, MeterReadError, MeterUnavailable

BUILTIN_METERS = ["jetson-jtop", "ina3221-hwmon", "tegrastats", "rpi5-pmic", "ina2xx-hwmon", "rapl"]

TOY_KIND = KindSpec(
    name="toy-board",
    target="pi",
    precision="fp16",
    backend="onnxruntime",
    provision_script="provision-debian.sh",
    model_names=("Toy Board",),
    typical_gflops=2.5,
    idle_w=1.5,
    active_w_per_core=0.25,
    power_basis="toy figures for the test",
    arch="aarch64",
)


class ToyMeter(Meter):
    """Reads microwatts from <root>/sys/class/toy_meter/power_uw, as a hwmon-style meter would."""

    source = "toy-meter"
    detail = "the toy meter's one file"

    def __init__(self, root: Path) -> None:
        self.path = root / "sys/class/toy_meter/power_uw"
        if not self.path.exists():
            raise MeterUnavailable(f"no {self.path}: no toy meter here")

    def read(self) -> float:
        try:
            return int(self.path.read_text()) / 1e6
        except (OSError, ValueError) as exc:
            raise MeterReadError(f"toy meter: {exc}") from None


def _toy_meter(board_kind: str | None, env: MeterEnvironment) -> Meter:
    return ToyMeter(env.root)


@pytest.fixture
def toys() -> Iterator[None]:
    """The toy kind and the toy meter, registered for one test: the registries forget them afterwards."""
    with board_kinds._KINDS.scratch(), meter_registry._METERS.scratch():
        register_board_kind(TOY_KIND)
        register_meter(MeterKind("toy-meter", _toy_meter, "a toy file under the sysfs root"))
        yield


def offline_env(root: Path) -> MeterEnvironment:
    """No jtop, no tegrastats, no vcgencmd: only what the tree under root offers."""

    def no_jtop() -> Any:
        raise MeterUnavailable("jetson-stats (jtop) is not installed")

    def no_vcgencmd(command: Sequence[str]) -> str:
        raise MeterUnavailable("vcgencmd is not installed")

    return MeterEnvironment(
        root=root, run_command=no_vcgencmd, tegrastats_command=["/nonexistent/tegrastats"], jtop_factory=no_jtop
    )


def _device_tree(root: Path, model: str) -> Path:
    (root / "proc/device-tree").mkdir(parents=True, exist_ok=True)
    (root / "proc/device-tree/model").write_bytes(model.encode() + b"\x00")
    return root


# --- board kinds --------------------------------------------------------------------------------------------------


def test_the_toy_kind_is_a_fleet_yaml_kind(toys: None, tmp_path: Path) -> None:
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text("boards:\n  - name: toy1\n    kind: toy-board\n  - name: pi\n    kind: pi5\n")
    fleet = load_fleet(fleet_file)
    toy = fleet.board("toy1")
    assert toy.kind == "toy-board" and toy.gflops == 2.5 and toy.engine_precision() == "fp16"
    assert fleet.board("pi").engine_precision() == "int8"  # the built-ins are unchanged
    assert board_kind("toy-board").target == "pi" and known_board_kind("toy-board") == "toy-board"
    assert board_kind_names()[-1] == "toy-board"  # registration order: after the built-ins
    hello = BoardHello(board="toy1", kind="toy-board", arch="aarch64", cores=4, memory_mb=512, ts=0.0)
    assert BoardHello.from_json(hello.model_dump_json().encode()).kind == "toy-board"


def test_the_toy_kind_is_gone_after_its_test() -> None:
    assert "toy-board" not in board_kind_names() and "toy-meter" not in meter_names()
    with pytest.raises(FleetConfigError, match="unknown board kind 'toy-board'"):
        parse_fleet({"boards": [{"name": "toy1", "kind": "toy-board"}]})


def test_an_unknown_kind_is_one_sentence_naming_the_kinds(toys: None) -> None:
    with pytest.raises(FleetConfigError) as refused:
        parse_fleet({"boards": [{"name": "b1", "kind": "toaster"}]}, "fleet.yaml")
    message = str(refused.value)
    assert message.startswith("fleet.yaml: key 'boards.0.kind': unknown board kind 'toaster'; use one of pi5, pi4,")
    assert "\n" not in message and message.endswith("x86, cpu, toy-board")
    with pytest.raises(UserError, match="unknown board kind 'toaster'; use one of pi5"):
        board_kind("toaster")


def test_the_toy_kind_is_detected_from_the_device_tree(toys: None, tmp_path: Path) -> None:
    assert detect_board_kind(_device_tree(tmp_path / "toy", "Toy Board Rev 2"), machine="aarch64") == "toy-board"
    # The built-ins keep their order: Orin (registered first) wins over Nano on an Orin Nano.
    orin_nano = _device_tree(tmp_path / "orin", "NVIDIA Jetson Orin Nano Developer Kit")
    assert detect_board_kind(orin_nano, machine="aarch64") == "jetson-orin"
    assert detect_board_kind(_device_tree(tmp_path / "nano", "NVIDIA Jetson Nano Developer Kit")) == "jetson-nano"
    assert detect_board_kind(tmp_path / "none", machine="x86_64") == "x86"


def test_a_kind_needs_a_plain_name_and_known_choices(toys: None) -> None:
    from dataclasses import replace

    with pytest.raises(ValueError, match="lower-case letters and digits joined by hyphens"):
        register_board_kind(replace(TOY_KIND, name="Toy Board"))
    with pytest.raises(ValueError, match="target 'gpu' is not one of cpu, pi, jetson"):
        register_board_kind(replace(TOY_KIND, name="toy-two", target="gpu"))  # type: ignore[arg-type]
    assert "toy-two" not in board_kind_names()


# --- power meters -------------------------------------------------------------------------------------------------


def test_the_toy_kind_has_an_estimate_profile(toys: None) -> None:
    meter = PsutilEstimateMeter("toy-board", cpu_times=lambda: [])
    assert meter.profile.idle_w == 1.5 and "toy-board profile 1.5 W idle" in meter.detail


def test_the_toy_meter_is_probed_in_order_before_the_estimate(toys: None, tmp_path: Path) -> None:
    assert meter_names() == [*BUILTIN_METERS, "toy-meter", "psutil-estimate"]
    probes = probe_meters("toy-board", offline_env(tmp_path))
    assert [p.name for p in probes] == [*BUILTIN_METERS, "toy-meter", "psutil-estimate"]
    assert [p.available for p in probes] == [False] * 7 + [True]
    assert "no toy meter here" in probes[6].reason and "toy-board profile" in probes[7].reason
    assert detect_meter("toy-board", offline_env(tmp_path)).source == "psutil-estimate"

    power_file = tmp_path / "sys/class/toy_meter/power_uw"
    power_file.parent.mkdir(parents=True)
    power_file.write_text("4250000\n")
    probes = probe_meters("toy-board", offline_env(tmp_path))
    assert [p.name for p in probes if p.available] == ["toy-meter", "psutil-estimate"]
    with detect_meter("toy-board", offline_env(tmp_path)) as meter:
        assert meter.source == "toy-meter" and not meter.estimated and meter.read() == pytest.approx(4.25)


def test_a_meter_registered_after_the_estimate_still_comes_before_it(toys: None) -> None:
    register_meter(MeterKind("toy-late", _toy_meter, "another toy"))
    assert meter_names()[-3:] == ["toy-meter", "toy-late", "psutil-estimate"]
    with pytest.raises(ValueError, match="lower-case letters and digits joined by hyphens"):
        register_meter(MeterKind("Toy Meter", _toy_meter, "a badly named toy"))


def test_power_list_shows_the_toy_meter_and_takes_the_toy_kind(toys: None) -> None:
    import json

    from typer.testing import CliRunner

    from vitfleet.cli import app

    result = CliRunner().invoke(app, ["power", "--list", "--json", "--kind", "toy-board"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["meter"] for r in rows][-2:] == ["toy-meter", "psutil-estimate"]
    assert "toy-board profile" in rows[-1]["reason"]
