-- Per stream and UTC day: the coverage view rolled up, with the day's status the worst of its hours.
--
-- Worst first: 'missing' > 'mismatch' > 'pending' > 'provisional' > 'sealed', so a day is 'sealed'
-- only when every hour of it is. The *_hours columns say how many hours of the day have each
-- status. windows and api_total come from ingest_runs directly: slices never cross UTC midnight,
-- so every stored window belongs to exactly one day. api_total sums the API's totals of the
-- latest record per distinct window; windows that overlap (a sync re-reads its overlap) are each
-- counted, so api_total can exceed rows, which counts each stored event once.
create or replace view coverage_daily as

with hourly as (
    select * from coverage
),

ranked as (
    select
        *,
        case status
            when 'missing' then 5
            when 'mismatch' then 4
            when 'pending' then 3
            when 'provisional' then 2
            else 1
        end as severity
    from hourly
),

days as (
    select
        stream,
        cast(period_start as date) as day,
        arg_max(status, severity) as status,
        count(*) as hours,
        count_if(status = 'sealed') as sealed_hours,
        count_if(status = 'provisional') as provisional_hours,
        count_if(status = 'pending') as pending_hours,
        count_if(status = 'mismatch') as mismatch_hours,
        count_if(status = 'missing') as missing_hours,
        cast(sum(rows) as bigint) as rows
    from ranked
    group by stream, cast(period_start as date)
),

latest_windows as (
    select stream, window_start, window_end, api_total
    from ingest_runs
    where status in ('committed', 'mismatch')
    qualify row_number() over (
        partition by stream, window_start, window_end order by finished_at desc, run_id desc
    ) = 1
),

window_days as (
    select
        stream,
        cast(window_start as date) as day,
        count(*) as windows,
        cast(sum(api_total) as bigint) as api_total
    from latest_windows
    group by stream, cast(window_start as date)
),

final as (
    select
        days.stream,
        cast(days.day as timestamptz) as period_start,
        cast(days.day as timestamptz) + interval 1 day as period_end,
        days.day,
        days.status,
        coalesce(window_days.windows, 0) as windows,
        days.rows,
        window_days.api_total,
        days.hours,
        days.sealed_hours,
        days.provisional_hours,
        days.pending_hours,
        days.mismatch_hours,
        days.missing_hours
    from days
    left join window_days using (stream, day)
)

select * from final
order by stream, period_start
