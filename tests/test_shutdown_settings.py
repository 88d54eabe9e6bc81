"""The shutdown section of the config: the issue's YAML as is, and bad input refused at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from gronkoll.errors import ConfigError
from gronkoll.policies import policy_targets
from gronkoll.settings import DEFAULT_COUNTERFACTUAL_ON_SHARE, load_settings

# Issue 6's policy block, word for word, inside a config with the devices it needs.
ISSUE_CONFIG = """\
municipality: {name: Exempelby, timezone: Europe/Stockholm}
sites:
  - {id: skola1, kind: school}
  - {id: skola2, kind: school}
groups:
  - {id: elevdatorer, site: skola1}
devices:
  - {id: pc-1, site: skola1, group: elevdatorer, kind: pc, mac: "AA-BB-CC-00-00-01"}
  - {id: pc-2, site: skola1, group: elevdatorer, kind: pc}
  - {id: server-1, site: skola1, kind: server}
  - {id: pc-9, site: skola2, kind: pc}
shutdown:
  signing_keys:                        # per site, secrets (at least 32 characters)
    skola1: "0123456789abcdef0123456789abcdef"
  policies:
    - name: skolor-kvall
      groups: [elevdatorer]
      shutdown: "30 18 * * mon-thu"    # cron: minute hour day month weekday, local time
      calendar: se-school              # Swedish public holidays + the configured breaks
    - name: skolor-fredag
      groups: [elevdatorer]
      shutdown: "0 15 * * fri"
      calendar: se-school
  breaks:
    - {name: sportlov, from: 2027-02-22, to: 2027-02-26}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gronkoll.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def refused(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert str(path) in message
    return message


def test_the_issue_yaml_is_accepted_as_is(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ISSUE_CONFIG))
    section = settings.shutdown
    assert [p.name for p in section.policies] == ["skolor-kvall", "skolor-fredag"]
    assert section.breaks[0].from_.isoformat() == "2027-02-22"
    assert section.signing_keys["skola1"].get_secret_value().startswith("0123")
    policy = section.policies[0]
    assert (policy.warn_minutes, policy.allow_postpone, policy.postpone_minutes) == (10, True, 30)
    assert policy.skip_if_active_minutes is None and policy.audit_only is False
    assert (section.command_ttl_s, section.verify_deadline_s, section.retries) == (600, 300, 2)
    assert section.counterfactual_on_share == DEFAULT_COUNTERFACTUAL_ON_SHARE == 0.56
    assert (section.wol.broadcast, section.wol.port) == ("255.255.255.255", 9)
    assert [d.id for d in policy_targets(settings, policy).devices] == ["pc-1", "pc-2"]
    assert settings.device("pc-1").mac == "aa:bb:cc:00:00:01"  # type: ignore[union-attr]
    assert "0123456789abcdef" not in repr(settings)


def test_targets_are_computers_less_exemptions(tmp_path: Path) -> None:
    text = ISSUE_CONFIG.replace(
        '      groups: [elevdatorer]\n      shutdown: "30 18',
        "      groups: [elevdatorer]\n      sites: [skola1]\n      exempt_devices: [pc-2]\n"
        '      shutdown: "30 18',
    )
    settings = load_settings(write(tmp_path, text))
    targets = policy_targets(settings, settings.shutdown.policies[0])
    # server-1 stands on skola1 too, but only computers (kind pc) are shut down
    assert [d.id for d in targets.devices] == ["pc-1"]
    assert targets.exempt == {"pc-2": "exempt device"}


def test_exempt_groups_and_overrides_are_set_apart_with_their_reason(tmp_path: Path) -> None:
    text = ISSUE_CONFIG.replace(
        '      groups: [elevdatorer]\n      shutdown: "30 18',
        "      groups: [elevdatorer]\n      sites: [skola1, skola2]\n"
        '      exempt_groups: [elevdatorer]\n      shutdown: "30 18',
    )
    key = '    skola1: "0123456789abcdef0123456789abcdef"\n'
    settings = load_settings(write(tmp_path, text.replace(key, key + key.replace("1:", "2:"))))
    targets = policy_targets(settings, settings.shutdown.policies[0], {"pc-9": "prov i aula"})
    assert targets.devices == []
    assert targets.exempt == {
        "pc-1": "exempt group elevdatorer",
        "pc-2": "exempt group elevdatorer",
        "pc-9": "override: prov i aula",
    }


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            '"0 15 * * fri"',
            '"0 25 * * fri"',
            "shutdown.policies[1].shutdown: cron expression '0 25 * * fri'",
        ),
        ('"0 15 * * fri"', '"0 15 * fri"', "has 4 fields; expected 5"),
        ('"0 15 * * fri"', '"0 15 1 * fri"', "both a day of month and a weekday"),
        ('"0 15 * * fri"', '"0 15 * * fredag"', "unknown weekday 'fredag'"),
        (
            '      groups: [elevdatorer]\n      shutdown: "0 15',
            '      groups: [elevdatorer, larare]\n      shutdown: "0 15',
            "shutdown.policies[1].groups: unknown group 'larare' (known: elevdatorer)",
        ),
        (
            '"0 15 * * fri"',
            '"0 15 * * thu"',
            "shutdown.policies[1]: policy 'skolor-fredag' overlaps policy 'skolor-kvall': "
            "both shut down pc-1, pc-2 and can fire on the same day (e.g. Thursday 2024-01-04)",
        ),
        (
            '    skola1: "0123456789abcdef0123456789abcdef"\n',
            '    skola2: "0123456789abcdef0123456789abcdef"\n',
            "shutdown.signing_keys: no key for site 'skola1', where policy 'skolor-kvall'",
        ),
        (
            '"0123456789abcdef0123456789abcdef"',
            '"too-short"',
            "shutdown.signing_keys: the key for site 'skola1' must be at least 32 characters",
        ),
        ("2027-02-26}", "2027-02-20}", "break 'sportlov' ends (2027-02-20) before it starts"),
        ('mac: "AA-BB-CC-00-00-01"', 'mac: "AA-BB-CC"', "devices[0].mac: 'AA-BB-CC' is not a MAC"),
        (
            'groups: [elevdatorer]\n      shutdown: "0 15',
            'devices: [server-1]\n      shutdown: "0 15',
            "shutdown.policies[1].devices: 'server-1' is a server; only devices of kind pc",
        ),
        (
            "{id: pc-2, site: skola1,",
            "{id: pc-2, site: skola2,",
            "devices[1].site: 'pc-2' is in group 'elevdatorer' of site 'skola1' but stands on site",
        ),
    ],
)
def test_bad_shutdown_config_is_refused_naming_file_and_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in ISSUE_CONFIG
    message = refused(tmp_path, ISSUE_CONFIG.replace(old, new, 1))
    assert expected in message
    assert "0123456789abcdef" not in message


def test_policies_on_different_days_of_the_month_do_not_overlap(tmp_path: Path) -> None:
    text = ISSUE_CONFIG.replace('"30 18 * * mon-thu"', '"0 20 1 * *"').replace(
        '"0 15 * * fri"', '"0 20 2 * *"'
    )
    load_settings(write(tmp_path, text))
    message = refused(tmp_path, text.replace('"0 20 2 * *"', '"0 21 1-3 * *"'))
    assert "(e.g. Monday 2024-01-01)" in message
