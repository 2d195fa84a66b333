"""The house's walls: no import cycle between modules or between packages, the library
(auth_kappa/) never imports the apps built on it (dashboards/, replay/, simulators/)
except in its CLI, which composes them, and each room imports only the rooms
MAY_IMPORT lists (docs/architecture.md draws the same table).

What counts as an import: every `import x` and absolute `from x import y`, at module
level or inside a function (a lazy import hides a cycle, it does not remove it), and
under `if TYPE_CHECKING:` too (a type a module names is a dependency). Not counted:
importlib.import_module(name) with a name held in data, which is how the CLI's COMMANDS
table loads each subcommand (dashboards.cli, replay.cli, ...) only when it is run."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("auth_kappa", "dashboards", "replay", "simulators")
APPS = ("dashboards", "replay", "simulators")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _ours(name: str) -> str | None:
    """The module of ours an import names (`a.b.c` may be the function c of module a.b)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        found |= {m for m in map(_ours, names) if m}
    return found - {module}


GRAPH = {m: _imports(m) for m in MODULES}

# The rooms: each subpackage of auth_kappa, and each app. What each may import besides
# itself and the top-level modules of auth_kappa (config, errors, units, engine, ...:
# small, and kept honest by the cycle tests). The CLI composes everything: not listed.
MAY_IMPORT: dict[str, set[str]] = {
    "auth_kappa.topology": set(),   # the window math: no I/O, no store, no runtime
    "auth_kappa.insights": {"auth_kappa.topology"},
    "auth_kappa.state": {"auth_kappa.topology", "auth_kappa.insights"},
    "auth_kappa.archive": {"auth_kappa.topology"},
    "auth_kappa.sources": {"auth_kappa.topology"},
    "auth_kappa.runtime": {"auth_kappa.topology", "auth_kappa.insights", "auth_kappa.state",
                           "auth_kappa.archive"},
    "auth_kappa.stack": {"auth_kappa.topology", "auth_kappa.state"},
    "dashboards": {"auth_kappa.topology", "auth_kappa.insights", "auth_kappa.state",
                   "auth_kappa.sources", "auth_kappa.stack"},
    "replay": {"auth_kappa.topology", "auth_kappa.insights", "auth_kappa.state",
               "auth_kappa.archive", "auth_kappa.runtime",
               "auth_kappa.cli"},   # cli.preflight: the one-line service checks
    "simulators": {"auth_kappa.topology", "auth_kappa.archive"},
}


def _room(module: str) -> str | None:
    """auth_kappa.state.codec -> auth_kappa.state, replay.feed -> replay; a top-level
    module of auth_kappa (auth_kappa.config) belongs to no room."""
    parts = module.split(".")
    if parts[0] != "auth_kappa":
        return parts[0]
    if len(parts) == 1:
        return None   # auth_kappa/__init__.py: the public API (Engine, Config)
    room = ".".join(parts[:2])
    return room if room in MODULES and MODULES[room].name == "__init__.py" else None


def _package(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle in the graph, as a path that ends where it starts, or None."""
    state: dict[str, int] = {}   # 1: on the current path, 2: done
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(graph.get(v, ())):
            if state.get(w) == 1:
                return path[path.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        state[v] = 2
        path.pop()
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_no_import_cycle_between_modules():
    cycle = _cycle(GRAPH)
    assert cycle is None, " -> ".join(cycle)


def test_no_import_cycle_between_packages():
    packages: dict[str, set[str]] = {}
    for module, deps in GRAPH.items():
        a = _package(module)
        for b in map(_package, deps):
            if not (a == b or a.startswith(b + ".") or b.startswith(a + ".")):
                packages.setdefault(a, set()).add(b)
    cycle = _cycle(packages)
    assert cycle is None, " -> ".join(cycle)


def test_the_library_imports_no_app_outside_its_cli():
    bad = sorted(f"{m} imports {d}" for m, deps in GRAPH.items()
                 if m.startswith("auth_kappa.") and not m.startswith("auth_kappa.cli.")
                 for d in deps if d.split(".")[0] in APPS)
    assert not bad, "\n".join(bad)


def test_each_room_imports_only_what_it_may():
    bad = sorted(f"{m} imports {d}: {_room(m)} may import "
                 f"{', '.join(sorted(MAY_IMPORT[_room(m)])) or 'no other room'}"
                 for m, deps in GRAPH.items() if _room(m) in MAY_IMPORT
                 for d in deps if _room(d) not in (None, _room(m), *MAY_IMPORT[_room(m)]))
    assert not bad, "\n".join(bad)


def test_every_room_is_in_the_table():
    rooms = {r for r in map(_room, MODULES) if r} - {"auth_kappa.cli"}
    assert rooms == set(MAY_IMPORT), "a new package: say in MAY_IMPORT what it may import"


def test_the_checker_sees_a_cycle_when_there_is_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_importing_any_module_connects_nowhere(tmp_path):
    """Every module imports with every service unreachable and sockets forbidden; the
    worker's Faust app is built on first access to auth_kappa.app.app, still offline."""
    import os
    import subprocess
    import sys

    code = f"""
import importlib, socket
def refuse(*a, **k):
    raise AssertionError("a module connected at import")
socket.socket.connect = refuse
socket.create_connection = refuse
for name in {sorted(MODULES)!r}:
    if name.endswith("__main__"):
        continue
    importlib.import_module(name)
import auth_kappa.app, faust
assert isinstance(auth_kappa.app.app, faust.App)
print("ok")
"""
    env = {**os.environ, "AUTH_REDIS_URL": "redis://127.0.0.1:1/0", "AUTH_KAFKA": "127.0.0.1:1",
           "AUTH_S3_ENDPOINT": "http://127.0.0.1:1", "AUTH_CACHE_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]
