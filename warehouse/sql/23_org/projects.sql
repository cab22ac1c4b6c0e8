-- The current version of every project the API still lists (history: projects_history).
create or replace view projects as

select * exclude (valid_to, is_current, is_deleted)
from projects_history
where is_current
