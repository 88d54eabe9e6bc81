"""Detection over the real recordings: sysObjectID prefixes first, probing when the
sysObjectID is generic or unclaimed, and a plain answer when nothing fits."""

from __future__ import annotations

import asyncio

import pytest
import servers

from gronkoll.collector.detect import Detection, detect
from gronkoll.collector.snmp import SnmpClient, SnmpTarget
from gronkoll.errors import DeviceUnreachable
from gronkoll.profiles import ProfileSet, load_profiles

pytestmark = pytest.mark.integration


def detect_on(sim: servers.Snmpsim, community: str, profiles: ProfileSet, **kw: float) -> Detection:
    target = SnmpTarget(
        device_id=community,
        host=sim.host,
        port=sim.port,
        community=community,
        timeout_s=kw.get("timeout_s", 5.0),  # generous: snmpsim is one Python process
        retries=int(kw.get("retries", 2)),
    )

    async def main() -> Detection:
        async with SnmpClient() as client:
            return await detect(client, target, profiles)

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("community", "profile", "reason"),
    [
        (
            "apc_ap8853",
            "apc-rpdu2",
            "sysObjectID 1.3.6.1.4.1.318.1.3.4.6 matches apc-rpdu2 (prefix 1.3.6.1.4.1.318.1.3.4.6)",
        ),
        (
            "apc_smx750",
            "apc-ups",
            "sysObjectID 1.3.6.1.4.1.318.1.3.27 matches apc-ups (prefix 1.3.6.1.4.1.318.1.3.27)",
        ),
        (
            "eatonpdu_2",
            "eaton-epdu",
            "sysObjectID 1.3.6.1.4.1.534.6.6.7 matches eaton-epdu (prefix 1.3.6.1.4.1.534.6.6.7)",
        ),
        (
            "raritan_px3",
            "raritan-pdu2",
            "sysObjectID 1.3.6.1.4.1.13742.6 matches raritan-pdu2 (prefix 1.3.6.1.4.1.13742.6)",
        ),
        (
            "eatonups",
            "eaton-xups",
            "sysObjectID 1.3.6.1.4.1.534.1 matches eaton-xups (prefix 1.3.6.1.4.1.534.1)",
        ),
        (
            "drac_r640",
            "dell-idrac",
            "sysObjectID 1.3.6.1.4.1.674.10892.5 matches dell-idrac (prefix 1.3.6.1.4.1.674.10892.5)",
        ),
        (
            "hpe-ilo_4",
            "hpe-ilo",
            "sysObjectID 1.3.6.1.4.1.232.9.4.10 matches hpe-ilo (prefix 1.3.6.1.4.1.232.9.4.10)",
        ),
        (
            # The MIB's own OID as sysObjectID: no profile claims it, UPS-MIB answers.
            "generex-ups_cs141",
            "ups-mib",
            "sysObjectID 1.3.6.1.2.1.33 matches no profile; UPS-MIB upsIdentModel answered: ups-mib",
        ),
        (
            # net-snmp's generic sysObjectID: probing finds HOST-RESOURCES and nothing else.
            "linux_powermon",
            "host-resources",
            "sysObjectID 1.3.6.1.4.1.8072.3.2.10 is net-snmp's generic one; "
            "HOST-RESOURCES-MIB hrSystemUptime answered: host-resources",
        ),
        (
            # It answers HOST-RESOURCES too, but ENTITY-SENSOR-MIB is probed first.
            "arista_eos",
            "entity-sensor",
            "sysObjectID 1.3.6.1.4.1.30065.1.3011.7050.1958.128 matches no profile; "
            "ENTITY-SENSOR-MIB entPhySensorType answered: entity-sensor",
        ),
    ],
)
def test_a_recording_is_detected_as_its_profile(
    snmpsim: servers.Snmpsim, community: str, profile: str, reason: str
) -> None:
    found = detect_on(snmpsim, community, load_profiles())
    assert (found.profile, found.reason) == (profile, reason)
    assert found.sys_object_id is not None and found.sys_object_id in reason


def test_the_system_group_comes_back_with_the_detection(snmpsim: servers.Snmpsim) -> None:
    found = detect_on(snmpsim, "eatonpdu_2", load_profiles())
    assert found.sys_descr == "ePDU MA 36U-C IN: L5-20P 16A 1P OUT: 24x5-20R"


def test_the_longest_prefix_wins(snmpsim: servers.Snmpsim) -> None:
    shipped = load_profiles()
    broad = shipped.profiles["apc-ups"].model_copy(
        update={
            "match": shipped.profiles["apc-ups"].match.model_copy(
                update={"sys_object_id": ["1.3.6.1.4.1.318"]}
            )
        }
    )
    profiles = ProfileSet(profiles={**shipped.profiles, "apc-ups": broad}, sources=shipped.sources)
    found = detect_on(snmpsim, "apc_ap8853", profiles)
    assert found.profile == "apc-rpdu2"
    found = detect_on(snmpsim, "apc_smx750", profiles)
    assert found.reason.endswith("matches apc-ups (prefix 1.3.6.1.4.1.318)")


def test_no_profile_matches(snmpsim: servers.Snmpsim) -> None:
    shipped = load_profiles()
    pdus_only = {k: v for k, v in shipped.profiles.items() if k in ("apc-rpdu2", "eaton-epdu")}
    found = detect_on(snmpsim, "linux_powermon", ProfileSet(profiles=pdus_only, sources={}))
    assert found.profile is None
    assert found.reason == (
        "no profile matches: sysObjectID 1.3.6.1.4.1.8072.3.2.10 is net-snmp's generic one; "
        "no probe answered"
    )


def test_detection_of_a_device_that_does_not_answer_raises(snmpsim: servers.Snmpsim) -> None:
    with pytest.raises(DeviceUnreachable):
        detect_on(snmpsim, "no-such-recording", load_profiles(), timeout_s=0.3, retries=0)
