-- The committed watermark per stream (everything before it is durably stored) and how far behind
-- "now" it is.
--
-- hours_behind is computed when the view is read, so it answers "is ingestion keeping up?" at query
-- time. A healthy sync stays roughly one settle lag plus one schedule interval behind; a number that
-- keeps growing means syncs are failing or not running.
create or replace view watermarks as

with state as (
    select * from src_watermarks
),

final as (
    select
        stream,
        watermark,
        updated_at,
        run_id,
        round((epoch(now()) - epoch(watermark)) / 3600.0, 2) as hours_behind
    from state
)

select * from final
order by stream
