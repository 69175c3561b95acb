"""legacy-auth.sign-ins: no user signed in successfully through a legacy client (SPEC §1).

Fails for each (user, client app) with a successful sign-in in the look-back window whose
`clientAppUsed`, compared case-insensitively, is neither "Browser" nor "Mobile Apps and Desktop
clients" (nor empty): IMAP4, POP3, Authenticated SMTP, Exchange ActiveSync, Other clients, ...
Evidence that legacy authentication is not only allowed but used.

The rule (`classify_sign_in`) runs in the collector on each sign-in as it streams in; the check
reads the per-subject aggregates that came of it. Disabled users and guests are reported like
anyone else: a sign-in that succeeded is evidence, whatever the account's state today.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from checks.support.graph_json import text
from checks.support.references import (
    BLOCK_LEGACY_AUTHENTICATION,
    MANDATING_MFA,
    MFA_REQUIREMENT,
    PARTNER_SECURITY_FAQ,
    SIGN_IN_RESOURCE,
    scubagear,
)
from checks.support.sign_in_evidence import (
    SignInMatch,
    SubjectEvidence,
    counts,
    evidence_in_window,
    evidence_of,
    first_of,
    match,
    outcome,
)
from partnerguard.model import CheckContext, CheckMetadata, CheckOutcome, Finding, Severity, SubjectType, TenantSnapshot

METADATA = CheckMetadata(
    id="legacy-auth.sign-ins",
    title="No successful sign-ins through legacy authentication",
    severity=Severity.HIGH,
    rationale=(
        MFA_REQUIREMENT + " A successful legacy-authentication sign-in (IMAP4, POP3, Authenticated "
        "SMTP, Exchange ActiveSync, other clients) is an authentication that did not and could not "
        "perform MFA - the requirement broken in practice, not just in configuration."
    ),
    remediation=(
        "1. For each user and client app listed, find the device or script (Entra admin center > "
        "Monitoring > Sign-in logs, filter by the user and Client app). "
        "2. Move it to modern authentication: Outlook or a current mail app instead of IMAP/POP, "
        "OAuth 2.0 SMTP or Microsoft Graph for sending mail from applications and devices. "
        "3. Block legacy authentication for everyone (see legacy-auth.blocked). 4. The finding "
        "resolves once no such sign-in falls inside the look-back window (SIGNIN_LOOKBACK_HOURS)."
    ),
    # Directory.Read.All: Microsoft's licence check on the sign-in API reads the directory (SPEC §6).
    permissions=("AuditLog.Read.All", "Directory.Read.All"),
    licence="Microsoft Entra ID P1",
    references=(
        PARTNER_SECURITY_FAQ,
        MANDATING_MFA,
        SIGN_IN_RESOURCE,
        BLOCK_LEGACY_AUTHENTICATION,
        scubagear("MS.AAD.1.1v1", "legacy authentication SHALL be blocked"),
    ),
    evidence_window=True,
)


# clientAppUsed values of modern authentication, compared case-insensitively (SPEC §1).
MODERN_CLIENT_APPS = frozenset({"browser", "mobile apps and desktop clients"})


def classify_sign_in(sign_in: Mapping[str, Any]) -> SignInMatch | None:
    """The match when `sign_in` is a successful sign-in through a legacy client, else None."""
    if not counts(sign_in):
        return None
    client_app = text(sign_in, "clientAppUsed")
    if not client_app or client_app.casefold() in MODERN_CLIENT_APPS:
        return None
    return match(METADATA.id, f"{text(sign_in, 'userId')}|{client_app.lower()}", sign_in)


def _finding(subject: SubjectEvidence, context: CheckContext) -> Finding:
    aggregate = subject.latest
    return Finding(
        subject_id=subject.subject_id,
        subject_type=SubjectType.USER,
        subject_name=first_of((aggregate.user_display_name, aggregate.user_principal_name, aggregate.user_id)),
        detail=(
            f"{subject.count} successful sign-in(s) through the legacy client "
            f"'{aggregate.client_app_used}' since {subject.first_seen.date().isoformat()}, the last within "
            f"the past {context.signin_lookback_hours} hours: legacy authentication cannot perform MFA, so "
            "the password alone let this user in."
        ),
        severity=METADATA.severity,
        evidence=evidence_of(subject),
    )


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    # Disabled users and guests are not filtered out: their sign-ins happened.
    return outcome(
        [_finding(subject, context) for subject in evidence_in_window(snapshot, context, METADATA.id)], context
    )
