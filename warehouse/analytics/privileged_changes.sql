-- Changes to anything that grants or shapes access in [$start, $end), one row each.
select
    event_time, event_id, change_category, action, entity_type, entity_id, entity_name, subject,
    subject_type, source_ip, result, http_status_code, succeeded
from compliance_privileged_changes
where event_time >= $start and event_time < $end
order by event_time, event_id
