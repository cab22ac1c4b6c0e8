"""The views: one row per event, compliance views, entity change logs, ops views."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from tests.warehouse.fixtures import (
    DAY1,
    DAY2,
    DISTINCT_EVENTS,
    QUOTED_NAME,
    UNICODE_NAME,
    column_types,
    h,
    populate,
    rows,
)
from transforms.storage import Lake
from warehouse.build import build_views
from warehouse.query import run_query


# -- the views ------------------------------------------------------------------------------------
def test_audit_events_has_one_row_per_stored_event(populated: Path) -> None:
    assert rows(populated, "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM audit_events") == [
        {"n": DISTINCT_EVENTS, "d": DISTINCT_EVENTS}
    ]
    assert rows(populated, "SELECT count(*) AS n FROM audit_duplicate_events") == [{"n": 0}]
    kept = rows(populated, "SELECT entity_name, event_date FROM audit_events WHERE event_id = ?", ["evt-04"])
    assert kept == [{"entity_name": QUOTED_NAME, "event_date": date(2025, 6, 1)}]
    unicode = rows(populated, "SELECT entity_name FROM audit_events WHERE event_id = 'evt-03'")
    assert unicode == [{"entity_name": UNICODE_NAME}]


def test_a_copy_entered_by_hand_is_named_by_the_duplicate_view(tmp_path: Path) -> None:
    """A second file holding evt-04 again (a restored backup): audit_duplicate_events names the
    event and both files, so the foreign file can be found and removed."""
    lake = Lake(str(tmp_path / "lake"))
    populate(lake, foreign_copy=True)
    warehouse = tmp_path / "warehouse.duckdb"
    build_views(warehouse, lake)
    dupes = rows(warehouse, "SELECT event_id, copies, runs, files FROM audit_duplicate_events")
    assert [(d["event_id"], d["copies"], d["runs"]) for d in dupes] == [("evt-04", 2, ["run-1", "run-2"])]
    files = dupes[0]["files"]
    assert len(set(files)) == 2 and all("/audit_events/event_date=2025-06-01/" in f for f in files)


def test_timestamps_are_utc(populated: Path) -> None:
    table = run_query(
        populated, "SELECT event_time, current_setting('TimeZone') AS tz FROM audit_events LIMIT 1"
    )
    assert table.schema.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert table.column("tz").to_pylist() == ["UTC"]


def test_compliance_sign_ins(populated: Path) -> None:
    got = rows(populated, "SELECT event_id, action, subject, success FROM compliance_sign_ins")
    assert got == [
        {"event_id": "evt-01", "action": "sign-in", "subject": "alice@example.com", "success": True},
        {"event_id": "evt-02", "action": "sign-in", "subject": "mallory", "success": False},
        {"event_id": "evt-10", "action": "sign-out", "subject": "alice@example.com", "success": True},
        {"event_id": "evt-12", "action": "reset-password", "subject": "bob", "success": True},
        {"event_id": "evt-18", "action": "SIGN_IN", "subject": "eve", "success": False},
    ]


def test_compliance_failed_actions(populated: Path) -> None:
    got = rows(
        populated,
        "SELECT event_id, result, http_status_code, http_status_class FROM compliance_failed_actions",
    )
    assert got == [
        {"event_id": "evt-02", "result": "Failed", "http_status_code": 401, "http_status_class": "4xx"},
        {"event_id": "evt-08", "result": "Failed", "http_status_code": 403, "http_status_class": "4xx"},
        {"event_id": "evt-11", "result": "Succeeded", "http_status_code": 500, "http_status_class": "5xx"},
    ]


def test_compliance_privileged_changes(populated: Path) -> None:
    got = rows(
        populated,
        "SELECT event_id, change_category, entity_type, succeeded FROM compliance_privileged_changes",
    )
    assert [(r["event_id"], r["change_category"], r["entity_type"]) for r in got] == [
        ("evt-03", "project", "project"),
        ("evt-04", "project", "project"),
        ("evt-15", "project", "Projects"),
        ("evt-05", "access_rule", "AccessRule"),
        ("evt-06", "access_rule", "access-rule"),
        ("evt-07", "department", "Department"),
        ("evt-08", "application", "service-account"),
        ("evt-17", "project", "project"),
        ("evt-11", "setting", "Settings"),
        ("evt-13", "role", "Roles"),
        ("evt-14", "user", "users"),
    ]
    assert {r["event_id"] for r in got if not r["succeeded"]} == {"evt-08", "evt-11"}


@pytest.mark.parametrize(
    ("view", "derived"),
    [
        ("compliance_failed_actions", ["http_status_class"]),
        ("compliance_sign_ins", ["success"]),
        ("compliance_privileged_changes", ["change_category", "succeeded"]),
    ],
)
def test_compliance_views_carry_every_audit_column_but_the_lineage(
    populated: Path, view: str, derived: list[str]
) -> None:
    """The compliance views take their columns from the schema (through audit_events), not from
    a list of their own: every audit column but the lineage, plus what the view derives."""
    lineage = {"event_id_derived", "api_flavour", "extra_fields", "ingested_at"}
    audit = [name for name, _ in column_types(populated, "audit_events") if name not in lineage]
    got = [name for name, _ in column_types(populated, view)]
    assert sorted(got) == sorted(audit + derived)
    assert got[:3] == ["event_id", "event_time", "event_date"]


@pytest.mark.parametrize(
    ("spelling", "kind"),
    [
        ("AccessRule", "access_rule"),
        ("access_rule", "access_rule"),
        ("access-rule", "access_rule"),
        ("accessrules", "access_rule"),
        ("Application", "application"),
        ("app", "application"),
        ("apps", "application"),
        ("service-account", "application"),
        ("ServiceAccounts", "application"),
        ("Settings", "setting"),
        ("Node Pool", "node_pool"),
        ("Node-Group", "nodegroup"),
        ("status", "status"),
        ("", None),
        (None, None),
    ],
)
def test_entity_kind_tolerates_spellings(populated: Path, spelling: str | None, kind: str | None) -> None:
    assert rows(populated, "SELECT entity_kind(?) AS k", [spelling]) == [{"k": kind}]


def test_entity_change_log_is_ordered_with_the_previous_action(populated: Path) -> None:
    got = rows(
        populated,
        "SELECT entity_kind, event_id, change_seq, action, previous_action, previous_event_time "
        "FROM compliance_entity_changes WHERE entity_id = ?",
        ["5"],
    )
    assert got == [
        {
            "entity_kind": "department",
            "event_id": "evt-07",
            "change_seq": 1,
            "action": "update",
            "previous_action": None,
            "previous_event_time": None,
        },
        {
            "entity_kind": "project",
            "event_id": "evt-03",
            "change_seq": 1,
            "action": "create",
            "previous_action": None,
            "previous_event_time": None,
        },
        {
            "entity_kind": "project",
            "event_id": "evt-04",
            "change_seq": 2,
            "action": "update",
            "previous_action": "create",
            "previous_event_time": h(DAY1, 8, 10),
        },
        {  # same microsecond as evt-04: event_id breaks the tie
            "entity_kind": "project",
            "event_id": "evt-15",
            "change_seq": 3,
            "action": "update",
            "previous_action": "update",
            "previous_event_time": h(DAY1, 8, 20),
        },
    ]


def test_entity_change_log_covers_every_entity_with_an_id(populated: Path) -> None:
    got = rows(
        populated,
        "SELECT entity_kind, entity_id, count(*) AS n FROM compliance_entity_changes GROUP BY ALL ORDER BY ALL",
    )
    assert got == [
        {"entity_kind": "access_rule", "entity_id": "ar-1", "n": 2},
        {"entity_kind": "application", "entity_id": "app-1", "n": 1},
        {"entity_kind": "department", "entity_id": "5", "n": 1},
        {"entity_kind": "node_pool", "entity_id": "np-1", "n": 1},
        {"entity_kind": "project", "entity_id": "5", "n": 3},
        {"entity_kind": "role", "entity_id": "role-7", "n": 1},
        {"entity_kind": "setting", "entity_id": "tenant", "n": 1},
        {"entity_kind": "user", "entity_id": "u-9", "n": 1},
        {"entity_kind": "workload", "entity_id": "wl-1", "n": 1},
    ]
    deleted = rows(populated, "SELECT action, previous_action FROM entity_history('access-rules', 'ar-1')")
    assert deleted == [
        {"action": "create", "previous_action": None},
        {"action": "delete", "previous_action": "create"},
    ]


def test_entity_history_macro_takes_parameters(populated: Path) -> None:
    got = rows(populated, "SELECT event_id, change_seq FROM entity_history(?, ?)", ["Project", "5"])
    assert got == [
        {"event_id": "evt-03", "change_seq": 1},
        {"event_id": "evt-04", "change_seq": 2},
        {"event_id": "evt-15", "change_seq": 3},
    ]


def test_ingest_runs(populated: Path) -> None:
    got = rows(populated, "SELECT run_id, status, window_start, drift_fields, error FROM ingest_runs")
    assert [(r["run_id"], r["status"], r["window_start"]) for r in got] == [
        ("run-1", "committed", DAY1),
        ("run-2", "mismatch", h(DAY1, 18)),
        ("run-2", "failed", DAY2),
        ("run-3", "committed", DAY2),
    ]
    assert got[0]["drift_fields"] == [("newField", 3)]
    assert got[2]["error"] == "boom"
    expected = [
        "stream", "run_id", "mode", "window_start", "window_end", "status", "pages", "requests",
        "rows_received", "rows_written", "rows_new", "duplicates_dropped", "out_of_window", "quarantined", "retries",
        "throttled_429", "token_refreshes", "api_total", "total_mismatch", "repaged", "drift_fields",
        "error", "started_at", "finished_at", "duration_s",
    ]  # fmt: skip
    assert [n for n, _ in column_types(populated, "ingest_runs")][: len(expected)] == expected


def test_quarantine_extracts_the_record_id_when_it_can(populated: Path) -> None:
    got = rows(populated, "SELECT page_offset, record_id, reason FROM quarantine")
    assert got == [
        {"page_offset": 0, "record_id": "bad-1", "reason": "timestamp is not ISO-8601"},
        {"page_offset": 1000, "record_id": None, "reason": "not a JSON object"},
    ]


def test_watermarks(populated: Path) -> None:
    got = rows(populated, "SELECT stream, watermark, run_id, hours_behind > 0 AS behind FROM watermarks")
    assert got == [
        {"stream": "audit", "watermark": h(DAY2, 6), "run_id": "run-3", "behind": True},
        {"stream": "workloads", "watermark": DAY1, "run_id": "run-w", "behind": True},
    ]


def test_ingest_daily(populated: Path) -> None:
    got = rows(populated, "SELECT event_date, events, failed_events, ingest_runs FROM ingest_daily")
    assert got == [
        {"event_date": date(2025, 6, 1), "events": 12, "failed_events": 2, "ingest_runs": 1},
        {"event_date": date(2025, 6, 2), "events": 6, "failed_events": 1, "ingest_runs": 1},
    ]


def test_ingest_gaps(populated: Path) -> None:
    got = rows(populated, "SELECT stream, gap_start, gap_end, gap_hours FROM ingest_gaps")
    assert got == [{"stream": "audit", "gap_start": h(DAY1, 12), "gap_end": h(DAY1, 18), "gap_hours": 6.0}]


def test_ingest_status(populated: Path) -> None:
    got = rows(
        populated,
        "SELECT stream, watermark, last_run_id, last_run_status, runs_total, failed_windows_total, "
        "mismatched_windows_total, quarantined_total, throttled_429_total FROM ingest_status",
    )
    assert got == [
        {
            "stream": "audit",
            "watermark": h(DAY2, 6),
            "last_run_id": "run-3",
            "last_run_status": "committed",
            "runs_total": 3,
            "failed_windows_total": 1,
            "mismatched_windows_total": 1,
            "quarantined_total": 2,
            "throttled_429_total": 2,
        },
        {
            "stream": "workloads",
            "watermark": DAY1,
            "last_run_id": None,
            "last_run_status": None,
            "runs_total": 0,
            "failed_windows_total": 0,
            "mismatched_windows_total": 0,
            "quarantined_total": 0,
            "throttled_429_total": 0,
        },
    ]
    run2 = rows(populated, "SELECT count(*) AS n FROM ingest_runs WHERE run_id = 'run-2'")
    assert run2 == [{"n": 2}]
