#!/usr/bin/env python3
"""PartnerGuard's Entra side, secretless and idempotent (docs/deploy.md, "Identity").

    python3 scripts/setup_identity.py [partner] [options]     in the partner tenant
    python3 scripts/setup_identity.py consent --app-id ID     in a customer tenant

Sign in first with `az login --tenant <tenant id>` as an admin of that tenant.

partner
    Creates (or finds) the multi-tenant app PartnerGuard signs in to Graph as, declares and grants
    exactly the Graph application permissions its checks need, and adds the managed identity as
    the app's federated credential: no client secret is ever created. Creates the single-tenant
    sign-in app App Service Authentication uses (ID tokens only, no secret, users must be
    assigned; the admin running this is assigned). Run it before the first deployment (to get
    the app ids) and again after it (to add the identity and the redirect URI); azd's hooks
    (azure.yaml) do both.
consent
    In a customer tenant: provisions the app's service principal and grants it exactly those
    permissions (admin consent). Who may: a Global Administrator or a Privileged Role
    Administrator of that tenant. Application and Cloud Application Administrators cannot grant
    Microsoft Graph application permissions.

Every run reads what exists first and changes only what differs, so a second run changes
nothing. `--dry-run` prints each change as the az command it would run and makes only reads.
Azure is only ever called through the Azure CLI (`az`); with `--azd`, `azd env set` hands the
app ids to azd. Standard library only: it runs wherever az and Python 3.9+ do, Windows included.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
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
FEDERATED_CREDENTIAL_NAME = "partnerguard-managed-identity"
# The default app role: assigning a principal to it lets it sign in where assignment is required.
DEFAULT_ACCESS_ROLE = "00000000-0000-0000-0000-000000000000"
MULTI_TENANT = "AzureADMultipleOrgs"
SINGLE_TENANT = "AzureADMyOrg"


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
    identity_principal_id: str | None
    app_hostname: str | None


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
        self.ensure_federated_credential(app_id)
        signin_app_id = self.ensure_signin_app()
        return app_id, signin_app_id

    def ensure_federated_credential(self, app_id: str | None) -> None:
        """The managed identity signs in as the app: a federated credential whose subject is the
        identity's principal id, issued by the partner tenant, for the cloud's exchange audience."""
        principal = self.options.identity_principal_id
        if not principal:
            note("no managed identity yet (--identity-principal-id): run this again after the deployment")
            return
        wanted = {
            "name": FEDERATED_CREDENTIAL_NAME,
            "issuer": f"{self.options.cloud.authority}/{self.tenant_id}/v2.0",
            "subject": principal,
            "audiences": [self.options.cloud.assertion_audience],
            "description": "PartnerGuard's managed identity signs in as this app (no secret).",
        }
        current = None
        if app_id is not None:
            credentials = self.az.read("ad", "app", "federated-credential", "list", "--id", app_id) or []
            current = next((c for c in credentials if c.get("name") == FEDERATED_CREDENTIAL_NAME), None)
        command = ("ad", "app", "federated-credential")
        target = app_id or "<new app id>"
        if current is None:
            self.az.change(*command, "create", "--id", target, "--parameters", json.dumps(wanted))
        elif any(current.get(key) != wanted[key] for key in ("issuer", "subject", "audiences")):
            note("updating the federated credential to the current managed identity")
            credential = ("--federated-credential-id", FEDERATED_CREDENTIAL_NAME)
            self.az.change(*command, "update", "--id", target, *credential, "--parameters", json.dumps(wanted))

    def ensure_signin_app(self) -> str | None:
        """The app App Service Authentication signs users in with: this tenant only, ID tokens
        (so no secret), an api:// identifier so automation can ask for a token, assigned users only."""
        options = self.options
        callback = f"https://{options.app_hostname}/.auth/login/aad/callback" if options.app_hostname else None
        app = self.find_app(options.signin_app_id, options.signin_app_name)
        if app is None:
            note(f"creating the sign-in app {options.signin_app_name!r}")
            create = ["ad", "app", "create", "--display-name", options.signin_app_name]
            create += ["--sign-in-audience", SINGLE_TENANT, "--enable-id-token-issuance", "true"]
            if callback:
                create += ["--web-redirect-uris", callback]
            app = self.az.change(*create)
        app_id: str | None = app["appId"] if app else None
        target = app_id or "<new sign-in app id>"
        web = (app or {}).get("web") or {}
        if f"api://{target}" not in ((app or {}).get("identifierUris") or []):
            self.az.change("ad", "app", "update", "--id", target, "--identifier-uris", f"api://{target}")
        if app is not None and not (web.get("implicitGrantSettings") or {}).get("enableIdTokenIssuance"):
            self.az.change("ad", "app", "update", "--id", target, "--enable-id-token-issuance", "true")
        # v2 access tokens carry the issuer App Service Authentication is configured with
        # (<login host>/<tenant>/v2.0), also for automation's client-credentials tokens.
        if ((app or {}).get("api") or {}).get("requestedAccessTokenVersion") != 2:
            self.az.change("ad", "app", "update", "--id", target, "--set", "api.requestedAccessTokenVersion=2")
        redirect_uris = list(web.get("redirectUris") or [])
        if callback is None:
            note("no app host name yet (--app-hostname): run this again after the deployment for the redirect URI")
        elif app is not None and callback not in redirect_uris:
            self.az.change("ad", "app", "update", "--id", target, "--web-redirect-uris", *redirect_uris, callback)
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


