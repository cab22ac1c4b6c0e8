-- Per stream and UTC hour: is this time range completely ingested, and how sure are we? The answer
-- to an auditor's "is this everything?".
--
-- status, worst first:
--   'missing'     part of the hour lies between the first and the last stored window (or the
--                 watermark) and no committed window covers it: a gap that needs a backfill;
--   'mismatch'    covered, but a window over it ended 'mismatch' (the API's total kept moving) and
--                 no clean recheck has settled it since;
--   'pending'     part of the hour is after everything stored so far: the next sync will read it;
--   'provisional' covered by committed windows, not (yet) confirmed by a sealed recheck;
--   'sealed'      covered, and recheck windows that ended at least Settings.seal_after before
--                 their check found nothing new over the whole hour (and no later recheck, sync
--                 or backfill added or missed rows there): an auditor may treat it as closed.
-- windows counts the distinct stored windows (committed or mismatch; the latest record of a
-- rerun window decides its status) that overlap the hour; rows counts the audit events stored for
-- the hour (deduplicated, from audit_events); api_total sums the API's total of the windows lying wholly inside the hour (NULL when every
-- window spans a longer range; coverage_daily has the per-day figure). recheck_status is the
-- latest reconciliation status seen over the hour. Hours are computed when the view is read, up
-- to now(); everything is UTC.
create or replace view coverage as

with hourly_rows as (
    select 'audit' as stream, date_trunc('hour', event_time) as period_start, count(*) as rows
    from audit_events
    group by all
),

final as (
    select
        hours.stream,
        hours.period_start,
        hours.period_end,
        hours.status,
        hours.windows,
        coalesce(hourly_rows.rows, 0) as rows,
        hours.api_total,
        hours.recheck_status,
        hours.sealed_at
    from coverage_hours as hours
    left join hourly_rows using (stream, period_start)
)

select * from final
order by stream, period_start
