#!/usr/bin/env python3
"""PartnerGuard's Entra side, secretless and idempotent (docs/deploy.md, "Identity").

    python3 scripts/setup_identity.py [partner] [options]                 in the partner tenant
    python3 scripts/setup_identity.py consent --app-id ID [--tenant ID]...  in customer tenants
    python3 scripts/setup_identity.py links --app-id ID [--tenant ID]...    prints consent links

Sign in first with `az login --tenant <tenant id>` as an admin of that tenant.

partner
    Creates (or finds) the multi-tenant app PartnerGuard signs in to Graph as, declares and grants
    exactly the Graph application permissions its checks need, and adds the deployment's Graph
    identity as the app's federated credential: no client secret is ever created. Creates the
    single-tenant sign-in app App Service Authentication uses (no secret and no implicit flow: the
    deployment's sign-in identity is its federated credential; users must be assigned, and the
    admin running this is). Run it before the first deployment (to get the app ids) and again
    after it (to add the identities and the redirect URI); azd's hooks (azure.yaml) do both.

    Each deployment (azd environment) adds credentials of its own, named after it, and never
    touches another's: several environments share the two apps (Entra allows 20 federated
    credentials per app). A credential of this deployment that trusts its service identity (the
    single identity of PartnerGuard before the Graph identity existed) is removed: the service
    identity must not sign in as the Graph app.
consent
    In each customer tenant given with --tenant (or the one signed in to): provisions the app's
    service principal and grants it exactly those permissions (admin consent). Who may: a Global
    Administrator or a Privileged Role Administrator of that tenant, or a partner admin holding
    one of those roles there through GDAP. Application and Cloud Application Administrators cannot
    grant Microsoft Graph application permissions. For a tenant other than the one signed in to,
    it runs `az login --tenant <id> --allow-no-subscriptions` first.
links
    Prints, for each customer tenant (--tenant, or PARTNERGUARD_TENANTS), the admin-consent link a
    customer's admin can open and the command a partner admin can run. Calls nothing.

Every run reads what exists first and changes only what differs, so a second run changes
nothing. `--dry-run` prints each change as the az command it would run and makes only reads.
Azure is only ever called through the Azure CLI (`az`); with `--azd`, `azd env set` hands the
app ids to azd, after checking that azd is recent enough to read them back. Standard library only:
it runs wherever az and Python 3.9+ do, Windows included.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# The Graph application permissions the checks need: the union of the `permissions` of every
# check's METADATA (checks/*.py) and of every Graph request (partnerguard/graph/requests.py
# ENDPOINTS); the README's "Graph permissions" table says why each one.
# tests/test_setup_identity.py fails when this list and the code disagree.
GRAPH_PERMISSIONS = (
    "Application.Read.All",
    "AuditLog.Read.All",
    "DelegatedAdminRelationship.Read.All",
    "Directory.Read.All",
    "GroupMember.Read.All",
    "Organization.Read.All",
    "Policy.Read.All",
    "Policy.Read.AuthenticationMethod",
    "RoleManagement.Read.Directory",
    "User.Read.All",
    "UserAuthenticationMethod.Read.All",
)
# "Maximum of 20 objects can be added to an application"
# (https://learn.microsoft.com/graph/api/application-post-federatedidentitycredentials).
MAX_FEDERATED_CREDENTIALS = 20
# A federated credential's name: at most 120 characters, URL friendly, immutable once created
# (https://learn.microsoft.com/graph/api/resources/federatedidentitycredential).
CREDENTIAL_NAME_PREFIX = "partnerguard-"
MAX_CREDENTIAL_NAME = 120
# The default app role: assigning a principal to it lets it sign in where assignment is required.
DEFAULT_ACCESS_ROLE = "00000000-0000-0000-0000-000000000000"
MULTI_TENANT = "AzureADMultipleOrgs"
SINGLE_TENANT = "AzureADMyOrg"
# azd reads main.parameters.json again after the preprovision hook only from 1.10.2 (Azure/azure-dev
# #4363, fixing #3973); before, the ids this script saves would never reach the deployment.
MIN_AZD_VERSION = (1, 10, 2)
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class CloudHosts:
    """A national cloud's hosts, as partnerguard/clouds.py has them: the federated credential's
    audience must be the one the app asks its managed identity for."""

    authority: str
    graph: str
    assertion_audience: str


_US_LOGIN = "https://login.microsoftonline.us"
CLOUDS = {
    "public": CloudHosts("https://login.microsoftonline.com", "https://graph.microsoft.com", "api://AzureADTokenExchange"),
    "usgov": CloudHosts(_US_LOGIN, "https://graph.microsoft.us", "api://AzureADTokenExchangeUSGov"),
    "usgovdod": CloudHosts(_US_LOGIN, "https://dod-graph.microsoft.us", "api://AzureADTokenExchangeUSGov"),
    "china": CloudHosts(
        "https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn", "api://AzureADTokenExchangeChina"
    ),
}


class SetupError(Exception):
    """Something the admin has to fix; the message says what."""


def note(message: str) -> None:
    print(message, file=sys.stderr)


def odata_string(value: str) -> str:
    """An OData string literal (a quote inside is doubled)."""
    return "'" + value.replace("'", "''") + "'"


class AzureCli:
    """Runs az. Reads always run; changes are printed instead in a dry run."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run
        self.executable = shutil.which("az")
        if self.executable is None:
            raise SetupError("the Azure CLI (az) is not on PATH: https://learn.microsoft.com/cli/azure/install-azure-cli")

    def read(self, *args: str) -> Any:
        return self._run(args)

    def change(self, *args: str) -> Any:
        if self.dry_run:
            print("would run: az " + shlex.join(args))
            return None
        return self._run(args)

    def login(self, tenant_id: str, device_code: bool) -> None:
        """Signs in to another tenant, interactively (a login changes nothing in any tenant)."""
        assert self.executable is not None
        command = [self.executable, "login", "--tenant", tenant_id, "--allow-no-subscriptions", "--output", "none"]
        if device_code:
            command.append("--use-device-code")
        completed = subprocess.run(command, check=False)  # noqa: S603 - the admin's own az, their prompts
        if completed.returncode != 0:
            raise SetupError(f"az login --tenant {tenant_id} failed")

    def _run(self, args: tuple[str, ...]) -> Any:
        assert self.executable is not None
        command = [self.executable, *args, "--only-show-errors", "--output", "json"]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if completed.returncode != 0:
            raise SetupError(f"az {shlex.join(args)} failed: {completed.stderr.strip()}")
        output = completed.stdout.strip()
        return json.loads(output) if output else None


