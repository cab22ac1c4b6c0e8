"""Workload, history and org-unit records -> typed rows: what is kept, what is quarantined and why."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from transforms.orgunits import ORG_KINDS, normalise_org
from transforms.records import to_table
from transforms.usage_schemas import WORKLOAD_HISTORY, WORKLOAD_SNAPSHOTS
from transforms.workloads import normalise_events, normalise_history, normalise_workloads

DATA = Path(__file__).parent.parent / "data"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LINEAGE: dict[str, Any] = {"observed_at": NOW, "run_id": "r1", "ingested_at": NOW}


def _load(name: str) -> Any:
    return orjson.loads((DATA / name).read_bytes())


def _workloads() -> list[dict[str, Any]]:
    return list(_load("workloads_page.json")["workloads"])


def test_the_api_example_page_is_stored_whole_and_typed() -> None:
    out = normalise_workloads(_workloads(), **LINEAGE)
    table = to_table(out.rows, WORKLOAD_SNAPSHOTS)
    assert out.rejected == [] and not out.drift
    assert table.schema == WORKLOAD_SNAPSHOTS
    rows = {r["name"]: r for r in table.to_pylist()}
    # The whole workload's request, not the per-pod one: the 4-pod DDP job asked for 16 GPUs.
    assert rows["llm-finetune-ddp"]["requested_gpus"] == 16
    assert rows["llm-finetune-ddp"]["completed_at"] == datetime(2025, 6, 2, 6, 41, 27, 402000, tzinfo=UTC)
    assert rows["resnet50-train"]["allocated_gpus"] == 2 and rows["resnet50-train"]["phase"] == "Running"
    assert rows["jupyter-ws"]["allocated_gpus"] == 0


def test_a_bad_record_is_quarantined_with_the_field_named_and_its_neighbours_kept() -> None:
    items = _workloads()
    del items[0]["createdAt"]
    items[1]["allocatedResources"]["gpu"] = "two"
    out = normalise_workloads([*items, "not a workload"], **LINEAGE)
    assert [r["name"] for r in out.rows] == ["llm-finetune-ddp"]
    reasons = sorted(r.reason for r in out.rejected)
    assert any("createdAt" in reason and "missing" in reason for reason in reasons)
    assert any("allocatedResources.gpu" in reason and "'two'" in reason for reason in reasons)
    assert any("not an object" in reason for reason in reasons)
    assert all(r.raw for r in out.rejected)


def test_without_a_workload_total_the_per_pod_request_times_pods_is_used() -> None:
    item = _workloads()[2]
    item["workloadRequestedResources"] = None
    out = normalise_workloads([item], **LINEAGE)
    assert out.rows[0]["requested_gpus"] == 16.0  # 4 GPUs per pod x 4 pods


def test_row_hash_ignores_ticking_counters_but_not_state() -> None:
    base = _workloads()[0]
    ticked = copy.deepcopy(base)
    ticked["totalRunningTimeSeconds"] += 600
    ticked["updatedAt"] = "2030-01-01T00:00:00.000Z"
    stopped = copy.deepcopy(base)
    stopped["phase"] = "Completed"
    stopped["allocatedResources"] = {"gpu": 0}
    hashes = [normalise_workloads([w], **LINEAGE).rows[0]["row_hash"] for w in (base, ticked, stopped)]
    assert hashes[0] == hashes[1] != hashes[2]


def test_unknown_keys_are_counted_as_drift_and_stored_rows_still_written() -> None:
    item = _workloads()[0]
    item["gpuTopologyHint"] = {"rack": 7}
    out = normalise_workloads([item], **LINEAGE)
    assert out.drift == {"gpuTopologyHint": 1} and len(out.rows) == 1


def test_history_in_any_order_keeps_every_record_and_rejects_one_without_meta() -> None:
    records = list(reversed(_load("workload_history_page.json")["records"]))
    records.append({"spec": {"phaseUpdate": {"phase": "Running", "phaseMessage": ""}}})
    out = normalise_history("w-1", records, **LINEAGE)
    assert len(out.rows) == len(records) - 1
    assert out.rejected[0].reason.startswith("required field meta.creationTimestamp")
    table = to_table(out.rows, WORKLOAD_HISTORY)
    assert set(table.column("record_type").to_pylist()) == {"PhaseUpdate", "Event"}


def test_events_skip_null_items() -> None:
    events = [*_load("workload_events_page.json")["events"], None]
    out = normalise_events("w-1", events, **LINEAGE)
    assert len(out.rows) == len(events) - 1 and not out.rejected


def test_org_examples_normalise_for_every_kind() -> None:
    samples = {
        "clusters": _load("clusters.json"),
        "departments": _load("departments_page.json")["departments"],
        "projects": _load("projects_page.json")["projects"],
        "node_pools": _load("nodepools.json")["nodepools"],
        "users": _load("users.json"),
    }
    for name, items in samples.items():
        kind = ORG_KINDS[name]
        out = normalise_org(kind, items, **LINEAGE)
        assert not out.rejected and not out.drift, name
        assert to_table(out.rows, kind.schema).num_rows == len(items)
    project = normalise_org(ORG_KINDS["projects"], samples["projects"], **LINEAGE).rows[0]
    assert project["department_id"] == "2" and project["department_name"] == "research"
