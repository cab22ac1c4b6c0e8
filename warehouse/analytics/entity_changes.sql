-- Creates, updates and deletes of any entity in [$start, $end), one row each, with its place in
-- the entity's whole change log (change_seq counts from the entity's first change ever stored).
select
    event_time, event_id, entity_kind, entity_type, entity_id, entity_name, change_seq, action,
    subject, result
from compliance_entity_changes
where event_time >= $start and event_time < $end
order by event_time, event_id
