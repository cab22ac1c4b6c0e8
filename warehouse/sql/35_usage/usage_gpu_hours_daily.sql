-- GPU-hours per UTC day, cluster, department, project, submitter and workload type.
--
-- Definition: for every workload, the time it spent in phase Running (workload_gpu_intervals),
-- split at UTC midnight, times the GPUs it held while running. Project and department names are
-- the ones they had at the time (their *_history versions; a span that crosses a rename is split
-- there too); a unit never synced falls back to the name on the workload. gpu_hours_observed and
-- gpu_hours_requested say how much of gpu_hours rests on an observed allocation and how much on
-- the request of a workload never seen running.
create or replace view usage_gpu_hours_daily as

with intervals as (
    select
        *,
        timezone('UTC', started_at) as utc_start,
        timezone('UTC', ended_at) as utc_end
    from workload_gpu_intervals
),

days as (
    select
        intervals.*,
        greatest(utc_start, day_start) as piece_start,
        least(utc_end, day_start + interval 1 day) as piece_end
    from intervals,
        unnest(generate_series(date_trunc('day', utc_start), utc_end, interval 1 day)) as days(day_start)
),

project_versions as (
    select
        project_id,
        name,
        case when version_number = 1 then '-infinity'::timestamp else timezone('UTC', valid_from) end as version_start,
        coalesce(timezone('UTC', valid_to), 'infinity'::timestamp) as version_end
    from projects_history
),

department_versions as (
    select
        department_id,
        name,
        case when version_number = 1 then '-infinity'::timestamp else timezone('UTC', valid_from) end as version_start,
        coalesce(timezone('UTC', valid_to), 'infinity'::timestamp) as version_end
    from departments_history
),

by_project as (
    select
        days.* exclude (piece_start, piece_end, project_name),
        greatest(days.piece_start, coalesce(pv.version_start, days.piece_start)) as piece_start,
        least(days.piece_end, coalesce(pv.version_end, days.piece_end)) as piece_end,
        coalesce(pv.name, days.project_name) as project_name
    from days
    left join project_versions as pv
        on pv.project_id = days.project_id
        and pv.version_start < days.piece_end
        and pv.version_end > days.piece_start
    where days.piece_end > days.piece_start
),

by_department as (
    select
        by_project.* exclude (piece_start, piece_end, department_name),
        greatest(by_project.piece_start, coalesce(dv.version_start, by_project.piece_start)) as piece_start,
        least(by_project.piece_end, coalesce(dv.version_end, by_project.piece_end)) as piece_end,
        coalesce(dv.name, by_project.department_name) as department_name
    from by_project
    left join department_versions as dv
        on dv.department_id = by_project.department_id
        and dv.version_start < by_project.piece_end
        and dv.version_end > by_project.piece_start
),

pieces as (
    select
        *,
        gpus * date_diff('microsecond', piece_start, piece_end) / 3600e6 as gpu_hours
    from by_department
    where piece_end > piece_start
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
    sum(gpu_hours) as gpu_hours,
    sum(gpu_hours) filter (where gpu_source = 'observed') as gpu_hours_observed,
    sum(gpu_hours) filter (where gpu_source <> 'observed') as gpu_hours_requested,
    count(distinct workload_id) as workloads
from pieces
group by all
