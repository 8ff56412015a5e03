"""Parsers of vcgencmd pmic_read_adc and tegrastats, fed recorded real outputs (tests/data/power/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vitfleet.power.meter import MeterReadError
from vitfleet.power.rpi5_pmic import parse_pmic_read_adc, pmic_watts
from vitfleet.power.tegrastats import TegrastatsParseError, parse_tegrastats_rails, tegrastats_total

DATA = Path(__file__).parent / "data" / "power"


def _lines(name: str) -> list[str]:
    return (DATA / name).read_text().splitlines()


# --- vcgencmd pmic_read_adc (Pi 5) -------------------------------------------------------------


def test_pmic_pairs_rails_by_name_not_channel_number() -> None:
    rails = parse_pmic_read_adc((DATA / "vcgencmd_pmic_read_adc_pi5_zeus.txt").read_text())
    assert len(rails) == 12  # EXT5V and BATT have a voltage but no current: no power term
    assert "EXT5V" not in rails and "BATT" not in rails
    # VDD_CORE is current(7) and volt(15): pairing by channel number would get this wrong.
    assert rails["VDD_CORE"] == pytest.approx(6.22421 * 0.861733)
    assert rails["DDR_VDDQ"] == pytest.approx(0.0666672 * 0.6014646)


def test_pmic_total_is_sum_of_v_times_i() -> None:
    text = (DATA / "vcgencmd_pmic_read_adc_pi5_rpi5power.txt").read_text()
    amps = {
        "3V7_WL_SW": 0.0,
        "3V3_SYS": 0.06245952,
        "1V8_SYS": 0.16102850,
        "DDR_VDD2": 0.00780744,
        "DDR_VDDQ": 0.0,
        "1V1_SYS": 0.17566740,
        "0V8_SW": 0.32791250,
        "VDD_CORE": 10.87674,
        "3V3_DAC": 0.00036630,
        "3V3_ADC": 0.00042735,
        "0V8_AON": 0.00579975,
        "HDMI": 0.01367520,
    }
    volts = {
        "3V7_WL_SW": 3.799996,
        "3V3_SYS": 3.306322,
        "1V8_SYS": 1.798289,
        "DDR_VDD2": 1.102929,
        "DDR_VDDQ": 0.6047613,
        "1V1_SYS": 1.104394,
        "0V8_SW": 0.8025633,
        "VDD_CORE": 0.8974594,
        "3V3_DAC": 3.304942,
        "3V3_ADC": 3.302194,
        "0V8_AON": 0.7973619,
        "HDMI": 5.07056,
    }
    assert pmic_watts(text) == pytest.approx(sum(amps[r] * volts[r] for r in amps))
    assert 10.0 < pmic_watts(text) < 11.0  # a busy Pi 5 core rail: ~9.8 W of the total


def test_pmic_nul_separated_blob_parses_the_same() -> None:
    text = (DATA / "vcgencmd_pmic_read_adc_pi5_zeus.txt").read_text()
    assert pmic_watts(text.replace("\n", "\x00")) == pytest.approx(pmic_watts(text))


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        'error=1 error_msg="Command not registered"\n',  # what vcgencmd says for an unknown command
        "\x00\x00\x00",
        "VDD_CORE_A current(7)=abcA\nVDD_CORE_V volt(15)=0.8V\n",
        "VDD_CORE_A current(7)=1.0V\nVDD_CORE_V volt(15)=0.8A\n",  # units swapped: not trusted
        "BATT_V volt(25)=nanV\nEXT5V_V volt(24)=5.1V\n",
    ],
)
def test_pmic_garbage_is_a_clear_error(garbage: str) -> None:
    with pytest.raises(MeterReadError, match="no rail with both current and voltage"):
        pmic_watts(garbage)


def test_pmic_ignores_garbage_lines_between_real_ones() -> None:
    real = (DATA / "vcgencmd_pmic_read_adc_pi5_zeus.txt").read_text()
    noisy = "warning: something\n" + real.replace("\n", "\n###\n", 3) + "\xff junk =A\n"
    assert pmic_watts(noisy) == pytest.approx(pmic_watts(real))


# --- tegrastats ----------------------------------------------------------------------------------


def test_tegrastats_nano_jp4_bare_numbers_total_is_pom_5v_in() -> None:
    lines = _lines("tegrastats_nano_jp4.txt")
    assert parse_tegrastats_rails(lines[0]) == {"POM_5V_IN": 2132, "POM_5V_GPU": 78, "POM_5V_CPU": 275}
    assert [tegrastats_total(line) for line in lines] == [
        (2.132, "POM_5V_IN"),
        (2.247, "POM_5V_IN"),
        (2.132, "POM_5V_IN"),
    ]


def test_tegrastats_orin_jp6_mw_suffix_total_is_vdd_in() -> None:
    lines = _lines("tegrastats_orin_nano_jp6.txt")
    assert parse_tegrastats_rails(lines[0]) == {"VDD_IN": 6626, "VDD_CPU_GPU_CV": 1228, "VDD_SOC": 2380}
    assert tegrastats_total(lines[2]) == (4.761, "VDD_IN")


def test_tegrastats_without_total_rail_sums_rails() -> None:
    (line,) = _lines("tegrastats_agx_orin.txt")
    rails = parse_tegrastats_rails(line)
    assert rails == {"VDD_GPU_SOC": 3150, "VDD_CPU_CV": 14312, "VIN_SYS_5V0": 4968, "VDDQ_VDD2_1V8AO": 1091}
    assert tegrastats_total(line) == (pytest.approx(23.521), "sum")


def test_tegrastats_never_mistakes_memory_fields_for_rails() -> None:
    for name in ("tegrastats_nano_jp4.txt", "tegrastats_orin_nano_jp6.txt", "tegrastats_agx_orin.txt"):
        for line in _lines(name):
            assert not {"RAM", "SWAP", "IRAM", "lfb", "EMC_FREQ", "GR3D_FREQ"} & parse_tegrastats_rails(line).keys()


@pytest.mark.parametrize(
    "line",
    [
        "",
        "RAM 1655/3956MB (lfb 311x4MB) SWAP 0/1978MB (cached 0MB)",
        "tegrastats: permission denied",
        "VDD_IN -5/3",
        "VDD_IN 12mW/ VDD_SOC x/y",
    ],
)
def test_tegrastats_line_without_rails_is_a_clear_error(line: str) -> None:
    with pytest.raises(TegrastatsParseError, match="no power rail"):
        tegrastats_total(line)
