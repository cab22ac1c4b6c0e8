-- How workloads ended over [$start, $end): one row per workload that reached a final phase
-- (Completed, Failed, Stopped) in the period, plus one row per preemption (a Running phase
-- followed by Pending) that happened in the period, with the workload's type and project.
with phases as (
    select
        workload_id,
        phase,
        started_at,
        lag(phase) over (partition by workload_id order by started_at) as previous_phase
    from workload_phase_history
),

events as (
    select workload_id, phase as outcome, started_at as at
    from phases
    where phase in ('Completed', 'Failed', 'Stopped')
    union all
    select workload_id, 'Preempted' as outcome, started_at as at
    from phases
    where phase = 'Pending' and previous_phase = 'Running'
)

select
    events.at,
    events.outcome,
    events.workload_id,
    workloads.type as workload_type,
    workloads.department_name,
    workloads.project_name,
    workloads.submitted_by
from events
inner join workloads using (workload_id)
where events.at >= $start and events.at < $end
order by events.at, events.workload_id, events.outcome
