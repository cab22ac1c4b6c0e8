-- GPU-hours held and worked per UTC day over [$start, $end), with every dimension an analyst may
-- group by (usage_gpu_efficiency_daily); pandas groups and computes the efficiency.
select
    usage_date,
    cluster_id,
    department_id,
    department_name,
    project_id,
    project_name,
    submitted_by,
    workload_type,
    allocated_gpu_hours,
    utilised_gpu_hours,
    idle_gpu_hours,
    gpu_hours_without_metrics
from usage_gpu_efficiency_daily
where usage_date >= cast($start as date)
    and usage_date < cast($end as date)
order by all
