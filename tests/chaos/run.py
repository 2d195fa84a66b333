"""`python -m tests.chaos.run [--fast] [--faults a,b] [--repeats N]`: the chaos matrix.

Starts private Kafka and Redis, runs each fault against a paced simulator stream, scores
it against the brute-force truth, prints progress, writes docs/reliability.md, and exits
non-zero if any number is not 0.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.chaos.compare import Score
from tests.chaos.harness import execute
from tests.chaos.matrix import FAULTS, Fault, injector
from tests.chaos.report import write_report
from tests.chaos.services import ROOT, Services


def run_pytest(fault: Fault) -> Score:
    """A fault measured by an existing test (shared stack): pass or fail, no numbers."""
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-o", "addopts=", fault.pytest], cwd=ROOT, capture_output=True,
                          text=True)
    sc = Score(notes=[f"pytest {fault.pytest}: exit {proc.returncode}",
                      (proc.stdout.strip().splitlines() or [""])[-1]])
    sc.test_passed = proc.returncode == 0
    sc.notes.append(f"run took {time.monotonic() - t0:.0f}s")
    return sc


def run_one(services: Services, fault: Fault, fast: bool, repeat: int, workdir: Path) -> Score:
    if fault.pytest:
        return run_pytest(fault)
    scenario = fault.scenario(fast)
    scenario.seed += repeat
    return execute(services, scenario, injector(fault, fast), workdir, fault.name,
                   check_final=fault.check_final, settle=fault.settle)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fast", action="store_true", help="small streams (as in make test)")
    ap.add_argument("--faults", default="", help=f"comma-separated subset of {','.join(FAULTS)}")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--budget", type=float, default=0,
                    help="minutes; start no new run after this (0: no limit)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "reliability.md"))
    args = ap.parse_args(argv)
    names = [n for n in args.faults.split(",") if n] or list(FAULTS)
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        ap.error(f"unknown fault(s) {','.join(unknown)}; choose from {','.join(FAULTS)}")
    cmd = "python -m tests.chaos.run " + " ".join(argv if argv is not None else sys.argv[1:])
    workdir = Path(tempfile.mkdtemp(prefix="auth-chaos-runs-"))
    pools: dict[int, Services] = {}   # per number of Kafka brokers, started when needed

    def services_for(fault: Fault) -> Services:
        if fault.brokers not in pools:
            pools[fault.brokers] = s = Services(brokers=fault.brokers)
            print(f"chaos: private Kafka {s.config.kafka}, Redis {s.config.redis_url} "
                  f"under {s.root}", flush=True)
            s.start()
        pools[fault.brokers].heal()   # a broker the last cell left down starts again
        return pools[fault.brokers]

    results: dict[str, list[Score]] = {}
    t0 = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # still stop the services
    try:
        for r in range(args.repeats):      # every fault once before any repeat
            for name in names:
                if args.budget and time.monotonic() - t0 > args.budget * 60:
                    print(f"chaos: budget of {args.budget:g} min spent; {name} run {r + 1} "
                          "skipped", flush=True)
                    continue
                print(f"chaos: {name} run {r + 1}/{args.repeats} ...", flush=True)
                try:
                    sc = run_one(services_for(FAULTS[name]), FAULTS[name], args.fast, r,
                                 workdir)
                except Exception as exc:  # noqa: BLE001 - a crashed run is a failed cell
                    sc = Score(error=f"{type(exc).__name__}: {exc}")
                results.setdefault(name, []).append(sc)
                print(f"chaos: {name}: {'exact' if sc.exact else 'NOT EXACT'} lost={sc.lost} "
                      f"double={sc.double} misrouted={sc.misrouted} wrong={sc.wrong} "
                      f"late_unrouted={sc.late_unrouted} quarantine_diff={sc.quarantine_diff} "
                      f"not_final={sc.not_final} recover={sc.recover_s}", flush=True)
                if sc.error:
                    print(f"        harness error: {sc.error}", flush=True)
                for note in sc.notes:
                    print(f"        {note}", flush=True)
    finally:
        for s in pools.values():
            s.stop()
    minutes = (time.monotonic() - t0) / 60
    write_report(Path(args.out), results, {n: FAULTS[n] for n in results}, cmd, minutes,
                 args.fast)
    print(f"chaos: {minutes:.1f} min; report {args.out}", flush=True)
    return 0 if all(s.exact for scores in results.values() for s in scores) else 1


if __name__ == "__main__":
    sys.exit(main())
