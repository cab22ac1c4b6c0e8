-- Audit events stored per event_date (UTC), with when and by how many runs they were ingested.
--
-- Counted from audit_events (deduplicated), not by summing ingest_runs.rows_written: a rerun of a
-- window rewrites its own file and reports its rows again, so summing run records would count them
-- twice. A day with far fewer events than its neighbours is the first thing to check after an
-- outage; derived_ids counts events that arrived without an id and got a derived one.
create or replace view ingest_daily as

with events as (
    select * from audit_events
),

daily as (
    select
        event_date,
        count(*) as events,
        count(distinct subject) as subjects,
        count_if(lower(result) = 'failed' or http_status_code >= 400) as failed_events,
        count_if(event_id_derived) as derived_ids,
        min(event_time) as first_event_time,
        max(event_time) as last_event_time,
        count(distinct ingest_run_id) as ingest_runs,
        max(ingested_at) as last_ingested_at
    from events
    group by event_date
)

select * from daily
order by event_date