@dataclass
class Options:
    mode: str
    dry_run: bool
    save_to_azd: bool
    cloud: CloudHosts
    app_id: str | None
    app_name: str
    signin_app_id: str | None
    signin_app_name: str
    graph_identity_principal_id: str | None
    signin_identity_principal_id: str | None
    service_identity_principal_id: str | None
    app_hostname: str | None
    environment: str | None
    resource_token: str | None
    tenants: list[str] = field(default_factory=list)
    use_device_code: bool = False


def credential_name(options: Options, principal_id: str) -> str:
    """This deployment's federated credential name on an app: the azd environment and the
    deployment's resource token (unique per subscription, environment and region, and stable
    across re-deployments), so a re-created identity updates its own credential and no two
    deployments ever share a name. Without them, the identity's principal id."""
    parts = [part for part in (options.environment, options.resource_token) if part]
    suffix = "-".join(parts) if parts else principal_id
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", suffix).strip("-_") or principal_id
    return (CREDENTIAL_NAME_PREFIX + slug)[:MAX_CREDENTIAL_NAME]


class Setup:
    def __init__(self, az: AzureCli, options: Options) -> None:
        self.az = az
        self.options = options
        self.graph = options.cloud.graph
        account = az.read("account", "show")
        if not account or not account.get("tenantId"):
            raise SetupError("not signed in: az login --tenant <tenant id>")
        self.tenant_id: str = account["tenantId"]
        self.graph_sp_id = ""
        self.needed_roles: dict[str, str] = {}  # app role id -> permission name

    @property
    def issuer(self) -> str:
        return f"{self.options.cloud.authority}/{self.tenant_id}/v2.0"

    def graph_read(self, path: str) -> Any:
        return self.az.read("rest", "--method", "get", "--url", f"{self.graph}/v1.0{path}")

    def graph_change(self, method: str, path: str, body: dict[str, str] | None = None) -> Any:
        extra = ["--body", json.dumps(body)] if body is not None else []
        return self.az.change("rest", "--method", method, "--url", f"{self.graph}/v1.0{path}", *extra)

    # -- Graph permissions ------------------------------------------------------------------

    def read_graph_roles(self) -> None:
        """The ids, in this tenant, of Graph's app roles for GRAPH_PERMISSIONS."""
        graph = self.az.read("ad", "sp", "show", "--id", GRAPH_APP_ID)
        self.graph_sp_id = graph["id"]
        role_ids = {role["value"]: role["id"] for role in graph.get("appRoles", [])}
        missing = [name for name in GRAPH_PERMISSIONS if name not in role_ids]
        if missing:
            raise SetupError(f"Microsoft Graph has no application permission {', '.join(missing)} in this tenant")
        self.needed_roles = {role_ids[name]: name for name in GRAPH_PERMISSIONS}
        note("Graph application permissions: " + ", ".join(GRAPH_PERMISSIONS))

    def declare_permissions(self, app: dict[str, Any] | None, app_id: str) -> None:
        """Exactly the needed Graph application permissions in the app's requiredResourceAccess:
        what the portal shows, and what a customer's admin consents to."""
        declared: set[str] = set()
        for resource in (app or {}).get("requiredResourceAccess", []):
            if resource.get("resourceAppId") == GRAPH_APP_ID:
                declared |= {access["id"] for access in resource.get("resourceAccess", []) if access["type"] == "Role"}
        missing = [role for role in self.needed_roles if role not in declared]
        extra = sorted(declared - set(self.needed_roles))
        permission = ("ad", "app", "permission")
        if missing:
            added = [f"{role}=Role" for role in missing]
            self.az.change(*permission, "add", "--id", app_id, "--api", GRAPH_APP_ID, "--api-permissions", *added)
        if extra:
            note(f"removing Graph application permissions PartnerGuard does not need: {', '.join(extra)}")
            self.az.change(*permission, "delete", "--id", app_id, "--api", GRAPH_APP_ID, "--api-permissions", *extra)

    def grant_permissions(self, service_principal_id: str | None) -> None:
        """Admin consent in the tenant signed in to: exactly the needed Graph app roles granted to
        the service principal, any other Graph app role it holds revoked."""
        granted: dict[str, str] = {}  # app role id -> assignment id
        if service_principal_id is not None:
            page = self.graph_read(f"/servicePrincipals/{service_principal_id}/appRoleAssignments")
            granted = {a["appRoleId"]: a["id"] for a in page.get("value", []) if a["resourceId"] == self.graph_sp_id}
        principal = service_principal_id or "<service principal id>"
        for role, name in self.needed_roles.items():
            if role not in granted:
                note(f"granting {name}")
                body = {"principalId": principal, "resourceId": self.graph_sp_id, "appRoleId": role}
                self.graph_change("post", f"/servicePrincipals/{self.graph_sp_id}/appRoleAssignedTo", body)
        for role, assignment in granted.items():
            if role not in self.needed_roles:
                note(f"revoking Graph app role {role}: PartnerGuard does not need it")
                self.graph_change("delete", f"/servicePrincipals/{principal}/appRoleAssignments/{assignment}")

    # -- apps and service principals --------------------------------------------------------

    def find_app(self, app_id: str | None, display_name: str) -> dict[str, Any] | None:
        """The app with this client id or, without one, the one app with this display name."""
        if app_id:
            apps = self.az.read("ad", "app", "list", "--filter", f"appId eq {odata_string(app_id)}")
            if not apps:
                raise SetupError(f"no app registration with client id {app_id} in tenant {self.tenant_id}")
            return dict(apps[0])
        apps = self.az.read("ad", "app", "list", "--filter", f"displayName eq {odata_string(display_name)}")
        if len(apps or []) > 1:
            raise SetupError(f"several app registrations are named {display_name!r}: pass the right one's client id")
        return dict(apps[0]) if apps else None

    def ensure_service_principal(self, app_id: str | None) -> dict[str, Any] | None:
        """The app's service principal in this tenant, created when missing (None in a dry run)."""
        if app_id is not None:
            found = self.az.read("ad", "sp", "list", "--filter", f"appId eq {odata_string(app_id)}")
            if found:
                return dict(found[0])
        created = self.az.change("ad", "sp", "create", "--id", app_id or "<new app id>")
        return dict(created) if created else None

    # -- federated credentials --------------------------------------------------------------

    def ensure_federated_credential(
        self, app_id: str | None, principal_id: str, purpose: str, retire_subject: str | None = None
    ) -> None:
        """The managed identity `principal_id` signs in as the app: a federated credential of this
        deployment (issued by this tenant, for the cloud's exchange audience, subject the identity's
        principal id). Other deployments' credentials are never changed or removed; this
        deployment's own credential is pointed at the current identity if it was re-created; a
        credential trusting `retire_subject` (this deployment's service identity) is removed."""
        name = credential_name(self.options, principal_id)
        environment = self.options.environment or "(no azd environment)"
        wanted = {
            "name": name,
            "issuer": self.issuer,
            "subject": principal_id,
            "audiences": [self.options.cloud.assertion_audience],
            "description": f"PartnerGuard {purpose} of deployment {environment}: a managed identity, no secret.",
        }
        credentials: list[dict[str, Any]] = []
        if app_id is not None:
            credentials = list(self.az.read("ad", "app", "federated-credential", "list", "--id", app_id) or [])
        command = ("ad", "app", "federated-credential")
        target = app_id or "<new app id>"
        by_name = ("--federated-credential-id", name)
        if retire_subject and retire_subject != principal_id:
            # First, so that its place counts towards the limit below.
            retiring = (self.issuer, retire_subject)
            for credential in [c for c in credentials if (c.get("issuer"), c.get("subject")) == retiring]:
                note(
                    f"removing federated credential {credential.get('name')}: it lets this deployment's "
                    "service identity sign in as the Graph app, which the Graph identity now does alone"
                )
                retired = ("--federated-credential-id", str(credential.get("name")))
                self.az.change(*command, "delete", "--id", target, *retired)
                credentials.remove(credential)
        trusting = [c for c in credentials if c.get("issuer") == self.issuer and c.get("subject") == principal_id]
        own = next((c for c in credentials if c.get("name") == name), None)
        if trusting:
            # Entra refuses a second credential with the same issuer and subject; this one already
            # lets the identity in. Only the audience of our own credential is kept right.
            current = trusting[0]
            if current.get("name") == name and current.get("audiences") != wanted["audiences"]:
                self.az.change(*command, "update", "--id", target, *by_name, "--parameters", json.dumps(wanted))
        elif own is not None:
            note(f"{purpose}: this deployment's identity was re-created; updating its federated credential {name}")
            self.az.change(*command, "update", "--id", target, *by_name, "--parameters", json.dumps(wanted))
        else:
            if len(credentials) >= MAX_FEDERATED_CREDENTIALS:
                listing = "; ".join(f"{c.get('name')} (subject {c.get('subject')})" for c in credentials)
                raise SetupError(
                    f"app {app_id} already has {len(credentials)} federated credentials, the most Entra allows: "
                    f"{listing}. Remove the ones of deleted deployments (az ad app federated-credential delete "
                    f"--id {app_id} --federated-credential-id <name>) and run this again."
                )
            note(f"{purpose}: adding federated credential {name}")
            self.az.change(*command, "create", "--id", target, "--parameters", json.dumps(wanted))

    # -- the partner tenant -----------------------------------------------------------------

    def setup_partner(self) -> tuple[str | None, str | None]:
        options = self.options
        note(f"partner tenant {self.tenant_id}")
        self.read_graph_roles()
        app = self.find_app(options.app_id, options.app_name)
        if app is None:
            note(f"creating the multi-tenant app {options.app_name!r}")
            app = self.az.change(
                "ad", "app", "create", "--display-name", options.app_name, "--sign-in-audience", MULTI_TENANT
            )
        app_id: str | None = app["appId"] if app else None
        if app is not None and app_id is not None:
            if app.get("signInAudience") != MULTI_TENANT:
                self.az.change("ad", "app", "update", "--id", app_id, "--sign-in-audience", MULTI_TENANT)
            secrets = app.get("passwordCredentials") or []
            if secrets:
                note(
                    f"WARNING: app {app_id} has {len(secrets)} client secret(s). PartnerGuard never uses them in "
                    "Azure, and its apps.client-secrets check reports them: delete them (az ad app credential delete)."
                )
        service_principal = self.ensure_service_principal(app_id)
        self.declare_permissions(app, app_id or "<new app id>")
        self.grant_permissions(service_principal["id"] if service_principal else None)
        graph_identity = options.graph_identity_principal_id
        if graph_identity:
            self.ensure_federated_credential(
                app_id, graph_identity, "Graph identity", retire_subject=options.service_identity_principal_id
            )
        else:
            note("no Graph identity yet (--graph-identity-principal-id): run this again after the deployment")
        signin_app_id = self.ensure_signin_app()
        return app_id, signin_app_id

    def ensure_signin_app(self) -> str | None:
        """The app App Service Authentication signs users in with: this tenant only, no secret and
        no implicit flow (the deployment's sign-in identity is its federated credential), an api://
        identifier so automation can ask for a token, assigned users only."""
        options = self.options
        callback = f"https://{options.app_hostname}/.auth/login/aad/callback" if options.app_hostname else None
        app = self.find_app(options.signin_app_id, options.signin_app_name)
        if app is None:
            note(f"creating the sign-in app {options.signin_app_name!r}")
            create = ["ad", "app", "create", "--display-name", options.signin_app_name]
            create += ["--sign-in-audience", SINGLE_TENANT]
            if callback:
                create += ["--web-redirect-uris", callback]
            app = self.az.change(*create)
        app_id: str | None = app["appId"] if app else None
        target = app_id or "<new sign-in app id>"
        web = (app or {}).get("web") or {}
        if f"api://{target}" not in ((app or {}).get("identifierUris") or []):
            self.az.change("ad", "app", "update", "--id", target, "--identifier-uris", f"api://{target}")
        # No implicit flow: App Service Authentication redeems authorization codes with the
        # sign-in identity's assertion, so neither ID nor access tokens come from the implicit grant.
        implicit = web.get("implicitGrantSettings") or {}
        if implicit.get("enableIdTokenIssuance"):
            self.az.change("ad", "app", "update", "--id", target, "--enable-id-token-issuance", "false")
        if implicit.get("enableAccessTokenIssuance"):
            self.az.change("ad", "app", "update", "--id", target, "--enable-access-token-issuance", "false")
        # v2 access tokens carry the issuer App Service Authentication is configured with
        # (<login host>/<tenant>/v2.0), also for automation's client-credentials tokens.
        if ((app or {}).get("api") or {}).get("requestedAccessTokenVersion") != 2:
            self.az.change("ad", "app", "update", "--id", target, "--set", "api.requestedAccessTokenVersion=2")
        redirect_uris = list(web.get("redirectUris") or [])
        if callback is None:
            note("no app host name yet (--app-hostname): run this again after the deployment for the redirect URI")
        elif app is not None and callback not in redirect_uris:
            self.az.change("ad", "app", "update", "--id", target, "--web-redirect-uris", *redirect_uris, callback)
        signin_identity = options.signin_identity_principal_id
        if signin_identity:
            self.ensure_federated_credential(app_id, signin_identity, "sign-in identity")
        else:
            note("no sign-in identity yet (--signin-identity-principal-id): run this again after the deployment")
        service_principal = self.ensure_service_principal(app_id)
        if service_principal is None or not service_principal.get("appRoleAssignmentRequired"):
            sp_target = service_principal["id"] if service_principal else "<new service principal id>"
            self.az.change("ad", "sp", "update", "--id", sp_target, "--set", "appRoleAssignmentRequired=true")
        self.assign_signed_in_user(service_principal["id"] if service_principal else None)
        return app_id

    def assign_signed_in_user(self, service_principal_id: str | None) -> None:
        """Lets the admin running this open the dashboard; everyone else is assigned in the
        portal (Enterprise applications > "<name> sign-in" > Users and groups)."""
        try:
            me = self.az.read("ad", "signed-in-user", "show")["id"]
        except (SetupError, KeyError, TypeError):
            note("signed in as a service principal: assign the dashboard's users in the portal")
            return
        if service_principal_id is not None:
            page = self.graph_read(f"/servicePrincipals/{service_principal_id}/appRoleAssignedTo")
            if any(a.get("principalId") == me for a in page.get("value", [])):
                return
        resource = service_principal_id or "<new service principal id>"
        body = {"principalId": me, "resourceId": resource, "appRoleId": DEFAULT_ACCESS_ROLE}
        self.graph_change("post", f"/servicePrincipals/{resource}/appRoleAssignedTo", body)

    # -- a customer tenant ------------------------------------------------------------------

    def setup_customer(self) -> None:
        app_id = self.options.app_id
        if not app_id:
            raise SetupError("consent needs --app-id: the PartnerGuard app's client id from the partner tenant")
        note(f"customer tenant {self.tenant_id}: consenting to app {app_id}")
        self.read_graph_roles()
        service_principal = self.ensure_service_principal(app_id)
        self.grant_permissions(service_principal["id"] if service_principal else None)


