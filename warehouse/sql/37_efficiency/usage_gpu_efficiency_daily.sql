-- GPU-hours held and GPU-hours worked, per UTC day, cluster, department, project, submitter and
-- workload type.
--
-- Definition: allocated_gpu_hours is usage_gpu_hours_daily's measure (Running time x GPUs held,
-- from workload_gpu_intervals), cut at every UTC hour. Each piece is weighted by the workload's
-- mean utilisation in that hour (workload_gpu_utilisation_hourly); a piece whose hour has no
-- sample (a run that started seconds before the hour ended) takes the workload's mean over all
-- its samples. utilised_gpu_hours = sum of allocation x utilisation; unused_gpu_hours = the rest;
-- idle_gpu_hours = allocated GPU-hours of workload-hours under 5% utilisation (usage_idle_workloads'
-- line). A workload with no metrics at all counts in allocated_gpu_hours and
-- gpu_hours_without_metrics, not in utilised/unused/idle, so efficiency is over measured hours only.
-- Names are the ones on the workload (its latest snapshot).
create or replace view usage_gpu_efficiency_daily as

with intervals as (
    select
        *,
        timezone('UTC', started_at) as utc_start,
        timezone('UTC', ended_at) as utc_end
    from workload_gpu_intervals
),

pieces as (
    select
        intervals.*,
        greatest(utc_start, hour_start) as piece_start,
        least(utc_end, hour_start + interval 1 hour) as piece_end
    from intervals,
        unnest(generate_series(date_trunc('hour', utc_start), utc_end, interval 1 hour)) as hours(hour_start)
),

hourly as (
    select workload_id, timezone('UTC', hour_start) as hour_utc, mean_utilisation
    from workload_gpu_utilisation_hourly
    where mean_utilisation is not null
),

overall as (
    select workload_id, sum(mean_utilisation * samples) / sum(samples) as mean_utilisation
    from workload_gpu_utilisation_hourly
    where samples > 0
    group by all
),

scored as (
    select
        pieces.*,
        pieces.gpus * date_diff('microsecond', pieces.piece_start, pieces.piece_end) / 3600e6 as gpu_hours,
        coalesce(hourly.mean_utilisation, overall.mean_utilisation) as utilisation
    from pieces
    left join hourly
        on hourly.workload_id = pieces.workload_id
        and hourly.hour_utc = date_trunc('hour', pieces.piece_start)
    left join overall on overall.workload_id = pieces.workload_id
    where pieces.piece_end > pieces.piece_start
)

select
    cast(piece_start as date) as usage_date,
    cluster_id,
    department_id,
    department_name,
    project_id,
    project_name,
    submitted_by,
    workload_type,
    sum(gpu_hours) as allocated_gpu_hours,
    coalesce(sum(gpu_hours * utilisation / 100.0), 0) as utilised_gpu_hours,
    coalesce(sum(gpu_hours * (1 - utilisation / 100.0)), 0) as unused_gpu_hours,
    coalesce(sum(gpu_hours) filter (where utilisation < 5), 0) as idle_gpu_hours,
    coalesce(sum(gpu_hours) filter (where utilisation is null), 0) as gpu_hours_without_metrics,
    sum(gpu_hours * utilisation / 100.0) / nullif(sum(gpu_hours) filter (where utilisation is not null), 0)
        as efficiency,
    count(distinct workload_id) as workloads
from scored
group by all
