"""What every command module of the `gronkoll` command line shares: exit codes, printing a
line, the config named by -c, the time now, and the types of the parser helpers.

The helpers keep the underscored names they had in cli.py, so a command reads the same in
whichever module it lives.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import TypeAlias

from gronkoll.settings import Settings, config_path, load_settings

EXIT_FAILURE = 1
EXIT_CONFIG = 2

#: cli.build_parser's ``command(name, func, parent=sub)``: adds one command, returns its parser.
Command = Callable[..., argparse.ArgumentParser]
#: The subcommand table of a parser (``gronkoll COMMAND``, ``gronkoll report REPORT``...);
#: a string, as argparse's class takes no type argument at run time.
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
#: cli.build_parser's ``group(name, help, description)``: a command with actions of its own.
Group = Callable[[str, str, str], SubParsers]


def _out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(config_path(getattr(args, "config", None)))


def _now_ms() -> int:
    return round(time.time() * 1000)
