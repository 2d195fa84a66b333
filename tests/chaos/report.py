"""docs/reliability.md: the measured matrix, with the command that reproduces it."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

from tests.chaos.compare import Score
from tests.chaos.services import ROOT

HEAD = """# Reliability: the chaos matrix (issue 9)

Each fault runs against private Kafka (one KRaft node) and Redis (`--appendonly yes
--appendfsync everysec`) on free ports, while `auth-kappa simulate` streams to real
`faust -A auth_kappa.app worker` processes with late (1 %, 3 min), duplicate (1 %) and
malformed (0.5 %) messages. Afterwards every record of the source topics is read back
with a plain consumer and a brute force in pure Python (tests/chaos/truth.py, which
imports nothing from the engine) recomputes every window under the documented semantics
(per-partition event time, grace 30 s, first on-time reading counts). Every state window
and every window of 300 random meters per utility (all of them when fewer) is compared
with Redis; the `late` and `quarantine` topics are compared (de-duplicated by source)
with the truth's late and rejected sets; the truth's distinct valid readings and sums are
checked against the simulator's manifest.json.

The harness is the workers' supervisor: a worker that exits is started again, as systemd
or Kubernetes would; restarts are listed in the notes.

Columns: **lost** = sum over windows of max(0, truth count - stored count); **double** =
sum of max(0, stored - truth); **misrouted** = on-time readings found in `late`;
**late unrouted** = late readings missing from `late`; **wrong** = windows whose count,
sum, min or max differ; **quarantine diff** = messages quarantined by one side only;
**manifest diff** = truth vs the simulator's manifest (checks the truth itself);
**not final** = 1-minute windows that should be final but never reached `windows`;
**recover** = seconds from the fault until the committed offsets (Redis) of every
partition that still had data to read when the fault was over (service answering again,
worker continued) moved past where they stood then (worst over the run's faults; `-`:
no fault mark, or nothing left to read). A cell is exact when every number is 0.
Numbers are the worst over the repeats. The S3-down cell runs the existing test
(tests/test_archive.py, shared stack) and reports its result only.

Limits: faults land at random or fixed fractions of the stream, not synchronised with
a checkpoint (with a 0.5 s commit interval some kills land inside one, unverified);
the workers run the working tree as it is at the time of the run.
"""


def _fmt(values: list[int]) -> str:
    return str(max(values)) if values else "-"


def write_report(path: Path, results: dict[str, list[Score]], faults: dict, cmd: str,
                 minutes: float, fast: bool) -> None:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, cwd=ROOT).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, cwd=ROOT).stdout.strip()
    lines = [HEAD, f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC at commit {rev}"
             f"{' with uncommitted changes in the working tree' if dirty else ''}, "
             f"{'fast' if fast else 'full'} streams, {minutes:.1f} min in total:",
             "", f"```\n{cmd}\n```", "",
             "| fault | runs | lost | double | misrouted | late unrouted | wrong | "
             "quarantine diff | manifest diff | not final | recover (s) | result | defects |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, scores in results.items():
        f = faults[name]
        if f.pytest:
            passed = sum(bool(s.test_passed) for s in scores)
            lines.append(f"| {name} | {len(scores)} | - | - | - | - | - | - | - | - | - | "
                         f"test passed {passed}/{len(scores)} | {f.defects} |")
            continue
        ok = [s for s in scores if not s.error]
        rec = [s.recover_s for s in ok if s.recover_s is not None]
        cols = [_fmt([getattr(s, a) for s in ok]) for a in
                ("lost", "double", "misrouted", "late_unrouted", "wrong", "quarantine_diff",
                 "manifest_diff")]
        final = _fmt([s.not_final for s in ok]) if f.check_final else "-"
        exact = sum(s.exact for s in scores)
        errors = len(scores) - len(ok)
        recover = f"{max(rec):.1f}" if rec else "-"
        result = f"exact {exact}/{len(scores)}" + (f", {errors} harness error" if errors else "")
        lines.append(f"| {name} | {len(scores)} | {' | '.join(cols)} | {final} | {recover} | "
                     f"{result} | {f.defects} |")
    lines += ["", "## Faults", ""]
    for name, f in faults.items():
        lines.append(f"- **{name}**: {f.what}.")
    lines += ["", "## Notes per run", ""]
    for name, scores in results.items():
        for i, s in enumerate(scores):
            lines.append(f"- {name} #{i + 1}" + (f": harness error {s.error}" if s.error else ""))
            lines += [f"  - {n}" for n in s.notes]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
