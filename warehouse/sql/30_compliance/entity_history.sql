-- entity_history(entity_type, entity_id): the change log of one entity, oldest first.
--
-- A table macro so a reviewer can write  select * from entity_history('project', '5')  without
-- knowing how kinds are normalised: the type goes through entity_kind(), so 'Project', 'projects'
-- or 'project' all work, and the id is compared as text (ids are stored as strings).
create or replace macro entity_history(etype, eid) as table
select *
from compliance_entity_changes
where entity_kind = entity_kind(etype)
    and entity_id = cast(eid as varchar)
order by change_seq
