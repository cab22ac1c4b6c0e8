-- One stored consumption report beside our GPU-hours (usage_crosscheck_runai_report), largest
-- relative difference first within each level: what `runai-ledger crosscheck usage` prints.
select
    level,
    unit_id,
    unit_name,
    department_id,
    our_gpu_hours,
    runai_gpu_hours,
    difference,
    relative_difference
from usage_crosscheck_runai_report
where report_id = $report_id
order by level desc, relative_difference desc, unit_id
