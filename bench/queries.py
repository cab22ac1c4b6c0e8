"""Scenario 5: warehouse queries over millions of synthetic audit rows written by our own writer.

Rows are generated column-wise (fast, seeded) with realistic cardinalities: a few hundred
subjects, the real enum values, ~3 % failures. They go through transforms.writer's
the table writer into the same day partitions a sync writes, then `runai-ledger build-views`
and `runai-ledger query` run against them as separate processes. Each query's time is reported
twice: the whole CLI process, and the query alone (whole process minus the median of a trivial
`select 1`, i.e. minus start-up and opening the database).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from harness import PY, ledger_env, scratch, summarise, timed

QUERIES = {
    "audit_events count": "select count(*) from audit_events",
    "compliance_failed_actions count": "select count(*) from compliance_failed_actions",
    "compliance_failed_actions filtered": (
        "select subject, count(*) as n from compliance_failed_actions "
        "where event_date >= current_date - 7 and http_status_class = '4xx' group by 1 order by 2 desc limit 10"
    ),
    "compliance_privileged_changes filtered": (
        "select * from compliance_privileged_changes where subject = 'user-00042@example.com' "
        "order by event_time desc limit 50"
    ),
    "ingest_daily rollup": "select * from ingest_daily order by event_date desc limit 31",
    "ad-hoc group-by": (
        "select entity_type, action, result, count(*) as n, count(distinct subject) as subjects "
        "from audit_events group by all order by n desc"
    ),
    # The same group-by on the source view (no dedupe window): shows what the dedupe costs.
    "ad-hoc group-by on src_audit_events": (
        "select entity_type, action, result, count(*) as n, count(distinct subject) as subjects "
        "from src_audit_events group by all order by n desc"
    ),
}
ACTIONS = ["create", "update", "delete", "sign-in", "sign-out", "reset-password"]
ACTION_P = [0.3, 0.3, 0.1, 0.2, 0.08, 0.02]
ENTITIES = ["project", "department", "workload", "training", "inference", "access-rule", "user", "cluster"]
METHODS = {"create": "POST", "update": "PUT", "delete": "DELETE", "sign-in": "POST", "sign-out": "POST"}


def write_lake(home: Path, rows: int, days: int) -> None:
    """``rows`` audit events over ``days`` UTC days, two files and commits per day, through our writer."""
    from transforms.catalog import AUDIT_EVENTS_TABLE
    from transforms.schemas import AUDIT_EVENTS
    from transforms.storage import Lake
    from transforms.tables import StagedWriter, Tables

    tables = Tables(Lake(str(home / "lake")))
    rng = np.random.default_rng(7)
    first = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)
    per_day = rows // days
    for day in range(days):
        start = first + timedelta(days=day)
        table = _day(rng, start, per_day, day, AUDIT_EVENTS)
        # Two commits a day, as syncs make them (many per day in life), so that `compact` treats
        # every closed day as production maintenance does.
        half = table.num_rows // 2
        for part in (table.slice(0, half), table.slice(half)):
            with StagedWriter(tables, AUDIT_EVENTS_TABLE, {"event_date": start.date().isoformat()}) as out:
                out.write(part)
            assert out.staged is not None
            tables.commit(AUDIT_EVENTS_TABLE, [out.staged])


def _day(rng: np.random.Generator, start: datetime, n: int, day: int, schema: pa.Schema) -> pa.Table:
    micros = np.sort(rng.integers(0, 86_400_000_000, n))
    base = int(start.timestamp() * 1_000_000)
    actions = rng.choice(ACTIONS, n, p=ACTION_P)
    failed = rng.random(n) < 0.03
    status = np.where(failed, rng.choice([400, 403, 404, 500], n), 200).astype(np.int32)
    columns: dict[str, Any] = {
        "event_id": pa.array([f"evt-{day:04d}-{i:08d}" for i in range(n)]),
        "event_time": pa.array(base + micros, pa.int64()).cast(schema.field("event_time").type),
        "tenant_id": pa.repeat(pa.scalar("1001"), n),
        "subject": pa.array(
            np.char.add(
                np.char.add("user-", np.char.zfill(rng.integers(0, 400, n).astype(str), 5)), "@example.com"
            )
        ),
        "subject_type": pa.repeat(pa.scalar("User"), n),
        "source_ip": pa.repeat(pa.scalar("10.20.30.40"), n),
        "action": pa.array(actions),
        "http_method": pa.array([METHODS.get(a, "POST") for a in actions]),
        "url": pa.repeat(pa.scalar("/api/v1/workloads"), n),
        "entity_type": pa.array(rng.choice(ENTITIES, n)),
        "entity_name": pa.array(np.char.add("name-", rng.integers(0, 5000, n).astype(str))),
        "entity_id": pa.array(
            np.char.add("entity-", np.char.zfill(rng.integers(0, 20000, n).astype(str), 6))
        ),
        "result": pa.array(np.where(failed, "Failed", "Succeeded")),
        "http_status_code": pa.array(status),
        "cluster_id": pa.repeat(pa.scalar("c-1"), n),
        "cluster_name": pa.repeat(pa.scalar("gpu-prod-west"), n),
        "request_id": pa.array([f"req-{day:04d}-{i:08d}" for i in range(n)]),
        "metadata": pa.nulls(n, schema.field("metadata").type),
        "event_id_derived": pa.repeat(pa.scalar(False), n),
        "api_flavour": pa.repeat(pa.scalar("audit_log"), n),
        "extra_fields": pa.nulls(n, schema.field("extra_fields").type),
        "ingest_run_id": pa.repeat(pa.scalar("bench"), n),
        "ingested_at": pa.repeat(pa.scalar(start + timedelta(days=1), schema.field("ingested_at").type), n),
    }
    return pa.table({f.name: pa.array(columns[f.name]).cast(f.type) for f in schema}, schema=schema)


def warehouse_queries(rows: int, repeat: int) -> dict[str, Any]:
    print(f"-- scenario 5: {rows:,} synthetic audit rows, queries through `runai-ledger query`", flush=True)
    results: dict[str, Any] = {"rows": rows}
    with scratch("warehouse") as home:
        write_lake(home, rows, days=100)
        env = ledger_env(home)
        cli = [PY, "-m", "runai_extract.cli"]
        # Closed days compacted (and clustered by subject) as the daily maintenance leaves them.
        compact = timed([*cli, "compact"], env)
        results["compact_seconds"] = compact.seconds
        print(f"   runai-ledger compact: {compact.seconds:.1f} s", flush=True)
        timed([*cli, "build-views"], env)
        baseline = summarise([timed([*cli, "query", "select 1"], env).seconds for _ in range(repeat)])
        results["startup_select_1"] = baseline
        for name, sql in QUERIES.items():
            walls = [timed([*cli, "query", sql], env).seconds for _ in range(repeat)]
            query_s = [max(0.0, w - baseline["median"]) for w in walls]
            results[name] = {"wall": summarise(walls), "query": summarise(query_s)}
            med = results[name]["query"]["median"]
            print(
                f"   {name:<40} wall {summarise(walls)['median']:.2f} s  query {med:.2f} s  "
                f"({rows / max(med, 1e-3):,.0f} rows/s)",
                flush=True,
            )
    return results
