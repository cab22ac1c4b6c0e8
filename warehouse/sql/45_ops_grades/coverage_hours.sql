-- Per stream and UTC hour: is this time range completely ingested, and how sure are we? The
-- grading behind coverage (which adds the stored row count per hour); the statuses and columns are
-- described there.
--
-- Why a view of its own: grading reads only the run records and reconciliations, so `status`
-- (which prints hours per status) does not scan every stored audit event, a cost that would grow
-- with the age of the ledger. One definition: coverage reads this view.
create or replace view coverage_hours as

with stored as (
    select stream, run_id, window_start, window_end, status, api_total, rows_new, finished_at
    from ingest_runs
    -- Hours are graded for the audit log only: it is read in closed time windows that a recheck
    -- can seal. The usage streams read live lists; their runs are contiguous [since, server time)
    -- spans (ingest_gaps checks those) that no recheck seals.
    where status in ('committed', 'mismatch') and stream = 'audit'
),

covered as (
    select stream, span_start as covered_start, span_end as covered_end
    from covered_spans
    where evidence = 'stored' and stream = 'audit'
),

marks as (
    select stream, watermark from watermarks
),

bounds as (
    select
        covered.stream,
        min(covered.covered_start) as first_start,
        greatest(max(covered.covered_end), max(marks.watermark)) as expected_end
    from covered
    left join marks on marks.stream = covered.stream
    group by covered.stream
),

hours as (
    select
        stream,
        first_start,
        expected_end,
        unnest(generate_series(
            date_trunc('hour', first_start),
            greatest(now(), expected_end) - interval 1 microsecond,
            interval 1 hour
        )) as period_start
    from bounds
),

periods as (
    select
        stream,
        period_start,
        period_start + interval 1 hour as period_end,
        greatest(period_start, first_start) as due_start,
        least(period_start + interval 1 hour, expected_end) as due_end,
        expected_end
    from hours
),

due_coverage as (
    select
        periods.stream,
        periods.period_start,
        -- least/greatest skip NULLs, so an hour no island reaches must be excluded explicitly.
        coalesce(sum(
            epoch(least(periods.due_end, covered.covered_end))
            - epoch(greatest(periods.due_start, covered.covered_start))
        ) filter (where covered.stream is not null), 0) as covered_s
    from periods
    left join covered
        on covered.stream = periods.stream
        and covered.covered_start < periods.due_end
        and covered.covered_end > periods.due_start
    where periods.due_start < periods.due_end
    group by periods.stream, periods.period_start
),

latest as (
    select *
    from stored
    qualify row_number() over (
        partition by stream, window_start, window_end order by finished_at desc, run_id desc
    ) = 1
),

window_stats as (
    select
        periods.stream,
        periods.period_start,
        count(latest.window_start) as windows,
        max(case when latest.status = 'mismatch' then latest.finished_at end) as last_mismatch_at,
        sum(case
            when latest.window_start >= periods.period_start and latest.window_end <= periods.period_end
                then latest.api_total
        end) as api_total
    from periods
    left join latest
        on latest.stream = periods.stream
        and latest.window_start < periods.period_end
        and latest.window_end > periods.period_start
    group by periods.stream, periods.period_start
),

grown as (
    select
        periods.stream,
        periods.period_start,
        max(stored.finished_at) as last_growth_at
    from periods
    join stored
        on stored.stream = periods.stream
        and stored.window_start < periods.period_end
        and stored.window_end > periods.period_start
    where stored.rows_new > 0
    group by periods.stream, periods.period_start
),

checks as (
    select * from reconciliation
),

sealed_spans as (
    select stream, span_start as sealed_start, span_end as sealed_end
    from covered_spans
    where evidence = 'sealed'
),

seal_coverage as (
    select
        periods.stream,
        periods.period_start,
        sum(
            epoch(least(periods.period_end, sealed_spans.sealed_end))
            - epoch(greatest(periods.period_start, sealed_spans.sealed_start))
        ) as sealed_s
    from periods
    join sealed_spans
        on sealed_spans.stream = periods.stream
        and sealed_spans.sealed_start < periods.period_end
        and sealed_spans.sealed_end > periods.period_start
    group by periods.stream, periods.period_start
),

check_stats as (
    select
        periods.stream,
        periods.period_start,
        max(case when checks.status = 'clean' then checks.checked_at end) as last_clean_at,
        max(case when checks.sealed then checks.checked_at end) as last_sealed_at,
        max(case when checks.status <> 'clean' then checks.checked_at end) as last_unclean_at,
        arg_max(checks.status, checks.checked_at) as recheck_status
    from periods
    join checks
        on checks.stream = periods.stream
        and checks.window_start < periods.period_end
        and checks.window_end > periods.period_start
    group by periods.stream, periods.period_start
),

classified as (
    select
        periods.stream,
        periods.period_start,
        periods.period_end,
        case
            when due_coverage.covered_s < epoch(periods.due_end) - epoch(periods.due_start) then 'missing'
            when window_stats.last_mismatch_at is not null
                and (check_stats.last_clean_at is null or check_stats.last_clean_at < window_stats.last_mismatch_at)
                then 'mismatch'
            when periods.period_end > periods.expected_end then 'pending'
            when seal_coverage.sealed_s >= 3600
                and (check_stats.last_unclean_at is null or check_stats.last_unclean_at < check_stats.last_sealed_at)
                and (grown.last_growth_at is null or grown.last_growth_at < check_stats.last_sealed_at)
                then 'sealed'
            else 'provisional'
        end as status,
        window_stats.windows,
        window_stats.api_total,
        check_stats.recheck_status,
        check_stats.last_sealed_at as sealed_at
    from periods
    left join due_coverage using (stream, period_start)
    left join window_stats using (stream, period_start)
    left join seal_coverage using (stream, period_start)
    left join check_stats using (stream, period_start)
    left join grown using (stream, period_start)
),

final as (
    select
        stream,
        period_start,
        period_end,
        status,
        windows,
        api_total,
        recheck_status,
        sealed_at
    from classified
)

select * from final
order by stream, period_start
