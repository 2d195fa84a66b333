"""The meter registry in Redis: who owns a meter, and a name/id index to find one.

The live system receives readings, not owners; the registry comes from the simulator's
registry.parquet (or a utility's customer system) and is loaded once:

  auth:registry:{<service_id>}   HASH  user_name, type, state, registered_ts
  auth:registry:index            ZSET  score 0, "<lower-case name>\\0<service_id>" and
                                       "<service_id>\\0<service_id>": prefix search by name or
                                       id with ZRANGE ... BYLEX, no scan of the fleet

(`auth:registry:` is AUTH_REGISTRY_PREFIX; tests use their own.)

Not under a namespace: owners do not change when windows are rebuilt. The {service_id}
hash tag puts a meter's registry entry in the same cluster slot as its windows. It is
reference data: a load with replace=True drops meters missing from the new file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pyarrow.parquet as pq

from auth_kappa.errors import UserError
from auth_kappa.state.clients import Client
from dashboards.redis_admin import connected
from dashboards.validation import SID

PREFIX = "auth:registry:"
FIELDS = ("user_name", "type", "state", "registered_ts")
SEP = "\x00"
CHUNK = 5000


def prefix_from_env(env: dict[str, str] | None = None) -> str:
    """AUTH_REGISTRY_PREFIX, checked: under auth: (the ACL user's keys), ends with ':'."""
    env = os.environ if env is None else env
    prefix = env.get("AUTH_REGISTRY_PREFIX") or PREFIX
    if not re.fullmatch(r"auth:[A-Za-z0-9_.-]+:", prefix):
        raise UserError(f"AUTH_REGISTRY_PREFIX={prefix!r}: use auth:<name>: e.g. {PREFIX}")
    return prefix


def meter_key(service_id: str, prefix: str = PREFIX) -> str:
    return f"{prefix}{{{service_id}}}"


def index_key(prefix: str = PREFIX) -> str:
    return f"{prefix}index"


def read_registry(path: str | Path) -> list[dict[str, str]]:
    """Rows of registry.parquet (simulators/README.md), each checked to be a canonical uuid."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"registry file {path} not found; `auth-kappa simulate` writes "
                        "<out>/registry.parquet")
    table = pq.read_table(path)
    missing = [c for c in ("service_id", *FIELDS[:3]) if c not in table.column_names]
    if missing:
        raise UserError(f"{path} lacks column(s) {', '.join(missing)}")
    rows = table.to_pylist()
    bad = [r["service_id"] for r in rows if not SID.fullmatch(str(r["service_id"]))]
    if bad:
        raise UserError(f"{path}: {len(bad)} service_id(s) are not lower-case uuids, "
                        f"e.g. {bad[0]!r}")
    return [{"service_id": r["service_id"], **{f: str(r.get(f, "") or "") for f in FIELDS}}
            for r in rows]


def index_members(row: dict[str, str]) -> tuple[str, str]:
    sid = row["service_id"]
    return f"{row['user_name'].lower()}{SEP}{sid}", f"{sid}{SEP}{sid}"


def load(client: Client, rows: list[dict[str, str]], replace: bool = False,
         prefix: str = PREFIX) -> int:
    """Write the registry in pipelined chunks; replace=True first removes meters not in rows."""
    index = index_key(prefix)
    if replace:
        keep = {r["service_id"] for r in rows}
        stale = [m.decode().split(SEP)[1] for m in client.zrange(index, 0, -1)]
        stale = sorted({s for s in stale if s not in keep})
        for lo in range(0, len(stale), CHUNK):
            pipe = client.pipeline(transaction=False)
            for s in stale[lo:lo + CHUNK]:   # one key each: a cluster's keys span slots
                pipe.unlink(meter_key(s, prefix))
            pipe.execute()
        if stale:
            gone = set(stale)
            members = [m for m in client.zrange(index, 0, -1)
                       if m.decode().split(SEP)[1] in gone]
            for lo in range(0, len(members), CHUNK):
                client.zrem(index, *members[lo:lo + CHUNK])
    for lo in range(0, len(rows), CHUNK):
        pipe = client.pipeline(transaction=False)
        part = rows[lo:lo + CHUNK]
        for row in part:
            pipe.hset(meter_key(row["service_id"], prefix), mapping={f: row[f] for f in FIELDS})
        pipe.zadd(index, {m: 0 for row in part for m in index_members(row)})
        pipe.execute()
    return len(rows)


def load_file(url: str, path: str | Path, replace: bool = False,
              prefix: str | None = None, cluster: bool = False) -> int:
    """`auth-kappa dashboard load-registry FILE`: needs a Redis user that may write."""
    rows = read_registry(path)
    prefix = prefix or prefix_from_env()
    with connected(url, "Redis refused the registry load", "load it with a user that may "
                   "write (AUTH_REDIS_URL), not the dashboard's read-only one",
                   cluster=cluster) as client:
        return load(client, rows, replace=replace, prefix=prefix)
