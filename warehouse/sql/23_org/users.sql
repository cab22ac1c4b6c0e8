-- The current version of every user the API still lists (history: users_history).
create or replace view users as

select * exclude (valid_to, is_current, is_deleted)
from users_history
where is_current
