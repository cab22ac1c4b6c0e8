-- The current version of every cluster the API still lists (history: clusters_history).
create or replace view clusters as

select * exclude (valid_to, is_current, is_deleted)
from clusters_history
where is_current
