-- The change log of every entity: each create/update/delete in order, numbered 1..n per entity,
-- with the action and time of the change before it. Filter it with WHERE entity_id = ? (or use the
-- entity_history(type, id) macro).
--
-- An entity is (entity_kind, entity_id), not entity_id alone: Run:ai gives projects and departments
-- small numeric ids, so project 5 and department 5 are different things. Changes are ordered by
-- event_time, then event_id, so two changes logged in the same microsecond still get a stable
-- order. Failed attempts are part of the log (see result), because "someone tried to delete it"
-- belongs in an entity's history. Events without an entity_id cannot be attributed and are left
-- out here; they remain in audit_events.
create or replace view compliance_entity_changes as

with events as (
    select * from audit_events
),

changes as (
    select
        *,
        entity_kind(entity_type) as entity_kind
    from events
    where entity_id is not null
        and lower(action) in ('create', 'update', 'delete')
),

sequenced as (
    select
        entity_kind,
        entity_type,
        entity_id,
        entity_name,
        row_number() over entity_order as change_seq,
        event_time,
        event_id,
        action,
        subject,
        subject_type,
        result,
        http_status_code,
        lag(action) over entity_order as previous_action,
        lag(event_time) over entity_order as previous_event_time,
        metadata
    from changes
    window entity_order as (partition by entity_kind, entity_id order by event_time, event_id)
)

select * from sequenced
order by entity_kind, entity_id, change_seq
