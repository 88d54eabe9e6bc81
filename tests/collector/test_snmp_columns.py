"""collector.snmp_columns against a real net-snmp agent: columns walked together give what
walking each on its own gives, with one GETBULK for their first rows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import servers

from gronkoll.collector.snmp import SnmpClient, SnmpTarget
from gronkoll.collector.snmp_columns import walk_columns
from gronkoll.errors import DeviceUnreachable

pytestmark = pytest.mark.integration

IF_INDEX = "1.3.6.1.2.1.2.2.1.1"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
HR_STORAGE_DESCR = "1.3.6.1.2.1.25.2.3.1.3"  # more rows than the interface table
SYS_OR_ID = "1.3.6.1.2.1.1.9.1.2"  # sysORTable: about ten rows
NOT_THERE = "1.3.6.1.2.1.1.99.1"  # an empty column
COLUMNS = [IF_INDEX, HR_STORAGE_DESCR, IF_DESCR, NOT_THERE, SYS_OR_ID]


class CountingClient(SnmpClient):
    """The real client, counting the PDUs it sends by operation."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: dict[str, int] = {}

    async def _send(
        self, request: Any, session: Any, operation: Any, oids: Any, repetitions: int = 0
    ) -> Any:
        self.sent[operation] = self.sent.get(operation, 0) + 1
        return await super()._send(request, session, operation, oids, repetitions)


def target(snmpd: servers.Snmpd, **changes: Any) -> SnmpTarget:
    fields: dict[str, Any] = {
        "device_id": "pdu-1",
        "host": snmpd.host,
        "port": snmpd.port,
        "community": snmpd.community,
    }
    return SnmpTarget(**(fields | changes))


def walk_both_ways(to: SnmpTarget, pages: list[int]) -> tuple[list[Any], list[Any], dict[str, int]]:
    client = CountingClient()

    async def main() -> tuple[list[Any], list[Any]]:
        async with client:
            alone = [await client.walk(to, column) for column in COLUMNS]
            client.sent.clear()
            together = await walk_columns(client, to, COLUMNS, pages)
            return alone, together

    alone, together = asyncio.run(main())
    return alone, together, client.sent


def test_columns_that_fit_one_page_cost_one_getbulk(snmpd: servers.Snmpd) -> None:
    alone, together, sent = walk_both_ways(target(snmpd), [12, 12, 12, 12, 12])
    assert together == alone
    assert all(len(column) > 1 for i, column in enumerate(alone) if COLUMNS[i] != NOT_THERE)
    assert alone[COLUMNS.index(NOT_THERE)] == {}
    assert max(len(column) for column in alone) < 12  # 4, 11, 4, 0 and 10 rows: one page
    assert sent == {"bulk": 1}


def test_longer_columns_go_on_from_their_last_row(snmpd: servers.Snmpd) -> None:
    alone, together, sent = walk_both_ways(target(snmpd), [1, 1, 1, 1, 1])
    assert together == alone
    assert sent["bulk"] > 1


@pytest.mark.parametrize("version", ["1", "3"])
def test_v1_walks_each_column_and_v3_pages_them_together(
    snmpd: servers.Snmpd, version: str
) -> None:
    if version == "1":
        to = target(snmpd, version="1")
    else:
        to = target(
            snmpd,
            version="3",
            community="",
            user=snmpd.v3_user,
            auth_protocol="SHA",
            auth_key=snmpd.auth_password,
            priv_protocol="AES",
            priv_key=snmpd.priv_password,
        )
    alone, together, sent = walk_both_ways(to, [8] * len(COLUMNS))
    assert together == alone
    assert ("bulk" in sent) == (version == "3")


def test_a_device_that_does_not_answer_raises(snmpd: servers.Snmpd) -> None:
    quiet = target(snmpd, community="wrong-community", timeout_s=0.3, retries=0)

    async def main() -> None:
        async with SnmpClient() as client:
            await walk_columns(client, quiet, COLUMNS, [8] * len(COLUMNS))

    with pytest.raises(DeviceUnreachable, match="pdu-1 .*no answer to SNMP v2c GETBULK walk"):
        asyncio.run(main())