# -- onboarding customers ---------------------------------------------------------------------


def consent_link(cloud: CloudHosts, tenant_id: str, app_id: str) -> str:
    """The tenant-wide admin-consent URL of
    https://learn.microsoft.com/entra/identity/enterprise-apps/grant-admin-consent#construct-the-url-for-granting-tenant-wide-admin-consent
    on the cloud's own sign-in host."""
    return f"{cloud.authority}/{tenant_id}/adminconsent?client_id={app_id}"


def consent_command(tenant_id: str, app_id: str) -> str:
    return f"python3 scripts/setup_identity.py consent --app-id {app_id} --tenant {tenant_id}"


def customer_tenants(options: Options, partner_tenant: str | None) -> list[str]:
    """The tenants given with --tenant, else PARTNERGUARD_TENANTS, without the partner tenant."""
    tenants = options.tenants or [t.strip() for t in os.environ.get("PARTNERGUARD_TENANTS", "").split(",")]
    found = []
    for tenant in tenants:
        if not tenant or (partner_tenant and tenant.lower() == partner_tenant.lower()):
            continue
        if not GUID_RE.match(tenant):
            raise SetupError(f"{tenant!r} is not a tenant id (GUID)")
        if tenant.lower() not in found:
            found.append(tenant.lower())
    return found


