-- Coverage of an export period from the coverage view: one row per UTC hour overlapping
-- [$start, $end) for $stream. Hours the view does not list lie outside everything ever stored;
-- the exporter counts them as missing.
select period_start, period_end, status
from coverage
where stream = $stream
    and period_start < $end
    and period_end > $start
order by period_start
