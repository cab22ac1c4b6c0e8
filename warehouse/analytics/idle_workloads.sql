-- Idle stretches (GPUs held under 5% for more than an hour) that overlap [$start, $end), the most
-- idle GPU-hours first (usage_idle_workloads).
select *
from usage_idle_workloads
where idle_until > $start
    and idle_from < $end
order by idle_gpu_hours desc, workload_id, idle_from
