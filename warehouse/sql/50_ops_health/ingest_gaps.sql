-- Holes in the ingested time line: stretches between the first and last stored window of a stream
-- that no window with stored data ('committed' or 'mismatch') covers.
--
-- Why: completeness must be provable. A failed window that was never rerun, or a backfill that
-- started past the watermark, leaves a hole that row counts alone do not show. Each row is one gap,
-- from the end of the coverage before it (covered_until) to the next covered window's start.
-- Overlapping windows (the re-read overlap) are expected and are not gaps.
create or replace view ingest_gaps as

with covered as (
    select stream, window_start, window_end
    from ingest_runs
    where status in ('committed', 'mismatch')
),

reach as (
    select
        stream,
        window_start,
        max(window_end) over (
            partition by stream
            order by window_start, window_end
            rows between unbounded preceding and 1 preceding
        ) as covered_until
    from covered
),

final as (
    select
        stream,
        covered_until as gap_start,
        window_start as gap_end,
        round((epoch(window_start) - epoch(covered_until)) / 3600.0, 3) as gap_hours
    from reach
    where window_start > covered_until
)

select * from final
order by stream, gap_start
