"""The `gronkoll` command line: the parser of every command, and running one.

The commands live in modules by group (cli_config, cli_store, cli_reports, cli_apikeys,
cli_collect, cli_shutdown, cli_enforce); this module keeps the few that start a whole
program (serve, demo, agent) and adds the others in the order `gronkoll --help` lists them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gronkoll import (
    __version__,
    cli_apikeys,
    cli_collect,
    cli_config,
    cli_enforce,
    cli_reports,
    cli_shutdown,
    cli_store,
)
from gronkoll.cli_common import EXIT_CONFIG, EXIT_FAILURE, _out, _settings
from gronkoll.errors import ConfigError, GronkollError
from gronkoll.settings import CONFIG_ENV


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the HTTP API."""
    from gronkoll.server import serve

    serve(_settings(args), host=args.host, port=args.port)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Build a fictional municipality, simulate readings, report and serve."""
    demo = importlib.import_module("gronkoll.demo")
    result: int = demo.main(args)
    return result


def cmd_agent(args: argparse.Namespace) -> int:
    """Run the PC agent (reports this computer's state, obeys signed shutdown commands)."""
    from gronkoll.agent.config import default_postpone_file, load_agent_settings

    config = getattr(args, "config", None)
    if args.action == "postpone":
        # Run by the logged-in user, who may not read agent.yaml (it holds the site's key).
        path = Path(args.postpone_file) if args.postpone_file else default_postpone_file()
        if args.postpone_file is None and config and Path(config).is_file():
            try:
                path = load_agent_settings(config).postpone_path()
            except ConfigError:
                pass
        path.touch()
        _out(f"Avstängningen skjuts upp en gång. The shutdown is postponed once ({path}).")
        return 0
    if not config:
        raise ConfigError("gronkoll agent: give the agent's config file with -c agent.yaml")
    settings = load_agent_settings(config)
    runner = importlib.import_module("gronkoll.agent.runner")
    logging.getLogger("gronkoll").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    result: int = runner.run_agent(settings)
    return result


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        default=argparse.SUPPRESS,
        help=f"config file (default: ${CONFIG_ENV}, else ./gronkoll.yaml)",
    )
    parser = argparse.ArgumentParser(
        prog="gronkoll",
        description="Green IT energy monitoring for municipalities.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"gronkoll {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str,
        func: Callable[[argparse.Namespace], int],
        parent: argparse._SubParsersAction[argparse.ArgumentParser] = sub,
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(
            name, parents=[common], help=func.__doc__, description=func.__doc__
        )
        p.set_defaults(func=func)
        return p

    def group(
        name: str, text: str, description: str
    ) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        """A command with actions of its own (gronkoll mqtt replay, gronkoll quarantine list)."""
        parser = sub.add_parser(name, help=text, description=description)
        return parser.add_subparsers(dest=name, required=True, metavar="ACTION")

    cli_config.add_commands(sub, command)

    cli_store.add_import(sub, command)

    report_sub = cli_reports.add_reports(sub, command)

    cli_apikeys.add_commands(sub, command)

    p = command("serve", cmd_serve)
    p.add_argument("--host", help="address to bind (default: api.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: api.port, 8000)")

    cli_collect.add_commands(sub, command, group)

    cli_shutdown.add_commands(sub, command)
    cli_enforce.add_audit(sub, command)
    cli_enforce.add_report(report_sub, command)
    p = command("agent", cmd_agent)
    p.add_argument(
        "action",
        nargs="?",
        choices=("run", "postpone"),
        default="run",
        help="run the agent (default, needs -c agent.yaml), or postpone a pending shutdown once",
    )
    p.add_argument("--postpone-file", metavar="PATH", help="postpone: the agent's postpone_file")
    cli_store.add_spool(sub, command)

    p = command("demo", cmd_demo)
    p.add_argument("--no-serve", action="store_true", help="print the summary and exit")
    p.add_argument("--dir", help="folder to build the demo in (default: a new temporary folder)")
    p.add_argument("--days", type=int, default=90, help="days to simulate (default: 90)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    p.add_argument("--end", help="local date the simulation ends at, exclusive (default: today)")
    p.add_argument("--host", help="address to serve on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to serve on (default: 8000)")
    p.add_argument(
        "--influxdb",
        metavar="URL",
        help="store the demo in InfluxDB 1.x at URL (database gronkoll) instead of SQLite",
    )
    p.add_argument("--influxdb-database", help=argparse.SUPPRESS)  # tests: a database each
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors meant for the user print as one message, not a traceback."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        result: int = args.func(args)
        return result
    except ConfigError as err:
        sys.stderr.write(f"gronkoll: {err}\n")
        return EXIT_CONFIG
    except GronkollError as err:
        sys.stderr.write(f"gronkoll: {err}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
