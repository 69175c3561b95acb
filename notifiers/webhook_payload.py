"""What an alert says to a PSA tool or an automation: one signed, versioned JSON document.

ALERT_WEBHOOK_URL receives one POST per alert (a run's digest, a reminder, the monitor's health
problems). The document is `partnerguard.alert-webhook/v1`, described by the JSON Schema in
docs/webhook-payload.schema.json and by docs/alerts.md. Within v1, fields may be added, never
removed or changed in meaning; a receiver ignores what it does not know.

**Idempotency.** `idempotency_key` (also the `Idempotency-Key` header) is the delivery's
operation id: a UUIDv5 of the alert, the same on every retry of the same alert. Delivery is
at-least-once (a timeout after the receiver took the call is retried), so a receiver drops a
repeat by remembering the keys it handled.

**Signature.** `X-PartnerGuard-Signature: t=<unix seconds>,v1=<hex>`, where `<hex>` is
HMAC-SHA256 keyed with ALERT_WEBHOOK_SECRET over the ASCII `<t>.` followed by the exact body
bytes (the scheme Stripe and Slack use, so receivers have ready code). The timestamp lets a
receiver refuse a replayed call (docs/alerts.md suggests 5 minutes); it is taken when the call
is sent, so a retry carries a fresh one.

**Size.** A document lists at most `MAX_FINDINGS` findings (the most severe new ones first,
then the resolved ones) or health problems and, whatever that cap, stays within `PAYLOAD_BUDGET` (512 KB) by listing
fewer; `truncated` and `findings_total` then say so, and the summary's counts stay complete.
Receivers commonly cap request bodies at 1 MB (nginx's default `client_max_body_size`, in front
of many self-hosted PSA tools and automation endpoints), so half of that leaves room for
encoding differences and a proxy's additions.

**Tenant text.** Strings a tenant controls are capped and their control and bidirectional
characters made visible (`notifiers.email_view.clip`, as in the emails), so a display name cannot
start a new line in a ticket title; a receiver still escapes them for its own output (HTML,
Markdown), as for any data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any, Literal

from checks import CHECK_IDS
from notifiers.alert_content import AlertContent, AlertPart
from notifiers.catalogue_text import catalogue_entry
from notifiers.digest_email import Digest
from notifiers.email_view import (
    DETAIL_LIMIT,
    ID_LIMIT,
    NAME_LIMIT,
    REMEDIATION_LIMIT,
    api_url,
    clip,
    findings_url,
)
from notifiers.health_email import HEALTH_KINDS, HealthAlert
from notifiers.reminder_email import Reminder, ordered
from partnerguard.model import Severity, TenantInfo, iso

SCHEMA = "partnerguard.alert-webhook/v1"
MAX_FINDINGS = 500
PAYLOAD_BUDGET = 512 * 1024
# The listing lengths tried, longest first, until the document fits the budget.
_LISTING_STEPS = (MAX_FINDINGS, 250, 100, 50, 20, 0)
URL_LIMIT = 2000

SIGNATURE_HEADER = "X-PartnerGuard-Signature"
EVENT_HEADER = "X-PartnerGuard-Event"
IDEMPOTENCY_HEADER = "Idempotency-Key"

AlertKind = Literal["digest", "reminder", "health"]
_SEVERITIES = [s.value for s in sorted(Severity, key=lambda s: -s.rank)]


def alert_kind(part: AlertPart) -> AlertKind:
    if isinstance(part, Digest):
        return "digest"
    if isinstance(part, HealthAlert):
        return "health"
    return "reminder"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 keyed with `secret` over `<timestamp>.<body>` (the `v1` signature)."""
    return hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, timestamp: int, body: bytes, *, operation_id: str, kind: AlertKind) -> dict[str, str]:
    """The HTTP headers of one webhook call whose body is exactly `body`."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: f"t={timestamp},v1={sign(secret, timestamp, body)}",
        IDEMPOTENCY_HEADER: operation_id,
        EVENT_HEADER: kind,
    }


def serialize(document: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact UTF-8 JSON."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- the document ----------------------------------------------------------------------------


def _tenant(tenant: TenantInfo) -> dict[str, str]:
    return {
        "id": clip(tenant.id, ID_LIMIT),
        "name": clip(tenant.name or tenant.id, NAME_LIMIT),
        "role": "partner" if tenant.role == "partner" else "customer",
    }


def _remediation(check_id: str, title: str, remediation: str) -> dict[str, str]:
    return {
        "check_id": clip(check_id, ID_LIMIT),
        "check_title": clip(title, NAME_LIMIT),
        "remediation": clip(remediation, REMEDIATION_LIMIT),
    }


def _finding(
    *,
    check_id: str,
    check_title: str,
    severity: str | None,
    subject_id: str,
    subject_type: str,
    subject_name: str,
    detail: str,
    state: str,
    **extra: str | None,
) -> dict[str, Any]:
    return {
        "check_id": clip(check_id, ID_LIMIT),
        "check_title": clip(check_title, NAME_LIMIT),
        "severity": severity if severity in _SEVERITIES else None,
        "subject_id": clip(subject_id, ID_LIMIT),
        "subject_type": clip(subject_type, 40),
        "subject_name": clip(subject_name, NAME_LIMIT),
        "detail": clip(detail, DETAIL_LIMIT),
        "state": state,
        **extra,
    }


def _by_severity(severities: Iterable[str | None]) -> dict[str, int]:
    counts = Counter(severities)
    return {severity: counts[severity] for severity in _SEVERITIES}


def _links(public_url: str | None, tenant_id: str | None) -> dict[str, str | None]:
    return {
        "findings": findings_url(public_url, tenant_id) if tenant_id else None,
        "dashboard": api_url(public_url, "/api/dashboard"),
    }


def _digest(digest: Digest, listed: int, public_url: str | None) -> dict[str, Any]:
    new = [
        _finding(
            check_id=f.check_id,
            check_title=f.check_title,
            severity=f.severity.value,
            subject_id=f.subject_id,
            subject_type=f.subject_type,
            subject_name=f.subject_name,
            detail=f.detail,
            state="new",
        )
        for f in digest.new
    ]
    resolved = [
        _finding(
            check_id=r.check_id,
            check_title=r.check_title,
            severity=r.severity.value if r.severity else None,
            subject_id=r.subject_id,
            subject_type=r.subject_type,
            subject_name=r.subject_name,
            detail=r.detail,
            state="resolved",
            resolution=r.resolution,
            resolved_at=iso(r.resolved_at) if r.resolved_at else None,
        )
        for r in digest.resolved
    ]
    findings = new + resolved
    return {
        "tenant": _tenant(digest.tenant),
        "run": {"id": clip(digest.run_id, ID_LIMIT), "finished": iso(digest.finished)},
        "summary": {
            "new": len(digest.new),
            "resolved": len(digest.resolved),
            "still_open": digest.total_still_open,
            "new_by_severity": _by_severity(f.severity.value for f in digest.new),
            "still_open_by_check": [
                {"check_id": clip(c.check_id, ID_LIMIT), "check_title": clip(c.title, NAME_LIMIT), "count": c.count}
                for c in digest.still_open
            ],
        },
        "findings": findings[:listed],
        "findings_total": len(findings),
        "truncated": len(findings) > listed,
        "remediation": [_remediation(g.check_id, g.title, g.remediation) for g in digest.guidance],
        "links": _links(public_url, digest.tenant.id),
    }


def _reminder(reminder: Reminder, listed: int, public_url: str | None) -> dict[str, Any]:
    records = ordered(reminder.findings)
    findings = []
    for record in records:
        title, _ = catalogue_entry(record.check_id)
        findings.append(
            _finding(
                check_id=record.check_id,
                check_title=title,
                severity=record.severity,
                subject_id=record.subject_id,
                subject_type=record.subject_type,
                subject_name=record.subject_name,
                detail=record.detail,
                # A reminder lists findings still waiting for someone: new in their run, or open since.
                state="new" if record.state == "new" else "open",
                first_seen=iso(record.first_seen) if record.first_seen else None,
            )
        )
    checks = list(dict.fromkeys(r.check_id for r in records))
    return {
        "tenant": _tenant(reminder.tenant),
        "run": None,
        "summary": {
            "open_critical": len(records),
            "interval_hours": reminder.interval_hours,
        },
        "findings": findings[:listed],
        "findings_total": len(findings),
        "truncated": len(findings) > listed,
        "remediation": [
            _remediation(check_id, *catalogue_entry(check_id)) for check_id in checks if check_id in CHECK_IDS
        ],
        "links": _links(public_url, reminder.tenant.id),
    }


def _health(alert: HealthAlert, listed: int, public_url: str | None) -> dict[str, Any]:
    order = {kind: index for index, kind in enumerate(HEALTH_KINDS)}
    problems = sorted(
        alert.problems,
        key=lambda p: (order[p.kind], p.since is None, p.since.timestamp() if p.since else 0.0, p.tenant_id or ""),
    )
    counts = Counter(p.kind for p in problems)
    return {
        "tenant": None,
        "run": None,
        "summary": {kind: counts[kind] for kind in HEALTH_KINDS},
        "problems": [
            {
                "kind": p.kind,
                "tenant_id": clip(p.tenant_id, ID_LIMIT) if p.tenant_id else None,
                "tenant_name": clip(p.tenant_name or p.tenant_id, NAME_LIMIT) if p.tenant_id else None,
                "detail": clip(p.detail, DETAIL_LIMIT),
                "since": iso(p.since) if p.since else None,
                "consent_url": clip(p.consent_url, URL_LIMIT) if p.consent_url else None,
            }
            for p in problems[:listed]
        ],
        "problems_total": len(problems),
        "truncated": len(problems) > listed,
        "links": {"findings": None, "dashboard": api_url(public_url, "/api/dashboard")},
    }


def render_webhook_payload(operation_id: str, content: AlertContent) -> dict[str, Any]:
    """The v1 document of the one alert `content` carries (the webhook takes one per call)."""
    if len(content.parts) != 1:
        raise ValueError(f"a webhook call carries one alert, got {len(content.parts)}")
    (part,) = content.parts
    head = {"schema": SCHEMA, "idempotency_key": operation_id, "kind": alert_kind(part), "as_of": iso(content.as_of)}
    for listed in _LISTING_STEPS:
        if isinstance(part, Digest):
            document = {**head, **_digest(part, listed, content.public_url)}
        elif isinstance(part, HealthAlert):
            # Every customer stale at once (the app's credential expired) is hundreds of problems.
            document = {**head, **_health(part, listed, content.public_url)}
        else:
            document = {**head, **_reminder(part, listed, content.public_url)}
        if len(serialize(document)) <= PAYLOAD_BUDGET:
            break
    return document
