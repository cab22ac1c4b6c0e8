-- Coverage of an export period when the warehouse has no coverage view: the stored windows
-- (latest record per window) overlapping [$start, $end), to be merged by the exporter. A period
-- covered only by these can be at best 'provisional' (no recheck evidence is read here).
select window_start, window_end, status
from ingest_runs
where stream = $stream
    and status in ('committed', 'mismatch')
    and window_start < $end
    and window_end > $start
qualify row_number() over (
    partition by window_start, window_end order by finished_at desc, run_id desc
) = 1
order by window_start, window_end
