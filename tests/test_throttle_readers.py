"""Throttling readers on real-format samples: `vcgencmd get_throttled` answers as the firmware prints them, sysfs
thermal-zone trees written to a temporary folder, a stand-in jtop object shaped like jetson-stats 4 (unverified on
hardware), and the measured ratio every board adds."""

from __future__ import annotations

from pathlib import Path

import pytest

from vitfleet.power.meter import MeterReadError
from vitfleet.power.thermal_zones import read_thermal_zones
from vitfleet.power.throttle import ThermalThrottleReader, read_or_none, throttle_reader
from vitfleet.power.throttle_jetson import JtopThrottleReader, jtop_state
from vitfleet.power.throttle_measured import with_measured
from vitfleet.power.throttle_pi import PiThrottleReader, parse_get_throttled
from vitfleet.throttle_state import ThrottleState


def _zone(root: Path, i: int, kind: str, milli: str, trips: list[tuple[str, str]] = ()) -> None:
    zone = root / f"thermal_zone{i}"
    zone.mkdir(parents=True)
    (zone / "type").write_text(f"{kind}\n")
    (zone / "temp").write_text(f"{milli}\n")
    for j, (trip_type, trip_temp) in enumerate(trips):
        (zone / f"trip_point_{j}_type").write_text(f"{trip_type}\n")
        (zone / f"trip_point_{j}_temp").write_text(f"{trip_temp}\n")


@pytest.mark.parametrize(
    "answer, now, since",
    [
        ("throttled=0x0\n", [], []),
        (
            "throttled=0x50005\n",
            ["under-voltage now", "throttled now"],
            ["under-voltage since boot", "throttled since boot"],
        ),
        ("throttled=0x80008\n", ["soft temperature limit now"], ["soft temperature limit since boot"]),
        ("throttled=0x50000\n", [], ["under-voltage since boot", "throttled since boot"]),
    ],
)
def test_get_throttled_bits_are_read_as_the_firmware_documents_them(answer: str, now: list, since: list) -> None:
    bits = parse_get_throttled(answer)
    assert bits.now == now and bits.since_boot == since


@pytest.mark.parametrize("answer", ["", 'error=1 error_msg="Command not registered"', "throttled=zz", "0x5"])
def test_an_unexpected_vcgencmd_answer_is_a_read_error_naming_it(answer: str) -> None:
    with pytest.raises(MeterReadError, match="get_throttled answered"):
        parse_get_throttled(answer)


def test_pi_reader_combines_the_firmware_bits_and_the_hottest_zone(tmp_path: Path) -> None:
    _zone(tmp_path, 0, "cpu-thermal", "81234", [("passive", "80000"), ("critical", "110000")])
    reader = PiThrottleReader(
        lambda cmd: "throttled=0x20002\n" if list(cmd) == ["vcgencmd", "get_throttled"] else "", tmp_path
    )
    state = reader.read()
    assert state == ThrottleState(
        source="vcgencmd",
        throttled=True,
        reasons=["ARM frequency capped now", "ARM frequency capped since boot"],
        temp_c=81.2,
    )


def test_thermal_zones_skip_unreadable_sensors_and_report_the_passive_trip(tmp_path: Path) -> None:
    _zone(tmp_path, 0, "x86_pkg_temp", "97000", [("critical", "105000"), ("passive", "95000")])
    _zone(tmp_path, 1, "acpitz", "not-a-number")
    _zone(tmp_path, 2, "iwlwifi_1", "41000")
    zones = read_thermal_zones(tmp_path)
    assert [(z.name, z.temp_c, z.passive_trip_c, z.at_trip) for z in zones] == [
        ("x86_pkg_temp", 97.0, 95.0, True),
        ("iwlwifi_1", 41.0, None, False),
    ]
    state = ThermalThrottleReader(tmp_path).read()
    assert state.throttled and state.temp_c == 97.0 and "x86_pkg_temp at 97 °C (passive trip 95 °C)" in state.reasons
    assert ThermalThrottleReader(tmp_path / "none").read() == ThrottleState(source="none")


class _Jtop:
    """jetson-stats 4's properties as an Orin Nano under load prints them (values from its documentation)."""

    def __init__(self, cpu_temp: float, cur_khz: int) -> None:
        self.temperature = {
            "CPU": {"online": True, "temp": cpu_temp},
            "GPU": {"online": True, "temp": 60.5},
            "PMIC": {"online": False, "temp": -256.0},
        }
        self.cpu = {
            "total": {},
            "cpu": [
                {"online": True, "freq": {"min": 115200, "max": 1510400, "cur": cur_khz}},
                {"online": False, "freq": {}},
            ],
        }
        self.closed = False

    def start(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_jtop_reader_reports_a_hot_capped_jetson_and_says_it_is_unverified() -> None:
    reader = JtopThrottleReader(lambda: _Jtop(91.0, 729600))
    state = reader.read()
    assert state.source == "jtop" and state.throttled and not state.verified and state.temp_c == 91.0
    assert state.reasons == ["hot (91 °C)", "1 of 1 cores below 90% of their maximum clock"]
    cool = jtop_state(_Jtop(45.0, 1510400).temperature, _Jtop(45.0, 1510400).cpu)
    assert not cool.throttled and cool.reasons == []
    with pytest.raises(MeterReadError, match="shape jetson-stats 4"):
        jtop_state({"CPU": 50}, {"cpu": []})


def test_a_jetson_without_jtop_falls_back_to_thermal_zones_and_a_pc_reads_its_zones(tmp_path: Path) -> None:
    def no_jtop():
        raise ImportError("no jtop")

    assert isinstance(throttle_reader("jetson-orin", tmp_path, jtop_factory=no_jtop), ThermalThrottleReader)
    assert isinstance(throttle_reader("x86", tmp_path), ThermalThrottleReader)
    assert isinstance(throttle_reader("pi5", tmp_path), PiThrottleReader)

    class Broken:
        source = "vcgencmd"

        def read(self) -> ThrottleState:
            raise MeterReadError("vcgencmd is not installed")

    assert read_or_none(Broken()) is None


def test_the_measured_ratio_marks_a_board_throttled_only_when_its_rate_fell_below_the_threshold() -> None:
    quiet = ThrottleState(source="none")
    slow = with_measured(quiet, 33.0, 100.0)
    assert slow.throttled and slow.source == "measured" and slow.speed_ratio == 0.33
    assert "0.33x the best rate" in slow.reasons[0]
    assert with_measured(quiet, 90.0, 100.0) == ThrottleState(source="none", speed_ratio=0.9)
    assert with_measured(quiet, None, 100.0) == quiet and with_measured(quiet, 50.0, None) == quiet
    firmware = ThrottleState(source="vcgencmd", throttled=True, reasons=["throttled now"])
    assert with_measured(firmware, 30.0, 100.0).source == "vcgencmd"  # the hardware's reason stays the cause
