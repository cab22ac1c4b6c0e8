-- One row per run and window: what the API reported, what was stored, and what it cost.
--
-- The pipeline writes one record file per run and window, under a deterministic name, so a record
-- is normally unique already; if two copies of the same (stream, run, window) exist (a restored
-- backup), the one that finished last wins. Read it to answer "did last night's sync complete,
-- how many rows did each window bring, and were we throttled?". status is 'committed' (data and
-- record durable), 'mismatch' (stored, but the API's total disagreed with the rows received even
-- after one re-page), 'failed' (error says why) or 'running' (the process was interrupted).
-- api_query is the request the window was paged with (minus the offset), id_set_digest the
-- transforms.digest.id_set_digest of the ids its file holds (NULL in records older than them).
create or replace view ingest_runs as

with runs as (
    select * from src_ingest_runs
),

deduplicated as (
    select *
    from runs
    qualify row_number() over (
        partition by stream, run_id, window_start, window_end
        order by finished_at desc, source_file desc
    ) = 1
),

final as (
    select
        stream,
        run_id,
        mode,
        window_start,
        window_end,
        status,
        pages,
        requests,
        rows_received,
        rows_written,
        rows_new,
        duplicates_dropped,
        out_of_window,
        quarantined,
        retries,
        throttled_429,
        token_refreshes,
        api_total,
        total_mismatch,
        repaged,
        drift_fields,
        error,
        started_at,
        finished_at,
        duration_s,
        files,
        schema_version,
        code_version,
        api_query,
        id_set_digest,
        api_features,
        deprecations
    from deduplicated
)

select * from final
order by started_at, stream, window_start
