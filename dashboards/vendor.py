"""Re-vendor the dashboard's browser files from npm packages, or check the committed copies.

The pages must work offline, so the chart library, the TopoJSON reader and the US map
geometry are committed under dashboards/static/vendor. This script is how they got
there: `npm pack name@version` into a temporary folder, unpack, copy the listed files,
record their sha256 in manifest.json. `--check` verifies the committed files against
the manifest without touching the network (the test suite runs it).

    .venv/bin/python -m dashboards.vendor            # fetch the pinned versions again
    .venv/bin/python -m dashboards.vendor --check    # committed files == manifest
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parent / "static" / "vendor"
MANIFEST = VENDOR / "manifest.json"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_manifest() -> dict:
    return json.loads(MANIFEST.read_text())


def check() -> list[str]:
    """Problems with the committed files (missing, or not the bytes the manifest names)."""
    problems = []
    for pkg in load_manifest()["packages"]:
        for dest in pkg["files"].values():
            path = VENDOR / dest
            want = pkg.get("sha256", {}).get(dest)
            if not path.exists():
                problems.append(f"{dest}: missing")
            elif want != sha256(path):
                problems.append(f"{dest}: sha256 differs from manifest.json")
    return problems


def revendor() -> None:
    """npm pack each pinned package into a temp dir and copy its listed files here."""
    if shutil.which("npm") is None:
        sys.exit("vendor: npm not found; install Node.js (apt-get install -y npm)")
    manifest = load_manifest()
    with tempfile.TemporaryDirectory() as tmp:
        for pkg in manifest["packages"]:
            spec = f"{pkg['name']}@{pkg['version']}"
            out = subprocess.run(["npm", "pack", spec, "--pack-destination", tmp, "--silent"],
                                 capture_output=True, text=True, check=True, cwd=tmp)
            tarball = Path(tmp) / out.stdout.strip().splitlines()[-1]
            unpacked = Path(tmp) / pkg["name"]
            with tarfile.open(tarball) as tar:
                tar.extractall(unpacked, filter="data")
            pkg["sha256"] = {}
            for src, dest in pkg["files"].items():
                target = VENDOR / dest
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(unpacked / "package" / src, target)
                pkg["sha256"][dest] = sha256(target)
            print(f"vendor: {spec} -> {', '.join(pkg['files'].values())}")
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dashboards.vendor", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="verify committed files, no network")
    args = p.parse_args(argv)
    if args.check:
        problems = check()
        for line in problems:
            print(f"vendor: {line}", file=sys.stderr)
        return 1 if problems else 0
    revendor()
    return 0


if __name__ == "__main__":
    sys.exit(main())
