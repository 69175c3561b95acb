"""A stand-in for the Azure CLI (`az`) over a directory of Entra ID state, for testing
scripts/setup_identity.py without a tenant.

The test puts an `az` wrapper first on PATH that runs this file. Every call appends its argv to
`calls.jsonl` and reads and writes `state.json` (applications, service principals, app role
assignments, the signed-in account), both in the directory named by `FAKE_AZ_DIR`. It answers
the az commands the script uses, with the JSON shapes az and Microsoft Graph return, and fails
loudly (exit 2) on anything else, so the script cannot quietly depend on a command the fake
does not model.

Federated identity credentials follow Entra's rules: at most 20 per application, a unique name
(3-120 characters, letters, digits, '-' and '_', immutable), and one credential per issuer and
subject (https://learn.microsoft.com/graph/api/application-post-federatedidentitycredentials,
https://learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations).
`az login --tenant` switches to another tenant kept under `otherTenants`.
"""

from __future__ import annotations

import json
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

GLOBAL_FLAGS = {"--only-show-errors", "--debug", "--verbose", "--allow-no-subscriptions", "--use-device-code"}
MAX_FEDERATED_CREDENTIALS = 20
CREDENTIAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{2,119}")
VALUE_OPTIONS_WITH_LISTS = {"--api-permissions", "--web-redirect-uris", "--identifier-uris"}


