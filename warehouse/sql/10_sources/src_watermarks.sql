-- The committed watermark of each stream, read from the small JSON state files _state/<stream>.json.
--
-- Why read the state files and not a table: the watermark lives beside the data it describes and
-- is written by the pipeline only after that data is durable (runai_extract/state.py). Reading it
-- here lets one query compare "what is committed" with "what is stored". Timestamps are written as
-- ISO-8601 with a Z and read as text first, so a malformed file fails loudly on the cast instead of
-- being guessed at. The glob is a placeholder that build.py replaces with a quoted SQL string
-- literal of the absolute lake location; with no state file yet, build.py substitutes a typed
-- empty relation.
create or replace view src_watermarks as

with source as (
    select *
    from read_json(
        {{ state_glob }},
        columns = {stream: 'VARCHAR', watermark: 'VARCHAR', updated_at: 'VARCHAR', run_id: 'VARCHAR'},
        format = 'auto',
        filename = true
    )
),

renamed as (
    select
        cast(stream as varchar) as stream,
        cast(watermark as timestamptz) as watermark,
        cast(updated_at as timestamptz) as updated_at,
        cast(run_id as varchar) as run_id,
        cast(filename as varchar) as source_file
    from source
)

select * from renamed
