"""The credentials of applications and service principals, as the two apps checks see them.

Graph lists a client secret as a `passwordCredential` and a certificate as a `keyCredential`
(https://learn.microsoft.com/en-us/graph/api/resources/passwordcredential,
https://learn.microsoft.com/en-us/graph/api/resources/keycredential). Shapes that need care:

- A SAML signing certificate on a service principal holds a keyCredential with usage `Sign`
  (the private key), usually one with usage `Verify` (the public certificate), and a
  passwordCredential whose keyId is the `Sign` credential's keyId: the password protecting that
  private key. That password is not a client secret (SPEC §1); its certificate stands for it.
- A `Verify` keyCredential that shares a keyId with a password credential exempts nothing:
  only the signing key's password is part of a certificate.
- Managed identities' service principals (servicePrincipalType `ManagedIdentity`) carry
  certificates that Azure issues and rotates itself; the tenant cannot hold or renew them, so
  they are no finding of either check.

Both checks read `app_objects(...)`, so they agree on what a secret and a certificate are.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from checks.support.graph_json import NAME_LIMIT, iso, objects, text, timestamp
from partnerguard.model import CheckOutcome, Finding, Status, SubjectType, Unavailable

JsonObject = Mapping[str, Any]

SIGN = "sign"
MANAGED_IDENTITY = "managedidentity"


class CredentialKind(StrEnum):
    SECRET = "secret"  # noqa: S105 (a kind of credential, not a password)
    CERTIFICATE = "certificate"


@dataclass(frozen=True)
class Owner:
    """The application or service principal holding a credential."""

    object_id: str
    app_id: str
    display_name: str
    subject_type: SubjectType

    @property
    def kind(self) -> str:
        return "application" if self.subject_type is SubjectType.APPLICATION else "service principal"


@dataclass(frozen=True)
class Credential:
    owner: Owner
    kind: CredentialKind
    key_id: str
    display_name: str
    start: datetime | None
    end: datetime | None
    hint: str = ""  # the first characters of a secret, as Graph shows them (never the secret)
    usage: str = ""  # a certificate's Sign / Verify
    thumbprint: str = ""  # a certificate's customKeyIdentifier

    @property
    def subject_id(self) -> str:
        return f"{self.owner.object_id}:{self.key_id}"

    def evidence(self) -> dict[str, Any]:
        evidence: dict[str, Any] = {
            "objectId": self.owner.object_id,
            "appId": self.owner.app_id,
            "objectType": self.owner.subject_type.value,
            "credentialType": self.kind.value,
            "keyId": self.key_id,
            "displayName": self.display_name,
            "startDateTime": iso(self.start),
            "endDateTime": iso(self.end),
        }
        if self.kind is CredentialKind.SECRET:
            evidence["hint"] = self.hint
        else:
            evidence["usage"] = self.usage
            evidence["thumbprint"] = self.thumbprint
        return evidence


def is_managed_identity(item: JsonObject) -> bool:
    return text(item, "servicePrincipalType").lower() == MANAGED_IDENTITY


def _owner(item: JsonObject, subject_type: SubjectType) -> Owner:
    return Owner(
        object_id=text(item, "id") or "unknown-object",
        app_id=text(item, "appId"),
        display_name=text(item, "displayName", NAME_LIMIT),
        subject_type=subject_type,
    )


def _key_id(credential: JsonObject, index: int, kind: CredentialKind) -> str:
    # Graph always sets keyId; a credential without one is still reported, under a stable stand-in.
    return text(credential, "keyId") or f"unknown-{kind.value}-{index}"


def signing_key_ids(service_principal: JsonObject) -> frozenset[str]:
    """keyIds of the keyCredentials with usage Sign: the private keys of SAML signing certificates."""
    return frozenset(
        key_id
        for key in objects(service_principal, "keyCredentials")
        if text(key, "usage").lower() == SIGN and (key_id := text(key, "keyId"))
    )


def secrets_of(item: JsonObject, owner: Owner) -> list[Credential]:
    """The client secrets: every passwordCredential, but a service principal's signing-key password."""
    exempt = signing_key_ids(item) if owner.subject_type is SubjectType.SERVICE_PRINCIPAL else frozenset()
    secrets: list[Credential] = []
    for index, password in enumerate(objects(item, "passwordCredentials")):
        key_id = _key_id(password, index, CredentialKind.SECRET)
        if key_id in exempt:
            continue
        secrets.append(
            Credential(
                owner=owner,
                kind=CredentialKind.SECRET,
                key_id=key_id,
                display_name=text(password, "displayName", NAME_LIMIT),
                start=timestamp(password, "startDateTime"),
                end=timestamp(password, "endDateTime"),
                hint=text(password, "hint", 8),
            )
        )
    return secrets


def certificates_of(item: JsonObject, owner: Owner) -> list[Credential]:
    """Every keyCredential: each is a certificate half with its own keyId and validity."""
    certificates: list[Credential] = []
    for index, key in enumerate(objects(item, "keyCredentials")):
        key_id = _key_id(key, index, CredentialKind.CERTIFICATE)
        usage = text(key, "usage")
        certificates.append(
            Credential(
                owner=owner,
                kind=CredentialKind.CERTIFICATE,
                key_id=key_id,
                display_name=text(key, "displayName", NAME_LIMIT),
                start=timestamp(key, "startDateTime"),
                end=timestamp(key, "endDateTime"),
                usage=usage,
                thumbprint=text(key, "customKeyIdentifier", NAME_LIMIT),
            )
        )
    return certificates


@dataclass(frozen=True)
class AppObjects:
    """The applications and service principals that could be read, and what could not."""

    items: tuple[tuple[JsonObject, Owner], ...]
    missing: tuple[Unavailable, ...]

    def secrets(self) -> Iterator[Credential]:
        for item, owner in self.items:
            yield from secrets_of(item, owner)

    def certificates(self) -> Iterator[Credential]:
        for item, owner in self.items:
            yield from certificates_of(item, owner)

    def outcome(self, findings: Sequence[Finding]) -> CheckOutcome:
        """Pass or fail over what was read; when half could not be read, its findings are
        still shown but the check is `not_assessed` (or `error`) with that half's reason."""
        # One finding per subject: Graph JSON that repeats a keyId (or a password sharing a
        # certificate's keyId) must not become two findings with one key. The first one stays.
        unique: dict[str, Finding] = {}
        for finding in findings:
            unique.setdefault(finding.subject_id, finding)
        ordered = tuple(unique[subject_id] for subject_id in sorted(unique))
        if not self.missing:
            return CheckOutcome(Status.FAIL if ordered else Status.PASS, ordered)
        # An error outranks a missing licence or permission: it makes the run visibly failed.
        missing = next((data for data in self.missing if data.status is Status.ERROR), self.missing[0])
        reason = " ".join(data.reason for data in self.missing)
        return CheckOutcome(missing.status, ordered, reason, missing.reason_code)


def app_objects(
    applications: Sequence[JsonObject] | Unavailable, service_principals: Sequence[JsonObject] | Unavailable
) -> AppObjects:
    items: list[tuple[JsonObject, Owner]] = []
    missing: list[Unavailable] = []
    for collection, subject_type in (
        (applications, SubjectType.APPLICATION),
        (service_principals, SubjectType.SERVICE_PRINCIPAL),
    ):
        if isinstance(collection, Unavailable):
            missing.append(collection)
            continue
        items.extend(
            (item, _owner(item, subject_type))
            for item in collection
            if isinstance(item, Mapping) and not is_managed_identity(item)
        )
    return AppObjects(tuple(items), tuple(missing))
