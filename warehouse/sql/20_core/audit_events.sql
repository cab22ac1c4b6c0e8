-- One row per audit event (event_id), typed, in UTC: the table every compliance question starts from.
--
-- Each event id is stored once by construction: a slice drops ids already stored in the other
-- files of its day partition (an event's time fixes its partition) and rewrites only its own,
-- deterministically named file, under a one-writer lock. This view therefore reads the files as
-- they are. It used to deduplicate again with a window over all rows, a safety net that made
-- every compliance query 10x slower at 10M rows (docs/performance.md). What that net caught -
-- a file copied or restored into the lake by hand - is now named by `runai-ledger verify` (a data
-- file no manifest names) and listed by the audit_duplicate_events view. event_date is the
-- partition directory's date, which is the UTC date of event_time. api_flavour says which API
-- produced the row: 'audit_log' (/api/v1/audit/log) or 'k8s_audit' (2.18/2.19 /v1/k8s/audit,
-- whose integer ids are stored as text).
create or replace view audit_events as

-- The columns are the source's (transforms/schemas.py AUDIT_EVENTS, the one list of them), with
-- the partition date moved up beside the event time and the lineage file name left out.
select
    event_id,
    event_time,
    event_date,
    * exclude (event_id, event_time, event_date, source_file)
from src_audit_events
