-- Export of compliance_entity_changes for one period [$start, $end), in a stable order (event_time, event_id) so the
-- same period always gives the same file. The bounds are bound parameters, never formatted in.
select *
from compliance_entity_changes
where event_time >= $start
    and event_time < $end
order by event_time, event_id
