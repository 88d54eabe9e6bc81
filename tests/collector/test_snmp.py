"""collector.snmp against a real net-snmp agent: typed values, walks, SNMP v1, v2c and every v3
protocol the agent accepts, and errors that name the device and never show a secret."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
import servers
from pydantic import SecretStr
from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD

from gronkoll.collector.snmp import SnmpClient, SnmpTarget
from gronkoll.errors import (
    DeviceError,
    DeviceUnreachable,
    NoSuchObject,
    SnmpAuthError,
    SnmpError,
)
from gronkoll.settings import CollectorSettings, SnmpSettings

pytestmark = pytest.mark.integration

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
MISSING = "1.3.6.1.2.1.1.99.0"  # under system, but no such object
IP_AD_ENT_ADDR_LOCALHOST = "1.3.6.1.2.1.4.20.1.1.127.0.0.1"  # IpAddress
LA_LOAD_FLOAT_1 = "1.3.6.1.4.1.2021.10.1.6.1"  # UCD-SNMP-MIB, an Opaque float
HR_SYSTEM = "1.3.6.1.2.1.25.1"
IF_TABLE = "1.3.6.1.2.1.2.2"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
NET_SNMP_LINUX = "1.3.6.1.4.1.8072.3.2.10"  # sysObjectID of net-snmp on Linux

FAST = {"timeout_s": 0.5, "retries": 0}

T = TypeVar("T")


def run(use: Callable[[SnmpClient], Awaitable[T]]) -> T:
    """Run use(client) on a fresh client and loop, closing the client after."""

    async def main() -> T:
        async with SnmpClient() as client:
            return await use(client)

    return asyncio.run(main())


def v2c(snmpd: servers.Snmpd, **changes: Any) -> SnmpTarget:
    fields: dict[str, Any] = {
        "device_id": "pdu-1",
        "host": snmpd.host,
        "port": snmpd.port,
        "version": "2c",
        "community": snmpd.community,
    }
    return SnmpTarget(**(fields | changes))


def v3(snmpd: servers.Snmpd, **changes: Any) -> SnmpTarget:
    fields: dict[str, Any] = {
        "device_id": "ups-1",
        "host": snmpd.host,
        "port": snmpd.port,
        "version": "3",
        "user": snmpd.v3_user,
        "auth_protocol": "SHA",
        "auth_key": snmpd.auth_password,
        "priv_protocol": "AES",
        "priv_key": snmpd.priv_password,
    }
    return SnmpTarget(**(fields | changes))


def failure(target: SnmpTarget, oid: str = SYS_NAME) -> DeviceError:
    """The error a GET of oid raises, after checking what every error message must show."""

    async def use(client: SnmpClient) -> DeviceError:
        with pytest.raises(DeviceError) as caught:
            await client.get(target, [oid])
        return caught.value

    err = run(use)
    message = str(err)
    assert message.startswith(f"{target.device_id} ({target.host}:{target.port}): "), message
    assert oid in message
    for secret in (target.community, target.auth_key, target.priv_key):
        assert not secret or secret not in message
    return err


# --- Targets ---------------------------------------------------------------------------------


def test_a_target_takes_the_collector_defaults_and_never_shows_its_secrets() -> None:
    snmp = SnmpSettings(
        host="ups-1.skola.example",
        version="3",
        user="gronkoll",
        auth_protocol="SHA-256",
        auth_key=SecretStr("auth-secret-1"),
        priv_protocol="AES-256",
        priv_key=SecretStr("priv-secret-2"),
        retries=3,
    )
    target = SnmpTarget.from_settings("ups-1", snmp, CollectorSettings(timeout_s=1.5))
    assert (target.timeout_s, target.retries, target.port) == (1.5, 3, 161)
    assert (target.auth_key, target.priv_key, target.context) == (
        "auth-secret-1",
        "priv-secret-2",
        "",
    )
    assert str(target) == "ups-1 (ups-1.skola.example:161)"
    community = SnmpTarget.from_settings(
        "pdu-1",
        SnmpSettings(host="10.0.0.9", community=SecretStr("c0mmunity")),
        CollectorSettings(),
    )
    assert (community.version, community.timeout_s, community.retries) == ("2c", 2, 1)
    for shown in (repr(target), str(target), repr(community), str(community)):
        assert "secret" not in shown and "c0mmunity" not in shown


# --- Values and walks ----------------------------------------------------------------------


def test_v2c_get_returns_typed_values(snmpd: servers.Snmpd) -> None:
    oids = [
        "." + SYS_NAME,  # a leading dot is allowed; answers are keyed without it
        SYS_OBJECT_ID,
        SYS_UPTIME,
        SYS_DESCR,
        IP_AD_ENT_ADDR_LOCALHOST,
        LA_LOAD_FLOAT_1,
    ]
    values = run(lambda client: client.get(v2c(snmpd), oids))
    assert values[SYS_NAME] == snmpd.sys_name
    assert values[SYS_OBJECT_ID] == NET_SNMP_LINUX
    uptime, descr = values[SYS_UPTIME], values[SYS_DESCR]
    assert isinstance(uptime, int) and uptime >= 0
    assert isinstance(descr, str) and descr.startswith("Linux")
    assert values[IP_AD_ENT_ADDR_LOCALHOST] == "127.0.0.1"
    assert isinstance(values[LA_LOAD_FLOAT_1], float)
    assert list(values) == [SYS_NAME, *oids[1:]]


def test_a_get_of_more_oids_than_fit_one_pdu_is_split(snmpd: servers.Snmpd) -> None:
    instances = [f"{HR_SYSTEM}.{column}.0" for column in range(1, 8)]
    oids = [*instances, SYS_NAME] * 5 + [f"{IF_DESCR}.{i}" for i in range(1, 40)]
    values = run(lambda client: client.get(v2c(snmpd), oids))
    assert set(instances) | {SYS_NAME, f"{IF_DESCR}.1"} <= set(values)
    assert values[f"{IF_DESCR}.1"] == "lo"


def test_walk_of_hr_system_returns_its_seven_objects(snmpd: servers.Snmpd) -> None:
    values = run(lambda client: client.walk(v2c(snmpd), HR_SYSTEM))
    assert list(values) == [f"{HR_SYSTEM}.{column}.0" for column in range(1, 8)]
    assert isinstance(values[f"{HR_SYSTEM}.1.0"], int)  # hrSystemUptime
    assert isinstance(values[f"{HR_SYSTEM}.2.0"], bytes)  # hrSystemDate, a DateAndTime
    processes = values[f"{HR_SYSTEM}.6.0"]  # hrSystemProcesses
    assert isinstance(processes, int) and processes > 0


def test_walk_of_if_table_is_the_same_in_any_page_size_and_over_v1(snmpd: servers.Snmpd) -> None:
    async def use(client: SnmpClient) -> list[dict[str, Any]]:
        return [
            await client.walk(v2c(snmpd), IF_TABLE),
            await client.walk(v2c(snmpd), IF_TABLE, max_repetitions=1),
            await client.walk(v2c(snmpd, version="1"), IF_TABLE),  # GETNEXT
        ]

    bulk, one_by_one, v1 = run(use)
    assert f"{IF_DESCR}.1" in bulk and bulk[f"{IF_DESCR}.1"] == "lo"
    assert all(oid.startswith(IF_TABLE + ".") for oid in bulk)
    assert list(bulk) == list(one_by_one) == list(v1)  # counters move, names do not
    assert {k: v for k, v in bulk.items() if k.startswith(IF_DESCR)} == {
        k: v for k, v in v1.items() if k.startswith(IF_DESCR)
    }


def test_v1_get_leaves_out_what_the_agent_lacks(snmpd: servers.Snmpd) -> None:
    # v1 fails a whole PDU with noSuchName for one missing object; the client asks again.
    values = run(
        lambda client: client.get(v2c(snmpd, version="1"), [SYS_NAME, MISSING, SYS_UPTIME])
    )
    assert list(values) == [SYS_NAME, SYS_UPTIME]
    assert values[SYS_NAME] == snmpd.sys_name


def test_a_missing_object_is_left_out_of_get_and_raises_from_get_one(snmpd: servers.Snmpd) -> None:
    async def use(client: SnmpClient) -> dict[str, Any]:
        with pytest.raises(NoSuchObject) as caught:
            await client.get_one(v2c(snmpd), MISSING)
        assert str(caught.value) == (
            f"pdu-1 ({snmpd.host}:{snmpd.port}): the device has no object {MISSING}"
        )
        assert await client.get_one(v2c(snmpd), SYS_NAME) == snmpd.sys_name
        return await client.get(v2c(snmpd), [SYS_NAME, MISSING, f"{IF_DESCR}.999"])

    assert run(use) == {SYS_NAME: snmpd.sys_name}


# --- SNMP v3 ---------------------------------------------------------------------------------


def test_v3_auth_priv_with_the_agents_sha_aes_user(snmpd: servers.Snmpd) -> None:
    async def use(client: SnmpClient) -> tuple[Any, ...]:
        target = v3(snmpd)
        return await client.get_one(target, SYS_NAME), await client.walk(target, HR_SYSTEM)

    name, hr_system = run(use)
    assert name == snmpd.sys_name
    assert len(hr_system) == 7


def _settings_for(user: servers.SnmpUser) -> dict[str, Any]:
    snmp: dict[str, Any] = {"user": user.name}
    if user.auth_protocol is not None:
        snmp |= {"auth_protocol": user.auth_protocol, "auth_key": user.auth_password}
    if user.priv_protocol is not None:
        snmp |= {"priv_protocol": user.priv_protocol, "priv_key": user.priv_password}
    return snmp


@pytest.mark.parametrize(
    "user",
    [
        # The fixture's main user (SHA, AES) under the other name for AES-128.
        servers.SnmpUser(
            name="gkuser",
            auth_protocol="SHA",
            auth_password="gronkoll-auth",
            priv_protocol="AES-128",
            priv_password="gronkoll-priv",
        ),
        *servers.SNMPD_EXTRA_USERS,
    ],
    ids=lambda user: f"{user.auth_protocol or 'noAuth'}-{user.priv_protocol or 'noPriv'}",
)
def test_v3_every_protocol_the_agent_accepts(snmpd: servers.Snmpd, user: servers.SnmpUser) -> None:
    if user.name == "gkuser":
        assert (snmpd.v3_user, snmpd.auth_password, snmpd.priv_password) == (
            user.name,
            user.auth_password,
            user.priv_password,
        )
    snmp = SnmpSettings(host=snmpd.host, port=snmpd.port, version="3", **_settings_for(user))
    target = SnmpTarget.from_settings("ups-1", snmp, CollectorSettings())
    assert run(lambda client: client.get_one(target, SYS_NAME)) == snmpd.sys_name


def test_one_user_name_with_two_sets_of_keys_works_for_both(snmpd: servers.Snmpd) -> None:
    # pysnmp keeps one USM row per user name in an engine: with concurrent requests sharing one
    # engine, a wrong key was answered as if it were right (its row replaced by the right one).
    right, wrong = v3(snmpd, **FAST), v3(snmpd, auth_key="not-the-auth-key", **FAST)

    async def use(client: SnmpClient) -> list[Any]:
        results = await asyncio.gather(
            *(client.get_one(t, SYS_NAME) for t in (right, wrong, right, wrong)),
            return_exceptions=True,
        )
        return [type(r) if isinstance(r, Exception) else r for r in results]

    expected = [snmpd.sys_name, SnmpAuthError, snmpd.sys_name, SnmpAuthError]
    assert run(use) == expected
    assert run(use) == expected


# --- Errors ----------------------------------------------------------------------------------


def test_a_wrong_community_reads_as_unreachable_with_a_hint(snmpd: servers.Snmpd) -> None:
    err = failure(v2c(snmpd, community="not-the-community", **FAST))
    assert isinstance(err, DeviceUnreachable)
    assert str(err) == (
        f"pdu-1 ({snmpd.host}:{snmpd.port}): no answer to SNMP v2c GET of {SYS_NAME} "
        "after 1 try of 0.5 s; the host is down or the community is wrong"
    )


def test_a_wrong_auth_key_is_an_auth_error(snmpd: servers.Snmpd) -> None:
    err = failure(v3(snmpd, auth_key="not-the-auth-key", **FAST))
    assert isinstance(err, SnmpAuthError)
    assert "wrong auth key or auth protocol (SHA) for user 'gkuser'" in str(err)


def test_a_wrong_priv_key_is_an_auth_error(snmpd: servers.Snmpd) -> None:
    # net-snmp drops what it cannot decrypt without a word; a probe shows the agent is there.
    err = failure(v3(snmpd, priv_key="not-the-priv-key", **FAST))
    assert isinstance(err, SnmpAuthError)
    assert "wrong priv key or priv protocol (AES) for user 'gkuser'" in str(err)


def test_a_wrong_priv_protocol_is_an_auth_error(snmpd: servers.Snmpd) -> None:
    err = failure(v3(snmpd, priv_protocol="DES", **FAST))
    assert isinstance(err, SnmpAuthError)
    assert "wrong priv key or priv protocol (DES)" in str(err)


def test_an_unknown_user_is_an_auth_error(snmpd: servers.Snmpd) -> None:
    err = failure(v3(snmpd, user="nobody", **FAST))
    assert isinstance(err, SnmpAuthError)
    assert "the agent has no user 'nobody' (wrong user name)" in str(err)


def test_a_security_level_the_user_lacks_is_an_auth_error(snmpd: servers.Snmpd) -> None:
    auth_only = next(u for u in servers.SNMPD_EXTRA_USERS if u.name == "gk-sha-auth")
    too_high = v3(snmpd, user=auth_only.name, auth_key=auth_only.auth_password, **FAST)
    err = failure(too_high)
    assert isinstance(err, SnmpAuthError)
    assert "does not allow user 'gk-sha-auth' at authPriv" in str(err)

    too_low = failure(v3(snmpd, priv_protocol=None, priv_key="", **FAST))  # rouser ... priv
    assert isinstance(too_low, SnmpAuthError)
    assert "authorizationError" in str(too_low)


def test_an_unknown_context_is_named(snmpd: servers.Snmpd) -> None:
    auth_only = next(u for u in servers.SNMPD_EXTRA_USERS if u.name == "gk-sha-auth")
    target = v3(
        snmpd,
        user=auth_only.name,
        auth_key=auth_only.auth_password,
        priv_protocol=None,
        priv_key="",
        context="no-such-context",
        **FAST,
    )
    err = failure(target)
    assert type(err) is SnmpError
    assert "the agent has no context 'no-such-context'" in str(err)


def no_such_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make 'pdu-9.skola.example' fail to resolve, here rather than by asking a DNS server."""
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "pdu-9.skola.example":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_host_name_that_does_not_resolve_is_unreachable(
    snmpd: servers.Snmpd, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fail the lookup here rather than ask a DNS server: all test traffic stays on 127.0.0.1.
    no_such_host(monkeypatch)
    target = v2c(snmpd, host="pdu-9.skola.example")

    async def use(client: SnmpClient) -> DeviceError:
        with pytest.raises(DeviceUnreachable) as caught:
            await client.get(target, [SYS_NAME])
        return caught.value

    assert str(run(use)) == (
        f"pdu-1 (pdu-9.skola.example:{snmpd.port}): cannot resolve host "
        "'pdu-9.skola.example': Name or service not known"
    )


def test_a_stopped_agent_is_unreachable_quickly_and_found_again(snmpd: servers.Snmpd) -> None:
    async def use(client: SnmpClient) -> list[tuple[DeviceError, float]]:
        seen: list[tuple[DeviceError, float]] = []
        for target in (v2c(snmpd, **FAST), v3(snmpd, **FAST)):
            started = time.monotonic()
            with pytest.raises(DeviceUnreachable) as caught:
                await client.get(target, [SYS_NAME])
            seen.append((caught.value, time.monotonic() - started))
        return seen

    async def back(client: SnmpClient) -> Any:
        return await client.get_one(v2c(snmpd, **FAST), SYS_NAME)

    with snmpd.down():
        (v2c_err, v2c_s), (v3_err, v3_s) = run(use)
    assert "the host is down or the community is wrong" in str(v2c_err)
    assert "the host is down or does not speak SNMP on this port" in str(v3_err)
    assert v2c_s < 1.5 and v3_s < 2.5  # one try of 0.5 s (v3: and one probe)
    assert run(back) == snmpd.sys_name


# --- Concurrency -----------------------------------------------------------------------------


def test_fifty_concurrent_gets_through_one_client_all_succeed(snmpd: servers.Snmpd) -> None:
    targets = [v2c(snmpd, device_id=f"pdu-{i}") for i in range(25)]
    targets += [v3(snmpd, device_id=f"ups-{i}") for i in range(20)]
    targets += [v2c(snmpd, device_id=f"pc-{i}", version="1") for i in range(5)]

    async def use(client: SnmpClient) -> list[dict[str, Any]]:
        return await asyncio.gather(*(client.get(t, [SYS_NAME, SYS_UPTIME]) for t in targets))

    results = run(use)
    assert len(results) == 50
    assert all(r[SYS_NAME] == snmpd.sys_name and isinstance(r[SYS_UPTIME], int) for r in results)


class CountingClient(SnmpClient):
    """The real client, noting every walk PDU's page size and how many walk PDUs were in
    flight at once (a wrapper around the real thing, as Telegraf's clientFactory allows)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pages: list[int] = []
        self.in_flight = self.most_in_flight = 0

    async def _send(
        self, request: Any, session: Any, operation: Any, oids: Any, repetitions: int = 0
    ) -> Any:
        if operation == "get":
            return await super()._send(request, session, operation, oids, repetitions)
        self.pages.append(repetitions if operation == "bulk" else 1)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await super()._send(request, session, operation, oids, repetitions)
        finally:
            self.in_flight -= 1


def test_walk_pages_grow_from_the_first_guess_and_give_the_same_rows(
    snmpd: servers.Snmpd,
) -> None:
    async def use(client: SnmpClient) -> tuple[dict[str, Any], dict[str, Any]]:
        return (
            await client.walk(v2c(snmpd), IF_TABLE),
            await client.walk(v2c(snmpd), IF_TABLE, first_repetitions=1, max_repetitions=6),
        )

    client = CountingClient()

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        async with client:
            return await use(client)

    default, grown = asyncio.run(main())
    assert list(default) == list(grown)
    first_walk = client.pages.index(1)
    assert client.pages[0] == 8  # FIRST_PAGE: a small table's rows and its end in one answer
    assert client.pages[first_walk : first_walk + 5] == [1, 2, 4, 6, 6]  # doubled, capped


def test_walks_in_flight_are_bounded_apart_from_gets(snmpd: servers.Snmpd) -> None:
    targets = [v2c(snmpd, device_id=f"pdu-{i}") for i in range(12)]
    client = CountingClient(walks_in_flight=3)

    async def main() -> list[dict[str, Any]]:
        async with client:
            gets = [client.get(t, [SYS_NAME]) for t in targets]
            walks = [client.walk(t, HR_SYSTEM) for t in targets]
            return await asyncio.gather(*gets, *walks)

    results = asyncio.run(main())
    assert all(r == {SYS_NAME: snmpd.sys_name} for r in results[:12])
    assert all(len(r) == 7 for r in results[12:])  # every walk complete
    assert client.most_in_flight == 3


def test_open_all_builds_every_session_and_registers_v3_users_before_any_request(
    snmpd: servers.Snmpd, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pysnmp's engine rebuilds its lookup maps on the first message after a target is added;
    # registered up front, every v3 target is in it before any PDU goes out. v1 and v2c go
    # through Gronkoll's own codec and socket, which have nothing to register.
    no_such_host(monkeypatch)
    targets = [v2c(snmpd, device_id=f"pdu-{i}", community=f"c{i}") for i in range(20)]
    targets += [v3(snmpd, device_id=f"ups-{i}") for i in range(5)]
    targets += [v2c(snmpd, device_id="pdu-ok")]
    unresolvable = v2c(snmpd, device_id="pdu-9", host="pdu-9.skola.example")

    async def use(client: SnmpClient) -> tuple[bool, set[str], list[Any], DeviceError]:
        await client.open_all([*targets, unresolvable])  # the bad host does not stop the rest
        opened = all(t in client._sessions for t in targets)
        (engine,) = client._sessions.engines()
        users = {str(a.userName) for a in LCD._get_cache(engine)["auth"].values()}
        answers = [await client.get_one(t, SYS_NAME) for t in targets[-2:]]
        with pytest.raises(DeviceUnreachable) as caught:
            await client.get(unresolvable, [SYS_NAME])
        return opened, users, answers, caught.value

    opened, users, answers, error = run(use)
    assert opened and users == {snmpd.v3_user}
    assert answers == [snmpd.sys_name] * 2
    assert "cannot resolve host 'pdu-9.skola.example'" in str(error)
