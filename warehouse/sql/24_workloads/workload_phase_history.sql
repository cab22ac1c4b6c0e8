-- Every phase a workload went through, with when it started and ended (UTC).
--
-- From the PhaseUpdate records of GET /api/v1/workloads/{id}/history, which the API returns in no
-- documented order: they are ordered here by their own timestamps. ended_at is the next phase's
-- start; NULL for the phase the workload is still in (as far as the last sync knows).
create or replace view workload_phase_history as

with records as (
    select *
    from src_workload_history
    where record_type = 'PhaseUpdate'
    qualify row_number() over (partition by workload_id, row_hash order by ingested_at, source_file) = 1
),

final as (
    select
        workload_id,
        phase,
        phase_message,
        record_time as started_at,
        lead(record_time) over (partition by workload_id order by record_time, row_hash) as ended_at
    from records
)

select
    *,
    date_diff('millisecond', started_at, ended_at) / 1000.0 as duration_seconds
from final
