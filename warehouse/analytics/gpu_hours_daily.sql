-- GPU-hours per UTC day over [$start, $end) with every dimension an analyst may group by; pandas
-- does the grouping, the resampling to weeks or months, and the pivot. Same definition as
-- usage_gpu_hours_daily (names as units had them at the time).
select
    usage_date,
    cluster_id,
    department_id,
    department_name,
    project_id,
    project_name,
    submitted_by,
    workload_type,
    gpu_hours,
    gpu_hours_observed,
    gpu_hours_requested,
    workloads
from usage_gpu_hours_daily
where usage_date >= cast($start as date)
    and usage_date < cast($end as date)
order by all
