"""Device profiles are data: every shipped file loads through the strict model, bad ones are
refused with the file and key named, and the docs describe every profile key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from gronkoll.collector.readout import counter_modulus_wh
from gronkoll.errors import ConfigError
from gronkoll.profiles import (
    Condition,
    Match,
    Metric,
    Probe,
    Profile,
    ScaleExponent,
    load_profile,
    load_profiles,
)

ROOT = Path(__file__).resolve().parents[2]
PROFILE_FILES = sorted((ROOT / "config" / "profiles").glob("*.yaml"))


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda p: p.stem)
def test_every_shipped_profile_loads_and_states_its_sources(path: Path) -> None:
    profile = load_profile(path)
    assert profile.id == path.stem
    assert len(profile.verified) > 200, "say how scales and units were checked, and against what"
    assert profile.match.sys_object_id or profile.match.probe, "how is this device recognised?"
    fields = {m.field for m in profile.metrics if m.device_field()}
    # A computer has no power meter: its energy comes from its power profile (on/idle).
    assert "power_w" in fields or profile.id == "host-resources"


def test_the_shipped_set_is_what_the_folder_holds() -> None:
    shipped = load_profiles()
    assert sorted(shipped.profiles) == [p.stem for p in PROFILE_FILES]
    assert {
        "apc-rpdu2",
        "apc-rpdu",
        "eaton-epdu",
        "raritan-pdu2",
        "apc-ups",
        "eaton-xups",
        "ups-mib",
        "entity-sensor",
        "dell-idrac",
        "hpe-ilo",
        "host-resources",
    } <= set(shipped.profiles)


def _write(tmp_path: Path, data: dict[str, object], name: str = "bad-profile") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"id": name, **data}), encoding="utf-8")
    return path


BASE: dict[str, object] = {
    "name": "Test",
    "mib": "TEST-MIB",
    "verified": "by a test",
    "metrics": [{"field": "power_w", "object": "testPower", "oid": "1.3.6.1.4.1.99999.1.0"}],
}


def test_a_valid_minimal_profile_loads(tmp_path: Path) -> None:
    profile = load_profile(_write(tmp_path, BASE))
    assert profile.power_total() is not None


@pytest.mark.parametrize(
    ("change", "key", "says"),
    [
        ({"oid": "1.3.6.1.4.1.x.1"}, "metrics[0].oid", "not a numeric OID"),
        ({"oid": "enterprises.318"}, "metrics[0].oid", "not a numeric OID"),
        ({"field": "power"}, "metrics[0].field", "unknown field 'power'"),
        ({"field": "watts_w"}, "metrics[0].field", "unknown field 'watts_w'"),
        ({"multiplier": 10}, "metrics[0].multiplier", "unknown key"),
        ({"where": [{"object": "x", "oid": "1.3.6.1.2", "equals": [1]}]}, "metrics[0]", "table"),
        ({"table": True, "index_suffix": "a"}, "metrics[0].index_suffix", "OID index"),
        ({"kind": "counter"}, "metrics[0]", "is a gauge, not a counter"),
    ],
)
def test_a_bad_metric_is_refused_naming_file_and_key(
    tmp_path: Path, change: dict[str, object], key: str, says: str
) -> None:
    metric = {**BASE["metrics"][0], **change}  # type: ignore[index]
    path = _write(tmp_path, {**BASE, "metrics": [metric]})
    with pytest.raises(ConfigError) as caught:
        load_profile(path)
    message = str(caught.value)
    assert str(path) in message
    assert f": {key}" in message
    assert says in message


def test_an_unknown_top_level_key_and_a_bad_probe_are_refused(tmp_path: Path) -> None:
    data = {
        **BASE,
        "vendor": "ACME",
        "match": {"probe": [{"mib": "X", "object": "y", "oid": "1.3.x"}]},
    }
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        load_profile(path)
    message = str(caught.value)
    assert f"{path}: vendor: unknown key" in message
    assert f"{path}: match.probe[0].oid:" in message


def test_the_id_must_match_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump({"id": "bad-profile", **BASE}), encoding="utf-8")
    with pytest.raises(ConfigError, match="must match the file name"):
        load_profile(path)


def test_a_counter_wraps_at_its_width_times_its_scale() -> None:
    profiles = load_profiles()
    eaton = profiles.get("eaton-epdu")
    raritan = profiles.get("raritan-pdu2")
    apc = profiles.get("apc-rpdu2")
    assert eaton is not None and raritan is not None and apc is not None
    assert eaton.counter_modulus_wh() == 2.0**32  # inputTotalWh, Unsigned32, in Wh
    counter = raritan.energy_counter()
    assert counter is not None
    assert counter_modulus_wh(counter, decimal_digits=0) == 2.0**32
    assert counter_modulus_wh(counter, decimal_digits=1) == 2.0**32 / 10
    assert apc.counter_modulus_wh() is None  # width not stated: a decrease is a reset
    scaled = Metric(
        field="energy_wh_total",
        object="x",
        oid="1.3.6.1.4.1.99999.1",
        kind="counter",
        scale=100,
        counter_bits=32,
    )
    assert scaled.counter_modulus_wh == 2.0**32 * 100


def _keys(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


def test_every_profile_key_is_documented() -> None:
    text = (ROOT / "docs" / "snmp.md").read_text(encoding="utf-8")
    section = text[text.index("## Device profiles") :]
    section = re.split(r"\n## (?!#)", section[3:], maxsplit=1)[0]
    keys = set().union(
        *(_keys(m) for m in (Profile, Match, Probe, Metric, Condition, ScaleExponent))
    )
    missing = sorted(k for k in keys if f"`{k}`" not in section)
    assert not missing, f"docs/snmp.md 'Device profiles' does not describe {missing}"
    for path in PROFILE_FILES:
        assert f"`{path.stem}`" in section, f"docs/snmp.md does not list the profile {path.stem}"
