"""The deployment examples (deploy/, docs/deploy.md) must not drift from the code.

Every AUTH_* name they use is one the code reads (Config.ENV, or an environment lookup
in dashboards/), every `auth-kappa ...` command and flag exists in the real argparse
tree, the example settings load through Config, the YAML is the Kubernetes objects it
claims to be, and systemd accepts the units. No services needed; about a second.
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from auth_kappa.archive.child_process import STOP_SECONDS
from auth_kappa.cli import main
from auth_kappa.config import Config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
GUIDE = ROOT / "docs" / "deploy.md"
SYSTEMD = DEPLOY / "systemd"
K8S = DEPLOY / "kubernetes"

NAME = re.compile(r"\bAUTH_[A-Z0-9_]*[A-Z0-9]\b")
# `auth-kappa` as a command word (line start, after a space, quote, backtick, paren or
# bin/), then its words up to the end of the command: a backtick, quote, pipe, comment...
COMMAND = re.compile(r"(?:^|(?<=[\s`\"'(])|(?<=bin/))auth-kappa[ \t]+([a-z-][^`\"'|;#)\n]*)",
                     re.M)


@functools.lru_cache(maxsize=1)
def build_parser() -> argparse.ArgumentParser:
    return main.build_parser()


def example_files() -> list[Path]:
    return [GUIDE, *sorted(p for p in DEPLOY.rglob("*") if p.is_file())]


@functools.lru_cache(maxsize=1)
def dashboard_env_names() -> frozenset[str]:
    """AUTH_* names that dashboards/ looks up in an environment: env.get("AUTH_X"),
    os.environ["AUTH_X"], os.getenv("AUTH_X"), read from the source, not listed here."""
    names: set[str] = set()
    for path in (ROOT / "dashboards").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            key = None
            if isinstance(node, ast.Call) and node.args:
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else \
                    func.id if isinstance(func, ast.Name) else ""
                if called in {"get", "getenv", "pop"}:
                    key = node.args[0]
            elif isinstance(node, ast.Subscript):
                key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str) \
                    and NAME.fullmatch(key.value):
                names.add(key.value)
    return frozenset(names)


def known_names() -> set[str]:
    return set(Config.ENV) | dashboard_env_names()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def command_problems(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """What in `auth-kappa <words>` the real parser does not know: the subcommand path
    must exist, and every --flag must belong to the (sub)command it follows."""
    if not words:
        return ["no subcommand"]
    if not words[0].startswith("-") and words[0] not in _subparsers(parser):
        return [f"no subcommand {words[0]!r}"]
    problems, path = [], ["auth-kappa"]
    for word in words:
        subs = _subparsers(parser)
        if word.startswith("--"):
            flag = word.split("=", 1)[0]
            if flag not in parser._option_string_actions:
                problems.append(f"{' '.join(path)} has no {flag}")
        elif word in subs:
            parser = subs[word]
            path.append(word)
    return problems


def commands_in(text: str) -> list[list[str]]:
    out = []
    for m in COMMAND.finditer(text):
        words = m.group(1).replace("&&", " ").split()
        if words and re.fullmatch(r"[a-z][a-z-]*", words[0]):
            out.append(words)
    return out


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile reads them (no quotes used here)."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
            env[key.strip()] = value.strip()
    return env


def unit(path: Path) -> dict[str, list[str]]:
    """'Section.Key' -> values (systemd allows a key more than once)."""
    out: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return out


def load_yaml(path: Path) -> list[dict[str, Any]]:
    return _yaml_docs()[path.name]


@functools.lru_cache(maxsize=1)
def _yaml_docs() -> dict[str, list[dict[str, Any]]]:
    """Every deploy/kubernetes/*.yaml: PyYAML from the venv; else the system python's
    (Debian python3-yaml), all files in one run; else skip."""
    files = sorted(K8S.glob("*.yaml"))
    try:
        import yaml
    except ModuleNotFoundError:
        pass
    else:
        return {f.name: [d for d in yaml.safe_load_all(f.read_text()) if d] for f in files}
    system = shutil.which("python3", path="/usr/bin:/bin")
    code = ("import json, sys, yaml; print(json.dumps({f.rsplit('/', 1)[-1]: [d for d in "
            "yaml.safe_load_all(open(f)) if d] for f in sys.argv[1:]}))")
    out = subprocess.run([system, "-c", code, *map(str, files)], capture_output=True,
                         text=True) if system else None
    if out is None or "No module named 'yaml'" in out.stderr:
        pytest.skip("no YAML parser: PyYAML is not in .venv and /usr/bin/python3 has no "
                    "yaml module (apt-get install python3-yaml to run this check)")
    assert out.returncode == 0, out.stderr      # a YAML syntax error fails here
    return json.loads(out.stdout)


def kind(docs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == name]


def container_words(deployment: dict[str, Any]) -> list[str]:
    c = deployment["spec"]["template"]["spec"]["containers"][0]
    words = [*c.get("command", []), *c.get("args", [])]
    assert words and Path(words[0]).name == "auth-kappa", words
    return words[1:]


# ---- the tests
def test_every_auth_name_in_the_examples_is_read_by_the_code():
    dash = dashboard_env_names()
    # the scan finds what dashboards/ reads (or this test would accept anything)
    assert {"AUTH_OPERATOR_TOKEN", "AUTH_DASHBOARD_REDIS_URL"} <= dash, dash
    known = known_names()
    unknown = {f"{p.relative_to(ROOT)}: {n}" for p in example_files()
               for n in NAME.findall(p.read_text()) if n not in known}
    assert not unknown, sorted(unknown)


def test_every_auth_kappa_command_and_flag_exists():
    parser = build_parser()
    seen, problems = 0, []
    for path in example_files():
        for words in commands_in(path.read_text()):
            seen += 1
            problems += [f"{path.relative_to(ROOT)}: auth-kappa {' '.join(words)}: {p}"
                         for p in command_problems(parser, words)]
    assert seen >= 10, f"only {seen} commands found: the pattern no longer matches"
    assert not problems, problems


def test_every_flag_named_alone_exists_on_some_command():
    """`--dry-run`, `--password-stdin`... named in prose belong to some auth-kappa command."""
    flags: set[str] = set()
    todo = [build_parser()]
    while todo:
        parser = todo.pop()
        flags |= set(parser._option_string_actions)
        todo += _subparsers(parser).values()
    named = {(p.name, f) for p in example_files()
             for f in re.findall(r"`(--[a-z][a-z-]*)", p.read_text())}
    assert len(named) >= 5, named
    assert not {n for n in named if n[1] not in flags}, sorted(n for n in named
                                                                if n[1] not in flags)


def test_the_command_check_catches_a_wrong_flag_and_subcommand():
    parser = build_parser()
    assert command_problems(parser, ["worker", "--log-level", "info"]) == []
    assert command_problems(parser, ["dashboard", "create-redis-user", "--url-file", "f"]) == []
    assert command_problems(parser, ["worker", "--url-file", "f"])
    assert command_problems(parser, ["dashboard", "--password-stdin"])
    assert command_problems(parser, ["workers"])


def test_every_deploy_file_is_in_the_guide():
    guide = GUIDE.read_text()
    missing = [str(p.relative_to(ROOT)) for p in DEPLOY.rglob("*")
               if p.is_file() and str(p.relative_to(ROOT)) not in guide]
    assert not missing, missing


def test_example_settings_load_and_the_two_examples_agree():
    env = read_env_file(SYSTEMD / "auth-kappa.env.example")
    secrets = read_env_file(SYSTEMD / "auth-kappa-secrets.env.example")
    assert not set(env) & set(secrets), "a setting is in both files"
    config = Config.load(env={**env, **secrets})       # a bad value raises UserError
    assert config.group == env["AUTH_GROUP"] and config.namespace is None

    docs = load_yaml(K8S / "configmap.yaml") + load_yaml(K8S / "secret.example.yaml")
    (cm,) = kind(docs, "ConfigMap")
    assert all(isinstance(v, str) for v in cm["data"].values()), "ConfigMap values are strings"
    worker_secret = next(s for s in kind(docs, "Secret") if s["metadata"]["name"] == "auth-kappa")
    Config.load(env={**cm["data"], **worker_secret["stringData"]})
    systemd_names = set(env) | set(secrets)
    k8s_names = set(cm["data"]) | set(worker_secret["stringData"])
    # the unit sets AUTH_CACHE_DIR per instance; in Kubernetes the ConfigMap does
    assert systemd_names ^ k8s_names <= {"AUTH_CACHE_DIR"}, systemd_names ^ k8s_names
    same = ("AUTH_GROUP", "AUTH_WINDOWS", "AUTH_GRACE", "AUTH_RETENTION",
            "AUTH_METER_RETENTION", "AUTH_POINTER", "AUTH_TOPIC_PREFIX", "AUTH_MAX_FUTURE")
    assert {k: env[k] for k in same} == {k: cm["data"][k] for k in same}
    assert "AUTH_NAMESPACE" not in systemd_names | k8s_names   # workers follow the pointer


def test_worker_deployment():
    docs = load_yaml(K8S / "worker-deployment.yaml")
    (dep,) = kind(docs, "Deployment")
    spec = dep["spec"]
    assert spec["replicas"] >= 1
    pod = spec["template"]["spec"]
    words = container_words(dep)
    assert words[0] == "worker" and command_problems(build_parser(), words) == []
    # longer than a graceful stop: a checkpoint interval plus the archiver child's stop
    assert pod["terminationGracePeriodSeconds"] > STOP_SECONDS + Config().commit_interval
    container = pod["containers"][0]
    refs = {k: r[k]["name"] for r in container["envFrom"] for k in r}
    cm = kind(load_yaml(K8S / "configmap.yaml"), "ConfigMap")[0]
    secrets = {s["metadata"]["name"] for s in kind(load_yaml(K8S / "secret.example.yaml"),
                                                    "Secret")}
    assert refs["configMapRef"] == cm["metadata"]["name"] and refs["secretRef"] in secrets
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    port = next(p["containerPort"] for p in container["ports"])
    assert f"--web-port={port}" in " ".join(words).replace("--web-port ", "--web-port=")
    assert container["livenessProbe"]["httpGet"]["port"] in {port, container["ports"][0]["name"]}
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert cm["data"]["AUTH_CACHE_DIR"] in mounts
    assert str(Path(cm["data"]["AUTH_KAFKA_CA_FILE"]).parent) in mounts


def test_dashboard_deployment_probes_an_allowed_host():
    docs = load_yaml(K8S / "dashboard.yaml")
    (dep,) = kind(docs, "Deployment")
    assert kind(docs, "Service")
    words = container_words(dep)
    assert words[0] == "dashboard" and command_problems(build_parser(), words) == []
    container = dep["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    allowed = {h.strip() for h in env["AUTH_DASHBOARD_ALLOWED_HOSTS"].split(",")}
    probe = container["readinessProbe"]["httpGet"]
    hosts = {h["value"] for h in probe.get("httpHeaders", []) if h["name"].lower() == "host"}
    assert probe["path"] == "/healthz" and hosts and hosts <= allowed
    refs = {r[k]["name"] for r in container["envFrom"] for k in r}
    assert "auth-kappa" in refs and "auth-kappa-dashboard" in refs   # never the workers' Secret
    secret = next(s for s in kind(load_yaml(K8S / "secret.example.yaml"), "Secret")
                  if s["metadata"]["name"] == "auth-kappa-dashboard")
    assert set(secret["stringData"]) <= dashboard_env_names()


@pytest.mark.parametrize("name,subcommand", [("auth-kappa-worker@.service", "worker"),
                                             ("auth-kappa-dashboard.service", "dashboard")])
def test_systemd_unit_runs_a_real_subcommand(name: str, subcommand: str, tmp_path: Path):
    path = SYSTEMD / name
    u = unit(path)
    (exec_start,) = u["Service.ExecStart"]
    words = shlex.split(exec_start)
    assert Path(words[0]).name == "auth-kappa" and words[1] == subcommand, exec_start
    assert command_problems(build_parser(), words[1:]) == []
    for env_file in u["Service.EnvironmentFile"]:   # each has its example next to the unit
        assert (SYSTEMD / (Path(env_file.lstrip("-")).name + ".example")).is_file(), env_file
    if subcommand == "worker":
        assert float(u["Service.TimeoutStopSec"][0]) > STOP_SECONDS
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return
    # systemd's own check of keys and sections, with ExecStart pointing at a real binary
    real = Path(sys.executable).with_name("auth-kappa")
    copy = tmp_path / name.replace("@.", "@1.")
    copy.write_text(path.read_text().replace(words[0], str(real)))
    out = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                         timeout=30)
    complaints = [line for line in (out.stdout + out.stderr).splitlines()
                  if copy.name in line or "Unknown" in line]
    assert out.returncode == 0 and not complaints, out.stdout + out.stderr
