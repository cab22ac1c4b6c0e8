-- Workloads that held GPUs at under 5% utilisation for more than an hour, with who submitted them:
-- one row per idle stretch (consecutive samples under 5%, none missing in between).
--
-- A sample stands for [sample_time, sample_time + resolution_s); samples exist only while the
-- workload runs (holds its GPUs), so a stretch of them is time the GPUs were held and idle.
-- Utilisation is the mean over the workload's GPUs: an 8-GPU job using one GPU (12%) is not idle
-- here; usage_gpu_efficiency_daily counts its unused hours.
create or replace view usage_idle_workloads as

with utilisation as (
    select workload_id, sample_time, avg(value) as utilisation, max(resolution_s) as resolution_s
    from src_workload_metric_samples
    where metric = 'GPU_UTILIZATION'
    group by all
),

allocation as (
    select workload_id, sample_time, max(value) as gpus
    from src_workload_metric_samples
    where metric = 'GPU_ALLOCATION'
    group by all
),

idle as (
    -- Consecutive idle samples share an island: their slot number minus their rank is constant.
    select
        utilisation.*,
        allocation.gpus,
        cast(epoch(utilisation.sample_time) as bigint) // utilisation.resolution_s
        - row_number() over (partition by utilisation.workload_id order by utilisation.sample_time) as island
    from utilisation
    left join allocation using (workload_id, sample_time)
    where utilisation.utilisation < 5 and coalesce(allocation.gpus, 1) > 0
),

stretches as (
    select
        workload_id,
        island,
        min(sample_time) as idle_from,
        max(sample_time + to_seconds(resolution_s)) as idle_until,
        sum(resolution_s) / 3600.0 as idle_hours,
        sum(resolution_s * coalesce(gpus, 0)) / 3600.0 as idle_gpu_hours,
        max(gpus) as gpus,
        avg(utilisation) as mean_utilisation
    from idle
    group by all
)

select
    stretches.workload_id,
    workloads.name as workload_name,
    workloads.type as workload_type,
    workloads.submitted_by,
    workloads.cluster_id,
    workloads.department_id,
    workloads.department_name,
    workloads.project_id,
    workloads.project_name,
    workloads.phase,
    stretches.idle_from,
    stretches.idle_until,
    stretches.idle_hours,
    stretches.gpus,
    stretches.idle_gpu_hours,
    stretches.mean_utilisation
from stretches
left join workloads using (workload_id)
where stretches.idle_hours > 1
