-- The audit log's coverage grade of every UTC hour overlapping [$start, $end) (the coverage view);
-- hours the view does not list lie outside everything ever stored.
select period_start, status, rows
from coverage
where stream = 'audit'
    and period_start < $end
    and period_end > $start
order by period_start