class FakeAzError(Exception):
    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def parse(argv: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Positional words (the command) and options (each with all the values that follow it)."""
    words: list[str] = []
    options: dict[str, list[str]] = {}
    index = 0
    while index < len(argv):
        token = argv[index]
        index += 1
        if token in GLOBAL_FLAGS:
            continue
        if token.startswith("-"):
            values: list[str] = []
            while index < len(argv) and not argv[index].startswith("--"):
                values.append(argv[index])
                index += 1
                if token not in VALUE_OPTIONS_WITH_LISTS:
                    break
            options[token] = values
        else:
            words.append(token)
    return words, options


def one(options: dict[str, list[str]], name: str) -> str:
    values = options.get(name)
    if not values or len(values) != 1:
        raise FakeAzError(f"fake az: {name} needs exactly one value, got {values!r}", 2)
    return values[0]


def odata_equals(expression: str) -> tuple[str, str]:
    match = re.fullmatch(r"(\w+) eq '((?:[^']|'')*)'", expression)
    if not match:
        raise FakeAzError(f"fake az: unsupported --filter {expression!r}", 2)
    return match.group(1), match.group(2).replace("''", "'")


def generic_set(target: dict[str, Any], assignment: str) -> None:
    """az's generic `--set path.to.property=value` (the value is JSON when it parses as JSON)."""
    path, raw = assignment.split("=", 1)
    *parents, last = path.split(".")
    for key in parents:
        target = target.setdefault(key, {})
    try:
        target[last] = json.loads(raw)
    except json.JSONDecodeError:
        target[last] = raw


class Directory:
    """The Entra ID state of one tenant."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.applications: list[dict[str, Any]] = state.setdefault("applications", [])
        self.service_principals: list[dict[str, Any]] = state.setdefault("servicePrincipals", [])
        self.assignments: list[dict[str, Any]] = state.setdefault("appRoleAssignments", [])

    def app(self, key: str) -> dict[str, Any]:
        for app in self.applications:
            if key in (app["appId"], app["id"]):
                return app
        raise FakeAzError(f"ERROR: Resource '{key}' does not exist.", 3)

    def service_principal(self, key: str) -> dict[str, Any]:
        for sp in self.service_principals:
            if key in (sp["appId"], sp["id"]):
                return sp
        raise FakeAzError(f"ERROR: Resource '{key}' does not exist.", 3)

    # -- az ad app ---------------------------------------------------------------------------

    def app_command(self, verb: list[str], options: dict[str, list[str]]) -> Any:
        if verb == ["list"]:
            if "--filter" in options:
                field, value = odata_equals(one(options, "--filter"))
                return [a for a in self.applications if a.get(field) == value]
            return list(self.applications)
        if verb == ["show"]:
            return self.app(one(options, "--id"))
        if verb == ["create"]:
            app: dict[str, Any] = {
                "id": str(uuid.uuid4()),
                "appId": str(uuid.uuid4()),
                "displayName": one(options, "--display-name"),
                "signInAudience": options.get("--sign-in-audience", ["AzureADandPersonalMicrosoftAccount"])[0],
                "identifierUris": [],
                "passwordCredentials": [],
                "keyCredentials": [],
                "requiredResourceAccess": [],
                "federatedIdentityCredentials": [],
                "api": {"requestedAccessTokenVersion": None, "oauth2PermissionScopes": []},
                "web": {
                    "redirectUris": options.get("--web-redirect-uris", []),
                    "implicitGrantSettings": {
                        "enableIdTokenIssuance": options.get("--enable-id-token-issuance", ["false"])[0] == "true",
                        "enableAccessTokenIssuance": False,
                    },
                },
            }
            self.applications.append(app)
            return app
        if verb == ["update"]:
            app = self.app(one(options, "--id"))
            if "--sign-in-audience" in options:
                app["signInAudience"] = one(options, "--sign-in-audience")
            if "--identifier-uris" in options:
                app["identifierUris"] = options["--identifier-uris"]
            if "--web-redirect-uris" in options:
                app["web"]["redirectUris"] = options["--web-redirect-uris"]
            if "--enable-id-token-issuance" in options:
                app["web"]["implicitGrantSettings"]["enableIdTokenIssuance"] = (
                    one(options, "--enable-id-token-issuance") == "true"
                )
            if "--enable-access-token-issuance" in options:
                app["web"]["implicitGrantSettings"]["enableAccessTokenIssuance"] = (
                    one(options, "--enable-access-token-issuance") == "true"
                )
            if "--set" in options:
                generic_set(app, one(options, "--set"))
            return None
        if verb[:1] == ["permission"]:
            return self.permission(verb[1:], options)
        if verb[:1] == ["federated-credential"]:
            return self.federated_credential(verb[1:], options)
        raise FakeAzError(f"fake az: unsupported 'ad app {' '.join(verb)}'", 2)

    def permission(self, verb: list[str], options: dict[str, list[str]]) -> Any:
        app = self.app(one(options, "--id"))
        api = one(options, "--api")
        resource = next((r for r in app["requiredResourceAccess"] if r["resourceAppId"] == api), None)
        if verb == ["add"]:
            if resource is None:
                resource = {"resourceAppId": api, "resourceAccess": []}
                app["requiredResourceAccess"].append(resource)
            for permission in options["--api-permissions"]:
                role_id, kind = permission.split("=")
                entry = {"id": role_id, "type": kind}
                if entry not in resource["resourceAccess"]:
                    resource["resourceAccess"].append(entry)
            return None
        if verb == ["delete"]:
            if resource is not None:
                # Without --api-permissions, az removes every permission of that API.
                removed = set(options.get("--api-permissions", [])) or {a["id"] for a in resource["resourceAccess"]}
                resource["resourceAccess"] = [a for a in resource["resourceAccess"] if a["id"] not in removed]
            return None
        raise FakeAzError(f"fake az: unsupported 'ad app permission {' '.join(verb)}'", 2)

    def federated_credential(self, verb: list[str], options: dict[str, list[str]]) -> Any:
        app = self.app(one(options, "--id"))
        credentials: list[dict[str, Any]] = app["federatedIdentityCredentials"]
        if verb == ["list"]:
            return credentials
        if verb == ["delete"]:
            key = one(options, "--federated-credential-id")
            kept = [c for c in credentials if key not in (c["name"], c["id"])]
            if len(kept) == len(credentials):
                raise FakeAzError(f"ERROR: no federated credential {key}", 3)
            credentials[:] = kept
            return None
        parameters = json.loads(one(options, "--parameters"))
        if verb == ["create"]:
            if not CREDENTIAL_NAME.fullmatch(parameters["name"]):
                raise FakeAzError(f"ERROR: Bad Request: invalid federated credential name {parameters['name']!r}")
            if any(c["name"] == parameters["name"] for c in credentials):
                raise FakeAzError("ERROR: FederatedIdentityCredential with name already exists.")
            if any((c["issuer"], c["subject"]) == (parameters["issuer"], parameters["subject"]) for c in credentials):
                raise FakeAzError("ERROR: FederatedIdentityCredential with this issuer and subject already exists.")
            if len(credentials) >= MAX_FEDERATED_CREDENTIALS:
                raise FakeAzError("ERROR: Bad Request: the application has the maximum of 20 federated credentials.")
            credential = {"id": str(uuid.uuid4()), **parameters}
            credentials.append(credential)
            return credential
        if verb == ["update"]:
            key = one(options, "--federated-credential-id")
            for credential in credentials:
                if key in (credential["name"], credential["id"]):
                    if parameters.get("name", credential["name"]) != credential["name"]:
                        raise FakeAzError("ERROR: Bad Request: a federated credential's name cannot change.")
                    others = [c for c in credentials if c is not credential]
                    pair = (parameters.get("issuer"), parameters.get("subject"))
                    if any((c["issuer"], c["subject"]) == pair for c in others):
                        raise FakeAzError("ERROR: FederatedIdentityCredential with this issuer and subject exists.")
                    credential.update(parameters)
                    return None
            raise FakeAzError(f"ERROR: no federated credential {key}", 3)
        raise FakeAzError(f"fake az: unsupported 'ad app federated-credential {' '.join(verb)}'", 2)

    # -- az ad sp ----------------------------------------------------------------------------

    def sp_command(self, verb: list[str], options: dict[str, list[str]]) -> Any:
        if verb == ["list"]:
            field, value = odata_equals(one(options, "--filter"))
            return [sp for sp in self.service_principals if sp.get(field) == value]
        if verb == ["show"]:
            return self.service_principal(one(options, "--id"))
        if verb == ["create"]:
            app_id = one(options, "--id")
            if any(sp["appId"] == app_id for sp in self.service_principals):
                raise FakeAzError("ERROR: The service principal already exists.")
            # A multi-tenant app registered in another tenant is still found by its client id.
            known = app_id in self.state.get("multiTenantAppIds", []) or any(
                a["appId"] == app_id for a in self.applications
            )
            if not known:
                raise FakeAzError(f"ERROR: application {app_id} not found", 3)
            sp = {"id": str(uuid.uuid4()), "appId": app_id, "appRoleAssignmentRequired": False, "appRoles": []}
            self.service_principals.append(sp)
            return sp
        if verb == ["update"]:
            generic_set(self.service_principal(one(options, "--id")), one(options, "--set"))
            return None
        raise FakeAzError(f"fake az: unsupported 'ad sp {' '.join(verb)}'", 2)

    # -- az rest (Microsoft Graph) -----------------------------------------------------------

    def rest(self, options: dict[str, list[str]]) -> Any:
        method = one(options, "--method").lower()
        path = urlsplit(one(options, "--url")).path
        pattern = r"/v1\.0/servicePrincipals/([^/]+)/(appRoleAssignments|appRoleAssignedTo)(?:/([^/]+))?"
        match = re.fullmatch(pattern, path)
        if not match:
            raise FakeAzError(f"fake az: unsupported Graph path {path}", 2)
        sp_id, relation, assignment_id = match.groups()
        self.service_principal(sp_id)
        field = "principalId" if relation == "appRoleAssignments" else "resourceId"
        if method == "get" and assignment_id is None:
            return {"value": [a for a in self.assignments if a[field] == sp_id]}
        if method == "post" and relation == "appRoleAssignedTo" and assignment_id is None:
            body = json.loads(one(options, "--body"))
            if body["resourceId"] != sp_id:
                raise FakeAzError("ERROR: Bad Request: resourceId must be the service principal of the URL")
            principals = {sp["id"] for sp in self.service_principals} | {self.state.get("userId")}
            if body["principalId"] not in principals:
                raise FakeAzError(f"ERROR: Bad Request: no principal {body['principalId']}")
            key = (body["principalId"], body["appRoleId"])
            if any((a["principalId"], a["appRoleId"]) == key and a["resourceId"] == sp_id for a in self.assignments):
                raise FakeAzError("ERROR: Permission being assigned already exists on the object")
            assignment = {"id": str(uuid.uuid4()), **body}
            self.assignments.append(assignment)
            return assignment
        if method == "delete" and assignment_id is not None:
            before = len(self.assignments)
            self.assignments[:] = [a for a in self.assignments if not (a["id"] == assignment_id and a[field] == sp_id)]
            if len(self.assignments) == before:
                raise FakeAzError("ERROR: Not Found", 3)
            return None
        raise FakeAzError(f"fake az: unsupported {method.upper()} {path}", 2)


def login(options: dict[str, list[str]], state: dict[str, Any]) -> None:
    """`az login --tenant <id>`: the tenant becomes the current one (its state the top level)."""
    tenant = one(options, "--tenant").lower()
    if tenant == state["tenantId"].lower():
        return
    others: dict[str, Any] = state.setdefault("otherTenants", {})
    if tenant not in others:
        raise FakeAzError(f"ERROR: AADSTS90002: Tenant '{tenant}' not found, or you have no access to it.")
    current = {key: value for key, value in state.items() if key != "otherTenants"}
    others[current["tenantId"].lower()] = current
    switched = others.pop(tenant)
    state.clear()
    state.update(switched)
    state["otherTenants"] = others


def run(argv: list[str], state: dict[str, Any]) -> Any:
    words, options = parse(argv)
    if words == ["login"]:
        if options.pop("--output", ["json"]) not in (["json"], ["none"]):
            raise FakeAzError("fake az: login takes --output json or none", 2)
        login(options, state)
        return None
    output = options.pop("--output", options.pop("-o", ["json"]))
    if output != ["json"]:
        raise FakeAzError(f"fake az: only --output json is modelled, got {output}", 2)
    if "--query" in options:
        raise FakeAzError("fake az: --query is not modelled; parse the JSON instead", 2)
    directory = Directory(state)
    if words == ["account", "show"]:
        return {"tenantId": state["tenantId"], "id": state.get("subscriptionId", str(uuid.UUID(int=1)))}
    if words == ["ad", "signed-in-user", "show"]:
        if "userId" not in state:
            raise FakeAzError("ERROR: /me request is only valid with delegated authentication flow.")
        return {"id": state["userId"], "userPrincipalName": "admin@contoso.example"}
    if words[:2] == ["ad", "app"]:
        return directory.app_command(words[2:], options)
    if words[:2] == ["ad", "sp"]:
        return directory.sp_command(words[2:], options)
    if words == ["rest"]:
        return directory.rest(options)
    raise FakeAzError(f"fake az: unsupported command {' '.join(words)!r}", 2)


def main(argv: list[str]) -> int:
    workspace = Path(os.environ["FAKE_AZ_DIR"])
    with (workspace / "calls.jsonl").open("a", encoding="utf-8") as log:
        log.write(json.dumps(argv) + "\n")
    state_file = workspace / "state.json"
    state = json.loads(state_file.read_text(encoding="utf-8"))
    try:
        result = run(argv, state)
    except FakeAzError as error:
        print(error, file=sys.stderr)
        return error.exit_code
    state_file.write_text(json.dumps(state, indent=1), encoding="utf-8")
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
