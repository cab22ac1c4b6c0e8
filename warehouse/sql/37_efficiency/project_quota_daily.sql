-- Each project's GPU quota against the GPUs its workloads held, per UTC day, from the quota series
-- (GPU_QUOTA and GPU_ALLOCATION of GET /api/v1/org-unit/projects/{id}/metrics, usage/quota_metrics.py).
--
-- A sample stands for [sample_time, sample_time + resolution_s). hours_over_quota: time the project
-- held more GPUs than its quota (over-quota allocation lives on borrowed, preemptible GPUs);
-- gpu_hours_over_quota: the GPU-hours above the quota. A quota that changed during the day shows as
-- min_quota < max_quota.
create or replace view project_quota_daily as

with samples as (
    select
        unit_id as project_id,
        sample_time,
        max(resolution_s) as resolution_s,
        max(value) filter (where metric = 'GPU_QUOTA') as quota,
        max(value) filter (where metric = 'GPU_ALLOCATION') as allocated
    from src_org_unit_metric_samples
    where unit_kind = 'project'
    group by all
),

daily as (
    select
        cast(timezone('UTC', sample_time) as date) as usage_date,
        project_id,
        min(quota) as min_quota,
        max(quota) as max_quota,
        sum(quota * resolution_s) / nullif(sum(resolution_s) filter (where quota is not null), 0) as mean_quota,
        avg(allocated) as mean_allocated_gpus,
        max(allocated) as peak_allocated_gpus,
        coalesce(sum(quota * resolution_s), 0) / 3600.0 as quota_gpu_hours,
        coalesce(sum(allocated * resolution_s), 0) / 3600.0 as allocated_gpu_hours,
        coalesce(sum(resolution_s) filter (where allocated > quota), 0) / 3600.0 as hours_over_quota,
        coalesce(sum((allocated - quota) * resolution_s) filter (where allocated > quota), 0) / 3600.0
            as gpu_hours_over_quota,
        sum(resolution_s) / 3600.0 as sampled_hours
    from samples
    group by all
)

select
    daily.usage_date,
    daily.project_id,
    projects.name as project_name,
    projects.department_id,
    projects.cluster_id,
    daily.* exclude (usage_date, project_id)
from daily
left join projects using (project_id)
