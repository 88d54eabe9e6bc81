"""Real device recordings, served by snmpsim, read through the shipped profiles: the SI
values a user sees (tests/fixtures/snmprec/README.md, section 18), and what is missing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import servers
from profile_cases import CASES, Case

from gronkoll.collector.readout import Readout, RowCache, read_device
from gronkoll.collector.snmp import FIRST_PAGE, SnmpClient, SnmpTarget
from gronkoll.errors import DeviceUnreachable
from gronkoll.profiles import Profile, load_profiles

pytestmark = pytest.mark.integration

T = TypeVar("T")


def target(sim: servers.Snmpsim, community: str, **kw: object) -> SnmpTarget:
    """The snmpsim agent that answers with this recording."""
    # Generous: snmpsim is one Python process, and a loaded CI machine is slow.
    args: dict[str, object] = {"timeout_s": 5.0, "retries": 2, **kw}
    return SnmpTarget(
        device_id=community, host=sim.host, port=sim.port, community=community, **args
    )  # type: ignore[arg-type]


def run(work: Callable[[SnmpClient], Awaitable[T]]) -> T:
    """Run work with a fresh SnmpClient on a fresh event loop."""

    async def main() -> T:
        async with SnmpClient() as client:
            return await work(client)

    return asyncio.run(main())


def read(sim: servers.Snmpsim, community: str, profile: Profile) -> Readout:
    return run(lambda client: read_device(client, target(sim, community), profile))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.community}-{c.profile}")
def test_a_recording_reads_as_the_readme_says(snmpsim: servers.Snmpsim, case: Case) -> None:
    profile = load_profiles().get(case.profile)
    assert profile is not None
    readout = read(snmpsim, case.community, profile)
    got = dict(readout.values)
    assert len(got) == len(readout.values), "a field appears twice"
    for name, expected in case.values.items():
        assert got.get(name) == pytest.approx(expected, rel=1e-9), name
    for text in case.missing:
        assert any(text in m for m in readout.missing), (text, readout.missing)
    if not case.missing:
        assert readout.missing == []
    assert readout.problems == []
    assert len(readout.not_measured) == case.not_measured, readout.not_measured
    if not case.values:
        assert "power_w" not in got


def test_every_profile_has_a_recording() -> None:
    assert {c.profile for c in CASES} == set(load_profiles().profiles)


def test_entity_sensor_scale_and_precision_on_real_rows(snmpsim: servers.Snmpsim) -> None:
    # The supply sensors of the Arista switch, read with the same arithmetic as the shipped
    # entity-sensor profile: value x 1000^(scale - 9) / 10^precision, operStatus ok only.
    common = {
        "oid": "1.3.6.1.2.1.99.1.1.1.4",
        "object": "entPhySensorValue",
        "table": True,
        "scale_exponent": {
            "object": "entPhySensorScale",
            "oid": "1.3.6.1.2.1.99.1.1.1.2",
            "base": 1000,
            "offset": -9,
        },
        "scale_digits_oid": "1.3.6.1.2.1.99.1.1.1.3",
        "valid_if": [
            {"object": "entPhySensorOperStatus", "oid": "1.3.6.1.2.1.99.1.1.1.5", "equals": [1]}
        ],
        "not_measured": [-1000000000, 1000000000],
    }

    def of_type(field_name: str, sensor_type: int) -> dict[str, object]:
        where = [
            {"object": "entPhySensorType", "oid": "1.3.6.1.2.1.99.1.1.1.1", "equals": [sensor_type]}
        ]
        return {**common, "field": field_name, "where": where}

    profile = Profile.model_validate(
        {
            "id": "arista-psu",
            "name": "test",
            "mib": "ENTITY-SENSOR-MIB",
            "verified": "test",
            "metrics": [
                of_type("voltage_v", 3),
                of_type("current_a", 5),
                of_type("temperature_c", 8),
                of_type("power_w", 6),  # optical power, as rows: milliwatts of light
            ],
        }
    )
    readout = read(snmpsim, "arista_eos", profile)
    got = dict(readout.values)
    assert got["voltage_v[100711105]"] == pytest.approx(229.25)
    assert got["voltage_v[100721105]"] == pytest.approx(230.25)
    assert got["current_a[100711103]"] == pytest.approx(0.66)
    assert got["current_a[100711104]"] == pytest.approx(10.66)
    assert got["temperature_c[100711101]"] == pytest.approx(47.0)
    assert got["power_w[100347212]"] == pytest.approx(7604e-4 * 1e-3)  # milli(8), 4 digits
    assert "power_w[100322213]" not in got  # -1000000000: underflow
    assert readout.not_measured == [
        "entPhySensorValue (1.3.6.1.2.1.99.1.1.1.4.100322213): raw -1000000000"
    ]


def test_one_missing_object_or_bad_value_costs_only_that_value(snmpsim: servers.Snmpsim) -> None:
    shipped = load_profiles().get("apc-rpdu2")
    assert shipped is not None
    data = shipped.model_dump()
    data["metrics"] += [
        # rPDU2DeviceStatusName is text: a value of the wrong type
        {
            "field": "temperature_c",
            "object": "rPDU2DeviceStatusName",
            "oid": "1.3.6.1.4.1.318.1.1.26.4.3.1.3",
            "table": True,
        },
        # an object this PDU does not have
        {
            "field": "frequency_hz",
            "object": "rPDU2PhaseStatusFrequency",
            "oid": "1.3.6.1.4.1.318.1.1.26.6.3.1.99",
            "table": True,
        },
        {"field": "uptime_s", "object": "sysUpTime", "oid": "1.3.6.1.2.1.1.3.0", "scale": 0.01},
    ]
    readout = read(snmpsim, "apc_ap8853", Profile.model_validate(data))
    got = dict(readout.values)
    assert got["power_w"] == 1140 and got["energy_wh_total"] == 3_512_800
    assert readout.problems == [
        "rPDU2DeviceStatusName (1.3.6.1.4.1.318.1.1.26.4.3.1.3.1): "
        "expected a number, got 'dc-np2-pdu_1a_03_04_a'"
    ]
    assert readout.missing == [
        "rPDU2PhaseStatusFrequency (1.3.6.1.4.1.318.1.1.26.6.3.1.99)",
        "sysUpTime (1.3.6.1.2.1.1.3.0)",  # this recording has no sysUpTime
    ]


def test_a_device_that_does_not_answer_fails_the_read(snmpsim: servers.Snmpsim) -> None:
    profile = load_profiles().get("apc-rpdu2")
    assert profile is not None
    # snmpsim does not answer an unknown community: the device is unreachable.
    quiet = target(snmpsim, "no-such-recording", timeout_s=0.3, retries=0)
    with pytest.raises(DeviceUnreachable):
        run(lambda client: read_device(client, quiet, profile))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.community}-{c.profile}")
def test_known_rows_read_with_one_get_give_the_walked_values(
    case: Case, snmpsim: servers.Snmpsim
) -> None:
    profile = load_profiles().profiles[case.profile]
    rows = RowCache()

    async def twice(client: SnmpClient) -> tuple[Readout, Readout]:
        first = await read_device(client, target(snmpsim, case.community), profile, rows=rows)
        second = await read_device(client, target(snmpsim, case.community), profile, rows=rows)
        return first, second

    walked, got = run(twice)
    assert rows.indexes is not None and rows.reads == 1  # the second read used the cache
    assert sorted(got.values) == sorted(walked.values)


def test_a_row_that_is_gone_makes_the_next_read_walk(snmpsim: servers.Snmpsim) -> None:
    profile = load_profiles().profiles["apc-rpdu2"]
    rows = RowCache(indexes={"1.3.6.1.4.1.318.1.1.26.4.3.1.5": ["1", "7"]})
    readout = run(
        lambda client: read_device(client, target(snmpsim, "apc_ap8853"), profile, rows=rows)
    )
    assert ("power_w", 1140) in readout.values
    assert rows.reads == 0 and rows.indexes is not None
    assert rows.indexes["1.3.6.1.4.1.318.1.1.26.4.3.1.5"] == ["1"]


def test_a_rewalk_asks_for_the_rows_seen_last_time_plus_one(snmpsim: servers.Snmpsim) -> None:
    profile = load_profiles().profiles["apc-rpdu2"]
    rows = RowCache()
    power = "1.3.6.1.4.1.318.1.1.26.4.3.1.5"
    assert rows.first_page(power) == FIRST_PAGE  # nothing known: a guess
    run(lambda client: read_device(client, target(snmpsim, "apc_ap8853"), profile, rows=rows))
    rows.clear()  # a failure forgets the rows, not how many there were
    assert rows.indexes is None
    assert rows.first_page(power) == 2  # one row, and one answer past it to see the end


def test_a_65535_from_an_agent_never_becomes_a_reading(snmpsim: servers.Snmpsim) -> None:
    # tests/fixtures/snmprec/README.md, section 19: 65535 where the agent manages no value.
    profile = load_profiles().profiles["ups-mib"]
    readout = read(snmpsim, "ups-mib_unmanaged", profile)
    got = dict(readout.values)
    assert "frequency_hz" not in got and "battery_runtime_s" not in got
    assert "current_a[3]" not in got and got["power_w"] == 469
    derived = {65535.0, 6553.5, 65535.0 * 60, 65535.0 + 469}
    assert not derived & set(got.values()), got
    assert sum("raw 65535" in text for text in readout.not_measured) == 4