def print_onboarding(options: Options, app_id: str, partner_tenant: str | None, quiet: bool = False) -> None:
    tenants = customer_tenants(options, partner_tenant)
    if not tenants:
        if not quiet:
            print("no customer tenant given (--tenant or PARTNERGUARD_TENANTS)")
        return
    print("Consent in each customer tenant, by one of:")
    print("  - the customer's Global Administrator or Privileged Role Administrator opening the link;")
    print("  - a partner admin with one of those roles there (directly or through GDAP) running the command.")
    for tenant in tenants:
        print(f"tenant {tenant}")
        print(f"  link:    {consent_link(options.cloud, tenant, app_id)}")
        print(f"  command: {consent_command(tenant, app_id)}")


def consent_in_tenants(az: AzureCli, options: Options) -> int:
    """Admin consent in each tenant of --tenant (signing in to it first when it is not the
    current one), or in the tenant signed in to. Goes on after a failure; exit 1 if any failed."""
    if not options.tenants:
        setup = Setup(az, options)
        setup.setup_customer()
        print(f"consented: tenant {setup.tenant_id}, app {options.app_id}")
        return 0
    failed: list[str] = []
    for tenant in customer_tenants(options, None):
        try:
            account = az.read("account", "show") or {}
            if str(account.get("tenantId", "")).lower() != tenant:
                note(f"signing in to tenant {tenant}")
                az.login(tenant, options.use_device_code)
            setup = Setup(az, options)
            if setup.tenant_id.lower() != tenant:
                raise SetupError(f"signed in to tenant {setup.tenant_id}, not {tenant}")
            setup.setup_customer()
            print(f"consented: tenant {tenant}, app {options.app_id}")
        except SetupError as error:
            note(f"setup_identity: tenant {tenant}: {error}")
            print(f"failed: tenant {tenant}")
            failed.append(tenant)
    return 1 if failed else 0


