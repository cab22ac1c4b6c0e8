-- Every stored version of every org unit with the time range it was valid: the one place the
-- slowly-changing-dimension rules live (the *_history views join their own columns onto it).
--
-- A version is a row whose row_hash differs from the unit's previous row (a crash and rerun may
-- store the same version twice; consecutive repeats collapse). valid_from is when the version
-- became true: for the first version the unit's created_at (we cannot know older names); for a
-- later one its updated_at when that falls between the previous observation and this one (the
-- API told us when it changed), else the observation time. valid_to is the next version's
-- valid_from; NULL while the version is current. A tombstone (is_deleted) starts when the unit was
-- first seen missing.
create or replace view org_unit_versions as

with units as (
    select 'clusters' as kind, cluster_id as unit_id, name, row_hash, observed_at, created_at, updated_at, is_deleted, source_file
    from src_clusters
    union all
    select 'departments', department_id, name, row_hash, observed_at, created_at, updated_at, is_deleted, source_file
    from src_departments
    union all
    select 'projects', project_id, name, row_hash, observed_at, created_at, updated_at, is_deleted, source_file
    from src_projects
    union all
    select 'node_pools', node_pool_id, name, row_hash, observed_at, created_at, updated_at, is_deleted, source_file
    from src_node_pools
    union all
    select 'users', user_id, username, row_hash, observed_at, created_at, updated_at, is_deleted, source_file
    from src_users
),

ordered as (
    select
        *,
        lag(row_hash) over unit_order as previous_hash
    from units
    window unit_order as (partition by kind, unit_id order by observed_at, source_file)
),

changes as (
    select
        *,
        lag(observed_at) over unit_order as previous_observed_at,
        row_number() over unit_order as version_number
    from ordered
    where previous_hash is distinct from row_hash
    window unit_order as (partition by kind, unit_id order by observed_at, source_file)
),

valid_from as (
    select
        *,
        case
            when previous_observed_at is null then least(coalesce(created_at, observed_at), observed_at)
            when not is_deleted and updated_at > previous_observed_at and updated_at <= observed_at then updated_at
            else observed_at
        end as valid_from
    from changes
),

final as (
    select
        kind,
        unit_id,
        version_number,
        name,
        row_hash,
        observed_at,
        valid_from,
        lead(valid_from) over (partition by kind, unit_id order by version_number) as valid_to,
        is_deleted
    from valid_from
)

select
    *,
    valid_to is null and not is_deleted as is_current
from final
