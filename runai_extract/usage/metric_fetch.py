"""Fetching one entity's metric series and storing samples exactly once: shared by the workload
metrics (every workloads run) and the org units' quota series (daily).

Exactly once per (series, sample_time), without a lock and across crashes:

* a fetch reads only [cursor, end), where the cursor is the furthest ``window_end`` the fetch log
  (``usage/metric_fetches``) holds for the entity, so a finished run never asks twice;
* a run that crashed after storing samples but before logging its fetches asks again; before the
  commit, the samples already stored in the run's time range (read through file statistics, not
  the whole history) are dropped;
* every commit of the stream sets its commit app transaction against the snapshot the dedupe read:
  a concurrent run of the stream conflicts and fails cleanly (the scheduler retries it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from runai_extract.api.client import RunaiClient
from runai_extract.core.errors import ApiContractError
from runai_extract.core.times import format_api_time, parse_iso
from runai_extract.ledger.watermarks import commit_app
from runai_extract.usage.metric_windows import FetchPlan, sample_requests
from transforms.catalog import METRIC_FETCHES_TABLE
from transforms.tables import Commit, Tables, TableSpec

METRICS_STREAM = "metrics"


@dataclass
class SeriesFetch:
    """One entity's samples for one fetch plan: (metric, labels, time) -> value, and its cost."""

    plan: FetchPlan
    samples: dict[tuple[str, str, datetime], float | None] = field(default_factory=dict)
    requests: int = 0
    rejected: int = 0  # samples outside the asked span or with a value that is not a number


def fetch_series(
    client: RunaiClient, path: str, metric_types: Sequence[str], plan: FetchPlan, resolution: timedelta
) -> SeriesFetch:
    """Every sample of ``metric_types`` at the plan's instants, paged by time (<= 1000 a request)."""
    result = SeriesFetch(plan)
    for request in sample_requests(plan.start, plan.end, resolution):
        params: dict[str, str | int] = {
            "metricType": ",".join(metric_types),
            "start": format_api_time(request.first),
            "end": format_api_time(request.last),
            "numberOfSamples": request.samples,
        }
        body = client.get_json(path, params)
        result.requests += 1
        for metric, labels, moment, value in measurements(body, path):
            if not request.first <= moment <= request.last:
                result.rejected += 1
                continue
            result.samples[(metric, labels, moment)] = value
    return result


def measurements(body: Any, path: str) -> Iterable[tuple[str, str, datetime, float | None]]:
    """(metric, canonical labels, time, value) of a MetricsCompositeResponse / MetricsResponse."""
    if not isinstance(body, dict) or not isinstance(body.get("measurements"), list):
        raise ApiContractError(f"{path}: the answer has no 'measurements' list")
    for measurement in body["measurements"]:
        if not isinstance(measurement, dict):
            raise ApiContractError(f"{path}: a measurement is not an object")
        metric = str(measurement.get("type") or "")
        labels = measurement.get("labels") or {}
        label_text = orjson.dumps(labels, option=orjson.OPT_SORT_KEYS).decode() if labels else ""
        for item in measurement.get("values") or []:
            stamp = item.get("timestamp") if isinstance(item, dict) else None
            if not stamp:
                continue
            yield metric, label_text, parse_iso(str(stamp))[0], _number(item.get("value"))


def _number(raw: object) -> float | None:
    """Values are strings on the wire ('91.5'); one that is not a number is stored as null."""
    try:
        return float(str(raw))
    except ValueError:
        return None


def key_hash(*parts: object) -> str:
    """The row_hash of a sample or fetch row: a short digest of its key."""
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=12).hexdigest()


