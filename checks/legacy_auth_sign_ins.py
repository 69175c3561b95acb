"""legacy-auth.sign-ins: no user signed in successfully through a legacy client (SPEC §1).

Fails for each (user, client app) with a successful sign-in in the look-back window whose
`clientAppUsed`, compared case-insensitively, is neither "Browser" nor "Mobile Apps and Desktop
clients" (nor empty): IMAP4, POP3, Authenticated SMTP, Exchange ActiveSync, Other clients, ...
Evidence that legacy authentication is not only allowed but used.
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
    FindingWording,
    SignInMatch,
    SubjectEvidence,
    outcome,
    rule_match,
)
from partnerguard.model import CheckContext, CheckMetadata, CheckOutcome, Severity, SubjectType, TenantSnapshot

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
    client_app = text(sign_in, "clientAppUsed")
    if not client_app or client_app.casefold() in MODERN_CLIENT_APPS:
        return None
    return rule_match(METADATA.id, sign_in, f"{text(sign_in, 'userId')}|{client_app.lower()}")


def _wording(subject: SubjectEvidence) -> FindingWording:
    return FindingWording(
        subject_type=SubjectType.USER,
        subject_name=subject.user_name,
        detail=(
            f"{subject.count} successful sign-in(s) through the legacy client '{subject.latest.client_app_used}' "
            f"{subject.seen}: legacy authentication cannot perform MFA, so the password alone let this user in."
        ),
    )


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    return outcome(snapshot, context, METADATA, _wording)
