-- Audit events for usage and behaviour analysis: keyed pseudonyms instead of the subject and the
-- source IP; the raw audit_events view stays for auditors.
--
-- subject_pseudonym and source_ip_pseudonym are HMAC-SHA256 values under RUNAI_LEDGER_PSEUDONYM_KEY,
-- computed in Python at view-build time (warehouse/pseudonyms.py) and joined through _pseudonyms on
-- an unkeyed digest; the key never enters this file. The same key gives the same pseudonym for the
-- same person across builds; a new key gives unrelated ones (docs/privacy.md). An entity_id that
-- names an account (user, application, login, or equal to a subject) becomes that account's
-- pseudonym, the same one it has as a subject.
-- Columns that can carry an identity in free text (entity_name, url, request_id, metadata) are
-- left out. Without a
-- key the view refuses every query with a message that says what to set.
create or replace view audit_events_pseudonymised as

with guard as (
    select
        case
            when keyed then true
            else error(
                'pseudonymised views are off: set RUNAI_LEDGER_PSEUDONYM_KEY and run runai-ledger build-views'
            )
        end as keyed
    from _pseudonym_meta
),

events as (
    select * from audit_events
),

subjects as (
    select identity_sha256, pseudonym from _pseudonyms where kind = 'subject'
),

addresses as (
    select identity_sha256, pseudonym from _pseudonyms where kind = 'source_ip'
),

final as (
    select
        events.event_id,
        events.event_time,
        events.event_date,
        events.tenant_id,
        subjects.pseudonym as subject_pseudonym,
        events.subject_type,
        addresses.pseudonym as source_ip_pseudonym,
        events.action,
        events.http_method,
        events.entity_type,
        -- An id that names an account (a user, an application, a login, or any known subject) is
        -- replaced by that account's pseudonym; other ids (projects, clusters ...) stay.
        coalesce(entity_subjects.pseudonym, events.entity_id) as entity_id,
        events.result,
        events.http_status_code,
        events.cluster_id,
        events.cluster_name
    from events
    cross join guard
    left join subjects on subjects.identity_sha256 = sha256(events.subject)
    left join addresses on addresses.identity_sha256 = sha256(events.source_ip)
    left join subjects as entity_subjects on entity_subjects.identity_sha256 = sha256(events.entity_id)
    where guard.keyed
)

select * from final
order by event_time, event_id
