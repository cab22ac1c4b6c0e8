-- The latest known state of every workload ever seen, deleted ones included (deleted_at set).
--
-- Built from the snapshots (one row per observed change); observed_at says when this state was
-- last confirmed. total_running_seconds and total_pending_seconds are the API's counters as of
-- that observation (they tick without a state change, so they are not re-stored every run).
-- cluster_name comes from the clusters dimension when it has been synced.
create or replace view workloads as

with latest as (
    select *
    from src_workload_snapshots
    qualify row_number() over (
        partition by workload_id
        order by observed_at desc, ingested_at desc, source_file desc
    ) = 1
),

cluster_names as (
    select cluster_id, name as cluster_name
    from src_clusters
    qualify row_number() over (partition by cluster_id order by observed_at desc) = 1
),

final as (
    select
        latest.workload_id,
        latest.name,
        latest.type,
        latest.category,
        latest.phase,
        latest.phase_message,
        latest.cluster_id,
        cluster_names.cluster_name,
        latest.department_id,
        latest.department_name,
        latest.project_id,
        latest.project_name,
        latest.namespace,
        latest.submitted_by,
        latest.created_at,
        latest.phase_updated_at,
        latest.completed_at,
        latest.deleted_at,
        latest.deleted_at is not null as is_deleted,
        latest.gpu_request_type,
        latest.requested_gpus,
        latest.requested_gpu_memory,
        latest.requested_pods,
        latest.allocated_gpus,
        latest.running_pods,
        latest.total_running_seconds,
        latest.total_pending_seconds,
        latest.current_node_pools,
        latest.priority_class_name,
        latest.source,
        latest.observed_at,
        latest.updated_at
    from latest
    left join cluster_names using (cluster_id)
)

select * from final