# -- azd --------------------------------------------------------------------------------------


def parse_version(text: str) -> tuple[tuple[int, int, int], bool]:
    """(major, minor, patch) and whether it is a pre-release, from azd's semantic version."""
    match = re.match(r"^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?", text.strip())
    if not match:
        raise SetupError(f"cannot read azd's version from {text!r}")
    return (int(match.group(1)), int(match.group(2)), int(match.group(3))), match.group(4) is not None


def check_azd_version() -> str:
    """azd's own path, after checking it reads hook-set values back (>= MIN_AZD_VERSION).
    `azd version --output json` prints {"azd": {"version": "<semver>", "commit": ...}}
    (azd cmd/version.go, pkg/contracts VersionResult)."""
    azd = shutil.which("azd")
    if azd is None:
        raise SetupError("--azd needs the Azure Developer CLI (azd) on PATH")
    completed = subprocess.run([azd, "version", "--output", "json"], capture_output=True, text=True, check=False)  # noqa: S603
    if completed.returncode != 0:
        raise SetupError(f"azd version failed: {completed.stderr.strip()}")
    try:
        version = str(json.loads(completed.stdout)["azd"]["version"])
    except (ValueError, KeyError, TypeError) as error:
        raise SetupError(f"cannot read `azd version --output json`: {completed.stdout.strip()!r}") from error
    if version.startswith("0.0.0-dev"):
        note("azd is a development build: assuming it reads hook-set values back (as its requiredVersions check does)")
        return azd
    number, prerelease = parse_version(version)
    # A pre-release precedes its release (semantic versioning), as azure.yaml's requiredVersions reads it.
    if number < MIN_AZD_VERSION or (number == MIN_AZD_VERSION and prerelease):
        needed = ".".join(map(str, MIN_AZD_VERSION))
        raise SetupError(
            f"azd {version} passes values a hook saves with `azd env set` to main.parameters.json only from "
            f"{needed} (Azure/azure-dev#4363): the app ids would never reach the deployment. Update azd: "
            "https://learn.microsoft.com/azure/developer/azure-developer-cli/install-azd"
        )
    return azd


