"""Every meter and the detection order, run over recorded sysfs trees and real subprocesses.

Sysfs trees come from tests/data/power/sysfs_*.txt (layout from the kernel docs; see the README
there), written into a temporary root that the meters are pointed at. Commands (tegrastats,
vcgencmd) run as real subprocesses replaying recorded output, or as the injected runner.
"""

from __future__ import annotations

import codecs
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
import pytest

from vitfleet.errors import UserError
from vitfleet.power.board_kind import detect_board_kind
from vitfleet.power.detect import MeterEnvironment, detect_meter, probe_meters
from vitfleet.power.estimate import PsutilEstimateMeter, busy_cores, power_profile
from vitfleet.power.ina2xx_hwmon import Ina2xxHwmonMeter
from vitfleet.power.ina3221_hwmon import Ina3221HwmonMeter
from vitfleet.power.jetson_jtop import JtopMeter
from vitfleet.power.meter import MeterReadError, MeterUnavailable
from vitfleet.power.rapl import RaplMeter, counter_delta
from vitfleet.power.rpi5_pmic import Rpi5PmicMeter, run_vcgencmd
from vitfleet.power.tegrastats import TegrastatsMeter

DATA = Path(__file__).parent / "data" / "power"
ORDER = ["jetson-jtop", "ina3221-hwmon", "tegrastats", "rpi5-pmic", "ina2xx-hwmon", "rapl", "psutil-estimate"]


