-- Event ids stored more than once, with every file holding a copy: should always be empty.
--
-- The pipeline never writes an id twice (see audit_events); a row here means a file entered the
-- lake some other way (copied, restored from a backup, written by another tool). `runai-ledger
-- verify` names such a file as inserted; this view says which events it doubles. Delete the
-- foreign file (or restore the lake from its manifests) to fix it.
create or replace view audit_duplicate_events as

select
    event_id,
    count(*) as copies,
    min(event_time) as event_time,
    list(source_file order by ingested_at, source_file) as files,
    list(ingest_run_id order by ingested_at, source_file) as runs
from src_audit_events
group by event_id
having count(*) > 1