def require_deployment_tenant(signed_in_tenant: str) -> None:
    """In an azd hook, az must be signed in to the deployment's tenant (AZURE_TENANT_ID: the
    tenant of the subscription, main.bicep's partnerTenantId output). A partner's az is often in
    a customer tenant: apps made there would give the function app a client id its tenant does not
    know, and federated credentials an issuer it never trusts. Only checked under --azd: in a
    shell, AZURE_TENANT_ID may belong to anything."""
    expected = os.environ.get("AZURE_TENANT_ID")
    if expected and expected.strip().lower() != signed_in_tenant.lower():
        raise SetupError(
            f"az is signed in to tenant {signed_in_tenant}, but this azd environment deploys to tenant "
            f"{expected} (AZURE_TENANT_ID): run `az login --tenant {expected}` and provision again"
        )


def save_to_azd(azd: str | None, name: str, value: str | None, dry_run: bool) -> None:
    """Hands a value to azd (main.parameters.json reads it), unless azd already has it. Into the
    environment being provisioned, named explicitly: AZURE_ENV_NAME, which azd sets in every hook
    (and which `-e` defaults to, internal/env_flag.go), never azd's default environment."""
    if value is None or os.environ.get(name) == value:
        return
    command = ["env", "set", name, value]
    environment = os.environ.get("AZURE_ENV_NAME")
    if environment:
        command += ["--environment", environment]
    if dry_run or azd is None:
        print("would run: azd " + shlex.join(command))
        return
    completed = subprocess.run([azd, *command], capture_output=True, text=True, check=False)  # noqa: S603
    if completed.returncode != 0:
        raise SetupError(f"azd {shlex.join(command)} failed: {completed.stderr.strip()}")


