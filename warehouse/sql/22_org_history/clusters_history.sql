-- Every version of every cluster with valid_from / valid_to (UTC; valid_to NULL while current),
-- so a report can use the name a unit had at the time. Rules: org_unit_versions.
create or replace view clusters_history as

select
    units.* exclude (row_hash, observed_at, is_deleted, ingest_run_id, ingested_at, source_file),
    versions.version_number,
    versions.valid_from,
    versions.valid_to,
    versions.is_current,
    units.is_deleted,
    units.observed_at
from org_unit_versions as versions
inner join src_clusters as units
    on versions.kind = 'clusters'
    and units.cluster_id = versions.unit_id
    and units.row_hash = versions.row_hash
    and units.observed_at = versions.observed_at
qualify row_number() over (partition by versions.unit_id, versions.version_number order by units.source_file) = 1
