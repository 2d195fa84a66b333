"""The Python API: the same topology as the workers, in-process or over the live services.

`Engine.embedded()` runs everything in memory (notebooks, demos, tests of your own
code). `Engine.connect()` answers the same queries from the Redis the workers write.

Results are pandas-native (auth_kappa/results.py): times are `datetime64[ns, UTC]`
columns, the watermark a UTC `pd.Timestamp`, and every frame with a quantity has a `unit`
column (kWh, ccf, gallons); a frame has its columns and dtypes even when it has no rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from auth_kappa.config import Config, parse_duration
from auth_kappa.errors import ServiceUnavailable, UserError
from auth_kappa.insights.alerts import alerts_frame
from auth_kappa.insights.bills import (
    DailyLedger,
    Day,
    bill_frame,
    days_frame,
    days_from,
    similar_from,
)
from auth_kappa.insights.estimates import with_estimates
from auth_kappa.insights.stage import InsightRules, Insights, decode
from auth_kappa.insights.tariff import Tariff
from auth_kappa.progress import progress
from auth_kappa.results import (
    WINDOW_DTYPES,
    late_frame,
    quarantine_frame,
    timestamp,
    window_frame,
)
from auth_kappa.runtime.counters import Counters
from auth_kappa.runtime.embedded import EmbeddedRuntime
from auth_kappa.sources.files import from_records, read_file, utility_files
from auth_kappa.state.redis_store import RedisWindowStore
from auth_kappa.topology.processor import LEVELS, Topology
from auth_kappa.topology.schema import UTILITIES
from auth_kappa.topology.watermark import NO_WATERMARK
from auth_kappa.topology.windows import WindowSpec, is_final

WINDOW_COLUMNS = list(WINDOW_DTYPES)


class Engine:
    """Feed readings (embedded), then ask for window values (both)."""

    def __init__(self, specs: Sequence[WindowSpec], grace: float, *,
                 runtime: EmbeddedRuntime | None = None,
                 store: RedisWindowStore | None = None) -> None:
        self.specs, self.grace = tuple(specs), grace
        self._rt, self._store = runtime, store
        self._pointer: str | None = None   # Engine.connect without a namespace follows it
        self._tariff = Tariff.load()

    @classmethod
    def embedded(cls, window: str | Sequence[str] = "1m", grace: str | float = "30s", *,
                 retention: str | None = None, meter_retention: str | None = None,
                 out_dir: str | Path | None = None,
                 archive_dir: str | Path | None = None,
                 insights: InsightRules | None = None) -> Engine:
        """retention/meter_retention: one duration for every size (default: tiered).
        insights: the alert rules and tariff (default: InsightRules(), the README's).

        archive_dir: also archive every message there, in the S3 archive's layout
        (replay reads it with `auth-kappa replay ... --archive DIR`)."""
        sizes = [window] if isinstance(window, (str, int, float)) else list(window)
        specs = [WindowSpec.parse(s, retention, meter_retention) for s in sizes]
        g = parse_duration(grace, name="grace")
        topo = Topology.finite(specs, g)
        archive = None
        if archive_dir is not None:
            from auth_kappa.archive.embedded import EmbeddedArchive

            archive = EmbeddedArchive(archive_dir)
        rt = EmbeddedRuntime(topo, Path(out_dir) if out_dir else None, archive=archive,
                             insights=Insights(insights or InsightRules()))
        return cls(specs, g, runtime=rt)

    @classmethod
    def connect(cls, config: Config | None = None) -> Engine:
        """Read-only view of what the live workers (or a replay) wrote to Redis."""
        config = config or Config.load()
        specs = config.window_specs()
        store = RedisWindowStore.from_config(config)
        try:
            store.client.ping()
        except Exception as exc:  # noqa: BLE001 - any connection failure
            raise ServiceUnavailable(f"cannot reach Redis at {config.redis_url} ({exc}); run "
                                     "`auth-kappa stack up` or set AUTH_REDIS_URL") from None
        engine = cls(specs, config.grace, store=store)
        engine._pointer = None if config.namespace else config.pointer
        engine._tariff = Tariff.load(config.tariff or None)
        return engine

    @property
    def is_embedded(self) -> bool:
        return self._rt is not None

    @property
    def stats(self) -> Counters:
        return self._embedded("stats").counters

    def ingest(self, records: Iterable[object] | str | Path, utility: str | None = None,
               partition: int = 0) -> Counters:
        """Dicts, CSV lines (or Arrow frames), or a path (a folder of utility files, or one
        utility file). Records are one stream in order: a reading is late when its window
        closed (end + grace) at or before the newest reading ahead of it in the same
        `partition`. Give each source partition its own number, as the live path does,
        when you feed several (a meter must stay on one). A long run shows a progress bar
        when stderr is a terminal."""
        rt = self._embedded("ingest")
        with progress("ingest", unit="messages") as bar:
            if isinstance(records, (str, Path)):
                for u, path in utility_files(Path(records)):
                    rt.process(bar.batches(read_file(u, path)))
            else:
                rt.process(bar.batches(from_records(records, utility, partition=partition)))
        return rt.counters

    def flush(self) -> None:
        """End of input: the watermark goes to +inf and every window becomes final."""
        self._embedded("flush").end_of_input()

    def watermark(self, utility: str) -> pd.Timestamp | None:
        """Up to when the utility's per-state windows are final (UTC). None before any
        reading; after flush() (end of input) pd.Timestamp.max: every window is final."""
        return timestamp(self._watermark_s(self._utility(utility)))

    def _watermark_s(self, utility: str) -> float:
        """The same watermark in epoch seconds (-inf before any reading, +inf at the end)."""
        if self._rt is not None:
            return self._rt.topology.watermarks[utility].current()
        return float(self._store.watermarks().get(utility, NO_WATERMARK))

    @staticmethod
    def _utility(utility: str) -> str:
        if utility not in UTILITIES:
            raise UserError(f"utility must be one of {', '.join(UTILITIES)}, got {utility!r}")
        return utility

    def windows(self, level: str = "meter", utility: str = "electricity",
                window: str | int | None = None, key: str | None = None,
                final_only: bool = False) -> pd.DataFrame:
        """Columns utility, key, window_start, window_end (datetime64[ns, UTC]; a window is
        [start, end)), sum, count, min, max, unit (the utility's unit, e.g. kWh), one row per
        window, sorted by key and start; the same columns and dtypes when there are none."""
        if level not in LEVELS:
            raise UserError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
        self._utility(utility)
        spec = self._spec(window)
        slot = (utility, level, spec.size)
        if self._rt is not None:
            df = self._rt.windows(slot, final_only)
            ins = self._rt.insights
            profile = ins.ledgers[utility].profiles if utility in ins.ledgers else {}
            df = with_estimates(df, ins.estimates, profile, level, utility, spec.size)
        else:
            if level == "meter" and key is None:
                raise UserError("meter-level queries on the live store need key=<service_id>")
            self._follow_pointer()
            df = self._store.read_windows(level, utility, spec.size, key)
            if final_only:
                wm = self._watermark_s(utility)   # -inf: nothing final yet, +inf: all
                df = df[is_final(df["window_start"], spec.size, self.grace, wm)]
        if key is not None:
            df = df[df["key"] == key]
        return window_frame(df, utility)

    def _follow_pointer(self) -> None:
        """After a rebuild's switch, the next query reads the new namespace."""
        if self._pointer is None:
            return
        ns = self._store.client.get(self._pointer)
        if ns and ns.decode() != self._store.namespace:
            self._store.use_namespace(ns.decode())

    def alerts(self, kind: str | None = None, utility: str | None = None,
               service_id: str | None = None) -> pd.DataFrame:
        """Gaps and leaks found so far: kind, utility, service_id, start, end (NaT while
        open; UTC), value (gap: readings missed; leak: lowest hourly flow), detail. Rules:
        README, Insights."""
        if self._rt is not None:
            df = alerts_frame(self._rt.insights.alerts)
        else:
            self._follow_pointer()
            df = alerts_frame([decode(raw) for raw in self._store.alerts()])
        for col, want in (("kind", kind), ("utility", utility), ("service_id", service_id)):
            if want is not None:
                df = df[df[col] == want]
        return df.reset_index(drop=True)

    def days(self, service_id: str) -> pd.DataFrame:
        """Per utility and local day of the meter (the newest may be under way): utility,
        day, total, peak_15min, peak_start, peak_kw (electricity), unit."""
        frames = [days_frame(u, d).assign(utility=u) for u, d in self._days(service_id).items()]
        df = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
        return df[["utility", *[c for c in df.columns if c != "utility"]]]

    def bill(self, service_id: str, month: str) -> pd.DataFrame:
        """Month to date ("2026-03", the meter's local days): utility, period,
        consumption (in the unit the meter reads), unit, price, cost; tariff from
        AUTH_TARIFF (default: the example tariff shipped in auth_kappa/insights)."""
        tariff = self._rt.insights.ledgers["water"].tariff if self._rt is not None \
            else self._tariff
        frames = [bill_frame(u, tariff, mine) for u, days in self._days(service_id).items()
                  if (mine := [d for d in days if d.date.startswith(month)])]
        if not frames:
            raise UserError(f"no readings of {service_id} in {month}")
        return pd.concat(frames, ignore_index=True)

    def similar_homes(self, service_id: str, day: str) -> pd.DataFrame:
        """The meter's local day ("2026-03-08") among homes of the same utility, state and
        meter type: utility, day, state, type, total, percentile (share of those homes
        using at most as much, 0-100), homes, median. A day still under way is left out."""
        if self._rt is not None:
            ledgers = self._rt.insights.ledgers.values()
            rows = [r for led in ledgers if (r := led.standing(service_id, day))]
        else:
            rows = []
            for utility, days in self._days(service_id).items():
                past = [d for d in days[:-1] if d.date == day]   # the newest is open
                if past:
                    state, kind = past[0].profile
                    shares = self._store.sketches(utility, day).get(f"{state}:{kind}", [])
                    rows += filter(None, [similar_from(utility, past[0], shares)])
        return pd.DataFrame(rows, columns=["utility", "day", "state", "type", "total",
                                           "percentile", "homes", "median"])

    def _days(self, service_id: str) -> dict[str, list[Day]]:
        """utility -> the meter's local days, oldest first (the newest may be open)."""
        if self._rt is not None:
            return {u: led.days_of(service_id) for u, led in self._rt.insights.ledgers.items()}
        self._follow_pointer()
        return {u: days_from(self._store.meter_days(u, service_id)) for u in UTILITIES}

    @property
    def ledgers(self) -> dict[str, DailyLedger]:
        """utility -> its days, bills and similar homes (embedded engine)."""
        return self._embedded("ledgers").insights.ledgers

    def late(self) -> pd.DataFrame:
        """Readings routed late (their window was final), in arrival order: utility,
        service_id, user_name, type, start_ts, state, consumption, end_ts (UTC times),
        partition, offset, unit; the same columns and dtypes when there are none."""
        return late_frame(self._embedded("late").late)

    def quarantine(self) -> pd.DataFrame:
        """Rejected messages: utility, partition, offset, raw (bytes), reason; the same
        columns and dtypes when there are none. No quantities, so no unit."""
        return quarantine_frame([r.as_dict() for r in self._embedded("quarantine").rejected])

    def _embedded(self, what: str) -> EmbeddedRuntime:
        if self._rt is None:
            raise UserError(f"{what}() is for Engine.embedded(); live data enters through "
                            "Kafka (auth-kappa simulate --to kafka, or your producer)")
        return self._rt

    def _spec(self, window: str | int | None) -> WindowSpec:
        if window is None:
            return self.specs[0]
        size = int(parse_duration(window, name="window"))
        for spec in self.specs:
            if spec.size == size:
                return spec
        raise UserError(f"window {window} is not computed here; sizes: "
                        f"{[s.label for s in self.specs]}")
