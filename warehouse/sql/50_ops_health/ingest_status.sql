-- One row per stream: its watermark, its last run, and running totals of trouble. The first view to
-- open when someone asks "is the ledger up to date?".
--
-- A run spans several windows; its status is the worst of them: 'failed' if any window failed,
-- else 'mismatch' if any API total disagreed, else 'committed' if all committed, else 'incomplete'
-- (for example a window left 'running' by an interrupted process). Streams that have a watermark but
-- no run record yet (or the other way round) still get a row.
create or replace view ingest_status as

with windows as (
    select * from ingest_runs
),

runs as (
    select
        stream,
        run_id,
        any_value(mode) as mode,
        min(started_at) as started_at,
        max(finished_at) as finished_at,
        count(*) as windows,
        cast(sum(rows_written) as bigint) as rows_written,
        case
            when count_if(status = 'failed') > 0 then 'failed'
            when count_if(status = 'mismatch') > 0 then 'mismatch'
            when count_if(status = 'committed') = count(*) then 'committed'
            else 'incomplete'
        end as status,
        string_agg(error, '; ' order by window_start) as error
    from windows
    group by stream, run_id
),

last_run as (
    select *
    from runs
    qualify row_number() over (partition by stream order by started_at desc, run_id desc) = 1
),

totals as (
    select
        stream,
        count(distinct run_id) as runs_total,
        count_if(status = 'failed') as failed_windows_total,
        count_if(status = 'mismatch') as mismatched_windows_total,
        cast(sum(quarantined) as bigint) as quarantined_total,
        cast(sum(throttled_429) as bigint) as throttled_429_total
    from windows
    group by stream
),

marks as (
    select * from watermarks
),

final as (
    select
        coalesce(marks.stream, last_run.stream) as stream,
        marks.watermark,
        marks.updated_at as watermark_updated_at,
        marks.hours_behind,
        last_run.run_id as last_run_id,
        last_run.mode as last_run_mode,
        last_run.status as last_run_status,
        last_run.started_at as last_run_started_at,
        last_run.finished_at as last_run_finished_at,
        last_run.windows as last_run_windows,
        last_run.rows_written as last_run_rows_written,
        last_run.error as last_run_error,
        coalesce(totals.runs_total, 0) as runs_total,
        coalesce(totals.failed_windows_total, 0) as failed_windows_total,
        coalesce(totals.mismatched_windows_total, 0) as mismatched_windows_total,
        coalesce(totals.quarantined_total, 0) as quarantined_total,
        coalesce(totals.throttled_429_total, 0) as throttled_429_total
    from marks
    full outer join last_run on last_run.stream = marks.stream
    left join totals on totals.stream = coalesce(marks.stream, last_run.stream)
)

select * from final
order by stream
