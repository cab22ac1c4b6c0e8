-- One row per recheck run and window: late rows found, stored ids the API no longer returns, sealing.
--
-- `runai-ledger recheck audit` re-pages closed windows and records, per window, the ids the API
-- served (api_ids) against the ids stored for that window before the recheck (stored_before).
-- status is 'clean' (nothing new, nothing missing), 'late_rows' (rows with past timestamps that
-- appeared after the window was synced; now stored), 'missing_from_api' (stored ids the API no
-- longer returns, e.g. past retention) or 'failed' (error says why). sealed is true for a clean
-- window that ended at least the settle period (Settings.seal_after, 1 hour) before the check.
-- Ask "which windows were last found clean?" with
-- `qualify row_number() over (partition by window_start order by checked_at desc) = 1`.
-- A restored backup may hold two copies of a record; the one checked last wins.
create or replace view reconciliation as

with checks as (
    select * from src_reconciliation
),

deduplicated as (
    select *
    from checks
    qualify row_number() over (
        partition by stream, run_id, window_start, window_end
        order by checked_at desc, source_file desc
    ) = 1
),

final as (
    select
        stream,
        run_id,
        window_start,
        window_end,
        checked_at,
        status,
        sealed,
        api_total,
        api_ids,
        stored_before,
        late_rows_added,
        missing_from_api,
        sample_late_ids,
        sample_missing_ids,
        error
    from deduplicated
)

select * from final
order by checked_at, stream, window_start
