-- Two independent streams checked against each other: every workload the audit log says was
-- created, next to what the workloads API showed us, and every workload the API shows as created
-- inside the audited period. status: matched | in_audit_not_in_workloads (a workload the API
-- never listed: the workloads sync is behind, or the API lost it) | in_workloads_not_in_audit (a
-- creation the audit log lacks, e.g. a workload submitted outside the control plane) | differs
-- (name or submitter disagree).
--
-- Workload entity types are the workload kinds the audit log uses (training, workspace,
-- inference, distributed, ...); a successful create carries the new workload's id.
create or replace view workload_audit_crosscheck as

with audited as (
    select
        entity_id as workload_id,
        min(event_time) as audit_created_at,
        any_value(entity_name) as audit_name,
        any_value(subject) as audit_subject,
        any_value(entity_type) as audit_entity_type
    from audit_events
    where lower(action) = 'create'
        and result in ('Succeeded', 'Success')
        and entity_id is not null
        and regexp_replace(lower(entity_type), '[^a-z]', '', 'g')
        in ('training', 'workspace', 'inference', 'distributed', 'distributedinference', 'workload')
    group by entity_id
),

audited_period as (
    select min(event_time) as first_event, max(event_time) as last_event
    from audit_events
),

joined as (
    select
        coalesce(audited.workload_id, workloads.workload_id) as workload_id,
        audited.audit_entity_type,
        audited.audit_name,
        workloads.name,
        audited.audit_subject,
        workloads.submitted_by,
        audited.audit_created_at,
        workloads.created_at,
        workloads.phase,
        workloads.deleted_at,
        case
            when workloads.workload_id is null then 'in_audit_not_in_workloads'
            when audited.workload_id is null then 'in_workloads_not_in_audit'
            when audited.audit_name is distinct from workloads.name
                or audited.audit_subject is distinct from workloads.submitted_by then 'differs'
            else 'matched'
        end as status
    from audited
    full outer join workloads using (workload_id)
    cross join audited_period
    where audited.workload_id is not null
        or workloads.created_at between audited_period.first_event and audited_period.last_event
)

select * from joined
