-- Sign-ins, sign-outs and password resets, with a plain success flag: "who logged in, from where,
-- and which attempts failed".
--
-- Actions are matched ignoring case and separators ('sign-in', 'Sign_In', 'signin'), because
-- enumerations are stored as the API sent them. success is true only when the API reported
-- 'Succeeded' and no HTTP error status; an attempt with a missing result counts as not successful,
-- which is the safe reading for an access review.
create or replace view compliance_sign_ins as

with events as (
    select * from audit_events
),

sign_ins as (
    select *
    from events
    where regexp_replace(lower(action), '[^a-z]', '', 'g') in ('signin', 'signout', 'resetpassword')
),

final as (
    -- Every column of audit_events (whose list is transforms/schemas.py AUDIT_EVENTS, the one
    -- source) but the lineage a reviewer does not need; a column added there shows up here too.
    select
        * exclude (event_id_derived, api_flavour, extra_fields, ingested_at),
        coalesce(lower(result) = 'succeeded' and coalesce(http_status_code < 400, true), false)
            as success
    from sign_ins
)

select * from final
order by event_time, event_id
