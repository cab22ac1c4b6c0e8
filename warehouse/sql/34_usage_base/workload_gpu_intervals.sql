-- Every span of time a workload spent in phase Running, with the GPUs it held and where that
-- number comes from: the base of every GPU-hours view.
--
-- Spans come from the phase history. A span still open is counted up to what the last workloads
-- sync knows: the server time of that sync (ingest_runs.window_end), or the workload's completion
-- or deletion if the history has not caught up yet. GPUs: allocatedResources describes the
-- present (a stopped workload holds nothing), so the allocation observed by a sync *during* the
-- span is used (gpu_source 'observed'); a workload never seen running (it ran entirely between
-- two syncs) is counted with what it requested (gpu_source 'requested').
create or replace view workload_gpu_intervals as

with as_of as (
    select max(window_end) as synced_until
    from src_ingest_runs
    where stream = 'workloads' and status in ('committed', 'partial')
),

running as (
    select workload_id, started_at, ended_at
    from workload_phase_history
    where phase = 'Running'
),

bounded as (
    select
        running.workload_id,
        running.started_at,
        case
            when running.ended_at is not null then running.ended_at
            else least(
                coalesce(as_of.synced_until, workloads.observed_at),
                coalesce(workloads.completed_at, 'infinity'::timestamptz),
                coalesce(workloads.deleted_at, 'infinity'::timestamptz)
            )
        end as ended_at,
        running.ended_at is null as still_running,
        workloads.cluster_id,
        workloads.department_id,
        workloads.department_name,
        workloads.project_id,
        workloads.project_name,
        workloads.submitted_by,
        workloads.type as workload_type,
        workloads.requested_gpus
    from running
    inner join workloads using (workload_id)
    cross join as_of
),

observed as (
    select
        bounded.workload_id,
        bounded.started_at,
        snapshots.allocated_gpus
    from bounded
    inner join src_workload_snapshots as snapshots
        on snapshots.workload_id = bounded.workload_id
        and snapshots.phase = 'Running'
        and snapshots.allocated_gpus > 0
        and snapshots.observed_at >= bounded.started_at
        and snapshots.observed_at <= bounded.ended_at
    qualify row_number() over (
        partition by bounded.workload_id, bounded.started_at
        order by snapshots.observed_at desc
    ) = 1
)

select
    bounded.*,
    coalesce(observed.allocated_gpus, bounded.requested_gpus, 0) as gpus,
    case
        when observed.allocated_gpus is not null then 'observed'
        when bounded.requested_gpus is not null then 'requested'
        else 'unknown'
    end as gpu_source
from bounded
left join observed using (workload_id, started_at)
where bounded.ended_at > bounded.started_at
