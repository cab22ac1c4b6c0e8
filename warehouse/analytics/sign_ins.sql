-- Sign-ins, sign-outs and password resets in [$start, $end), one row each.
select event_time, event_date, subject, subject_type, source_ip, action, result, http_status_code, success
from compliance_sign_ins
where event_time >= $start and event_time < $end
order by event_time, event_id
