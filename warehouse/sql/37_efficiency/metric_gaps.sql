-- Spans of metric samples the ledger will never have: the control plane had already dropped them
-- (past its metrics retention) or no longer knew the workload when the ledger asked. One row per
-- gap and entity, from the metrics fetch log; `runai-ledger sync metrics` prints them as it finds them.
create or replace view metric_gaps as

select
    entity_kind,
    entity_id,
    window_start as gap_start,
    window_end as gap_end,
    date_diff('second', window_start, window_end) / 3600.0 as gap_hours,
    ingest_run_id as found_by_run,
    ingested_at as found_at
from src_metric_fetches
where status = 'gap'
