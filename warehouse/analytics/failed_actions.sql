-- Failed actions in [$start, $end), one row each (compliance_failed_actions has the definition).
select
    event_time, event_date, subject, subject_type, action, entity_type, entity_name, entity_id,
    result, http_status_code, http_status_class, cluster_name
from compliance_failed_actions
where event_time >= $start and event_time < $end
order by event_time, event_id
