"""Docs that fall behind the code fail the tests: settings, commands, routes, fields, flags."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from gronkoll.cli import build_parser
from gronkoll.energy import Flag
from gronkoll.fields import FIELDS
from gronkoll.settings import Settings

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "config" / "example.yaml"


def keys_of(model: type[BaseModel], prefix: str = "") -> set[tuple[str, str]]:
    """(dotted key path, owner) for a settings model and the models nested in it; the owner
    (model name and key) lets a model used in several places be documented once."""
    out = set()
    for name, info in model.model_fields.items():
        if info.exclude:
            continue
        key = info.alias or name
        path = f"{prefix}{key}"
        out.add((path, f"{model.__name__}.{key}"))
        for arg in _models_in(info.annotation):
            out |= keys_of(arg, path + ".")
    return out


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in getattr(annotation, "__args__", ()):
        found += _models_in(arg)
    return found


def keys_in_yaml(data: object, prefix: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{prefix}{key}"
            out.add(path)
            out |= keys_in_yaml(value, path + ".")
    elif isinstance(data, list):
        for item in data:
            out |= keys_in_yaml(item, prefix)
    return out


def test_every_setting_is_shown_in_the_example_config() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    shown = keys_in_yaml(yaml.safe_load(text))
    # keys only mentioned in comments (optional sections shown commented out) count too
    commented = {m for m in re.findall(r"#\s+([a-z_]+):", text)}
    keys = keys_of(Settings)
    documented = {owner for path, owner in keys if path in shown}
    missing = {
        path
        for path, owner in keys
        if path not in shown
        and owner not in documented
        and path.rsplit(".", 1)[-1] not in commented
        # power_profiles is a mapping of names to profiles: its entries are shown by name
        and not path.startswith("power_profiles.")
    }
    assert not missing, f"config/example.yaml lacks {sorted(missing)}"


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")

    def commands(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
        found = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found += commands(sub, f"{prefix} {name}") or [f"{prefix} {name}"]
        return found

    missing = [c for c in commands(build_parser(), "gronkoll") if c not in readme]
    assert not missing, f"README.md does not mention {missing}"


@pytest.mark.parametrize("route", ["/health", "/api/v1/energy", "/api/v1/overrides"])
def test_every_api_route_is_documented(route: str, tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from gronkoll.api import create_app
    from gronkoll.settings import parse_settings

    settings = parse_settings(
        {"municipality": {"name": "x"}, "sites": [{"id": "a"}]}, tmp_path / "gronkoll.yaml"
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/no-such-route").status_code == 404
        assert client.get(route).status_code != 404  # it exists (it may want a key)
    assert f"`GET {route}`" in (ROOT / "docs" / "api.md").read_text(encoding="utf-8")


def test_every_reading_field_and_flag_is_documented() -> None:
    energy_doc = (ROOT / "docs" / "energy.md").read_text(encoding="utf-8")
    for flag in Flag:
        assert f"`{flag.name}` ({flag.value})" in energy_doc
    fields_doc = (ROOT / "docs" / "fields.md").read_text(encoding="utf-8")
    for name in FIELDS:
        assert f"`{name}`" in fields_doc, name