def sysfs_tree(name: str, root: Path) -> Path:
    """Write tests/data/power/<name>.txt (`path = value` lines, `\\0` escapes) under root."""
    for line in (DATA / f"{name}.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        rel, _, value = line.partition(" = ")
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        text = codecs.decode(value, "unicode_escape")
        path.write_text(text if text.endswith("\0") else text + "\n")
    return root


def pmic_output(name: str = "vcgencmd_pmic_read_adc_pi5_zeus.txt") -> Any:
    text = (DATA / name).read_text()

    def run(command: Sequence[str]) -> str:
        assert list(command) == ["vcgencmd", "pmic_read_adc"]
        return text

    return run


def no_vcgencmd(command: Sequence[str]) -> str:
    return run_vcgencmd(["/nonexistent/vcgencmd", *command[1:]])


class FakeJtop:
    """Stands in for jtop.jtop (needs a Jetson and its service): same start/ok/power/close surface."""

    def __init__(self, power: Any, start_error: Exception | None = None) -> None:
        self.power, self.start_error, self.closed, self.alive = power, start_error, False, True

    def start(self) -> None:
        if self.start_error:
            raise self.start_error

    def ok(self, spin: bool = False) -> bool:
        assert spin, "the meter must not block on jtop's next update"
        if isinstance(self.alive, Exception):
            raise self.alive
        return self.alive

    def close(self) -> None:
        self.closed = True


def offline_env(root: Path, **kw: Any) -> MeterEnvironment:
    """No jtop, no tegrastats, no vcgencmd: only what the sysfs tree under root offers."""

    def no_jtop() -> Any:
        raise MeterUnavailable("jetson-stats (jtop) is not installed")

    args: dict[str, Any] = dict(
        root=root, run_command=no_vcgencmd, tegrastats_command=["/nonexistent/tegrastats"], jtop_factory=no_jtop
    )
    args.update(kw)
    return MeterEnvironment(**args)


# --- INA3221 (Jetson) ----------------------------------------------------------------------------


def test_ina3221_takes_vdd_in_alone(tmp_path: Path) -> None:
    meter = Ina3221HwmonMeter(sysfs_tree("sysfs_orin_nano", tmp_path))
    assert meter.source == "ina3221-hwmon:VDD_IN" and not meter.estimated
    assert meter.read() == pytest.approx(5048 * 896 / 1e6)  # sub-rails are inside VDD_IN: not added


def test_ina3221_without_total_rail_sums_connected_rails(tmp_path: Path) -> None:
    meter = Ina3221HwmonMeter(sysfs_tree("sysfs_agx_orin", tmp_path))
    assert meter.source == "ina3221-hwmon:sum"
    assert "NC" not in [r.label for r in meter.rails] and len(meter.rails) == 4
    tegrastats_mw = 3150 + 14312 + 4968 + 1091  # the recorded AGX Orin tegrastats line
    assert meter.read() == pytest.approx(tegrastats_mw / 1000, abs=0.005)


def test_ina3221_missing_or_garbage_files(tmp_path: Path) -> None:
    root = sysfs_tree("sysfs_orin_nano", tmp_path)
    hwmon = root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1"
    meter = Ina3221HwmonMeter(root)
    (hwmon / "curr1_input").unlink()
    with pytest.raises(MeterReadError, match="curr1_input is missing"):
        meter.read()
    (hwmon / "curr1_input").write_text("4294967296x\n")
    with pytest.raises(MeterUnavailable, match="should hold an integer"):
        Ina3221HwmonMeter(root)
    with pytest.raises(MeterUnavailable, match="no .*ina3221"):
        Ina3221HwmonMeter(tmp_path / "empty")


# --- INA2xx (any Pi) ------------------------------------------------------------------------------


def test_ina219_power_register_and_fallback_to_v_times_i(tmp_path: Path) -> None:
    root = sysfs_tree("sysfs_pi_ina219", tmp_path)
    meter = Ina2xxHwmonMeter(root)
    assert meter.source == "ina2xx-hwmon" and "ina219" in meter.detail and "hwmon2" in meter.detail
    assert meter.read() == pytest.approx(3.16)
    (root / "sys/class/hwmon/hwmon2/power1_input").unlink()
    assert Ina2xxHwmonMeter(root).read() == pytest.approx(5104 * 620 / 1e6)


def test_ina219_garbage_and_vanishing_files(tmp_path: Path) -> None:
    root = sysfs_tree("sysfs_pi_ina219", tmp_path)
    meter = Ina2xxHwmonMeter(root)
    (root / "sys/class/hwmon/hwmon2/power1_input").write_bytes(b"\xff\xfe")
    with pytest.raises(MeterReadError, match="binary data"):
        meter.read()
    (root / "sys/class/hwmon/hwmon2/power1_input").write_text("\n")
    with pytest.raises(MeterUnavailable, match="should hold an integer"):
        Ina2xxHwmonMeter(root)
    shutil.rmtree(root / "sys/class/hwmon/hwmon2")
    with pytest.raises(MeterUnavailable, match="no INA219"):
        Ina2xxHwmonMeter(root)


# --- RAPL (x86) -------------------------------------------------------------------------------------


class Clock:
    def __init__(self, *times: float) -> None:
        self.times = list(times)

    def __call__(self) -> float:
        return self.times.pop(0) if len(self.times) > 1 else self.times[0]


def test_rapl_counter_wraps_around() -> None:
    assert counter_delta(100, 350, 1000) == 250
    assert counter_delta(262143000000, 671150, 262143328850) == 1_000_000
    with pytest.raises(MeterReadError, match="wrap cannot be undone"):
        counter_delta(500, 100, 0)


def test_rapl_watts_across_a_wrap_and_only_packages(tmp_path: Path) -> None:
    root = sysfs_tree("sysfs_x86_rapl", tmp_path)
    energy = root / "sys/class/powercap/intel-rapl:0/energy_uj"
    meter = RaplMeter(root, clock=Clock(10.0, 10.0, 11.0, 11.0, 11.5), sleep=lambda s: None)
    assert [z.name for z in meter.zones] == ["package-0"]  # psys and the core sub-zone would double count
    energy.write_text("671150\n")  # wrapped: 328850 uJ to the top + 671150 after = 1 J in 1 s
    assert meter.read() == pytest.approx(1.0)
    energy.write_text("2671150\n")  # +2 J in 0.5 s
    assert meter.read() == pytest.approx(4.0)


def test_rapl_sums_packages(tmp_path: Path) -> None:
    root = sysfs_tree("sysfs_x86_rapl", tmp_path)
    pkg1 = root / "sys/class/powercap/intel-rapl:2"
    pkg1.mkdir()
    (pkg1 / "name").write_text("package-1\n")
    (pkg1 / "energy_uj").write_text("0\n")
    (pkg1 / "max_energy_range_uj").write_text("262143328850\n")
    meter = RaplMeter(root, clock=Clock(0.0, 0.0, 2.0), sleep=lambda s: None)
    (root / "sys/class/powercap/intel-rapl:0/energy_uj").write_text("262143000000\n")  # +0 J
    (pkg1 / "energy_uj").write_text("10000000\n")  # +10 J in 2 s
    assert meter.read() == pytest.approx(5.0)


def test_rapl_absent_or_garbage(tmp_path: Path) -> None:
    with pytest.raises(MeterUnavailable, match="exposes no RAPL"):
        RaplMeter(tmp_path)
    root = sysfs_tree("sysfs_x86_rapl", tmp_path / "x86")
    (root / "sys/class/powercap/intel-rapl:0/energy_uj").write_text("lots\n")
    with pytest.raises(MeterUnavailable, match="should hold an integer"):
        RaplMeter(root)


REPO = Path(__file__).resolve().parents[1]


def _as_nobody(code: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    for python in (sys.executable, "/usr/bin/python3"):
        try:
            done = subprocess.run(
                [python, "-c", "import vitfleet.power.rapl"],
                capture_output=True,
                text=True,
                timeout=60,
                user=65534,
                group=65534,
                cwd="/",
                env=env,
            )
        except (PermissionError, FileNotFoundError):
            continue
        if done.returncode == 0:
            return subprocess.run(
                [python, "-c", code],
                capture_output=True,
                text=True,
                timeout=60,
                user=65534,
                group=65534,
                cwd="/",
                env=env,
            )
    pytest.skip("no Python interpreter and checkout that the nobody user can run")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to the nobody user")
def test_rapl_root_only_counter_gives_the_udev_rule() -> None:
    # A real permission denial: the counter is 0400 root (as since Linux 5.10) and the probe runs as nobody.
    # Its own world-readable temp dir: pytest's tmp_path sits under a 0700 root directory.
    with tempfile.TemporaryDirectory(prefix="vitfleet-rapl-") as tmp:
        root = sysfs_tree("sysfs_x86_rapl", Path(tmp))
        for d in [root, *root.rglob("*")]:
            d.chmod(0o755 if d.is_dir() else 0o444)
        (root / "sys/class/powercap/intel-rapl:0/energy_uj").chmod(0o400)
        probe = (
            "from pathlib import Path; from vitfleet.power.rapl import RaplMeter\n"
            f"try:\n    RaplMeter(Path({str(root)!r}))\nexcept Exception as e:\n    print(type(e).__name__, e)"
        )
        done = _as_nobody(probe)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("MeterUnavailable"), done.stdout
    assert "root only since Linux 5.10" in done.stdout and 'SUBSYSTEM=="powercap"' in done.stdout


# --- Raspberry Pi 5 PMIC -------------------------------------------------------------------------


def test_pmic_meter_over_recorded_output() -> None:
    meter = Rpi5PmicMeter(pmic_output())
    assert meter.source == "rpi5-pmic" and not meter.estimated and meter.min_interval_s >= 0.25
    assert "12 PMIC rails" in meter.detail and "below a wall meter" in meter.detail
    # zeus' capture, four busy cores: VDD_CORE 6.22 A x 0.86 V = 5.36 W, the other 11 rails ~1.9 W
    assert 7.0 < meter.read() < 7.5


def test_pmic_meter_unavailable_reasons() -> None:
    with pytest.raises(MeterUnavailable, match="vcgencmd is not installed"):
        Rpi5PmicMeter(no_vcgencmd)
    with pytest.raises(MeterUnavailable, match="only the Raspberry Pi 5"):
        Rpi5PmicMeter(lambda command: 'error=1 error_msg="Command not registered"\n')


def test_run_vcgencmd_failures_are_clear() -> None:
    with pytest.raises(MeterReadError, match="exited with code 255: VCHI initialization failed.*video"):
        run_vcgencmd(["sh", "-c", "echo 'VCHI initialization failed' >&2; exit 255"])
    with pytest.raises(MeterReadError, match="did not answer within 0.2 s"):
        run_vcgencmd(["sleep", "5"], timeout_s=0.2)


# --- tegrastats (real subprocess replaying recorded lines) -------------------------------------------


def _replay(name: str, then: str = "exec sleep 30") -> list[str]:
    return ["sh", "-c", f"cat {DATA / name}; {then}"]


def test_tegrastats_meter_reads_latest_line() -> None:
    with TegrastatsMeter(_replay("tegrastats_orin_nano_jp6.txt")) as meter:
        assert meter.source == "tegrastats" and "VDD_IN" in meter.detail
        deadline = 50
        while meter.read() != pytest.approx(4.761) and deadline:  # the reader reaches the last line
            deadline -= 1
            subprocess.run(["sleep", "0.02"])
        assert meter.read() == pytest.approx(4.761)


def test_tegrastats_meter_reports_a_dead_process() -> None:
    meter = TegrastatsMeter(_replay("tegrastats_nano_jp4.txt", then="exit 0"), stale_after_s=0.3)
    try:
        assert meter.read() == pytest.approx(2.132)
        subprocess.run(["sleep", "0.4"])
        with pytest.raises(MeterReadError, match="tegrastats exited with code 0"):
            meter.read()
    finally:
        meter.close()


def test_tegrastats_meter_unavailable_reasons() -> None:
    with pytest.raises(MeterUnavailable, match="cannot start /nonexistent/tegrastats"):
        TegrastatsMeter(["/nonexistent/tegrastats"])
    with pytest.raises(MeterUnavailable, match="exited with code 3 before printing a power rail: need root"):
        TegrastatsMeter(["sh", "-c", "echo garbage; echo need root >&2; exit 3"])
    with pytest.raises(MeterUnavailable, match="no line with a power rail within 0.3 s"):
        TegrastatsMeter(["sh", "-c", "echo RAM 1655/3956MB; exec sleep 30"], first_line_timeout_s=0.3)


# --- jtop (stand-in object: jtop needs a Jetson and its service) ------------------------------------


def test_jtop_v4_total_rail() -> None:
    fake = FakeJtop(
        {
            "rail": {"VDD_CPU_GPU_CV": {"power": 515}},
            "tot": {"volt": 5048, "curr": 896, "power": 4523, "avg": 4500, "name": "VDD_IN"},
        }
    )
    meter = JtopMeter(lambda: fake)
    assert meter.source == "jetson-jtop:VDD_IN" and meter.read() == pytest.approx(4.523)
    fake.alive = RuntimeError("Lost connection with jtop server")
    with pytest.raises(MeterReadError, match="Lost connection"):
        meter.read()
    meter.close()
    assert fake.closed


def test_jtop_v3_tuple_prefers_input_rail_over_its_wrong_total() -> None:
    fake = FakeJtop(
        ({"cur": 2485, "avg": 2400}, {"POM_5V_IN": {"cur": 2132, "avg": 2132}, "POM_5V_CPU": {"cur": 275, "avg": 275}})
    )
    assert JtopMeter(lambda: fake).read() == pytest.approx(2.132)


def test_jtop_unavailable_reasons() -> None:
    not_active = FakeJtop({}, start_error=RuntimeError("The jtop.service is not active"))
    with pytest.raises(MeterUnavailable, match="jtop.service is not active.*systemctl enable"):
        JtopMeter(lambda: not_active)
    with pytest.raises(MeterUnavailable, match="not a shape this meter knows"):
        JtopMeter(lambda: FakeJtop({"tot": {"power": "n/a"}}))
    if importlib.util.find_spec("jtop") is None:
        with pytest.raises(MeterUnavailable, match="jetson-stats \\(jtop\\) is not installed.*AGPL"):
            JtopMeter()


# --- the estimate -----------------------------------------------------------------------------------


def _cpu_times(*per_cpu: dict[str, float]) -> list[Any]:
    cls = type(psutil.cpu_times())
    return [cls(**{f: fields.get(f, 0.0) for f in cls._fields}) for fields in per_cpu]


def test_busy_cores_from_cpu_time_deltas() -> None:
    before = _cpu_times({"user": 10, "idle": 10}, {"user": 5, "idle": 50})
    after = _cpu_times({"user": 11, "idle": 11}, {"user": 5, "idle": 52})
    assert busy_cores(before, after) == pytest.approx(0.5)
    if "guest" in type(psutil.cpu_times())._fields:  # Linux counts guest inside user
        guest = _cpu_times({"user": 11, "idle": 11, "guest": 1}, {"user": 5, "idle": 52})
        assert busy_cores(before, guest) == pytest.approx(0.5)


def test_estimate_is_flagged_and_follows_the_profile() -> None:
    samples = iter(
        [
            _cpu_times({"user": 0, "idle": 0}, {"user": 0, "idle": 0}),
            _cpu_times({"user": 3, "idle": 1}, {"user": 0, "idle": 4}),
        ]
    )
    meter = PsutilEstimateMeter("pi4", cpu_times=lambda: next(samples))
    assert meter.estimated and meter.source == "psutil-estimate" and "ESTIMATE" in meter.detail
    assert meter.read() == pytest.approx(2.7 + 0.93 * 0.75)


def test_estimate_on_this_machine_stays_within_its_profile() -> None:
    meter = PsutilEstimateMeter("x86")
    watts = meter.read()
    assert 10.0 <= watts <= 10.0 + 5.0 * psutil.cpu_count()
    with pytest.raises(MeterUnavailable, match="no power profile for board kind 'toaster'"):
        PsutilEstimateMeter("toaster")


def test_profiles_cover_every_fleet_board_kind() -> None:
    from vitfleet.board_kinds import board_kind_names

    assert all(power_profile(kind) is not None for kind in board_kind_names())
    assert power_profile("toaster") is None


# --- board kind and detection order -----------------------------------------------------------------


@pytest.mark.parametrize(
    "tree,kind", [("sysfs_orin_nano", "jetson-orin"), ("sysfs_agx_orin", "jetson-orin"), ("sysfs_pi_ina219", "pi4")]
)
def test_board_kind_from_device_tree(tmp_path: Path, tree: str, kind: str) -> None:
    assert detect_board_kind(sysfs_tree(tree, tmp_path), machine="aarch64") == kind


def test_board_kind_without_device_tree(tmp_path: Path) -> None:
    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "proc/device-tree/model").write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    assert detect_board_kind(tmp_path, machine="aarch64") == "pi5"
    assert detect_board_kind(tmp_path / "none", machine="x86_64") == "x86"
    assert detect_board_kind(tmp_path / "none", machine="riscv64") == "cpu"


def test_probe_lists_every_meter_in_order_with_reasons(tmp_path: Path) -> None:
    probes = probe_meters("x86", offline_env(tmp_path))
    assert [p.name for p in probes] == ORDER
    assert [p.available for p in probes] == [False] * 6 + [True]
    reasons = {p.name: p.reason for p in probes}
    assert "not installed" in reasons["jetson-jtop"] and "cannot start" in reasons["tegrastats"]
    assert "exposes no RAPL" in reasons["rapl"] and reasons["psutil-estimate"].startswith("estimated:")
    meter = detect_meter("x86", offline_env(tmp_path))
    assert meter.source == "psutil-estimate" and meter.estimated


@pytest.mark.parametrize(
    "tree,env_kw,source",
    [
        ("sysfs_orin_nano", {}, "ina3221-hwmon:VDD_IN"),
        ("sysfs_agx_orin", {}, "ina3221-hwmon:sum"),
        ("sysfs_pi_ina219", {}, "ina2xx-hwmon"),
        ("sysfs_pi_ina219", {"run_command": pmic_output()}, "rpi5-pmic"),  # PMIC comes before INA2xx
        ("sysfs_x86_rapl", {}, "rapl"),
    ],
)
def test_detect_picks_first_available_in_order(tmp_path: Path, tree: str, env_kw: dict[str, Any], source: str) -> None:
    meter = detect_meter(None, offline_env(sysfs_tree(tree, tmp_path), **env_kw))
    try:
        assert meter.source == source and not meter.estimated
    finally:
        meter.close()


def test_jtop_wins_over_everything_and_tegrastats_over_the_pi(tmp_path: Path) -> None:
    fake = FakeJtop({"tot": {"power": 6626, "name": "VDD_IN"}})
    env = offline_env(sysfs_tree("sysfs_orin_nano", tmp_path), jtop_factory=lambda: fake)
    assert detect_meter(None, env).source == "jetson-jtop:VDD_IN"
    env = offline_env(
        tmp_path / "empty", run_command=pmic_output(), tegrastats_command=_replay("tegrastats_nano_jp4.txt")
    )
    meter = detect_meter(None, env)
    try:
        assert meter.source == "tegrastats"
    finally:
        meter.close()


def test_a_meter_that_crashes_while_probing_is_reported_not_raised(tmp_path: Path) -> None:
    def broken() -> Any:
        raise RuntimeError("jtop socket exploded")

    probes = probe_meters("cpu", offline_env(tmp_path, jtop_factory=broken))
    assert probes[0].reason == "probe failed unexpectedly: RuntimeError: jtop socket exploded"
    assert probes[-1].available


def test_unknown_board_kind_fails_detection_with_every_reason(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no power meter works here.*rapl: no .*psutil-estimate: no power profile"):
        detect_meter("toaster", offline_env(tmp_path))


def test_this_machine_is_labelled_honestly() -> None:
    """FIELD-NOTES: this VM has no RAPL and no hwmon, so it must fall back to the labelled estimate."""
    meter = detect_meter()
    try:
        has_hardware = (
            Path("/sys/class/powercap").exists()
            or any(Path("/sys/class/hwmon").glob("hwmon*"))
            or shutil.which("vcgencmd")
            or shutil.which("tegrastats")
        )
        if has_hardware:
            pytest.skip(f"this machine has power hardware; detected {meter.source}")
        assert meter.source == "psutil-estimate" and meter.estimated
        assert "ESTIMATE, not a measurement" in meter.detail
    finally:
        meter.close()