def save_to_azd(name: str, value: str | None, dry_run: bool) -> None:
    """Hands a value to azd (main.parameters.json reads it), unless azd already has it."""
    if value is None or os.environ.get(name) == value:
        return
    if dry_run:
        print("would run: azd env set " + shlex.join([name, value]))
        return
    azd = shutil.which("azd")
    if azd is None:
        raise SetupError("--azd needs the Azure Developer CLI (azd) on PATH")
    subprocess.run([azd, "env", "set", name, value], check=True)  # noqa: S603


def parse_options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="setup_identity.py",
        description="Set up PartnerGuard's apps in the partner tenant, or consent in a customer tenant.",
    )
    parser.add_argument("mode", nargs="?", choices=("partner", "consent"), default="partner")
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
        "--identity-principal-id",
        default=os.environ.get("PARTNERGUARD_IDENTITY_PRINCIPAL_ID") or None,
        help="the managed identity's principal (object) id, once deployed",
    )
    parser.add_argument(
        "--app-hostname", default=os.environ.get("PARTNERGUARD_APP_HOSTNAME") or None, help="the function app's host"
    )
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
        identity_principal_id=args.identity_principal_id,
        app_hostname=args.app_hostname,
    )


def main(argv: list[str]) -> int:
    options = parse_options(argv)
    try:
        setup = Setup(AzureCli(options.dry_run), options)
        if options.mode == "consent":
            setup.setup_customer()
            print(f"consented: tenant {setup.tenant_id}, app {options.app_id}")
            return 0
        app_id, signin_app_id = setup.setup_partner()
        if options.save_to_azd:
            save_to_azd("PARTNERGUARD_GRAPH_CLIENT_ID", app_id, options.dry_run)
            save_to_azd("PARTNERGUARD_SIGNIN_CLIENT_ID", signin_app_id, options.dry_run)
    except SetupError as error:
        note(f"setup_identity: {error}")
        return 1
    print(f"PARTNERGUARD_GRAPH_CLIENT_ID={app_id or '<created on a real run>'}")
    print(f"PARTNERGUARD_SIGNIN_CLIENT_ID={signin_app_id or '<created on a real run>'}")
    note("Customer tenants: a Global Administrator or Privileged Role Administrator of each one runs")
    note(f"  az login --tenant <customer tenant id> && python3 scripts/setup_identity.py consent --app-id {app_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
