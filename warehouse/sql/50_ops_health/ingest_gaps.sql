-- Holes in the ingested time line: stretches between the first and last stored window of a stream
-- that no window with stored data ('committed' or 'mismatch') covers.
--
-- Why: completeness must be provable. A failed window that was never rerun, or a backfill that
-- started past the watermark, leaves a hole that row counts alone do not show. Each row is one gap,
-- from the end of the covered span before it (covered_until) to the next span's start; what
-- "covered" means is covered_spans' rule, the one coverage grades hours by.
create or replace view ingest_gaps as

with spans as (
    select
        stream,
        span_start,
        lag(span_end) over (partition by stream order by span_start) as covered_until
    from covered_spans
    where evidence = 'stored'
),

final as (
    select
        stream,
        covered_until as gap_start,
        span_start as gap_end,
        round((epoch(span_start) - epoch(covered_until)) / 3600.0, 3) as gap_hours
    from spans
    where covered_until is not null
)

select * from final
order by stream, gap_start
