-- Contiguous stretches of time that windows cover, per stream and kind of evidence: the one
-- definition of "covered" that coverage, coverage_daily (through coverage) and ingest_gaps read.
--
-- evidence is 'stored' (ingest_runs windows that stored data: 'committed' or 'mismatch'; a failed
-- window covers nothing) or 'sealed' (reconciliation windows a recheck sealed). Windows that
-- overlap or touch merge into one span (the re-read overlap is expected); a window starting past
-- everything before it opens a new span, and the stretch between two spans is a gap.
create or replace view covered_spans as

with windows as (
    select 'stored' as evidence, stream, window_start, window_end
    from ingest_runs
    where status in ('committed', 'mismatch')
    union all
    select 'sealed' as evidence, stream, window_start, window_end
    from reconciliation
    where sealed
),

ordered as (
    select
        *,
        max(window_end) over (
            partition by evidence, stream
            order by window_start, window_end
            rows between unbounded preceding and 1 preceding
        ) as reach_before
    from windows
),

islands as (
    select
        evidence,
        stream,
        window_start,
        window_end,
        sum(case when reach_before is null or window_start > reach_before then 1 else 0 end) over (
            partition by evidence, stream
            order by window_start, window_end
            rows between unbounded preceding and current row
        ) as island
    from ordered
),

final as (
    select evidence, stream, min(window_start) as span_start, max(window_end) as span_end
    from islands
    group by evidence, stream, island
)

select * from final
