-- The current version of every node pool the API still lists (history: node_pools_history).
create or replace view node_pools as

select * exclude (valid_to, is_current, is_deleted)
from node_pools_history
where is_current
