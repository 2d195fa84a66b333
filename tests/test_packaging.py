"""Packaging (issue 10, section 5): the wheel holds every file its packages need, its
licence and typing marker; the repository has a LICENSE and a CHANGELOG; the docs hold no
throwaway notes. `make wheel-check` installs the wheel into a fresh venv (too slow here:
~40 s of dependency installs)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("auth_kappa", "dashboards", "replay", "simulators")


def _git(*args: str) -> list[str]:
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """Built from a copy of the tree (what git would commit), so the shared tree's build/
    folder is never touched and a stale build/ cannot leak files into it."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in _git("ls-files", "--cached", "--others", "--exclude-standard"):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    run = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp / "dist"),
                          str(src)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (whl,) = (tmp / "dist").glob("*.whl")
    return zipfile.ZipFile(whl)


def test_the_wheel_ships_every_file_of_its_packages(wheel):
    names = set(wheel.namelist())
    tracked = {n for n in _git("ls-files", *PACKAGES) if "__pycache__" not in n}
    assert tracked, "git lists no package files"
    assert not tracked - names, f"missing from the wheel: {sorted(tracked - names)}"
    # the dashboard's pages and the Redis scripts are among them (read at run time)
    assert {"dashboards/templates/layout.html", "dashboards/static/app.css",
            "auth_kappa/state/lua/commit.lua"} <= names
    for package in PACKAGES:
        assert f"{package}/py.typed" in names, package
    # nothing outside the packages (tests, benchmarks, docs) and no bytecode
    assert {n.split("/")[0] for n in names} - set(PACKAGES) == \
        {n.split("/")[0] for n in names if ".dist-info/" in n}
    assert not [n for n in names if n.endswith(".pyc")]


def test_the_wheel_carries_its_licence_entry_point_and_dependencies(wheel):
    info = next(n.split("/")[0] for n in wheel.namelist() if ".dist-info/" in n)
    licence = wheel.read(f"{info}/licenses/LICENSE").decode()
    assert licence == (ROOT / "LICENSE").read_text()
    meta = Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
    assert meta["License"] == "MIT" and meta["License-File"] == "LICENSE"
    requires = " ".join(meta.get_all("Requires-Dist"))
    assert "tqdm" in requires and "pandas" in requires
    entry = wheel.read(f"{info}/entry_points.txt").decode()
    assert "auth-kappa = auth_kappa.cli.main:main" in entry


def test_licence_changelog_and_docs():
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "AUTH-Kappa contributors" in licence
    setup = (ROOT / "setup.cfg").read_text()
    assert "license = MIT" in setup
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog and "## [0.1.0]" in changelog
    assert "keepachangelog.com" in changelog
    # internal research notes (with scratch paths) are not shipped as docs
    assert not (ROOT / "docs" / "notes").exists()
    for doc in (ROOT / "docs").glob("*.md"):
        assert "/tmp/" not in doc.read_text(), doc.name
