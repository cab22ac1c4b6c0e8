"""Property tests of the audit normaliser: nothing is lost, and both validation paths agree.

For any mix of valid and broken records, every record is either stored or quarantined, in
order, and the Arrow fast path and the value-by-value slow path give identical results.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.transforms.test_transforms_audit import column, good, norm
from transforms.audit import QuarantinedRecord
from transforms.schemas import AUDIT_EVENTS

# -- property: nothing is lost ---------------------------------------------------------------------
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False), st.text(max_size=8)
)
field_values = st.one_of(
    json_scalars,
    st.lists(json_scalars, max_size=2),
    st.dictionaries(st.text(max_size=4), json_scalars, max_size=2),
)
mutations = st.dictionaries(
    st.sampled_from([*good(), "unknown_key"]), st.one_of(field_values, st.just(...)), max_size=3
)


@st.composite
def mixed_records(draw: st.DrawFn) -> list[Any]:
    out: list[Any] = []
    for i in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["good", "good", "mutated", "not-object"]))
        if kind == "good":
            out.append(good(i))
        elif kind == "mutated":
            out.append(good(i, **draw(mutations)))
        else:
            out.append(draw(st.one_of(json_scalars, st.lists(json_scalars, max_size=3))))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=mixed_records())
def test_every_record_is_stored_or_quarantined(records: list[Any]) -> None:
    batch = norm(records)
    assert batch.table.num_rows + len(batch.quarantined) == len(records)
    assert batch.table.schema.equals(AUDIT_EVENTS, check_metadata=True)
    quarantined = {q.record_index for q in batch.quarantined}
    assert len(quarantined) == len(batch.quarantined)
    kept = [r for i, r in enumerate(records) if i not in quarantined]
    for record, stored_id in zip(kept, column(batch, "event_id"), strict=True):
        if isinstance(record.get("id"), str) and record["id"]:
            assert stored_id == record["id"]
        else:
            assert stored_id.startswith("derived:")
    for i, record in enumerate(records):
        if record == good(i):
            assert i not in quarantined
    assert all(isinstance(q, QuarantinedRecord) and q.reason for q in batch.quarantined)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=mixed_records())
def test_fast_and_slow_paths_agree(records: list[Any]) -> None:
    """A poison record makes Arrow refuse the page, forcing every column onto the Python path."""
    poison = good(
        999, subject=1, tenant_id=True, http_status_code="x", metadata=[1], timestamp="2025-06-02 08:00:00"
    )
    fast, slow = norm(records), norm([*records, poison])
    assert slow.table.slice(0, fast.table.num_rows).equals(fast.table)
    assert slow.table.num_rows == fast.table.num_rows
    assert slow.quarantined[:-1] == fast.quarantined
    assert slow.quarantined[-1].record_index == len(records)
    assert slow.drift == fast.drift