def sample_table(
    spec: TableSpec,
    entity_columns: Mapping[str, str],
    fetches: Mapping[str, SeriesFetch],
    resolution: timedelta,
    lineage: Mapping[str, Any],
) -> pa.Table:
    """The samples of ``fetches`` as rows of ``spec``, built by column (a run may hold 10^5 samples).

    ``entity_columns``: column name -> the entity id column it repeats (``workload_id`` -> id), or a
    constant (``unit_kind`` -> 'project') when given as ``=value``.
    """
    columns: dict[str, list[Any]] = {name: [] for name in spec.schema.names}
    seconds = int(resolution.total_seconds())
    for entity_id, fetch in sorted(fetches.items()):
        for (metric, labels, moment), value in sorted(fetch.samples.items()):
            for name, source in entity_columns.items():
                columns[name].append(source[1:] if source.startswith("=") else entity_id)
            columns["metric"].append(metric)
            if "labels" in columns:
                columns["labels"].append(labels)
            columns["sample_time"].append(moment)
            columns["value"].append(value)
            columns["resolution_s"].append(seconds)
            micros = int(moment.timestamp() * 1_000_000)
            columns["row_hash"].append(key_hash(entity_id, metric, labels, micros))
    count = len(columns["metric"])
    for name, value in lineage.items():
        columns[name] = [value] * count
    return pa.table(columns, schema=spec.schema)


def fetch_cursors(tables: Tables, entity_kind: str) -> dict[str, datetime]:
    """entity id -> the furthest ``window_end`` logged for it (fetched or given up as a gap)."""
    table = tables.read(METRIC_FETCHES_TABLE, ["entity_kind", "entity_id", "window_end"])
    table = table.filter(pc.equal(table.column("entity_kind"), entity_kind))
    if table.num_rows == 0:
        return {}
    grouped = table.group_by("entity_id").aggregate([("window_end", "max")])
    return dict(
        zip(
            grouped.column("entity_id").to_pylist(), grouped.column("window_end_max").to_pylist(), strict=True
        )
    )


def commit_new_rows(
    tables: Tables,
    spec: TableSpec,
    rows: pa.Table,
    key_columns: Sequence[str],
    run_id: str,
) -> tuple[int, Commit | None]:
    """Commit the rows whose key is not stored yet; (rows committed, the commit or None)."""
    if rows.num_rows == 0:
        return 0, None
    snapshot = tables.ensure(spec)
    span = None
    if "sample_time" in key_columns:
        times = rows.column("sample_time")
        high = pc.max(times).as_py() + timedelta(microseconds=1)
        span = ("sample_time", pc.min(times).as_py(), high)
    stored_table = tables.read(spec, list(key_columns), snapshot=snapshot, time_range=span)
    fresh = _without_stored(rows, stored_table, key_columns)
    if fresh.num_rows == 0:
        return 0, None
    app = commit_app(METRICS_STREAM)
    counter = tables.app_version(spec, app, snapshot=snapshot) or 0
    staged = tables.stage(spec, fresh)
    commit = tables.commit(
        spec,
        [staged],
        snapshot=snapshot,
        app_txns={app: counter + 1},
        metadata={"stream": METRICS_STREAM, "run_id": run_id},
    )
    return fresh.num_rows, commit


def _without_stored(rows: pa.Table, stored: pa.Table, key_columns: Sequence[str]) -> pa.Table:
    """``rows`` minus those whose key is in ``stored`` or repeats an earlier row's."""
    seen = set(zip(*(stored.column(c).to_pylist() for c in key_columns), strict=True))
    keep = []
    for key in zip(*(rows.column(c).to_pylist() for c in key_columns), strict=True):
        keep.append(key not in seen)
        seen.add(key)
    return rows if all(keep) else rows.filter(pa.array(keep))


def fetch_log_rows(
    entity_kind: str,
    fetches: Mapping[str, SeriesFetch],
    resolution: timedelta,
    lineage: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """The fetch log's rows: one 'fetched' row per entity read, one 'gap' row per expired span."""
    rows = []
    for entity_id, fetch in sorted(fetches.items()):
        plan = fetch.plan
        spans = [("gap", plan.gap[0], plan.gap[1], 0, 0)] if plan.gap else []
        if not plan.empty:
            spans.append(("fetched", plan.start, plan.end, len(fetch.samples), fetch.requests))
        for status, start, end, samples, requests in spans:
            rows.append(
                {
                    "entity_kind": entity_kind,
                    "entity_id": entity_id,
                    "window_start": start,
                    "window_end": end,
                    "status": status,
                    "samples": samples,
                    "requests": requests,
                    "resolution_s": int(resolution.total_seconds()),
                    "row_hash": key_hash(entity_kind, entity_id, start.isoformat(), end.isoformat(), status),
                    **lineage,
                }
            )
    return rows
