"""Views are bound on typed stand-ins of the sources; a real source must match its stand-in exactly."""

from __future__ import annotations

from dataclasses import replace

import duckdb
import pytest

from runai_extract.core.errors import StorageError
from runai_extract.core.settings import Settings
from tests.synced_ledger import synced_ledger
from transforms.storage import Lake
from warehouse import pseudonyms
from warehouse.build import execute_plan, plan_build
from warehouse.models import SOURCES, empty_relation_sql

__all__ = ["synced_ledger"]  # the session fixture, imported so pytest finds it here


def columns(statement: str, view: str) -> list[tuple[str, str]]:
    con = duckdb.connect()
    con.execute(statement)
    return [(str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE {view}").fetchall()]


def test_every_source_with_data_has_the_columns_of_its_stand_in(synced_ledger: Settings) -> None:
    plan = plan_build(Lake(synced_ledger.lake_uri))
    real = plan.source_statements()
    with_data = [s for s in SOURCES if s.view not in plan.empty_sources]
    # audit, run records, reconciliation, watermarks, five org kinds, three workload tables
    assert len(with_data) >= 12, plan.empty_sources
    for source in with_data:
        assert columns(real[source.view], source.view) == columns(empty_relation_sql(source), source.view)


def test_a_source_whose_columns_drift_from_its_schema_is_refused(synced_ledger: Settings) -> None:
    plan = plan_build(Lake(synced_ledger.lake_uri))
    index = next(i for i, m in enumerate(plan.models) if m.name == "src_ingest_runs")
    drifted = plan.statements[index].replace(
        "cast(run_id as varchar) as run_id,", "cast(run_id as varchar) as run_id, 1 as extra,"
    )
    assert drifted != plan.statements[index]
    statements = (*plan.statements[:index], drifted, *plan.statements[index + 1 :])
    with pytest.raises(StorageError, match=r"src_ingest_runs .*columns differ"):
        con = duckdb.connect()
        pseudonyms.prepare(con)
        execute_plan(con, replace(plan, statements=statements))
