"""sam.password-grant: no app signs users in with the resource-owner password grant (SPEC §1).

Fails for each (app, user) with a successful sign-in in the look-back window whose
`authenticationProtocol` is `ropc`: an application handling a user's password directly, which
cannot do MFA and is exactly the app+user automation the Secure Application Model replaces.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from checks.support.graph_json import equals_ignoring_case, text
from checks.support.references import (
    PARTNER_SECURITY_FAQ,
    SECURE_APP_MODEL,
    SECURE_APPLICATION_MODEL_REQUIREMENT,
    SIGN_IN_RESOURCE,
)
from checks.support.sign_in_evidence import (
    FindingWording,
    SignInMatch,
    SubjectEvidence,
    app_id,
    first_of,
    outcome,
    rule_match,
)
from partnerguard.model import (
    CheckContext,
    CheckMetadata,
    CheckOutcome,
    Reference,
    Severity,
    SubjectType,
    TenantSnapshot,
)

METADATA = CheckMetadata(
    id="sam.password-grant",
    title="No app signs users in with their password (ROPC grant)",
    severity=Severity.HIGH,
    rationale=(
        SECURE_APPLICATION_MODEL_REQUIREMENT + " The resource-owner password credentials (ROPC) "
        "grant makes an app send a user's password to Entra ID itself: the app must store the "
        "password, and the sign-in cannot perform MFA. Microsoft recommends against the flow; the "
        "Secure Application Model replaces it with consented, MFA-backed tokens or app-only access."
    ),
    remediation=(
        "1. For each app and user listed, identify the script or integration (Entra admin center > "
        "Monitoring > Sign-in logs, filter by application and user, Authentication protocol = ROPC). "
        "2. Rewrite it to use app-only access with a certificate or federated credential (client "
        "credentials grant) or a managed identity, or - for Partner Center API calls - the Secure "
        "Application Model's MFA-consented refresh token. 3. Remove the stored password, reset the "
        "user's password and, if the account existed only for this automation, disable it. "
        "4. The finding resolves once no such sign-in falls inside the look-back window."
    ),
    # Directory.Read.All: Microsoft's licence check on the sign-in API reads the directory (SPEC §6).
    permissions=("AuditLog.Read.All", "Directory.Read.All"),
    licence="Microsoft Entra ID P1",
    references=(
        PARTNER_SECURITY_FAQ,
        SECURE_APP_MODEL,
        SIGN_IN_RESOURCE,
        Reference(
            "Microsoft identity platform: OAuth 2.0 resource owner password credentials (not compatible with MFA)",
            "https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth-ropc",
        ),
    ),
    evidence_window=True,
)


ROPC = "ropc"


def classify_sign_in(sign_in: Mapping[str, Any]) -> SignInMatch | None:
    """The match when `sign_in` is a successful resource-owner password grant, else None."""
    if not equals_ignoring_case(sign_in, "authenticationProtocol", ROPC):
        return None
    return rule_match(METADATA.id, sign_in, f"{app_id(sign_in)}|{text(sign_in, 'userId')}")


def _wording(subject: SubjectEvidence) -> FindingWording:
    aggregate = subject.latest
    user = first_of((aggregate.user_principal_name, aggregate.user_display_name, aggregate.user_id))
    return FindingWording(
        subject_type=SubjectType.APPLICATION,
        subject_name=first_of((aggregate.app_display_name, aggregate.app_id)),
        detail=(
            f"The app signed in as {user} with the user's password (resource-owner password grant) "
            f"{subject.count} time(s) {subject.seen}: the app holds the password and the sign-in cannot perform MFA."
        ),
    )


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    return outcome(snapshot, context, METADATA, _wording)
