-- GPU-hours per UTC calendar month, cluster, department, project, submitter and workload type
-- (the daily view summed; same definition and the names units had at the time).
create or replace view usage_gpu_hours_monthly as

select
    cast(date_trunc('month', usage_date) as date) as usage_month,
    cluster_id,
    department_id,
    department_name,
    project_id,
    project_name,
    submitted_by,
    workload_type,
    sum(gpu_hours) as gpu_hours,
    sum(gpu_hours_observed) as gpu_hours_observed,
    sum(gpu_hours_requested) as gpu_hours_requested
from usage_gpu_hours_daily
group by all
