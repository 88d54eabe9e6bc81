"""Reading the config file: YAML, validation, and error messages that name file and key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gronkoll.errors import ConfigError
from gronkoll.settings_checks import cross_check
from gronkoll.settings_model import DEFAULT_CONFIG_NAME, Settings

CONFIG_ENV = "GRONKOLL_CONFIG"


def _path_text(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


def invalid_config(
    err: ValidationError,
    source: Path,
    *,
    unknown_key: str = "unknown key",
    missing: dict[str, str] | None = None,
) -> ConfigError:
    """One 'file: key: problem' line per validation error, in the user's words.

    unknown_key is said of a key the model does not know; missing maps a top-level key to
    what to say when it is absent (else "required key is missing").
    """
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if p != "source")
        if loc[:1] == ("store",) and loc[1:2] in (("sqlite",), ("influxdb",)):
            loc = loc[:1] + loc[2:]  # the union's tag is not a key in the file
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = unknown_key
        elif e["type"] == "missing":
            msg = (missing or {}).get(_path_text(loc), "required key is missing")
        elif e["type"] == "literal_error":
            msg = f"got {e.get('input')!r}; {msg[0].lower()}{msg[1:]}"
        lines.append(f"{source}: {_path_text(loc)}: {msg}")
    return ConfigError("\n".join(lines))


def load_yaml(text: str) -> Any:
    """Parse YAML safely, with libyaml when it is there (several times faster)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # noqa: S506 (both loaders are the safe ones)


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use: the argument, else $GRONKOLL_CONFIG, else ./gronkoll.yaml."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return Path(DEFAULT_CONFIG_NAME)


def parse_settings(data: Any, source: Path) -> Settings:
    """Validate already-parsed YAML data; raise ConfigError naming file and key."""
    name = str(source)
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: expected a mapping with municipality, sites and devices")
    try:
        settings = Settings.model_validate({**data, "source": source})
    except ValidationError as err:
        unknown = "unknown key (check the spelling; config/example.yaml lists every key)"
        raise invalid_config(err, source, unknown_key=unknown) from None
    problems = cross_check(settings)
    if problems:
        raise ConfigError("\n".join(f"{name}: {p}" for p in problems))
    return settings


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate the config file; raise ConfigError with a message for the user."""
    source = config_path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{source}: no such config file (give one with -c/--config or ${CONFIG_ENV}; "
            "config/example.yaml is a starting point)"
        ) from None
    except OSError as err:
        raise ConfigError(f"{source}: cannot read: {err.strerror}") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{source}: {where}not valid YAML: {problem}") from None
    return parse_settings(data, source)
