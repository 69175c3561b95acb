"""What the Teams and webhook channel tests share: alert contents built by hand (hostile and huge
ones included), a stable operation id, and checks that a text is inert Markdown."""

from __future__ import annotations

import socket
import uuid
from datetime import timedelta

from markdown_it import MarkdownIt

from notifiers.alert_content import AlertContent, AlertPart
from notifiers.digest_email import CheckGuidance, Digest, NewFinding, OpenCount, ResolvedFinding
from notifiers.health_email import HealthAlert, HealthProblem
from notifiers.reminder_email import Reminder
from partnerguard.model import Severity, TenantInfo
from tests.email_checks import PUBLIC_URL, RUN_FINISHED, TENANT_ID, finding_record

AS_OF = RUN_FINISHED + timedelta(minutes=1)
# What a delivery passes: a UUIDv5, the same on every retry of one alert.
OPERATION_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "partnerguard:test-alert"))

# Tenant strings that would be Markdown (a link hiding its target, emphasis, a heading, a list,
# an image, HTML, an Adaptive Cards date function), with the line breaks and controls of the
# email tests' HOSTILE_TEXT.
MARKDOWN_LINK = "[click](https://evil.example)"
HOSTILE_NAMES = [
    MARKDOWN_LINK,
    "**bold** _italic_ ~~gone~~",
    "<img src=x onerror=alert(1)>",
    "# Heading",
    "- item\n- item",
    "1. one\r\n2. two",
    "![x](https://evil.example/p.png)",
    "{{DATE(2017-02-14T06:08:39Z, SHORT)}}",
    "`code` \\*escaped\\* &lt;entity&gt; | table |",
    "evil\nFORGED: line\u202egnp.exe\u2028x",
]
HUGE = "A" * 4000
# Names with punctuation Markdown does not read: shown exactly as written, without a backslash.
ORDINARY_NAMES = ["contoso.com", "user.name@contoso.com", "Jean-Luc", "O'Brien", "v1.2"]

FABRIKAM_ID = "22222222-2222-4333-8444-555555555555"
CONSENT_URL = f"https://login.microsoftonline.com/{FABRIKAM_ID}/adminconsent?client_id=x"


def tenant(name: str = "Contoso", tenant_id: str = TENANT_ID, role: str = "customer") -> TenantInfo:
    return TenantInfo(tenant_id, name, role)


def new_finding(
    index: int, *, name: str = "", detail: str = "", severity: Severity = Severity.CRITICAL, check_title: str = ""
) -> NewFinding:
    return NewFinding(
        check_id="mfa.registration",
        check_title=check_title or "Every user can do MFA",
        subject_id=f"user-{index:05d}",
        subject_type="user",
        subject_name=name or f"User {index}",
        detail=detail or f"User {index} has no MFA method",
        severity=severity,
    )


def digest(
    count: int = 3,
    *,
    name: str = "Contoso",
    subject_name: str = "",
    detail: str = "",
    resolved: int = 1,
    tenant_id: str = TENANT_ID,
) -> Digest:
    """`count` new findings (critical, then high), `resolved` resolved ones, guidance and open counts."""
    severities = [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW]
    new = tuple(
        new_finding(i, name=subject_name, detail=detail, severity=severities[min(i * 4 // max(count, 1), 3)])
        for i in range(count)
    )
    gone = tuple(
        ResolvedFinding(
            check_id="legacy-auth.sign-ins",
            check_title="No legacy sign-ins",
            subject_id=f"gone-{i}",
            subject_type="user",
            subject_name=subject_name or f"Gone {i}",
            detail=detail or "signed in with IMAP",
            severity=Severity.HIGH,
            resolution="no longer observed" if i % 2 else "fixed",
            resolved_at=RUN_FINISHED,
        )
        for i in range(resolved)
    )
    guidance = (CheckGuidance("mfa.registration", "Every user can do MFA", "Register a strong method."),)
    return Digest(
        tenant=tenant(name, tenant_id),
        run_id="8249061100000-0123456789",
        finished=RUN_FINISHED,
        new=new,
        resolved=gone,
        still_open=(OpenCount("mfa.registration", "Every user can do MFA", 4),),
        guidance=guidance if new else (),
    )


def reminder(count: int = 2, *, name: str = "Contoso", subject_name: str = "") -> Reminder:
    records = tuple(
        finding_record(
            "mfa.registration",
            f"user-{i}",
            subject_name or f"User {i}",
            first_seen=RUN_FINISHED - timedelta(days=3, hours=i),
        )
        for i in range(count)
    )
    return Reminder(tenant(name), records, AS_OF, 24)


def health(*, name: str = "Fabrikam", detail: str = "no successful scan since 2026-11-20T06:00:00Z") -> HealthAlert:
    since = RUN_FINISHED - timedelta(days=6)
    return HealthAlert(
        (
            HealthProblem("stale", "11111111-2222-4333-8444-555555555555", name, detail, since),
            HealthProblem("consent", FABRIKAM_ID, name, "AADSTS65001: consent missing", since, consent_url=CONSENT_URL),
            HealthProblem("poison", None, None, "3 messages in partnerguard-scans-poison", None),
        ),
        AS_OF,
    )


def content(*parts: AlertPart, public_url: str | None = PUBLIC_URL) -> AlertContent:
    return AlertContent(tuple(parts), AS_OF, public_url)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_COMMONMARK = MarkdownIt("commonmark")


def markdown_inline(text: str) -> tuple[set[str], str]:
    """How a CommonMark renderer reads `text`: the inline token types it produces and the plain
    text it shows. An inert tenant string produces `text` tokens only."""
    tokens = _COMMONMARK.parse(text)
    kinds = {token.type for token in tokens}
    shown: list[str] = []
    for token in tokens:
        for child in token.children or []:
            kinds.add(child.type)
            if child.type in ("text", "code_inline"):
                shown.append(child.content)
    return kinds, "".join(shown)


# What our own card text may produce: paragraphs of text, and the bold labels we write ourselves.
OWN_MARKDOWN = {"paragraph_open", "paragraph_close", "inline", "text", "strong_open", "strong_close"}
