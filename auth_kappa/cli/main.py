"""`auth-kappa` entry point: every subcommand, one-line errors, no tracebacks for user mistakes."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from auth_kappa.errors import UserError

# subcommand name -> module exposing add_parser(subparsers) that sets args.func(args) -> int
COMMANDS: dict[str, str] = {
    "stack": "auth_kappa.cli.stack_cmd",
    "simulate": "simulators.cli",
    "worker": "auth_kappa.cli.worker_cmd",
    "demo": "auth_kappa.cli.demo_cmd",
    "plan": "auth_kappa.cli.plan_cmd",
    "replay": "replay.cli",
    "dashboard": "dashboards.cli",
}

# --kafka / --redis on every command that talks to them: flag > AUTH_* env > default
SERVICE_FLAGS: dict[str, tuple[str, str]] = {
    "kafka": ("AUTH_KAFKA", "Kafka bootstrap servers (default: AUTH_KAFKA, else "
                            "127.0.0.1:9092)"),
    "redis": ("AUTH_REDIS_URL", "Redis URL (default: AUTH_REDIS_URL, else "
                                "redis://127.0.0.1:6379/0)"),
}
TALKS_TO: dict[str, tuple[str, ...]] = {
    "stack": ("kafka", "redis"),
    "demo": ("kafka", "redis"),
    "worker": ("kafka", "redis"),
    "replay correct": ("redis",),
    "replay rebuild": ("kafka", "redis"),
    "simulate": ("kafka",),
    "dashboard": ("redis",),
    "dashboard load-registry": ("redis",),
    "dashboard create-redis-user": ("redis",),
}


# where a command uses the flag differently from the plain "where the service is"
FLAG_HELP: dict[tuple[str, str], str] = {
    ("dashboard", "redis"): "the workers' Redis, as AUTH_REDIS_URL (default: AUTH_REDIS_URL, "
                            "else redis://127.0.0.1:6379/0); pages read through the read-only "
                            "user kept for it, see above",
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; every option's default shown unless its help names one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if ("default" in text.lower() or default is None or default is False
                or default == argparse.SUPPRESS
                or not action.option_strings or text == argparse.SUPPRESS):
            return action.help
        shown = ",".join(map(str, default)) if isinstance(default, list | tuple) else default
        return f"{text} (default: {shown})".lstrip()


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs["formatter_class"] = HelpFormatter  # the same help style on every command
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> None:  # one line, exit 2, like every other user error
        self.exit(2, f"auth-kappa: {message} (see `{self.prog} --help`)\n")


def version() -> str:
    """The installed distribution's version (package metadata), not a copy in the code."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("auth-kappa")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="auth-kappa", description=__doc__)
    parser.add_argument("--version", action="version", version=f"auth-kappa {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in COMMANDS.values():
        try:
            importlib.import_module(module).add_parser(sub)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a command that is not built yet is simply absent
                raise
    _describe(parser)
    for path, services in TALKS_TO.items():
        _add_service_flags(_subparser(parser, path.split()), services, path)
    return parser


def _describe(parser: argparse.ArgumentParser) -> None:
    """A subcommand without its own description gets its one-line help as one."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                sub = action.choices[choice.dest]
                if not sub.description:
                    sub.description = choice.help
                _describe(sub)


def _subparser(parser: argparse.ArgumentParser, path: list[str]) -> argparse.ArgumentParser | None:
    for name in path:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or name not in subs[0].choices:
            return None
        parser = subs[0].choices[name]
    return parser


def _add_service_flags(parser: argparse.ArgumentParser | None, services: tuple[str, ...],
                       path: str) -> None:
    if parser is None:
        return
    taken = {s for a in parser._actions for s in a.option_strings}
    for name in services:
        if f"--{name}" not in taken:  # SUPPRESS: a subcommand's default never hides a flag
            parser.add_argument(f"--{name}", dest=f"service_{name}", default=argparse.SUPPRESS,
                                metavar="URL" if name == "redis" else "HOST:PORT",
                                help=FLAG_HELP.get((path, name), SERVICE_FLAGS[name][1]))


def _deepest(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The subcommand's own parser (for its --help in the error line)."""
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        chosen = getattr(args, subs[0].dest, None) if subs else None
        if chosen not in (subs[0].choices if subs else {}):
            return parser
        parser = subs[0].choices[chosen]


@contextmanager
def _flags_as_env(args: argparse.Namespace) -> Iterator[None]:
    """--kafka/--redis reach every Config.load() (and a worker's Faust) as AUTH_* for this
    command only; the environment is restored afterwards (in-process callers, tests)."""
    saved: dict[str, str | None] = {}
    for name, (var, _) in SERVICE_FLAGS.items():
        value = getattr(args, f"service_{name}", None)
        if value:
            saved[var] = os.environ.get(var)
            os.environ[var] = value
    try:
        yield
    finally:
        for var, old in saved.items():
            if old is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = old


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # name the subcommand that does not take it: `replay correct --archive-only`
        _deepest(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        with _flags_as_env(args):
            return int(args.func(args) or 0)
    except UserError as exc:
        print(f"auth-kappa: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("auth-kappa: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - last resort: one line, the traceback on request
        if os.environ.get("AUTH_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(f"auth-kappa: unexpected {type(exc).__name__}: {first} (set AUTH_DEBUG=1 for "
              "the traceback, and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
