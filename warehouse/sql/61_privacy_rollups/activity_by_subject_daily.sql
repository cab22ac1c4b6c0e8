-- Per UTC day and pseudonymous subject: how much they did, how much failed, from how many addresses.
--
-- Built on audit_events_pseudonymised, so it carries no raw identity and refuses queries the same
-- way when no pseudonym key is configured. Useful for usage trends and outlier hunting ("one
-- account failing hundreds of times from many addresses") without handing analysts the names.
create or replace view activity_by_subject_daily as

with events as (
    select * from audit_events_pseudonymised
),

daily as (
    select
        event_date,
        subject_pseudonym,
        any_value(subject_type) as subject_type,
        count(*) as events,
        count_if(lower(result) = 'failed' or http_status_code >= 400) as failed_events,
        count(distinct source_ip_pseudonym) as source_ips,
        count(distinct action) as actions,
        count(distinct entity_type) as entity_types,
        min(event_time) as first_event_time,
        max(event_time) as last_event_time
    from events
    group by event_date, subject_pseudonym
)

select * from daily
order by event_date, subject_pseudonym
