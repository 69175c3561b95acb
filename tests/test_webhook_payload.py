"""The webhook's v1 document: what it carries, that docs/webhook-payload.schema.json describes
every document PartnerGuard renders, its caps, and the signature a receiver checks."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any

import pytest

from notifiers.email_view import findings_url
from notifiers.webhook_payload import (
    MAX_FINDINGS,
    PAYLOAD_BUDGET,
    SCHEMA,
    render_webhook_payload,
    serialize,
    sign,
    signed_headers,
)
from testbed.webhook_fake import payload_problems
from tests.channel_builders import HOSTILE_NAMES, HUGE, OPERATION_ID, content, digest, health, reminder
from tests.email_checks import PUBLIC_URL, TENANT_ID


def valid(document: dict[str, Any]) -> dict[str, Any]:
    assert payload_problems(document) == []
    # What is sent is what was validated: the bytes parse back to the same document.
    assert json.loads(serialize(document)) == document
    return document


def test_a_digest_document_carries_the_tenant_run_summary_findings_remediation_and_links() -> None:
    document = valid(render_webhook_payload(OPERATION_ID, content(digest(5, resolved=2))))
    assert document["schema"] == SCHEMA == "partnerguard.alert-webhook/v1"
    assert document["idempotency_key"] == OPERATION_ID
    assert document["kind"] == "digest"
    assert document["tenant"] == {"id": TENANT_ID, "name": "Contoso", "role": "customer"}
    assert document["run"] == {"id": "8249061100000-0123456789", "finished": "2026-11-26T06:00:42Z"}
    assert document["summary"] == {
        "new": 5,
        "resolved": 2,
        "still_open": 4,
        "new_by_severity": {"critical": 2, "high": 1, "medium": 1, "low": 1},
        "still_open_by_check": [{"check_id": "mfa.registration", "check_title": "Every user can do MFA", "count": 4}],
    }
    states = [(f["subject_id"], f["state"], f.get("resolution")) for f in document["findings"]]
    assert states[:2] == [("user-00000", "new", None), ("user-00001", "new", None)]
    assert states[5:] == [("gone-0", "resolved", "fixed"), ("gone-1", "resolved", "no longer observed")]
    first = document["findings"][0]
    assert first == {
        "check_id": "mfa.registration",
        "check_title": "Every user can do MFA",
        "severity": "critical",
        "subject_id": "user-00000",
        "subject_type": "user",
        "subject_name": "User 0",
        "detail": "User 0 has no MFA method",
        "state": "new",
    }
    assert document["findings"][5]["resolved_at"] == "2026-11-26T06:00:42Z"
    assert (document["findings_total"], document["truncated"]) == (7, False)
    assert document["remediation"] == [
        {
            "check_id": "mfa.registration",
            "check_title": "Every user can do MFA",
            "remediation": "Register a strong method.",
        }
    ]
    assert document["links"] == {
        "findings": findings_url(PUBLIC_URL, TENANT_ID),
        "dashboard": f"{PUBLIC_URL}/api/dashboard",
    }


def test_without_a_public_url_the_links_are_null() -> None:
    document = valid(render_webhook_payload(OPERATION_ID, content(digest(), public_url=None)))
    assert document["links"] == {"findings": None, "dashboard": None}


def test_reminder_and_health_documents() -> None:
    document = valid(render_webhook_payload(OPERATION_ID, content(reminder(3))))
    assert (document["kind"], document["run"], document["summary"]) == (
        "reminder",
        None,
        {"open_critical": 3, "interval_hours": 24},
    )
    # Oldest first, each with when it was first seen.
    assert [f["subject_id"] for f in document["findings"]] == ["user-2", "user-1", "user-0"]
    assert {f["state"] for f in document["findings"]} == {"open"}
    assert document["findings"][0]["first_seen"] == "2026-11-23T04:00:42Z"
    assert document["remediation"][0]["check_id"] == "mfa.registration"

    document = valid(render_webhook_payload(OPERATION_ID, content(health())))
    assert (document["kind"], document["tenant"], document["summary"]) == (
        "health",
        None,
        {"stale": 1, "poison": 1, "consent": 1},
    )
    assert [p["kind"] for p in document["problems"]] == ["stale", "poison", "consent"]
    assert document["problems"][1] == {
        "kind": "poison",
        "tenant_id": None,
        "tenant_name": None,
        "detail": "3 messages in partnerguard-scans-poison",
        "since": None,
        "consent_url": None,
    }
    assert "findings" not in document


def test_the_schema_check_can_fail() -> None:
    good = render_webhook_payload(OPERATION_ID, content(digest()))
    for broken in [
        {**good, "kind": "ticket"},
        {**good, "schema": "partnerguard.alert-webhook/v2"},
        {**good, "idempotency_key": "not-a-uuid"},
        {**good, "findings": [{**good["findings"][0], "state": "gone"}]},
        {**good, "findings": [{**good["findings"][-1], "resolution": None, "state": "new"}]},  # a new one resolved?
        {**good, "surprise": 1},
        {key: value for key, value in good.items() if key != "links"},
    ]:
        assert payload_problems(broken), broken


def test_one_document_per_alert() -> None:
    with pytest.raises(ValueError, match="one alert"):
        render_webhook_payload(OPERATION_ID, content(digest(), reminder()))


def test_a_huge_digest_is_capped_at_500_findings_and_says_so() -> None:
    document = valid(render_webhook_payload(OPERATION_ID, content(digest(3000, resolved=200))))
    assert len(document["findings"]) == MAX_FINDINGS
    assert (document["findings_total"], document["truncated"]) == (3200, True)
    assert document["summary"]["new"] == 3000 and document["summary"]["resolved"] == 200  # counts stay whole
    assert {f["state"] for f in document["findings"]} == {"new"}  # the most severe first


@pytest.mark.parametrize("letter", ["A", "界"])
def test_huge_strings_keep_the_document_within_its_budget(letter: str) -> None:
    huge = letter * 4000
    document = valid(
        render_webhook_payload(OPERATION_ID, content(digest(3000, name=huge, subject_name=huge, detail=huge)))
    )
    assert len(serialize(document)) <= PAYLOAD_BUDGET
    assert document["truncated"] and 0 < len(document["findings"]) < MAX_FINDINGS
    assert max(len(f["subject_name"]) for f in document["findings"]) <= 200
    assert document["tenant"]["name"].endswith("…") and len(document["tenant"]["name"]) == 200


@pytest.mark.parametrize("hostile", HOSTILE_NAMES)
def test_tenant_text_is_one_inert_line(hostile: str) -> None:
    document = valid(render_webhook_payload(OPERATION_ID, content(digest(1, name=hostile, subject_name=hostile))))
    for value in (document["tenant"]["name"], document["findings"][0]["subject_name"]):
        assert not any(ch in value for ch in "\n\r\u2028\u202e"), value
    assert document["findings"][0]["subject_id"] == "user-00000"  # ids untouched
    assert HUGE not in json.dumps(document)


def test_the_signature_is_hmac_sha256_over_the_timestamp_and_the_exact_body() -> None:
    body = serialize(render_webhook_payload(OPERATION_ID, content(digest())))
    headers = signed_headers("s3cret-value", 1_764_000_000, body, operation_id=OPERATION_ID, kind="digest")
    expected = hmac.new(b"s3cret-value", b"1764000000." + body, hashlib.sha256).hexdigest()
    assert headers == {
        "Content-Type": "application/json",
        "X-PartnerGuard-Signature": f"t=1764000000,v1={expected}",
        "Idempotency-Key": OPERATION_ID,
        "X-PartnerGuard-Event": "digest",
    }
    # Any change to the body, the timestamp or the secret changes it.
    assert sign("s3cret-value", 1_764_000_000, body + b" ") != expected
    assert sign("s3cret-value", 1_764_000_001, body) != expected
    assert sign("s3cret-valuf", 1_764_000_000, body) != expected


DOC = (Path(__file__).resolve().parents[1] / "docs" / "alerts.md").read_text(encoding="utf-8")


def fenced(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, re.DOTALL)


def test_the_documented_example_is_a_valid_document() -> None:
    # The page has other JSON (ALERT_ROUTES_BY_TENANT): the example is the one naming the schema.
    (example,) = [block for block in fenced("json") if f'"schema": "{SCHEMA}"' in block]
    document = json.loads(example)
    assert payload_problems(document) == []
    # It has every key a rendered digest has: the page does not lag behind the code.
    rendered = render_webhook_payload(OPERATION_ID, content(digest(1, resolved=1)))
    assert set(document) == set(rendered)
    assert set(document["findings"][1]) == set(rendered["findings"][1])


def test_the_documented_verification_accepts_a_real_call_and_refuses_tampering() -> None:
    (snippet,) = fenced("python")
    scope: dict[str, Any] = {}
    exec(compile(snippet, "docs/alerts.md", "exec"), scope)  # noqa: S102 (our own documentation)
    verify = scope["verify"]
    body = serialize(render_webhook_payload(OPERATION_ID, content(digest())))
    header = signed_headers("shared-secret", 1_764_000_000, body, operation_id=OPERATION_ID, kind="digest")[
        "X-PartnerGuard-Signature"
    ]
    assert verify("shared-secret", header, body, now=1_764_000_100)
    assert not verify("shared-secret", header, body + b" ", now=1_764_000_100)
    assert not verify("other-secret", header, body, now=1_764_000_100)
    assert not verify("shared-secret", header, body, now=1_764_000_301)  # stale: a replay
    assert not verify("shared-secret", "", body, now=1_764_000_100)
