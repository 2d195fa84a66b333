"""Every subcommand, against unreachable services (port 1) and bad paths: one line, no traceback.

The subprocess cases run all at once (a thread each) so the file costs a few seconds:
each proves at the process level that the mistake ends in at most two stderr lines, a
non-zero exit and no "Traceback". The conventions (--version, subcommands, help defaults,
flags over env, --dry-run --json, plurals) are checked in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

import pytest

from auth_kappa.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
DOWN = {"AUTH_REDIS_URL": "redis://127.0.0.1:1/0", "AUTH_KAFKA": "127.0.0.1:1",
        "AUTH_S3_ENDPOINT": "http://127.0.0.1:1",
        "AUTH_DASHBOARD_REDIS_URL": "redis://127.0.0.1:1/0",
        "AUTH_OPERATOR_TOKEN": "t" * 40, "AUTH_DASHBOARD_SECRET": "s" * 40}
RANGE = ["--from", "2026-03-02T00:00:00Z", "--to", "2026-03-03T00:00:00Z"]
SIM = ["--meters", "5", "--duration", "2m", "--quiet"]


# run as a process (proves no traceback at the process level; the named cases and
# those that would exec Faust or serve forever if they did not fail); the rest in-process
PROCESS = {"worker, Redis down", "worker, Kafka down", "replay correct, Redis down",
           "replay rebuild --archive-only, Redis down", "simulate --out existing file",
           "simulate --to s3, S3 down", "replay correct --dry-run, no such archive",
           "dashboard, Redis down", "stack status"}


def _cases(d: Path, redis_up: str) -> dict[str, tuple[list[str], dict[str, str], str]]:
    """name -> (argv, extra env, a word the one line must contain)."""
    arch, afile = str(d / "arch"), str(d / "a-file")
    unique = d.name[-10:]
    live_redis = {"AUTH_REDIS_URL": redis_up, "AUTH_POINTER": f"cli-errors:{unique}:pointer",
                  "AUTH_GROUP": f"cli-errors-{unique}"}
    return {
        "stack status": (["stack", "status"], {}, ""),   # stdout: one row per service
        "stack up, bad partitions": (["stack", "up", "--partitions", "0"], {}, "partitions"),
        "stack down, bad partitions": (["stack", "down", "--partitions", "0"], {}, "partitions"),
        "simulate --out existing file": (["simulate", *SIM, "--out", afile], {}, "--out"),
        "simulate --out unwritable": (["simulate", *SIM, "--out", "/proc/auth-kappa/x"], {},
                                      "--out"),
        "simulate --to s3, S3 down": (["simulate", *SIM, "--to", "s3", "--out",
                                       str(d / "s3")], {}, "S3"),
        "simulate --to kafka, Kafka down": (["simulate", *SIM, "--to", "kafka", "--out",
                                             str(d / "k")], {}, "Kafka"),
        "simulate --to archive file": (["simulate", *SIM, "--to", "archive", afile, "--out",
                                        str(d / "x")], {}, "--to archive"),
        "worker, Redis down": (["worker"], {}, "Redis at redis://127.0.0.1:1"),
        "worker, Kafka down": (["worker"], live_redis, "Kafka at 127.0.0.1:1"),
        "demo --out existing file": (["demo", "--out", afile, "--no-dashboard"], {}, "--out"),
        "replay correct, Redis down": (["replay", "correct", *RANGE, "--archive", arch,
                                        "--quiet"], {}, "Redis at redis://127.0.0.1:1"),
        "replay rebuild --archive-only, Redis down": (
            ["replay", "rebuild", "--from", RANGE[1], "--archive", arch, "--archive-only",
             "--quiet"], {}, "Redis at redis://127.0.0.1:1"),
        "replay rebuild, Kafka down": (["replay", "rebuild", "--from", RANGE[1], "--archive",
                                        arch, "--quiet"], live_redis, "Kafka at 127.0.0.1:1"),
        "replay correct --dry-run, no such archive": (
            ["replay", "correct", *RANGE, "--dry-run", "--archive", "/nonexistent"], {},
            "/nonexistent"),
        "replay correct --dry-run, S3 down": (["replay", "correct", *RANGE, "--dry-run"], {},
                                              "S3"),
        "replay correct --archive-only": (["replay", "correct", *RANGE, "--archive-only"], {},
                                          "--archive-only"),
        "dashboard, Redis down": (["dashboard", "--port", "0"], {}, "Redis"),
        "dashboard --embedded missing": (["dashboard", "--embedded", "/nonexistent"], {},
                                         "/nonexistent"),
        "dashboard load-registry, Redis down": (
            ["dashboard", "load-registry", str(d / "sim" / "registry.parquet")], {}, "Redis"),
        "dashboard create-redis-user, Redis down": (["dashboard", "create-redis-user"], {},
                                                    "Redis"),
    }


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli-errors")
    (d / "a-file").write_text("not a folder\n")
    assert main(["simulate", *SIM, "--to", "archive", str(d / "arch"), "--out",
                 str(d / "sim")]) == 0   # a real archive: replay gets as far as Redis
    return d


def _env(d: Path) -> dict[str, str]:
    return {**DOWN, "AUTH_STACK_DIR": str(d / "stack"), "AUTH_CACHE_DIR": str(d / "cache")}


@pytest.fixture(scope="module")
def processes(folder, config) -> dict[str, tuple[int, str, str]]:
    """The PROCESS cases, all at once: name -> (exit code, stdout, stderr)."""
    env = {**os.environ, **_env(folder)}
    env.pop("AUTH_DEBUG", None)
    cases = {k: v for k, v in _cases(folder, config.redis_url).items() if k in PROCESS}

    def run(item: tuple[str, tuple[list[str], dict[str, str], str]]):
        name, (argv, extra, _) = item
        try:
            done = subprocess.run([sys.executable, "-m", "auth_kappa.cli.main", *argv],
                                  env={**env, **extra}, cwd=folder, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=25)
        except subprocess.TimeoutExpired as exc:   # e.g. a client retrying forever
            return name, (-9, "", f"timed out after 25 s: {exc.stderr!r}")
        return name, (done.returncode, done.stdout, done.stderr)

    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        return dict(pool.map(run, cases.items()))


def _in_process(argv: list[str], env: dict[str, str], monkeypatch, capsys
                ) -> tuple[int, str, str]:
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("AUTH_DEBUG", raising=False)
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:   # argparse's own one-line errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


CASE_NAMES = list(_cases(Path("/x/cli-errors0000000000"), "redis://x"))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_every_mistake_is_one_line(name, folder, config, monkeypatch, capsys, request):
    argv, extra, word = _cases(folder, config.redis_url)[name]
    if name in PROCESS:
        code, out, err = request.getfixturevalue("processes")[name]
    else:
        code, out, err = _in_process(argv, {**_env(folder), **extra}, monkeypatch, capsys)
    lines = err.strip().splitlines()
    assert "Traceback" not in err + out, err[-2000:]
    assert code not in (0, -9), (code, err[-500:])
    assert len(lines) <= 2, err
    assert "Unclosed" not in err
    if word:   # a specific message, not the last-resort "unexpected ..." line
        assert lines and word in lines[-1] and "unexpected" not in lines[-1], lines
        assert lines[-1].startswith("auth-kappa: "), lines


def test_service_lines_say_what_to_run(processes):
    for name in ("worker, Redis down", "worker, Kafka down", "replay correct, Redis down",
                 "simulate --to s3, S3 down", "replay rebuild --archive-only, Redis down"):
        line = processes[name][2].strip()
        assert "auth-kappa stack up" in line and ("AUTH_" in line), (name, line)
    s3 = processes["simulate --to s3, S3 down"][2]   # not cut mid-URL
    assert "?list-type" not in s3 and s3.rstrip().endswith("AUTH_S3_BUCKET"), s3


def test_version_comes_from_the_package_metadata(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"auth-kappa {version('auth-kappa')}"


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_every_help_shows_defaults_and_describes_itself():
    seen = set()
    for path, parser in _parsers(build_parser()):
        seen.add(" ".join(path))
        text = parser.format_help()
        assert parser.description, f"`auth-kappa {' '.join(path)} --help` has no description"
        for a in parser._actions:
            if (not a.option_strings or a.help == argparse.SUPPRESS or a.default is None
                    or a.default is False or a.default == argparse.SUPPRESS):
                continue
            shown = ",".join(map(str, a.default)) if isinstance(a.default, list) else \
                str(a.default)
            helptext = parser._get_formatter()._get_help_string(a) or ""
            assert "default" in helptext.lower() and shown.split(",")[0] in " ".join(
                text.split()), (path, a.option_strings, helptext)
    assert {"demo", "replay correct", "replay rebuild", "worker", "simulate"} <= seen


def test_one_log_level_spelling():
    for path, parser in _parsers(build_parser()):
        visible = {s for a in parser._actions if a.help != argparse.SUPPRESS
                   for s in a.option_strings}
        assert not visible & {"--loglevel", "--log_level", "-l"}, path
    args = build_parser().parse_args(["worker", "--log-level", "WARNING"])
    assert args.log_level == "warning"
    assert build_parser().parse_args(["worker", "--loglevel", "debug"]).log_level == "debug"


def test_replay_modes_are_subcommands_with_their_own_flags(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["replay", "correct", *RANGE, "--archive-only"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1
    assert "--archive-only" in err and "replay correct --help" in err
    assert main(["replay", "correct", "--from", RANGE[1]]) == 2   # correct needs --to
    assert "needs --to" in capsys.readouterr().err
    rebuild = build_parser().parse_args(["replay", "rebuild", "--from", "0", "--archive-only"])
    assert rebuild.archive_only and rebuild.mode == "rebuild"


def test_flags_beat_env_and_leave_it_as_it_was(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("AUTH_REDIS_URL", "redis://127.0.0.1:2/0")
    monkeypatch.setenv("AUTH_KAFKA", "127.0.0.1:2")
    (tmp_path / "archive").mkdir()
    base = ["replay", "rebuild", "--from", "0", "--archive", str(tmp_path)]
    assert main([*base, "--redis", "redis://127.0.0.1:1/0"]) == 3
    assert "Redis at redis://127.0.0.1:1/0 unreachable" in capsys.readouterr().err
    assert os.environ["AUTH_REDIS_URL"] == "redis://127.0.0.1:2/0"
    assert main(base) == 3
    assert "Redis at redis://127.0.0.1:2/0" in capsys.readouterr().err
    for path in (("worker",), ("replay", "correct"), ("replay", "rebuild"), ("dashboard",),
                 ("dashboard", "load-registry"), ("dashboard", "create-redis-user"),
                 ("stack",), ("demo",)):
        text = dict(_parsers(build_parser()))[path].format_help()
        assert "--redis" in text, path
    for path in (("worker",), ("replay", "rebuild"), ("simulate",), ("stack",), ("demo",)):
        assert "--kafka" in dict(_parsers(build_parser()))[path].format_help(), path


def test_dry_run_json_and_plurals(tmp_path, capsys):
    assert main(["simulate", *SIM, "--to", "archive", str(tmp_path / "arch"), "--out",
                 str(tmp_path / "sim")]) == 0
    manifest = json.loads((tmp_path / "sim" / "manifest.json").read_text())
    capsys.readouterr()
    assert main(["replay", "correct", *RANGE, "--archive", str(tmp_path / "arch"),
                 "--dry-run", "--json"]) == 0
    out, err = capsys.readouterr()
    plan = json.loads(out)   # stdout is JSON only; the text went to stderr
    valid = sum(u["messages"] - u["malformed"] for u in manifest["utilities"].values())
    assert plan["events"] == valid and plan["files"] == sum(
        len(list((tmp_path / "arch").rglob(f"utility={u}/*/*/*.parquet")))
        for u in ("electricity", "gas", "water"))
    assert all(len(u["hours"]) == 1 for u in plan["utilities"].values())
    assert "in 1 archive hour\n" in err + "\n" and "1 hours" not in err
    assert main(["replay", "correct", "--from", "2020-01-01T00:00:00Z", "--to",
                 "2020-01-02T00:00:00Z", "--archive", str(tmp_path / "arch"),
                 "--dry-run"]) == 2   # an empty range is a mistake, not "0 files", exit 0
    assert "no archive objects" in capsys.readouterr().err


def test_simulate_takes_the_topic_prefix_from_the_environment_unless_flagged(monkeypatch):
    """AUTH_TOPIC_PREFIX names the topics the workers read; `simulate` writes to them too."""
    from simulators.cli import make_sink

    monkeypatch.setenv("AUTH_TOPIC_PREFIX", "tenant7-")
    args = build_parser().parse_args(["simulate", "--to", "kafka"])
    args.to = "kafka"   # as run() normalises the --to list
    assert set(make_sink(args).topics.values()) == {"tenant7-electricity", "tenant7-gas",
                                                    "tenant7-water"}
    args = build_parser().parse_args(["simulate", "--to", "kafka", "--topic-prefix", "t8-"])
    args.to = "kafka"
    assert make_sink(args).topics["gas"] == "t8-gas"