def parse_options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="setup_identity.py",
        description="Set up PartnerGuard's apps in the partner tenant, or consent in customer tenants.",
    )
    parser.add_argument("mode", nargs="?", choices=("partner", "consent", "links"), default="partner")
    parser.add_argument("--dry-run", action="store_true", help="print the changes as az commands, make none")
    parser.add_argument("--cloud", choices=sorted(CLOUDS), default=os.environ.get("AZURE_CLOUD") or "public")
    # PARTNERGUARD_* names, never AZURE_CLIENT_ID: a shell or CI job often has that set for its own
    # service principal, which this script must not mistake for PartnerGuard's app and modify.
    parser.add_argument(
        "--app-id", default=os.environ.get("PARTNERGUARD_GRAPH_CLIENT_ID") or None, help="the Graph app's client id"
    )
    parser.add_argument("--app-name", default="PartnerGuard", help="display name to find or create the Graph app by")
    parser.add_argument("--signin-app-id", default=os.environ.get("PARTNERGUARD_SIGNIN_CLIENT_ID") or None)
    parser.add_argument("--signin-app-name", help='display name of the sign-in app (default: "<app name> sign-in")')
    parser.add_argument(
        "--graph-identity-principal-id",
        default=os.environ.get("PARTNERGUARD_GRAPH_IDENTITY_PRINCIPAL_ID") or None,
        help="principal (object) id of the Graph identity, once deployed: the Graph app's federated credential",
    )
    parser.add_argument(
        "--signin-identity-principal-id",
        default=os.environ.get("PARTNERGUARD_SIGNIN_IDENTITY_PRINCIPAL_ID") or None,
        help="principal (object) id of the sign-in identity, once deployed: the sign-in app's federated credential",
    )
    parser.add_argument(
        "--identity-principal-id",
        default=os.environ.get("PARTNERGUARD_IDENTITY_PRINCIPAL_ID") or None,
        help="principal (object) id of the service identity: a federated credential trusting it is removed",
    )
    parser.add_argument(
        "--app-hostname", default=os.environ.get("PARTNERGUARD_APP_HOSTNAME") or None, help="the function app's host"
    )
    parser.add_argument(
        "--environment",
        default=os.environ.get("AZURE_ENV_NAME") or None,
        help="the deployment's name (azd environment): names its federated credentials",
    )
    parser.add_argument(
        "--resource-token",
        default=os.environ.get("PARTNERGUARD_RESOURCE_TOKEN") or None,
        help="the deployment's PARTNERGUARD_RESOURCE_TOKEN output: names its federated credentials",
    )
    parser.add_argument(
        "--tenant", action="append", default=[], help="a customer tenant id (consent, links); repeat for several"
    )
    parser.add_argument("--use-device-code", action="store_true", help="consent: sign in to tenants with a device code")
    parser.add_argument("--azd", action="store_true", help="save the app ids in the azd environment (azure.yaml hooks)")
    args = parser.parse_args(argv)
    return Options(
        mode=args.mode,
        dry_run=args.dry_run,
        save_to_azd=args.azd,
        cloud=CLOUDS[args.cloud],
        app_id=args.app_id,
        app_name=args.app_name,
        signin_app_id=args.signin_app_id,
        signin_app_name=args.signin_app_name or f"{args.app_name} sign-in",
        graph_identity_principal_id=args.graph_identity_principal_id,
        signin_identity_principal_id=args.signin_identity_principal_id,
        service_identity_principal_id=args.identity_principal_id,
        app_hostname=args.app_hostname,
        environment=args.environment,
        resource_token=args.resource_token,
        tenants=list(args.tenant),
        use_device_code=args.use_device_code,
    )


