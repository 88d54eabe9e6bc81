"""Real device recordings and the SI values a user should see from each shipped profile
(tests/fixtures/snmprec/README.md, section 18); shared by the readout and CLI tests."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    community: str
    profile: str
    values: dict[str, float]
    missing: list[str] = field(default_factory=list)  # substrings of readout.missing
    not_measured: int = 0


CASES = [
    Case(
        "apc_ap8853",
        "apc-rpdu2",
        {
            "power_w": 1140,
            "energy_wh_total": 3_512_800,
            "apparent_power_va": 1190,
            "current_a[1]": 4.9,
            "voltage_v[1]": 242,
        },
    ),
    Case(
        "apc_ap8853",
        "apc-rpdu",
        {"current_a[1]": 4.9},  # bank rows 2 and 3 (0 A, 4.7 A) are not phases
        missing=["rPDUIdentDevicePowerWatts (1.3.6.1.4.1.318.1.1.12.1.16.0)"],
    ),
    Case(
        "apc_smx750",
        "apc-ups",
        {
            "power_w": 333,
            "voltage_v": 246.1,
            "frequency_hz": 49.9,
            "output_load_pct": 76.2,
            "current_a": 2.2,
            "battery_charge_pct": 100,
            "battery_runtime_s": 16_374,
        },
    ),
    Case(
        "eatonpdu_2",
        "eaton-epdu",
        {
            "power_w": 1584,  # inputTotalWatts, not the per-measurement inputWatts (1589)
            "energy_wh_total": 8_185_493,
            "apparent_power_va": 1673,
            "voltage_v[0.1.1]": 118.45,
            "current_a[0.1.1]": 14.108,
            "frequency_hz[0.1]": 60.0,
        },
    ),
    Case(
        "raritan_px3",
        "raritan-pdu2",
        {
            "power_w": 1665,
            "energy_wh_total": 74_057_676,
            "apparent_power_va": 1751,
            "current_a[1.1]": 7.467,  # 7467 with 3 decimal digits
            "voltage_v[1.1]": 229,
            "frequency_hz[1.1]": 50.0,  # 500 with 1 decimal digit
        },
    ),
    Case(
        "generex-ups_cs141",
        "ups-mib",
        {
            "power_w": 469,  # lines 1 and 3 answer -4 and -26: out of range, not measured
            "voltage_v[1]": 233,
            "voltage_v[2]": 233,
            "voltage_v[3]": 235,
            "current_a[1]": 0.3,
            "current_a[2]": 2.1,
            "current_a[3]": 0.2,
            "output_load_pct[2]": 14,
            "frequency_hz": 50.0,
            "battery_charge_pct": 100,
            "battery_runtime_s": 544 * 60,
        },
        not_measured=2,
    ),
    Case(
        "ups-mib_unmanaged",  # the CS141 walk with 65535 where agents do not manage an object
        "ups-mib",
        {
            "power_w": 469,  # line 1 answers 65535 and line 3 -26: neither is measured
            "voltage_v[3]": 235,
            "current_a[1]": 0.3,
            "current_a[2]": 2.1,
            "battery_charge_pct": 100,
        },
        not_measured=5,  # power lines 1 and 3, current line 3, frequency, runtime
    ),
    Case(
        "eatonups",
        "eaton-xups",
        {
            "power_w": 231,
            "voltage_v[1]": 230,
            "current_a[1]": 1,
            "frequency_hz": 50.0,
            "battery_charge_pct": 100,
        },
        missing=["xupsOutputLoad (1.3.6.1.4.1.534.1.4.1.0)"],
    ),
    Case(
        "drac_r640",
        "dell-idrac",
        {
            "power_w": 144,  # the SystemWatts probe, not the PSU amps rows read as watts
            "current_a[1.1]": 0.4,
            "current_a[1.2]": 0.4,
            "voltage_v[1.1]": 204,
            "voltage_v[1.2]": 204,
        },
    ),
    Case(
        "hpe-ilo_4",
        "hpe-ilo",
        {"power_w": 87, "voltage_v[0.1]": 228, "voltage_v[0.2]": 228},
        missing=["cpqHePowerMeterCurrReading (1.3.6.1.4.1.232.6.2.15.3.0)"],
    ),
    Case(
        "arista_eos",
        "entity-sensor",
        {},  # its only watts sensors are transceiver light in milliwatts
        missing=["entPhySensorValue (1.3.6.1.2.1.99.1.1.1.4): no row with entPhySensorType in [6]"],
    ),
    Case(
        "linux_powermon",
        "host-resources",
        {"uptime_s": 1_717_390.13, "user_present": 1},
    ),
]
