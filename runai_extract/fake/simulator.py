"""The simulated tenant: its audit stream, what the API shows of it now, and the ground truth.

Tests need two views of the same data: what a client could see *right now* (late arrivals are
still hidden) and everything that exists. :class:`TenantSimulator` serves the first to the HTTP
app and answers questions about both, so a test can say "the lake holds exactly these ids".

Thread-safety: the server's loop thread serves pages and adds drift rows while a test thread
asks for ground truth, so every public method holds one lock.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import orjson

from runai_extract.fake.badrecords import corrupt, kind_for
from runai_extract.fake.config import FakeConfig
from runai_extract.fake.faults import FaultConfig
from runai_extract.fake.filters import AuditQuery, datetime_to_us
from runai_extract.fake.generator import extra_rows, generate_stream, to_ms
from runai_extract.fake.gpu_metrics import efficiency_truth, idle_truth
from runai_extract.fake.legacy_audit import LegacyQuery, legacy_record, row_reshaper
from runai_extract.fake.query import QueryEngine
from runai_extract.fake.render import RowRenderer, WireRow, json_array, parse_rows, uuid_texts
from runai_extract.fake.store import AuditStore, Columns
from runai_extract.fake.workloads import WorkloadModel

LATE_SPAN = timedelta(hours=1)  # late rows land in the last hour of the stream (near watermarks)


@dataclass
class _Pending:
    """Rows that exist but are not visible before ``visible_at`` (a monotonic time)."""

    columns: Columns
    delay_s: float
    visible_at: float = math.inf  # set when the clock starts


class TenantSimulator:
    """A seeded tenant: deterministic for a given seed and ``now``."""

    def __init__(self, config: FakeConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.now = _whole_ms(config.now or datetime.now(UTC))
        self.start = self.now - timedelta(days=config.days)
        self.tenant_id = config.tenant_id
        self._clock = clock
        self._lock = threading.RLock()
        self._extra_rng = np.random.default_rng([config.seed, 1, to_ms(self.start)])
        count = config.days * config.events_per_day
        self._world, columns = generate_stream(
            config.seed, config.tenant_id, to_ms(self.start), to_ms(self.now), count
        )
        self._store = AuditStore(columns)
        # Built before any drift or late rows exist: workloads agree with the generated stream.
        self.workloads = WorkloadModel(config, self._world, self._store, to_ms(self.start), to_ms(self.now))
        self._engine = QueryEngine(self._store, self._world.tables)
        served = config.release
        self._renderer = RowRenderer(
            self._world.tables,
            metadata=served.has("audit.metadata"),
            optional_keys=served.has("audit.optional_keys"),
        )
        self._reshape = row_reshaper(config.extra_audit_fields, config.dropped_audit_fields)
        self._pending: list[_Pending] = []
        self._faults = config.faults
        self._served_corrupt: dict[str, str] = {}
        faults = config.faults
        if faults.late_arrivals:
            late_start = max(self.start, self.now - LATE_SPAN)
            self._pending.append(
                _Pending(
                    self._extra(faults.late_arrivals, to_ms(late_start), to_ms(self.now)),
                    faults.late_arrival_delay_s,
                )
            )

    # -- serving --------------------------------------------------------------------------------
    def set_faults(self, faults: FaultConfig) -> None:
        """The paging and record faults the next pages are served with (FakeControlPlane.set_faults)."""
        with self._lock:
            self._faults = faults

    def page_json(self, query: AuditQuery) -> bytes:
        """The full ``GET /api/v1/audit/log`` body; ``next`` only while more rows remain.

        Paging faults bend the envelope here (``ignore_offset``, ``next_backwards``,
        ``lying_total``) and ``bad_record_rate`` swaps rows for corrupt variants.
        """
        with self._lock:
            faults = self._faults
            served = replace(query, offset=0) if faults.ignore_offset else query
            self._release_due()
            selection = self._engine.select(served)
            rows = self._reshape(self._renderer.render(self._store, selection.positions))
            if faults.bad_record_rate > 0:
                rows = self._spoil(rows, faults)
        following = served.offset + len(rows)
        if faults.next_backwards and query.offset > 0:
            following = max(query.offset - len(rows), 0)  # points back at a page already served
        more = b'"next":%d,' % following if served.offset + len(rows) < selection.total else b""
        total = max(selection.total + faults.lying_total, 0)
        return b'{"total":%d,%s"audit_logs":%s}' % (total, more, json_array(rows))

    def legacy_page_json(self, query: LegacyQuery) -> bytes:
        """The ``GET /v1/k8s/audit`` body (2.18/2.19): a bare array, newest first, no total."""
        with self._lock:
            self._release_due()
            lo, hi = self._store.window(query.start_us, query.end_us)
            rows = parse_rows(self._renderer.render(self._store, np.arange(lo, hi, dtype=np.int64)))
        rows.sort(key=lambda row: (row["timestamp"], row["id"]), reverse=True)
        page = rows[query.offset : query.offset + query.limit]
        return orjson.dumps([legacy_record(row) for row in page])

    def start_clock(self) -> None:
        """Start the late-arrival countdown (the server calls this when it starts accepting)."""
        with self._lock:
            now = self._clock()
            for pending in self._pending:
                if pending.visible_at == math.inf:
                    pending.visible_at = now + pending.delay_s

    def add_rows(
        self, count: int, start: datetime | None = None, end: datetime | None = None, *, delay_s: float = 0.0
    ) -> list[str]:
        """Add ``count`` rows with timestamps in [start, end] (default: the whole stream).

        With ``delay_s`` > 0 they stay hidden that long (a late write); otherwise they are
        visible at once (the drift fault). Returns the new ids.
        """
        start, end = start or self.start, end or self.now
        if start > end:
            raise ValueError("start must not be after end")
        with self._lock:
            columns = self._extra(count, to_ms(start), to_ms(end))
            if delay_s > 0:
                self._pending.append(_Pending(columns, delay_s, self._clock() + delay_s))
            else:
                self._store.insert(columns)
            return _ids(columns)

    def drift(self, query: AuditQuery, count: int) -> list[str]:
        """Insert ``count`` visible rows inside the query's window, as new writes would."""
        first_ms, last_ms = -(-query.start_us // 1000), query.end_us // 1000
        if count <= 0 or first_ms > last_ms:
            return []
        with self._lock:
            columns = self._extra(count, first_ms, last_ms)
            self._store.insert(columns)
            return _ids(columns)

    # -- simulated time (workloads, org units) ----------------------------------------------------
    @property
    def sim_now(self) -> datetime:
        """The moment the workload and org-unit API show (starts at ``now``; see :meth:`advance`)."""
        return self.workloads.sim_now

    def advance(self, delta: timedelta) -> None:
        """Move ``sim_now`` forward: new workloads, phase changes and deletions become visible.

        The audit stream is fixed at build time and does not grow with the clock.
        """
        self.workloads.advance(delta)

    def workload_truth(self) -> list[dict[str, object]]:
        """Every workload created by ``sim_now`` (deleted ones too), as it stands then."""
        return self.workloads.truth()

    def gpu_hours_truth(self) -> dict[tuple[date, str], float]:
        """GPU-hours per (UTC day, project id) of Running time up to ``sim_now``."""
        return self.workloads.gpu_hours()

    def org_truth(self) -> dict[str, object]:
        """Current department/project names (id -> name) and the renames done by ``sim_now``."""
        return self.workloads.org_truth()

    def gpu_efficiency_truth(self) -> dict[tuple[date, str], tuple[float, float]]:
        """(UTC day, project id) -> (allocated, utilised) GPU-hours of Running time up to ``sim_now``."""
        model = self.workloads
        now_ms = model.now_ms
        return efficiency_truth(model.seed, [p for p in model.plans if p.created_ms <= now_ms], now_ms)

    def idle_workloads_truth(self, until: datetime, step: timedelta = timedelta(minutes=1)) -> set[str]:
        """Workloads whose GPUs sat below 5% for more than an hour, sampled every ``step`` before ``until``."""
        model = self.workloads
        until_ms = min(to_ms(until), model.now_ms + 1)
        plans = [plan for plan in model.plans if plan.created_ms <= until_ms]
        return idle_truth(model.seed, plans, until_ms, step // timedelta(milliseconds=1))

    def workload_changes_since(self, since: datetime) -> int:
        """Workloads created, changing phase or deleted in (since, sim_now]."""
        return self.workloads.changes_since(to_ms(since))

    # -- ground truth ---------------------------------------------------------------------------
    def count(
        self, start: datetime | None = None, end: datetime | None = None, *, include_late: bool = True
    ) -> int:
        return len(self.audit_ids(start, end, include_late=include_late))

    def audit_ids(
        self, start: datetime | None = None, end: datetime | None = None, *, include_late: bool = True
    ) -> set[str]:
        """Ids with start <= timestamp <= end; ``include_late=False``: only those visible now."""
        start_us, end_us = datetime_to_us(start or self.start), datetime_to_us(end or self.now)
        with self._lock:
            self._release_due()
            stores = [self._store]
            if include_late:
                stores.extend(AuditStore(pending.columns) for pending in self._pending)
            ids: set[str] = set()
            for store in stores:
                lo, hi = store.window(start_us, end_us)
                ids.update(uuid_texts(store.column("id_hi")[lo:hi], store.column("id_lo")[lo:hi]))
        return ids

    def audit_rows(
        self, start: datetime | None = None, end: datetime | None = None, *, include_late: bool = True
    ) -> list[WireRow]:
        """Wire rows in canonical (timestamp, id) order, exactly as the API would render them."""
        query = AuditQuery(datetime_to_us(start or self.start), datetime_to_us(end or self.now))
        with self._lock:
            self._release_due()
            rows = self._window_rows(self._store, query)
            if include_late:
                for pending in self._pending:
                    rows.extend(self._window_rows(AuditStore(pending.columns), query))
        return sorted(rows, key=lambda row: (row["timestamp"], row["id"]))

    def corrupt_ids(self, start: datetime | None = None, end: datetime | None = None) -> dict[str, str]:
        """id -> bad record kind for every row in [start, end] the current faults serve corrupt."""
        with self._lock:
            faults = self._faults
        if faults.bad_record_rate <= 0:
            return {}
        seed, rate, kinds = self.config.seed, faults.bad_record_rate, faults.bad_record_kinds
        found = {row_id: kind_for(seed, row_id, rate, kinds) for row_id in self.audit_ids(start, end)}
        return {row_id: kind for row_id, kind in found.items() if kind is not None}

    def served_corrupt(self) -> dict[str, str]:
        """id -> kind of every corrupt row actually served so far."""
        with self._lock:
            return dict(self._served_corrupt)

    def served_rows(self, start: datetime | None = None, end: datetime | None = None) -> list[WireRow]:
        """Like :meth:`audit_rows`, but each row as the current faults serve it (corrupt or not)."""
        with self._lock:
            faults = self._faults
        rows = self.audit_rows(start, end)
        if faults.bad_record_rate <= 0:
            return rows
        seed, rate, kinds = self.config.seed, faults.bad_record_rate, faults.bad_record_kinds
        out = []
        for row in rows:
            kind = kind_for(seed, row["id"], rate, kinds)
            out.append(row if kind is None else corrupt(row, kind))
        return out

    def late_ids(self) -> set[str]:
        """Ids still hidden from the API."""
        with self._lock:
            self._release_due()
            return {row_id for pending in self._pending for row_id in _ids(pending.columns)}

    def bursts(self, min_size: int = 20) -> list[tuple[datetime, int]]:
        """(timestamp, row count) of every visible millisecond shared by at least ``min_size`` rows."""
        with self._lock:
            stamps, counts = np.unique(self._store.column("ts_ms"), return_counts=True)
        big = counts >= min_size
        return [
            (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=stamp), count)
            for stamp, count in zip(stamps[big].tolist(), counts[big].tolist(), strict=True)
        ]

    # -- internals ------------------------------------------------------------------------------
    def _spoil(self, rows: list[bytes], faults: FaultConfig) -> list[bytes]:
        """Swap the rows ``kind_for`` picks for their corrupt variants; remembers what it served."""
        out = []
        for row in rows:
            row_id = row[7:43].decode("ascii")  # rows start with {"id":"<36-char uuid>"
            kind = kind_for(self.config.seed, row_id, faults.bad_record_rate, faults.bad_record_kinds)
            if kind is None:
                out.append(row)
                continue
            self._served_corrupt[row_id] = kind
            out.append(orjson.dumps(corrupt(orjson.loads(row), kind)))
        return out

    def _extra(self, count: int, start_ms: int, end_ms: int) -> Columns:
        return extra_rows(self._world, self._extra_rng, count, start_ms, end_ms)

    def _release_due(self) -> None:
        now = self._clock()
        due = [pending for pending in self._pending if pending.visible_at <= now]
        for pending in due:
            self._store.insert(pending.columns)
            self._pending.remove(pending)

    def _window_rows(self, store: AuditStore, query: AuditQuery) -> list[WireRow]:
        lo, hi = store.window(query.start_us, query.end_us)
        return parse_rows(self._reshape(self._renderer.render(store, np.arange(lo, hi, dtype=np.int64))))


def _ids(columns: Columns) -> list[str]:
    return uuid_texts(columns["id_hi"], columns["id_lo"])


def _whole_ms(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
