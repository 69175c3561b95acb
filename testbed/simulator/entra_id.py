"""The simulator's Microsoft Entra ID: OpenID discovery, the v2.0 token endpoint for the client
credentials grant, an App Service managed-identity endpoint, and bearer-token validation.

One multi-tenant app registration is known. It accepts a client secret, a JWT client assertion
signed by its registered certificate (as MSAL builds it: PS256 with `x5t#S256`, or RS256 with
`x5t`), or a federated assertion issued by the simulator's managed identity for audience
`api://AzureADTokenExchange` (the production chain ManagedIdentityCredential ->
ClientAssertionCredential), or a federated assertion from a trusted external identity provider
(GitHub Actions' OIDC token, as AZURE_FEDERATED_TOKEN_FILE holds it): a federated identity
credential registered on the app names the issuer, the subject and the audiences, and the
token must be signed with that issuer's key and within its lifetime. Errors carry AADSTS codes in
Entra's JSON shape.
Sources:
- https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
- https://learn.microsoft.com/entra/identity-platform/certificate-credentials
- https://learn.microsoft.com/entra/workload-id/workload-identity-federation (how Entra checks an
  external token: the federated credential's issuer, subject and audience, and the issuer's keys)
- https://learn.microsoft.com/graph/api/resources/federatedidentitycredential (issuer, subject,
  audiences: `api://AzureADTokenExchange`)
- https://learn.microsoft.com/azure/devops/pipelines/release/troubleshoot-workload-identity and
  https://learn.microsoft.com/azure/aks/workload-identity-overview (AADSTS70021 "No matching
  federated identity record found for presented assertion. Assertion Issuer: ..." and AADSTS700024
  "Client assertion is not within its valid time range" as Entra answers them)
- https://learn.microsoft.com/entra/identity-platform/reference-error-codes
- https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import NameOID

from testbed.simulator.scenario import TenantScenario

TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MANAGED_IDENTITY_API_VERSION = "2019-08-01"
RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})
# Graph's well-known application id, which Graph names in its WWW-Authenticate challenge.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


@dataclass(frozen=True)
class IssuedToken:
    tenant_id: str
    app_id: str
    expires_at: float


@dataclass(frozen=True)
class FederatedIdentityCredential:
    """A federated identity credential on the app: a token of `issuer` for `subject`, with one of
    `audiences`, is the app's client assertion. `public_key` stands for the issuer's published
    signing key (Entra reads it from the issuer's OpenID configuration; the simulator is told it)."""

    issuer: str
    subject: str
    public_key: PublicKeyTypes
    audiences: tuple[str, ...] = (TOKEN_EXCHANGE_AUDIENCE,)


@dataclass(frozen=True)
class FederatedAssertion:
    """One external federated assertion the token endpoint judged: which tenant, the claims it
    presented, a fingerprint of the token (tells two tokens apart without keeping either) and the
    AADSTS number it was refused with (None: accepted)."""

    tenant_id: str
    issuer: str
    subject: str
    fingerprint: str
    refused_with: int | None


@dataclass(frozen=True)
class AuthResponse:
    status: int
    body: dict[str, Any]
    headers: Mapping[str, str]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _self_signed_certificate(key: rsa.RSAPrivateKey, common_name: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


class EntraAuthority:
    """Issues and validates tokens for the tenants of one simulator."""

    def __init__(
        self,
        tenants: Mapping[str, TenantScenario],
        home_tenant_id: str,
        base_url: Callable[[], str],
        workdir: Path,
        token_lifetime_s: int = 3599,
    ) -> None:
        self._tenants = tenants
        self.home_tenant_id = home_tenant_id
        self._base_url = base_url
        self.token_lifetime_s = token_lifetime_s
        self.client_id = str(uuid.uuid4())
        self.client_secret = secrets.token_urlsafe(30)
        self.managed_identity_client_id = str(uuid.uuid4())
        self.managed_identity_principal_id = str(uuid.uuid4())
        self.identity_header = secrets.token_urlsafe(24)
        self._signing_key = _new_rsa_key()
        self._signing_kid = _b64url(hashlib.sha256(secrets.token_bytes(16)).digest())[:27]
        certificate_key = _new_rsa_key()
        self._certificate = _self_signed_certificate(certificate_key, "PartnerGuard simulator app")
        der = self._certificate.public_bytes(serialization.Encoding.DER)
        self._thumbprints = {
            "x5t": _b64url(hashlib.sha1(der).digest()),  # noqa: S324 - SHA-1 is what x5t is defined as
            "x5t#S256": _b64url(hashlib.sha256(der).digest()),
        }
        self.certificate_path = workdir / "app-certificate.pem"
        self.certificate_path.write_bytes(
            certificate_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            + self._certificate.public_bytes(serialization.Encoding.PEM)
        )
        self._tokens: dict[str, IssuedToken] = {}
        self._lock = threading.Lock()
        self._federated_credentials: list[FederatedIdentityCredential] = []
        self._federated_assertions: list[FederatedAssertion] = []

    # -- the app's federated identity credentials ----------------------------------------------

    def add_federated_credential(self, credential: FederatedIdentityCredential) -> None:
        """Trust `credential.issuer`'s tokens for `credential.subject` as the app's assertion."""
        with self._lock:
            self._federated_credentials.append(credential)

    @property
    def federated_assertions(self) -> list[FederatedAssertion]:
        """Every external federated assertion presented so far, in order."""
        with self._lock:
            return list(self._federated_assertions)

    # -- discovery ---------------------------------------------------------------------------

    @property
    def federated_issuer(self) -> str:
        return f"{self._base_url()}/{self.home_tenant_id}/v2.0"

    def resolve_tenant(self, segment: str) -> TenantScenario | None:
        lowered = segment.lower()
        if lowered in self._tenants:
            return self._tenants[lowered]
        for tenant in self._tenants.values():
            domains = tenant.organization.get("verifiedDomains") or []
            if any(str(domain.get("name", "")).lower() == lowered for domain in domains):
                return tenant
        return None

    def openid_configuration(self, tenant_segment: str, version: str) -> AuthResponse:
        tenant = self.resolve_tenant(tenant_segment)
        if tenant is None:
            return self._error(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant_segment}' not found. Check to make "
                "sure you have the correct tenant ID and are signing into the correct cloud.",
            )
        base = self._base_url()
        tid = tenant.tenant_id
        v2 = version == "v2.0"
        prefix = f"{base}/{tid}"
        body = {
            "token_endpoint": f"{prefix}/oauth2/v2.0/token" if v2 else f"{prefix}/oauth2/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/{tid}/discovery/v2.0/keys" if v2 else f"{base}/common/discovery/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{prefix}/v2.0" if v2 else f"{base}/{tid}/",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{base}/oidc/userinfo",
            "authorization_endpoint": f"{prefix}/oauth2/v2.0/authorize" if v2 else f"{prefix}/oauth2/authorize",
            "device_authorization_endpoint": f"{prefix}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{prefix}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "tid", "oid"],
            "tenant_region_scope": "NA",
            "cloud_instance_name": "simulator.local",
            "cloud_graph_host_name": "graph.simulator.local",
            "msgraph_host": base.split("://", 1)[1],
        }
        return AuthResponse(200, body, {"Cache-Control": "max-age=86400, private"})

    # -- token endpoint ----------------------------------------------------------------------

    def token(self, tenant_segment: str, form: Mapping[str, str], correlation_id: str | None) -> AuthResponse:
        def error(status: int, code: str, number: int, message: str) -> AuthResponse:
            return self._error(status, code, number, message, correlation_id)

        tenant = self.resolve_tenant(tenant_segment)
        if tenant is None:
            return error(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant_segment}' not found. Check to make sure "
                "you have the correct tenant ID and are signing into the correct cloud.",
            )
        grant_type = form.get("grant_type", "")
        if grant_type != "client_credentials":
            return error(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        client_id = form.get("client_id", "").lower()
        if client_id != self.client_id:
            return error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{form.get('client_id', '')}' was not found in the directory "
                f"'{tenant.tenant_id}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant.",
            )
        if not tenant.consented:
            return error(
                400,
                "invalid_client",
                7000229,
                f"The client application {self.client_id} is missing service principal in the tenant "
                f"{tenant.tenant_id}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119",
            )
        credential_error = self._check_credential(tenant, form)
        if credential_error is not None:
            status, code, number, message = credential_error
            return error(status, code, number, message)
        scope_error = self._check_scope(tenant, form.get("scope", ""))
        if scope_error is not None:
            return error(400, "invalid_scope", scope_error[0], scope_error[1])
        access_token = self._issue(tenant)
        return AuthResponse(
            200,
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime_s,
                "ext_expires_in": self.token_lifetime_s,
                "access_token": access_token,
            },
            {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
        )

    def _check_credential(self, tenant: TenantScenario, form: Mapping[str, str]) -> tuple[int, str, int, str] | None:
        secret = form.get("client_secret")
        assertion = form.get("client_assertion")
        if secret is not None:
            if hmac.compare_digest(secret.encode(), self.client_secret.encode()):
                return None
            return (
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                f"secret value, not the client secret ID, for a secret added to app '{self.client_id}'.",
            )
        if assertion is None:
            return (
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            return (
                400,
                "invalid_request",
                50027,
                f"The client_assertion_type must be '{CLIENT_ASSERTION_TYPE}'.",
            )
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return (401, "invalid_client", 50027, "JWT token is invalid or malformed.")
        if header.get("kid") == self._signing_kid:
            return self._check_federated_assertion(assertion)
        try:
            presented = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return (401, "invalid_client", 50027, "JWT token is invalid or malformed.")
        # The app signs its own assertions (iss = sub = its client id); any other issuer is an
        # external identity provider, judged against the app's federated identity credentials.
        if str(presented.get("iss", "")).lower() == self.client_id:
            return self._check_certificate_assertion(tenant, header, assertion)
        refusal = self._check_external_assertion(assertion, presented)
        with self._lock:
            self._federated_assertions.append(
                FederatedAssertion(
                    tenant.tenant_id,
                    str(presented.get("iss", "")),
                    str(presented.get("sub", "")),
                    hashlib.sha256(assertion.encode()).hexdigest()[:16],
                    refusal[2] if refusal else None,
                )
            )
        return refusal

    def _check_certificate_assertion(
        self, tenant: TenantScenario, header: Mapping[str, Any], assertion: str
    ) -> tuple[int, str, int, str] | None:
        presented = {name: str(header[name]).rstrip("=") for name in ("x5t", "x5t#S256") if name in header}
        if not presented or any(self._thumbprints[name] != value for name, value in presented.items()):
            return (
                401,
                "invalid_client",
                700027,
                f"The certificate with identifier used to sign the client assertion is not registered on "
                f"application. [Reason - The key was not found., Thumbprint of key used by client: "
                f"'{next(iter(presented.values()), '')}']",
            )
        audience = f"{self._base_url()}/{tenant.tenant_id}/oauth2/v2.0/token"
        try:
            claims = jwt.decode(
                assertion,
                self._certificate.public_key(),  # type: ignore[arg-type]
                algorithms=["PS256", "RS256"],
                audience=[audience, f"{self._base_url()}/{tenant.tenant_id}/v2.0"],
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            return (401, "invalid_client", 700024, "Client assertion is not within its valid time range.")
        except jwt.InvalidAudienceError:
            return (
                401,
                "invalid_client",
                70021,
                f"Client assertion audience claim does not match Realm issuer '{audience}'.",
            )
        except jwt.PyJWTError:
            return (401, "invalid_client", 700027, "Client assertion failed signature validation.")
        if str(claims.get("iss", "")).lower() != self.client_id or str(claims.get("sub", "")).lower() != self.client_id:
            return (
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )
        return None

    def _check_federated_assertion(self, assertion: str) -> tuple[int, str, int, str] | None:
        try:
            claims = jwt.decode(
                assertion,
                self._signing_key.public_key(),
                algorithms=["RS256"],
                audience=TOKEN_EXCHANGE_AUDIENCE,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            return (401, "invalid_client", 700024, "Client assertion is not within its valid time range.")
        except jwt.InvalidAudienceError:
            return (
                401,
                "invalid_client",
                700212,
                "No matching federated identity record found for presented assertion audience.",
            )
        except jwt.PyJWTError:
            return (401, "invalid_client", 700027, "Client assertion failed signature validation.")
        if claims["iss"] != self.federated_issuer or claims["sub"] != self.managed_identity_principal_id:
            return (
                401,
                "invalid_client",
                700213,
                f"No matching federated identity record found for presented assertion subject "
                f"'{claims['sub']}'. Please check your federated identity credential Subject, Audience and "
                "Issuer against the presented assertion.",
            )
        return None

    def _check_external_assertion(
        self, assertion: str, presented: Mapping[str, Any]
    ) -> tuple[int, str, int, str] | None:
        """Entra's workload identity federation: the issuer's key and the token's lifetime, then a
        federated identity credential whose issuer, subject and audience all match."""
        issuer, subject, audience = (presented.get(claim) for claim in ("iss", "sub", "aud"))
        no_match = (
            400,
            "invalid_request",
            70021,
            f"No matching federated identity record found for presented assertion. Assertion Issuer: "
            f"'{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: '{audience}'.",
        )
        with self._lock:
            credentials = [c for c in self._federated_credentials if c.issuer == issuer]
        if not credentials:
            return no_match  # an issuer the app does not trust: its keys are never even fetched
        try:
            # The issuer's key (one per issuer: every credential of an issuer names the same one).
            jwt.decode(
                assertion,
                credentials[0].public_key,  # type: ignore[arg-type]
                algorithms=["RS256", "ES256"],
                options={"require": ["exp", "aud", "iss", "sub"], "verify_aud": False},
            )
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
            return (401, "invalid_client", 700024, "Client assertion is not within its valid time range.")
        except jwt.MissingRequiredClaimError:
            return (401, "invalid_client", 50027, "JWT token is invalid or malformed.")
        except jwt.PyJWTError:
            return (401, "invalid_client", 700027, "Client assertion failed signature validation.")
        audiences = {audience} if isinstance(audience, str) else set(audience or ())
        if any(c.subject == subject and audiences & set(c.audiences) for c in credentials):
            return None
        return no_match

    def _check_scope(self, tenant: TenantScenario, scope: str) -> tuple[int, str] | None:
        scopes = [part for part in scope.split() if part not in RESERVED_SCOPES]
        if not scopes:
            return (900144, "The request body must contain the following parameter: 'scope'.")
        expected = f"{self._base_url()}/.default"
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            return (
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows must have a "
                "scope value with /.default suffixed to the resource identifier (application ID URI).",
            )
        if scopes[0] != expected:
            resource = scopes[0][: -len("/.default")]
            return (
                500011,
                f"The resource principal named {resource} was not found in the tenant named "
                f"{tenant.display_name}. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant.",
            )
        return None

    def _issue(self, tenant: TenantScenario) -> str:
        now = int(time.time())
        expires = now + self.token_lifetime_s
        claims = {
            "aud": self._base_url(),
            "iss": f"{self._base_url()}/{tenant.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": expires,
            "appid": self.client_id,
            "idtyp": "app",
            "tid": tenant.tenant_id,
            "oid": str(uuid.uuid5(uuid.UUID(tenant.tenant_id), self.client_id)),
            "ver": "1.0",
            "uti": secrets.token_urlsafe(16),
        }
        if tenant.roles:
            # The application permissions consented in the tenant; Entra omits the claim when
            # there are none (https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference).
            claims["roles"] = sorted(tenant.roles)
        token = jwt.encode(claims, self._signing_key, algorithm="RS256", headers={"kid": self._signing_kid})
        with self._lock:
            self._tokens[token] = IssuedToken(tenant.tenant_id, self.client_id, float(expires))
        return token

    # -- Graph bearer tokens -----------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> IssuedToken | str:
        """The token's binding, or the message of Graph's 401 InvalidAuthenticationToken."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return "Access token is empty."
        token = authorization[len("bearer ") :].strip()
        with self._lock:
            issued = self._tokens.get(token)
        if issued is None:
            return "Access token validation failure. Invalid audience."
        if issued.expires_at <= time.time():
            return "Lifetime validation failed, the token is expired."
        return issued

    def expire_tokens(self) -> None:
        """Make every issued token expired, so the next Graph call answers 401 (tests of refresh)."""
        with self._lock:
            self._tokens = {token: IssuedToken(i.tenant_id, i.app_id, 0.0) for token, i in self._tokens.items()}

    # -- App Service managed identity ------------------------------------------------------

    def managed_identity_token(self, params: Mapping[str, str], headers: Mapping[str, str]) -> AuthResponse:
        def failure(status: int, message: str) -> AuthResponse:
            return AuthResponse(
                status, {"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())}, {}
            )

        presented = headers.get("x-identity-header", "")
        if not hmac.compare_digest(presented.encode(), self.identity_header.encode()):
            return failure(401, "The X-IDENTITY-HEADER header is missing or invalid.")
        if params.get("api-version") != MANAGED_IDENTITY_API_VERSION:
            return failure(400, f"Unsupported api-version; use {MANAGED_IDENTITY_API_VERSION}.")
        requested = params.get("client_id") or params.get("principal_id") or params.get("object_id")
        if requested is None or requested.lower() not in (
            self.managed_identity_client_id,
            self.managed_identity_principal_id,
        ):
            return failure(400, "No Managed Identity found for specified ClientId/ResourceId/PrincipalId.")
        resource = params.get("resource", "")
        if resource.rstrip("/") != TOKEN_EXCHANGE_AUDIENCE:
            return failure(400, f"The simulator's managed identity issues tokens only for {TOKEN_EXCHANGE_AUDIENCE}.")
        now = int(time.time())
        expires = now + 24 * 3600
        claims = {
            "aud": TOKEN_EXCHANGE_AUDIENCE,
            "iss": self.federated_issuer,
            "sub": self.managed_identity_principal_id,
            "oid": self.managed_identity_principal_id,
            "azp": self.managed_identity_client_id,
            "tid": self.home_tenant_id,
            "iat": now,
            "nbf": now,
            "exp": expires,
        }
        assertion = jwt.encode(claims, self._signing_key, algorithm="RS256", headers={"kid": self._signing_kid})
        return AuthResponse(
            200,
            {
                "access_token": assertion,
                "expires_on": str(expires),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": self.managed_identity_client_id,
            },
            {},
        )

    # -- errors ------------------------------------------------------------------------------

    def _error(
        self, status: int, error: str, number: int, message: str, correlation_id: str | None = None
    ) -> AuthResponse:
        trace_id = str(uuid.uuid4())
        correlation = correlation_id or str(uuid.uuid4())
        timestamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return AuthResponse(
            status,
            {
                "error": error,
                "error_description": f"AADSTS{number}: {message} Trace ID: {trace_id} "
                f"Correlation ID: {correlation} Timestamp: {timestamp}",
                "error_codes": [number],
                "timestamp": timestamp,
                "trace_id": trace_id,
                "correlation_id": correlation,
                "error_uri": f"{self._base_url()}/error?code={number}",
            },
            {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
        )
