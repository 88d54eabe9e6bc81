"""`gronkoll apikey`: create, list and revoke the HTTP API's keys."""

from __future__ import annotations

import argparse
import sys

from gronkoll.cli_common import Command, SubParsers, _out, _settings
from gronkoll.errors import GronkollError
from gronkoll.statedb import ROLES


def cmd_apikey_create(args: argparse.Namespace) -> int:
    """Create an API key and print it once."""
    from gronkoll.runtime import Runtime

    settings = _settings(args)
    with Runtime(settings) as runtime:
        key = runtime.state.create_api_key(args.name, args.role)
    _out(key)
    sys.stderr.write(
        f"API key {args.name!r} ({args.role}) created. It is shown only this once and stored "
        "hashed: keep it somewhere safe.\n"
    )
    return 0


def cmd_apikey_list(args: argparse.Namespace) -> int:
    """List API keys (names, roles, prefixes; never the keys)."""
    from gronkoll.runtime import Runtime

    settings = _settings(args)
    with Runtime(settings) as runtime:
        keys = runtime.state.list_api_keys()
    if not keys:
        _out("No API keys. Create one with: gronkoll apikey create --name NAME --role viewer")
    for k in keys:
        used = k.last_used_at.isoformat(timespec="seconds") if k.last_used_at else "never"
        state = "revoked" if k.revoked else "active"
        _out(f"{k.name}\t{k.role}\t{k.prefix}...\t{state}\tlast used {used}")
    return 0


def cmd_apikey_revoke(args: argparse.Namespace) -> int:
    """Revoke an API key by name."""
    from gronkoll.runtime import Runtime

    settings = _settings(args)
    with Runtime(settings) as runtime:
        if not runtime.state.revoke_api_key(args.name):
            raise GronkollError(f"no API key named {args.name!r}")
    _out(f"API key {args.name!r} revoked.")
    return 0


def add_commands(sub: SubParsers, command: Command) -> None:
    """Add apikey create, list and revoke to the top-level command parser."""
    keys = sub.add_parser(
        "apikey", help="API keys", description="Create, list and revoke API keys."
    )
    keys_sub = keys.add_subparsers(dest="apikey", required=True, metavar="ACTION")
    p = command("create", cmd_apikey_create, keys_sub)
    p.add_argument("--name", required=True)
    p.add_argument("--role", choices=ROLES, default="viewer", help="default: viewer")
    command("list", cmd_apikey_list, keys_sub)
    p = command("revoke", cmd_apikey_revoke, keys_sub)
    p.add_argument("--name", required=True)
