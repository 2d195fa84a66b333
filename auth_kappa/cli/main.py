"""`auth-kappa` entry point: every subcommand, one-line errors, no tracebacks for user mistakes."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from auth_kappa.errors import UserError

# subcommand name -> module exposing add_parser(subparsers) that sets args.func(args) -> int
COMMANDS: dict[str, str] = {
    "stack": "auth_kappa.cli.stack_cmd",
    "simulate": "simulators.cli",
    "worker": "auth_kappa.cli.worker_cmd",
    "demo": "auth_kappa.cli.demo_cmd",
    "replay": "replay.cli",
    "dashboard": "dashboards.cli",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other user error
        self.exit(2, f"auth-kappa: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="auth-kappa", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in COMMANDS.values():
        try:
            importlib.import_module(module).add_parser(sub)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a command that is not built yet is simply absent
                raise
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"auth-kappa: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("auth-kappa: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
