-- The current version of every department the API still lists (history: departments_history).
create or replace view departments as

select * exclude (valid_to, is_current, is_deleted)
from departments_history
where is_current
