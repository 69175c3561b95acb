"""The settings of SPEC §5, read once from the environment into one typed, validated object.

Every value is checked when it is read: a bad value raises `ConfigError` naming the setting, so
a misconfigured deployment fails at start-up with one clear message instead of half-way through
a scan. Settings that only some commands need (Graph sign-in, email delivery) are validated
where they are used, through the `require_*` methods, so `report` works without Graph settings.

`PARTNERGUARD_CONFIG` may name a settings file (partnerguard/settings_file.py): its values are
read first, a non-empty environment value overrides each, and every value then gets the same
checks, whichever of the two it came from.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from partnerguard.clouds import CLOUDS, Cloud, is_microsoft_authority
from partnerguard.logs import redact
from partnerguard.settings_file import EnvironmentOverFile, SettingsFileError, values_or_raise

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# A user principal name (guests' carry #EXT#): one @, a dotted domain, no separators.
_UPN_RE = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+")
DEVELOPMENT_STORAGE = "UseDevelopmentStorage=true"
DEFAULT_SCAN_SCHEDULE = "0 0 */6 * * *"


class ConfigError(ValueError):
    """A setting is missing or malformed. The message names the setting."""

    def __init__(self, setting: str, problem: str) -> None:
        # A malformed value may still hold a secret (an access key pasted into ACS_ENDPOINT, a SAS
        # signature in a service URI): the message masks them before anything can print it.
        super().__init__(f"{setting}: {redact(problem)}")
        self.setting = setting


def is_guid(value: str) -> bool:
    return bool(GUID_RE.fullmatch(value))


@dataclass(frozen=True)
class StorageSettings:
    """Either a connection string, or identity-based service URIs (the Functions convention
    `<prefix>__tableServiceUri` / `__queueServiceUri` / `__credential` / `__clientId`)."""

    connection_string: str | None = None
    table_service_uri: str | None = None
    queue_service_uri: str | None = None
    managed_identity_client_id: str | None = None


@dataclass(frozen=True)
class AlertRoute:
    """One tenant's alert channels beyond the defaults (ALERT_ROUTES_BY_TENANT)."""

    recipients: tuple[str, ...] = ()
    teams_url: str | None = field(default=None, repr=False)
    webhook_url: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Settings:
    tenants: tuple[str, ...] = ()
    discover_customers: bool = False
    scan_schedule: str = DEFAULT_SCAN_SCHEDULE
    cloud: Cloud = CLOUDS["public"]
    graph_endpoint: str = CLOUDS["public"].graph_endpoint
    authority_host: str = CLOUDS["public"].authority_host
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    client_certificate_path: Path | None = None
    client_certificate_password: str | None = field(default=None, repr=False)
    # A file holding a JWT from an external identity provider that the app trusts through a
    # federated identity credential (GitHub Actions' OIDC token, a Kubernetes service-account
    # token): local and CI use, the name azure-identity and workload identity use. The path, never
    # the token: the file is re-read at each sign-in, since such tokens live minutes.
    federated_token_file: Path | None = None
    # The user-assigned managed identity for Azure services (storage, queues, tables, ACS, App
    # Insights); also the Graph app's federated credential when graph_identity_client_id is unset.
    identity_client_id: str | None = None
    # The user-assigned managed identity used only as the Graph app's federated credential: it holds
    # no Azure role, and a token of the service identity signs in to no customer tenant.
    graph_identity_client_id: str | None = None
    # Extra CA certificates to trust for Graph and sign-in (a TLS-inspecting proxy, a private
    # endpoint, the local tenant simulator). Not in SPEC §5: an extension that test doubles need.
    ca_bundle: Path | None = None
    storage: StorageSettings = StorageSettings(connection_string=DEVELOPMENT_STORAGE)
    alert_recipients: tuple[str, ...] = ()
    alert_recipients_by_tenant: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    alert_reminder_hours: int = 0
    # The other alert channels (issue 17): a Teams Workflows webhook, a signed JSON webhook and
    # its HMAC secret, and per-tenant routes added to these defaults. URLs are secrets (a
    # Workflows URL carries its own signature): never logged, never stored.
    alert_teams_webhook_url: str | None = field(default=None, repr=False)
    alert_webhook_url: str | None = field(default=None, repr=False)
    alert_webhook_secret: str | None = field(default=None, repr=False)
    alert_routes_by_tenant: Mapping[str, AlertRoute] = field(default_factory=dict, repr=False)
    # After an ambiguous send (timeout, reset, 5xx, a lost 202) an email is not sent again before
    # this many seconds have passed and a lookup still answers 404 (partnerguard/alerts/delivery.py).
    alert_settle_seconds: int = 300
    acs_endpoint: str | None = None
    acs_connection_string: str | None = field(default=None, repr=False)
    email_sender: str | None = None
    email_outbox_dir: Path | None = None
    public_url: str | None = None
    signin_lookback_hours: int = 168
    credential_expiry_days: int = 30
    secret_max_lifetime_days: int = 180
    gdap_expiry_days: int = 30
    include_guests: bool = False
    run_retention_days: int = 365
    # Break-glass accounts (SPEC §1), lower-cased object ids or UPNs, as EMERGENCY_ACCESS_ACCOUNTS
    # lists them: the checks may treat them as documented exclusions (issue 18).
    emergency_access_accounts: tuple[str, ...] = ()

    @property
    def instance_discovery(self) -> bool:
        """MSAL instance discovery only works for Microsoft's own authority hosts."""
        return is_microsoft_authority(self.authority_host)

    @property
    def graph_scope(self) -> str:
        return f"{self.graph_endpoint}/.default"

    def role_of(self, tenant_id: str) -> str:
        """`partner` for the app's home tenant (AZURE_TENANT_ID), `customer` for any other."""
        return "partner" if self.tenant_id and tenant_id.lower() == self.tenant_id.lower() else "customer"

    def require_graph(self) -> None:
        """Fail fast unless PartnerGuard can sign in to Graph with these settings."""
        if not self.tenant_id:
            raise ConfigError("AZURE_TENANT_ID", "not set; it names the partner tenant PartnerGuard runs in")
        if not self.client_id:
            raise ConfigError("AZURE_CLIENT_ID", "not set; it names the app PartnerGuard signs in to Graph as")
        if not (
            self.client_secret
            or self.client_certificate_path
            or self.federated_token_file
            or self.graph_assertion_identity
        ):
            raise ConfigError(
                "AZURE_CLIENT_SECRET",
                "no credential: set AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or "
                "AZURE_FEDERATED_TOKEN_FILE for local or CI use, "
                "or PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID (or PARTNERGUARD_IDENTITY_CLIENT_ID) in Azure "
                "(federated credential, no secret)",
            )

    @property
    def graph_assertion_identity(self) -> str | None:
        """The managed identity whose token is the Graph app's client assertion: the dedicated
        Graph identity, or the service identity when no dedicated one is configured."""
        return self.graph_identity_client_id or self.identity_client_id

    def secret_values(self) -> tuple[str, ...]:
        """Values that must never be logged (the log formatter masks them)."""
        values = [self.client_secret, self.client_certificate_password, self.acs_connection_string]
        values += [self.alert_teams_webhook_url, self.alert_webhook_url, self.alert_webhook_secret]
        for route in self.alert_routes_by_tenant.values():
            values += [route.teams_url, route.webhook_url]
        values.append(self.storage.connection_string if self.storage.connection_string != DEVELOPMENT_STORAGE else None)
        # The keys inside the connection strings too: a library may log one part on its own.
        for connection_string in (self.acs_connection_string, self.storage.connection_string):
            values += _connection_string_secrets(connection_string)
        return tuple(dict.fromkeys(v for v in values if v))

    def recipients_for(self, tenant_id: str) -> tuple[str, ...]:
        extra = self.alert_recipients_by_tenant.get(tenant_id.lower(), ())
        route = self.alert_routes_by_tenant.get(tenant_id.lower(), AlertRoute())
        return tuple(dict.fromkeys((*self.alert_recipients, *extra, *route.recipients)))

    @property
    def alerts_configured(self) -> bool:
        """Whether any alert goes anywhere: recipients, or a Teams or webhook channel."""
        return bool(
            self.alert_recipients
            or self.alert_recipients_by_tenant
            or self.alert_teams_webhook_url
            or self.alert_webhook_url
            or self.alert_routes_by_tenant
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        return _Reader(os.environ if environ is None else environ).settings()


# The parts of Azure connection strings that are secrets (ACS `accesskey`, storage `AccountKey`
# and `SharedAccessSignature`); matched case-insensitively, as the SDKs read them.
_SECRET_PARTS = frozenset({"accesskey", "accountkey", "sharedaccesssignature"})


# What an app setting holds when App Service could not resolve its Key Vault reference
# (https://learn.microsoft.com/azure/app-service/app-service-key-vault-references).
_KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("
_ROUTE_KEYS = frozenset({"recipients", "teams", "webhook"})
# The name of another setting (the file form of a per-tenant channel: the URL stays a secret).
_SETTING_NAME_RE = re.compile(r"[A-Z][A-Z0-9_]{0,127}")


class _RepeatedKeyError(ValueError):
    """A JSON object names one key twice (a tenant id in any letter case counts as one key)."""


def _each_key_once(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """json.loads' object hook for the per-tenant settings: JSON keeps only the last of two equal
    keys, and tenant ids are lower-cased when read, so a tenant given twice would silently lose
    one of its entries. Refused instead, naming both."""
    seen: dict[str, str] = {}
    for key, _ in pairs:
        folded = key.lower() if is_guid(key) else key
        if folded in seen:
            case = " (tenant ids ignore letter case)" if key != seen[folded] else ""
            raise _RepeatedKeyError(f"the key {key!r} repeats {seen[folded]!r}{case}: JSON would keep only one")
        seen[folded] = key
    return dict(pairs)


def _connection_string_secrets(connection_string: str | None) -> list[str]:
    if not connection_string or connection_string == DEVELOPMENT_STORAGE:
        return []
    secrets = []
    for part in connection_string.split(";"):
        name, sep, value = part.partition("=")
        if sep and name.strip().lower() in _SECRET_PARTS and value.strip():
            secrets.append(value.strip())
    return secrets


class _Reader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        # PARTNERGUARD_CONFIG (read from the environment only) names a settings file: its values
        # come first, and any non-empty environment value overrides them (an empty one does not:
        # the Bicep sets unused settings to ''). Every value then gets the same checks below.
        config = (environ.get("PARTNERGUARD_CONFIG") or "").strip()
        if not config:
            self.env: Mapping[str, str] = environ
            return
        try:
            self.env = EnvironmentOverFile(environ, values_or_raise(Path(config)))
        except SettingsFileError as error:
            raise ConfigError("PARTNERGUARD_CONFIG", str(error)) from None

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None:
            return None
        value = value.strip()
        if value.startswith(_KEY_VAULT_REFERENCE):
            # App Service leaves a reference it could not resolve as the setting's value (a
            # missing secret, a missing role, an unreachable vault): say that, not "malformed".
            raise ConfigError(
                name,
                "a Key Vault reference App Service could not resolve: check that the secret exists and "
                "that the app's identity holds Key Vault Secrets User on the vault (docs/deploy.md)",
            )
        return value or None

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        raise ConfigError(name, f"expected true or false, got {value!r}")

    def integer(self, name: str, default: int, minimum: int, maximum: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(name, f"expected a whole number, got {value!r}") from None
        if not minimum <= number <= maximum:
            raise ConfigError(name, f"expected a number from {minimum} to {maximum}, got {number}")
        return number

    def guid(self, name: str) -> str | None:
        value = self.raw(name)
        if value is not None and not is_guid(value):
            raise ConfigError(name, f"expected a GUID, got {value!r}")
        return value.lower() if value else None

    def https_url(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ConfigError(name, f"expected an https:// URL, got {value!r}")
        return value.rstrip("/")

    def graph_root(self) -> str | None:
        value = self.https_url("GRAPH_ENDPOINT")
        if value is None:
            return None
        path = urlsplit(value).path.rstrip("/")
        if path in ("/v1.0", "/beta"):
            raise ConfigError("GRAPH_ENDPOINT", "give the Graph root without /v1.0 or /beta; PartnerGuard appends them")
        return value

    def addresses(self, name: str, values: list[str]) -> tuple[str, ...]:
        for address in values:
            if not re.fullmatch(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+", address):
                raise ConfigError(name, f"not an email address: {address!r}")
        return tuple(values)

    def address_list(self, name: str) -> tuple[str, ...]:
        value = self.raw(name)
        if value is None:
            return ()
        return self.addresses(name, [part.strip() for part in value.split(",") if part.strip()])

    def tenant_map(self, name: str, of_what: str) -> dict[str, Any]:
        """A JSON object setting keyed by tenant id (each tenant once, in any letter case)."""
        value = self.raw(name)
        if value is None:
            return {}
        try:
            parsed = json.loads(value, object_pairs_hook=_each_key_once)
        except _RepeatedKeyError as error:
            raise ConfigError(name, str(error)) from None
        except json.JSONDecodeError as error:
            raise ConfigError(name, f"not valid JSON ({error.msg})") from None
        if not isinstance(parsed, dict):
            raise ConfigError(name, f"expected a JSON object of tenant id to {of_what}")
        for tenant in parsed:
            if not is_guid(tenant):
                raise ConfigError(name, f"key {tenant!r} is not a tenant id (GUID)")
        return parsed

    def recipients_by_tenant(self) -> dict[str, tuple[str, ...]]:
        name = "ALERT_RECIPIENTS_BY_TENANT"
        result: dict[str, tuple[str, ...]] = {}
        for tenant, addresses in self.tenant_map(name, "a list of addresses").items():
            if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
                raise ConfigError(name, f"the value for {tenant} must be a list of addresses")
            result[tenant.lower()] = self.addresses(name, addresses)
        return result

    def secret_url(self, name: str, value: str | None) -> str | None:
        """An https:// URL that is a secret: a malformed one is reported without its value."""
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ConfigError(name, "expected an https:// URL (the value is a secret and is not shown)")
        return value

    def routes_by_tenant(self) -> dict[str, AlertRoute]:
        """ALERT_ROUTES_BY_TENANT: tenant id -> {recipients, teams, webhook}, every key optional.
        `teams` and `webhook` are a URL or the name of another setting that holds one, so a
        settings file (which holds no secret) can route a tenant to its own channel where the
        partner controls the app settings (in Azure the template sets only the four fixed alert
        settings, so there a tenant's URLs go into this setting's Key Vault secret itself)."""
        name = "ALERT_ROUTES_BY_TENANT"
        routes: dict[str, AlertRoute] = {}
        for tenant, route in self.tenant_map(name, "{recipients, teams, webhook}").items():
            if not isinstance(route, dict) or not set(route) <= _ROUTE_KEYS:
                raise ConfigError(name, f"the value for {tenant} must be an object with keys {sorted(_ROUTE_KEYS)}")
            addresses = route.get("recipients", [])
            if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
                raise ConfigError(name, f"recipients of {tenant} must be a list of addresses")
            routes[tenant.lower()] = AlertRoute(
                recipients=self.addresses(name, addresses),
                teams_url=self.route_url(name, tenant, route.get("teams")),
                webhook_url=self.route_url(name, tenant, route.get("webhook")),
            )
        return routes

    def route_url(self, name: str, tenant: str, value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(name, f"a channel of {tenant} must be a URL or the name of a setting holding one")
        value = value.strip()
        if _SETTING_NAME_RE.fullmatch(value):
            referenced = self.raw(value)
            if referenced is None:
                raise ConfigError(name, f"the channel of {tenant} names the setting {value}, which is not set")
            return self.secret_url(value, referenced)
        return self.secret_url(f"{name} ({tenant})", value)

    def emergency_accounts(self) -> tuple[str, ...]:
        """EMERGENCY_ACCESS_ACCOUNTS: object ids (GUIDs) or UPNs, lower-cased (Entra compares
        both case-insensitively), each once."""
        name = "EMERGENCY_ACCESS_ACCOUNTS"
        value = self.raw(name)
        if value is None:
            return ()
        accounts: list[str] = []
        for part in (part.strip() for part in value.split(",")):
            if not part:
                continue
            if not (is_guid(part) or _UPN_RE.fullmatch(part)):
                raise ConfigError(name, f"{part!r} is neither an object id (GUID) nor a user principal name")
            accounts.append(part.lower())
        return tuple(dict.fromkeys(accounts))

    def tenants(self) -> tuple[str, ...]:
        value = self.raw("PARTNERGUARD_TENANTS")
        if value is None:
            return ()
        tenants: list[str] = []
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            if not is_guid(part):
                raise ConfigError("PARTNERGUARD_TENANTS", f"{part!r} is not a tenant id (GUID)")
            tenants.append(part.lower())
        return tuple(dict.fromkeys(tenants))

    def schedule(self) -> str:
        value = self.raw("SCAN_SCHEDULE") or DEFAULT_SCAN_SCHEDULE
        # NCRONTAB as the Functions timer reads it: six fields, seconds first.
        fields = value.split()
        if len(fields) != 6 or not all(re.fullmatch(r"[0-9*/,\-A-Za-z]+", f) for f in fields):
            raise ConfigError(
                "SCAN_SCHEDULE", f"expected an NCRONTAB expression of six fields (e.g. {DEFAULT_SCAN_SCHEDULE!r})"
            )
        return value

    def storage(self) -> StorageSettings:
        prefix = "PARTNERGUARD_STORAGE"
        connection = self.raw(prefix)
        table_uri = self.https_or_loopback(f"{prefix}__tableServiceUri")
        queue_uri = self.https_or_loopback(f"{prefix}__queueServiceUri")
        if connection and (table_uri or queue_uri):
            raise ConfigError(prefix, "set either a connection string or the __tableServiceUri/__queueServiceUri pair")
        if table_uri or queue_uri:
            if not (table_uri and queue_uri):
                missing = f"{prefix}__queueServiceUri" if table_uri else f"{prefix}__tableServiceUri"
                raise ConfigError(missing, "identity-based storage needs both service URIs")
            credential = (self.raw(f"{prefix}__credential") or "managedidentity").lower()
            if credential != "managedidentity":
                raise ConfigError(f"{prefix}__credential", f"only 'managedidentity' is supported, got {credential!r}")
            return StorageSettings(
                table_service_uri=table_uri,
                queue_service_uri=queue_uri,
                managed_identity_client_id=self.guid(f"{prefix}__clientId")
                or self.guid("PARTNERGUARD_IDENTITY_CLIENT_ID"),
            )
        if connection is None:
            if self.raw("WEBSITE_INSTANCE_ID"):  # running in Azure: no emulator to fall back on
                raise ConfigError(
                    prefix, "not set; in Azure use the identity-based __tableServiceUri/__queueServiceUri"
                )
            connection = DEVELOPMENT_STORAGE
        return StorageSettings(connection_string=connection)

    def https_or_loopback(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        parts = urlsplit(value)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if not parts.hostname or not (parts.scheme == "https" or (loopback and parts.scheme == "http")):
            raise ConfigError(name, f"expected an https:// URL, got {value!r}")
        return value.rstrip("/")

    def existing_file(self, name: str) -> Path | None:
        value = self.raw(name)
        if value is None:
            return None
        path = Path(value)
        if not path.is_file():
            raise ConfigError(name, f"no such file: {value}")
        return path

    def settings(self) -> Settings:
        cloud_name = (self.raw("AZURE_CLOUD") or "public").lower()
        if cloud_name not in CLOUDS:
            raise ConfigError("AZURE_CLOUD", f"expected one of {', '.join(CLOUDS)}, got {cloud_name!r}")
        cloud = CLOUDS[cloud_name]
        client_id = self.guid("AZURE_CLIENT_ID")
        outbox = self.raw("EMAIL_OUTBOX_DIR")
        settings = Settings(
            tenants=self.tenants(),
            discover_customers=self.boolean("PARTNERGUARD_DISCOVER_CUSTOMERS", False),
            scan_schedule=self.schedule(),
            cloud=cloud,
            graph_endpoint=self.graph_root() or cloud.graph_endpoint,
            authority_host=self.https_url("AZURE_AUTHORITY_HOST") or cloud.authority_host,
            tenant_id=self.guid("AZURE_TENANT_ID"),
            client_id=client_id,
            client_secret=self.raw("AZURE_CLIENT_SECRET"),
            client_certificate_path=self.existing_file("AZURE_CLIENT_CERTIFICATE_PATH"),
            client_certificate_password=self.raw("AZURE_CLIENT_CERTIFICATE_PASSWORD"),
            federated_token_file=self.existing_file("AZURE_FEDERATED_TOKEN_FILE"),
            identity_client_id=self.guid("PARTNERGUARD_IDENTITY_CLIENT_ID"),
            graph_identity_client_id=self.guid("PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID"),
            ca_bundle=self.existing_file("PARTNERGUARD_CA_BUNDLE"),
            storage=self.storage(),
            alert_recipients=self.address_list("ALERT_RECIPIENTS"),
            alert_recipients_by_tenant=self.recipients_by_tenant(),
            alert_reminder_hours=self.integer("ALERT_REMINDER_HOURS", 0, 0, 24 * 90),
            alert_teams_webhook_url=self.secret_url("ALERT_TEAMS_WEBHOOK_URL", self.raw("ALERT_TEAMS_WEBHOOK_URL")),
            alert_webhook_url=self.secret_url("ALERT_WEBHOOK_URL", self.raw("ALERT_WEBHOOK_URL")),
            alert_webhook_secret=self.raw("ALERT_WEBHOOK_SECRET"),
            alert_routes_by_tenant=self.routes_by_tenant(),
            alert_settle_seconds=self.integer("ALERT_SETTLE_SECONDS", 300, 0, 86400),
            acs_endpoint=self.https_url("ACS_ENDPOINT"),
            acs_connection_string=self.raw("ACS_CONNECTION_STRING"),
            email_sender=self.raw("EMAIL_SENDER"),
            email_outbox_dir=Path(outbox) if outbox else None,
            public_url=self.https_or_loopback("PARTNERGUARD_PUBLIC_URL")
            or (f"https://{host}" if (host := self.raw("WEBSITE_HOSTNAME")) else None),
            signin_lookback_hours=self.integer("SIGNIN_LOOKBACK_HOURS", 168, 1, 24 * 30),
            credential_expiry_days=self.integer("CREDENTIAL_EXPIRY_DAYS", 30, 0, 3650),
            secret_max_lifetime_days=self.integer("SECRET_MAX_LIFETIME_DAYS", 180, 1, 36500),
            gdap_expiry_days=self.integer("GDAP_EXPIRY_DAYS", 30, 0, 730),
            include_guests=self.boolean("INCLUDE_GUESTS", False),
            run_retention_days=self.integer("RUN_RETENTION_DAYS", 365, 1, 3650),
            emergency_access_accounts=self.emergency_accounts(),
        )
        self.check_consistency(settings)
        return settings

    @staticmethod
    def check_consistency(settings: Settings) -> None:
        if settings.client_secret and settings.client_certificate_path:
            raise ConfigError("AZURE_CLIENT_SECRET", "set either a secret or AZURE_CLIENT_CERTIFICATE_PATH, not both")
        if settings.federated_token_file is not None:
            # One app credential: with two, which one signed in would depend on precedence, and a
            # CI job meant to run on its federated credential could quietly use a stored secret.
            # The service identity (PARTNERGUARD_IDENTITY_CLIENT_ID) may stay: it also serves
            # storage and ACS, and is the Graph assertion only when no app credential is set.
            others = {
                "AZURE_CLIENT_SECRET": settings.client_secret,
                "AZURE_CLIENT_CERTIFICATE_PATH": settings.client_certificate_path,
                "PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID": settings.graph_identity_client_id,
            }
            if conflicting := [name for name, value in others.items() if value]:
                raise ConfigError(
                    "AZURE_FEDERATED_TOKEN_FILE",
                    f"set together with {' and '.join(conflicting)}; set exactly one app credential",
                )
        if settings.acs_endpoint and settings.acs_connection_string:
            raise ConfigError(
                "ACS_CONNECTION_STRING", "set either ACS_ENDPOINT (managed identity) or a connection string"
            )
        has_transport = bool(settings.acs_endpoint or settings.acs_connection_string or settings.email_outbox_dir)
        routed_addresses = any(route.recipients for route in settings.alert_routes_by_tenant.values())
        if (settings.alert_recipients or settings.alert_recipients_by_tenant or routed_addresses) and not has_transport:
            raise ConfigError(
                "ALERT_RECIPIENTS",
                "set, but neither ACS_ENDPOINT, ACS_CONNECTION_STRING nor EMAIL_OUTBOX_DIR is configured",
            )
        webhooks = [settings.alert_webhook_url, *(r.webhook_url for r in settings.alert_routes_by_tenant.values())]
        if any(webhooks) and not settings.alert_webhook_secret:
            raise ConfigError("ALERT_WEBHOOK_SECRET", "not set; every webhook call is signed with it")
        if settings.alert_webhook_secret and len(settings.alert_webhook_secret) < 32:
            raise ConfigError("ALERT_WEBHOOK_SECRET", "too short: use at least 32 random characters")
        if (settings.acs_endpoint or settings.acs_connection_string) and not settings.email_sender:
            raise ConfigError("EMAIL_SENDER", "not set; Azure Communication Services needs the sender address")
        if settings.acs_endpoint and not settings.identity_client_id:
            raise ConfigError(
                "PARTNERGUARD_IDENTITY_CLIENT_ID", "ACS_ENDPOINT uses the managed identity; set its client id"
            )


def check_each_value(values: Mapping[str, str]) -> Settings:
    """Every value read and checked exactly as `Settings.from_env` does, without the rules that
    relate settings to each other: `config validate` checks one file, whose companions (the ACS
    endpoint, the webhook secret, the storage URIs) are app settings it cannot see."""
    return _EachValueReader(values).settings()


class _EachValueReader(_Reader):
    @staticmethod
    def check_consistency(settings: Settings) -> None:
        """Left to start-up, where the file and the app settings are read together."""
