-- entity_kind(entity_type): one canonical name per kind of entity, e.g. 'access_rule'.
--
-- Why: the audit log's entity_type is free text, and control-plane versions spell the same thing
-- differently ('AccessRule', 'access_rule', 'access-rule', 'accessrules'; 'Applications', 'app',
-- 'service-account'). Compliance views group and filter on this one macro so a new spelling is
-- handled in one place. The lookup key is the type lower-cased, stripped of everything but letters
-- and digits, without a plural 's'. A type not in the lookup keeps its compact form without the
-- plural stripping (so 'Node-Group' and 'node_group' agree on 'nodegroup', while 'status' stays
-- 'status'): nothing unknown is lumped into a known kind.
create or replace macro entity_kind(entity_type) as
coalesce(
    map {
        'accessrule': 'access_rule',
        'rolebinding': 'access_rule',
        'role': 'role',
        'user': 'user',
        'localuser': 'user',
        'ssouser': 'user',
        'application': 'application',
        'app': 'application',
        'serviceaccount': 'application',
        'setting': 'setting',
        'tenantsetting': 'setting',
        'department': 'department',
        'project': 'project',
        'cluster': 'cluster',
        'nodepool': 'node_pool'
    }[regexp_replace(regexp_replace(lower(entity_type), '[^a-z0-9]', '', 'g'), 's$', '')],
    nullif(regexp_replace(lower(entity_type), '[^a-z0-9]', '', 'g'), '')
)
