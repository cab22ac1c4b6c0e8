-- The biggest GPU consumers per UTC month: departments, projects and submitters ranked by
-- GPU-hours (rank 1 = most), with their share of the month's total.
create or replace view usage_top_consumers as

with consumers as (
    -- One pass over the monthly view (each reference to it would plan the whole usage chain again).
    select
        usage_month,
        consumer.kind as consumer_kind,
        consumer.id as consumer_id,
        consumer.name as consumer_name,
        gpu_hours
    from usage_gpu_hours_monthly,
        unnest([
            {'kind': 'department', 'id': department_id, 'name': department_name},
            {'kind': 'project', 'id': project_id, 'name': project_name},
            {'kind': 'user', 'id': submitted_by, 'name': submitted_by}
        ]) as consumers(consumer)
),

totals as (
    select
        usage_month,
        consumer_kind,
        consumer_id,
        max(consumer_name) as consumer_name,
        sum(gpu_hours) as gpu_hours
    from consumers
    group by all
)

select
    *,
    rank() over (partition by usage_month, consumer_kind order by gpu_hours desc) as rank,
    gpu_hours / sum(gpu_hours) over (partition by usage_month, consumer_kind) as share
from totals
