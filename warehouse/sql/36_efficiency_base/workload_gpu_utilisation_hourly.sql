-- What each workload's GPUs did, per UTC hour: GPUs allocated, mean / p95 / max utilisation (percent,
-- the mean over the workload's GPUs at each instant) and GPU memory in use, from the stored metric
-- samples (usage/workload_metrics.py). samples and sampled_hours say how much of the hour the
-- samples cover (a sample stands for resolution_s seconds); an hour without samples has no row.
create or replace view workload_gpu_utilisation_hourly as

with instants as (
    -- One value per workload, metric and instant: per-GPU series (labels) are averaged.
    select
        workload_id,
        metric,
        sample_time,
        avg(value) as value,
        max(resolution_s) as resolution_s
    from src_workload_metric_samples
    group by all
),

hourly as (
    select
        workload_id,
        date_trunc('hour', timezone('UTC', sample_time)) as hour_utc,
        max(value) filter (where metric = 'GPU_ALLOCATION') as gpus_allocated,
        avg(value) filter (where metric = 'GPU_UTILIZATION') as mean_utilisation,
        quantile_cont(value, 0.95) filter (where metric = 'GPU_UTILIZATION') as p95_utilisation,
        max(value) filter (where metric = 'GPU_UTILIZATION') as max_utilisation,
        avg(value) filter (where metric = 'GPU_MEMORY_USAGE_BYTES') as mean_memory_bytes,
        max(value) filter (where metric = 'GPU_MEMORY_USAGE_BYTES') as max_memory_bytes,
        count(*) filter (where metric = 'GPU_UTILIZATION') as samples,
        coalesce(sum(resolution_s) filter (where metric = 'GPU_UTILIZATION'), 0) / 3600.0 as sampled_hours
    from instants
    group by all
)

select
    timezone('UTC', hourly.hour_utc) as hour_start,
    hourly.workload_id,
    workloads.name as workload_name,
    workloads.type as workload_type,
    workloads.cluster_id,
    workloads.department_id,
    workloads.department_name,
    workloads.project_id,
    workloads.project_name,
    workloads.submitted_by,
    hourly.gpus_allocated,
    hourly.mean_utilisation,
    hourly.p95_utilisation,
    hourly.max_utilisation,
    hourly.mean_memory_bytes,
    hourly.max_memory_bytes,
    hourly.samples,
    hourly.sampled_hours
from hourly
left join workloads using (workload_id)
