-- Kubernetes events of every workload (Scheduled, Pulled, Started, Killing, ...).
--
-- From GET /api/v1/workloads/{id}/events (asked oldest first); an event seen by several syncs is
-- kept once (its id, or its content when the API sent no id).
create or replace view workload_events as

select
    workload_id,
    event_id,
    created_at,
    type,
    reason,
    message,
    source,
    cluster_id,
    involved_kind,
    involved_name,
    involved_namespace,
    observed_at
from src_workload_events
qualify row_number() over (
    partition by workload_id, coalesce(event_id, row_hash)
    order by ingested_at, source_file
) = 1
