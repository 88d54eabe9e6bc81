"""The service recipes in deploy/ start the agent with a command line the CLI accepts."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

from gronkoll.cli import build_parser, cmd_agent

DEPLOY = Path(__file__).parents[2] / "deploy"


def test_the_systemd_unit_runs_the_agent_with_its_config() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "gronkoll-agent.service", encoding="utf-8")
    exec_start = shlex.split(unit["Service"]["ExecStart"])
    assert exec_start[0].endswith("/gronkoll")
    args = build_parser().parse_args(exec_start[1:])
    assert args.func is cmd_agent and args.action == "run"
    assert args.config == "/etc/gronkoll/agent.yaml"
    assert unit["Service"]["Restart"] == "always"
    assert unit["Service"]["StateDirectory"] == "gronkoll-agent"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_windows_recipe_runs_the_agent_with_its_config() -> None:
    text = (DEPLOY / "windows-agent.md").read_text(encoding="utf-8")
    argument = re.search(r"-Argument '([^']+)'", text)
    assert argument is not None
    args = build_parser().parse_args(shlex.split(argument.group(1), posix=True))
    assert args.func is cmd_agent and args.config.endswith("agent.yaml")
