"""The `store:` section for InfluxDB: the issue's shape, its checks, and its secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from influx_cases import v1_store, v2_store, write_config

from gronkoll.cli import main
from gronkoll.settings import InfluxdbStore, SqliteStore, load_settings

ROOT = Path(__file__).parent.parent.parent


def test_the_issue_s_shape_loads_with_the_spool_beside_the_config_file(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "etc",
        {
            "kind": "influxdb",
            "url": "http://127.0.0.1:8086",
            "api": "v2",
            "org": "kommunen",
            "bucket": "gronkoll",
            "token": "t0ken-value",
            "database": "gronkoll",
            "retention_policy": "autogen",
            "username": "gk",
            "password": "pass-value",
            "spool_path": "spool/gronkoll-spool.sqlite",
        },
    )
    settings = load_settings(config)
    assert isinstance(settings.store, InfluxdbStore)
    assert settings.spool_path == (tmp_path / "etc" / "spool" / "gronkoll-spool.sqlite")
    assert settings.store.spool_max_mb == 1024
    dumped = repr(settings) + settings.model_dump_json()
    assert "t0ken-value" not in dumped and "pass-value" not in dumped


def test_sqlite_stays_the_default_with_or_without_kind(tmp_path: Path) -> None:
    assert isinstance(load_settings(write_config(tmp_path / "a", {})).store, SqliteStore)
    config = write_config(tmp_path / "b", {"busy_timeout_s": 1})
    assert load_settings(config).spool_path is None


@pytest.mark.parametrize(
    ("store", "message"),
    [
        (
            {"kind": "influxdb", "url": "http://h:8086", "org": "o", "bucket": "b"},
            "store: api v2 needs token (api v1 needs database)",
        ),
        (
            {"kind": "influxdb", "url": "http://h:8086", "api": "v1"},
            "store: api v1 needs database (api v2 needs org, bucket and token)",
        ),
        (v1_store("127.0.0.1:8086", "g"), "store.url: String should match pattern"),
        (v2_store("http://h:8086", spool_max_mb=0), "store.spool_max_mb: Input should be greater"),
        (v2_store("http://h:8086", colour="red"), "store.colour: unknown key"),
        ({"kind": "influx"}, "store: Input tag 'influx' found using 'kind' does not match"),
        (v1_store("http://h:8086", "g", api="v3"), "store.api: got 'v3'; input should be 'v2'"),
    ],
)
def test_a_bad_store_section_names_the_key(
    store: dict[str, object], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, store)
    assert main(["check-config", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"gronkoll: {config}: {message}" in err


def test_the_example_s_influxdb_block_loads_once_uncommented(tmp_path: Path) -> None:
    text = (ROOT / "config" / "example.yaml").read_text(encoding="utf-8")
    block = re.search(r"\n  # store:\n((?:  #   .*\n)+)", text)
    assert block is not None
    store_yaml = "\n".join(
        line.replace("  #   ", "", 1) for line in block.group(1).splitlines()
    ).replace("...", "secret-value")
    store = yaml.safe_load(store_yaml)
    assert store["kind"] == "influxdb"
    settings = load_settings(write_config(tmp_path, store))
    assert isinstance(settings.store, InfluxdbStore)
    # every key the store takes is shown there
    assert set(store) == set(InfluxdbStore.model_fields)