def main(argv: list[str]) -> int:
    options = parse_options(argv)
    try:
        if options.mode == "links":
            if not options.app_id:
                raise SetupError("links needs --app-id: the PartnerGuard app's client id")
            print_onboarding(options, options.app_id, os.environ.get("AZURE_TENANT_ID"))
            return 0
        azd = check_azd_version() if options.save_to_azd else None
        az = AzureCli(options.dry_run)
        if options.mode == "consent":
            if not options.app_id:
                raise SetupError("consent needs --app-id: the PartnerGuard app's client id from the partner tenant")
            return consent_in_tenants(az, options)
        setup = Setup(az, options)
        if options.save_to_azd:
            require_deployment_tenant(setup.tenant_id)
        app_id, signin_app_id = setup.setup_partner()
        if options.save_to_azd:
            save_to_azd(azd, "PARTNERGUARD_GRAPH_CLIENT_ID", app_id, options.dry_run)
            save_to_azd(azd, "PARTNERGUARD_SIGNIN_CLIENT_ID", signin_app_id, options.dry_run)
        print(f"PARTNERGUARD_GRAPH_CLIENT_ID={app_id or '<created on a real run>'}")
        print(f"PARTNERGUARD_SIGNIN_CLIENT_ID={signin_app_id or '<created on a real run>'}")
        if app_id:
            print_onboarding(options, app_id, setup.tenant_id, quiet=True)
    except SetupError as error:
        note(f"setup_identity: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
