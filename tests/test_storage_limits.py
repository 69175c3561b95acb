"""Size limits and batching, without a storage account: what the store sends must fit Azure."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partnerguard.model import (
    CheckMetadata,
    CheckOutcome,
    CheckResult,
    Finding,
    Severity,
    Status,
    SubjectType,
    TenantInfo,
)
from partnerguard.storage.batching import delete, plan_batches, upsert
from partnerguard.storage.keys import utf16_units
from partnerguard.storage.limits import (
    MAX_BATCH_BYTES,
    MAX_DETAIL_UNITS,
    MAX_EVIDENCE_CHARS,
    MAX_NAME_UNITS,
    LimitExceeded,
    cap_json_object,
    cap_text,
    check_entity,
    entity_bytes,
    join_chunks,
    split_chunks,
    to_json,
    wire_bytes,
)
from partnerguard.storage.sanitize import storable_results, storable_subject_id, storable_tenant

HOSTILE = "\u202e<script>alert(1)</script>\x00\x1b[31m'\"&\u200f" + "\U0001f4a3"


@given(st.text(max_size=3000), st.integers(min_value=2, max_value=2000))
def test_cap_text_respects_utf16_units(text: str, limit: int) -> None:
    capped = cap_text(text, limit)
    assert utf16_units(capped) <= limit
    if utf16_units(text) <= limit:
        assert capped == text
    else:
        assert capped.endswith("…")
        assert text.startswith(capped[:-1])


def test_cap_text_counts_astral_characters_twice_and_replaces_lone_surrogates() -> None:
    capped = cap_text("\U0001f600" * 100, 11)
    assert capped == "\U0001f600" * 5 + "…"
    assert cap_text("a\ud800b", 10) == "a\ufffdb"


def test_small_evidence_is_kept_as_json_reads_it() -> None:
    moment = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert cap_json_object({"when": moment, "ids": ("a", "b"), "n": 1}) == {
        "when": "2025-01-02T03:04:05+00:00",
        "ids": ["a", "b"],
        "n": 1,
    }


@given(st.dictionaries(st.text(max_size=20), st.text(max_size=4000) | st.integers(), max_size=30))
def test_evidence_is_capped_with_a_marker(evidence: dict[str, object]) -> None:
    capped = cap_json_object(evidence, max_chars=8000)
    assert len(to_json(capped)) <= 8000
    if len(to_json(evidence)) > 8000:
        assert capped["truncated"] is True
        assert all(capped[key] == evidence[key] for key in capped if key != "truncated")
    else:
        assert capped == json.loads(json.dumps(evidence))


def test_chunks_round_trip() -> None:
    text = to_json({"checks": ["x" * 100_000]})
    props = split_chunks("checks", text)
    assert props["checks_chunks"] == 4
    assert all(utf16_units(v) <= 32 * 1024 for v in props.values() if isinstance(v, str))
    assert join_chunks("checks", props) == text


def test_entity_limits_are_enforced() -> None:
    check_entity({"PartitionKey": "p", "RowKey": "r", "text": "a" * 32 * 1024})
    with pytest.raises(LimitExceeded, match="64 KiB"):
        check_entity({"PartitionKey": "p", "RowKey": "r", "text": "a" * (32 * 1024 + 1)})
    big = {"PartitionKey": "p", "RowKey": "r", **{f"p{i}": "a" * 30_000 for i in range(20)}}
    assert entity_bytes(big) > 1024 * 1024
    with pytest.raises(LimitExceeded, match="1 MiB"):
        check_entity(big)


def test_batches_hold_one_partition_and_at_most_100_operations() -> None:
    operations = [upsert({"PartitionKey": f"p{i % 3}", "RowKey": str(i)}) for i in range(1000)]
    batches = plan_batches(operations)
    assert all(len(batch) <= 100 for batch in batches)
    assert all(len({op[1]["PartitionKey"] for op in batch}) == 1 for batch in batches)
    assert sum(len(batch) for batch in batches) == 1000
    assert len(batches) == 3 * 4  # 334/333/333 per partition: four transactions each


def test_batches_are_cut_by_size() -> None:
    operations = [
        upsert({"PartitionKey": "p", "RowKey": str(i), "a": "x" * 30_000, "b": "y" * 30_000}) for i in range(100)
    ]
    batches = plan_batches(operations)
    assert len(batches) > 1
    for batch in batches:
        assert sum(wire_bytes(op[1]) for op in batch) <= MAX_BATCH_BYTES


def test_a_row_is_written_once_per_transaction() -> None:
    batches = plan_batches([upsert({"PartitionKey": "p", "RowKey": "r", "n": 1}), delete("p", "r")])
    assert len(batches) == 2


def test_oversized_entities_fail_before_anything_is_sent() -> None:
    with pytest.raises(LimitExceeded):
        plan_batches([upsert({"PartitionKey": "p", "RowKey": "r", "text": "a" * 40_000})])


METADATA = CheckMetadata("mfa.registration", "Users are MFA capable", Severity.HIGH, "why", "fix", (), None)


def test_results_are_capped_before_they_are_stored() -> None:
    finding = Finding(
        subject_id="x" * 10_000,
        subject_type=SubjectType.USER,
        subject_name=HOSTILE * 1000,
        detail=HOSTILE * 2000,
        severity=Severity.HIGH,
        evidence={"blob": "y" * 100_000, "small": 1},
    )
    duplicate = Finding(finding.subject_id, SubjectType.USER, "second", "", Severity.LOW)
    outcome = CheckOutcome(Status.FAIL, (finding, duplicate), evidence={"huge": "z" * 50_000})
    [result] = storable_results([CheckResult(METADATA, outcome)])
    [stored] = result.outcome.findings
    assert utf16_units(stored.subject_name) <= MAX_NAME_UNITS
    assert utf16_units(stored.detail) <= MAX_DETAIL_UNITS
    assert stored.subject_name.startswith("\u202e<script>")  # kept as data, escaped by renderers
    assert stored.evidence == {"small": 1, "truncated": True}
    assert len(to_json(result.outcome.evidence)) <= MAX_EVIDENCE_CHARS
    assert stored.subject_id == storable_subject_id(finding.subject_id) != finding.subject_id
    assert storable_subject_id("x" * 10_001) != stored.subject_id


def test_a_check_may_appear_once_per_run() -> None:
    result = CheckResult(METADATA, CheckOutcome(Status.PASS))
    with pytest.raises(ValueError, match="twice"):
        storable_results([result, result])


def test_tenant_names_are_capped() -> None:
    tenant = storable_tenant(TenantInfo("t", HOSTILE * 100, "partner"))
    assert utf16_units(tenant.name) <= 256
