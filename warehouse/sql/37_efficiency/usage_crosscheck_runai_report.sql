-- Our GPU-hours beside Run:ai's own consumption report, per project and per department, for every
-- report `runai-ledger crosscheck usage` stored (src_runai_consumption_reports).
--
-- Ours: usage_gpu_hours_daily summed over the report's period (whole UTC days). Theirs: the
-- report's gpu_allocation_hours per project; a department's figures are its projects' sums (the
-- department of the report row, else ours). difference = Run:ai - ours; relative_difference =
-- |difference| / the larger of the two (0 when both are 0), which the CLI holds to its tolerance.
create or replace view usage_crosscheck_runai_report as

with reports as (
    select distinct report_id, period_start, period_end
    from src_runai_consumption_reports
),

theirs as (
    select
        report_id,
        project_id,
        max(project_name) as project_name,
        max(department_id) as department_id,
        max(department_name) as department_name,
        sum(gpu_allocation_hours) as runai_gpu_hours
    from src_runai_consumption_reports
    group by all
),

ours as (
    select
        reports.report_id,
        daily.project_id,
        max(daily.project_name) as project_name,
        max(daily.department_id) as department_id,
        max(daily.department_name) as department_name,
        sum(daily.gpu_hours) as our_gpu_hours
    from reports
    inner join usage_gpu_hours_daily as daily
        on daily.usage_date >= cast(timezone('UTC', reports.period_start) as date)
        and daily.usage_date < cast(timezone('UTC', reports.period_end) as date)
    group by all
),

projects as (
    select
        coalesce(theirs.report_id, ours.report_id) as report_id,
        coalesce(theirs.project_id, ours.project_id) as project_id,
        coalesce(theirs.project_name, ours.project_name) as project_name,
        coalesce(theirs.department_id, ours.department_id) as department_id,
        coalesce(theirs.department_name, ours.department_name) as department_name,
        coalesce(ours.our_gpu_hours, 0) as our_gpu_hours,
        coalesce(theirs.runai_gpu_hours, 0) as runai_gpu_hours
    from ours
    full outer join theirs
        on theirs.report_id = ours.report_id
        and theirs.project_id = ours.project_id
),

levels as (
    select
        report_id,
        'project' as level,
        project_id as unit_id,
        project_name as unit_name,
        department_id,
        our_gpu_hours,
        runai_gpu_hours
    from projects
    union all
    select
        report_id,
        'department' as level,
        department_id as unit_id,
        max(department_name) as unit_name,
        department_id,
        sum(our_gpu_hours) as our_gpu_hours,
        sum(runai_gpu_hours) as runai_gpu_hours
    from projects
    group by report_id, department_id
)

select
    levels.report_id,
    reports.period_start,
    reports.period_end,
    levels.level,
    levels.unit_id,
    levels.unit_name,
    levels.department_id,
    levels.our_gpu_hours,
    levels.runai_gpu_hours,
    levels.runai_gpu_hours - levels.our_gpu_hours as difference,
    coalesce(
        abs(levels.runai_gpu_hours - levels.our_gpu_hours)
        / nullif(greatest(abs(levels.our_gpu_hours), abs(levels.runai_gpu_hours)), 0),
        0
    ) as relative_difference
from levels
inner join reports using (report_id)
