-- Records the pipeline refused to store, with the reason and the raw payload.
--
-- record_id pulls the API's "id" out of the raw JSON when it is parseable, so a quarantined record
-- can be matched with what the control plane shows; raw text that is not JSON gives NULL instead of
-- failing the whole query.
create or replace view quarantine as

with quarantined as (
    select * from src_quarantine
),

final as (
    select
        stream,
        run_id,
        window_start,
        window_end,
        page_offset,
        record_index,
        reason,
        case when json_valid(raw) then raw ->> '$.id' end as record_id,
        raw,
        quarantined_at
    from quarantined
)

select * from final
order by quarantined_at, stream, run_id, page_offset, record_index
