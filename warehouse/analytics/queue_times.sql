-- Time spent queued: every Pending span of a workload that ended (the workload was scheduled, or
-- gave up waiting) in [$start, $end), with its length in seconds. A span still pending is left
-- out: its length is not known yet.
select
    history.ended_at,
    history.workload_id,
    workloads.type as workload_type,
    workloads.department_name,
    workloads.project_name,
    history.duration_seconds as queued_seconds
from workload_phase_history as history
inner join workloads using (workload_id)
where history.phase = 'Pending'
    and history.ended_at >= $start
    and history.ended_at < $end
order by history.ended_at, history.workload_id
