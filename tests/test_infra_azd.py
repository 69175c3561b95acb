"""`azd up` holds together: azure.yaml provisions infra/ and deploys the app, its hooks run the
identity script, and the values that travel between them through the azd environment have the
same names on both sides (Bicep outputs -> the script's inputs; the script's `azd env set` ->
the parameters file). The deployment package leaves development files out.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import yaml

from tests.infra_bicep import INFRA, MAIN, PARAMETERS_FILE, REPO, decorator, parameters, template

SCRIPT = REPO / "scripts" / "setup_identity.py"


def azure_yaml() -> dict[str, object]:
    document: dict[str, object] = yaml.safe_load((REPO / "azure.yaml").read_text())
    return document


def parameter_environment_names() -> dict[str, str]:
    """Bicep parameter -> the azd environment variable main.parameters.json fills it from."""
    given = json.loads(PARAMETERS_FILE.read_text())["parameters"]
    names: dict[str, str] = {}
    for parameter, entry in given.items():
        match = re.fullmatch(r"\$\{([A-Z0-9_]+)(=[^}]*)?\}", entry["value"])
        assert match, parameter
        names[parameter] = match.group(1)
    return names


def test_azure_yaml_provisions_infra_and_deploys_the_function_app() -> None:
    document = azure_yaml()
    infra = document["infra"]
    assert isinstance(infra, dict)
    assert (REPO / infra["path"] / f"{infra['module']}.bicep") == MAIN
    assert infra["provider"] == "bicep"
    services = document["services"]
    assert isinstance(services, dict)
    assert services == {"api": {"project": ".", "language": "python", "host": "function"}}
    # azd finds the app to deploy `api` to by this tag.
    site = template(INFRA / "modules" / "function-app.bicep")["resources"]["functionApp"]["config"]
    assert site["tags"]["function"]["parameters"]["arg_2"] == {"'azd-service-name'": "api"}


def test_the_hooks_run_the_identity_script_before_and_after_provisioning() -> None:
    hooks = azure_yaml()["hooks"]
    assert isinstance(hooks, dict)
    for hook in ("preprovision", "postprovision"):
        for platform in ("posix", "windows"):
            step = hooks[hook][platform]
            assert re.fullmatch(r"python3? scripts/setup_identity\.py --azd", step["run"]), step["run"]
            assert step["continueOnError"] is False
    assert SCRIPT.is_file()


def test_the_script_reads_what_provisioning_outputs_and_saves_what_the_parameters_read() -> None:
    source = SCRIPT.read_text()
    read = set(re.findall(r'os\.environ\.get\("([A-Z0-9_]+)"\)', source))
    saved = set(re.findall(r'save_to_azd\(\w+, "([A-Z0-9_]+)"', source))
    outputs = set(template(MAIN)["outputs"])
    parameter_names = parameter_environment_names()
    # Everything the script reads is either a Bicep output (after provisioning) or something the
    # partner sets for the parameters too (the cloud).
    assert read <= outputs | set(parameter_names.values()) | saved, read - outputs
    assert {
        "PARTNERGUARD_GRAPH_IDENTITY_PRINCIPAL_ID",  # the Graph app's federated credential
        "PARTNERGUARD_SIGNIN_IDENTITY_PRINCIPAL_ID",  # the sign-in app's
        "PARTNERGUARD_IDENTITY_PRINCIPAL_ID",  # the service identity, whose old credential goes
        "PARTNERGUARD_RESOURCE_TOKEN",  # names this deployment's credentials
        "PARTNERGUARD_APP_HOSTNAME",  # the sign-in redirect URI
    } <= read & outputs
    # What the script saves is what the parameters file hands to the two client-id parameters.
    assert saved == {parameter_names["graphAppClientId"], parameter_names["signInClientId"]}
    assert parameter_names["azureCloud"] in read


def test_the_deployment_package_leaves_out_development_files_and_keeps_the_app() -> None:
    patterns = [
        line.strip().rstrip("/")
        for line in (REPO / ".funcignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(relative: str) -> bool:
        return any(fnmatch.fnmatch(part, pattern) for part in Path(relative).parts for pattern in patterns)

    for kept in (
        "function_app.py",
        "host.json",
        "requirements.txt",
        "partnerguard/settings.py",
        "partnerguard/model.py",
    ):
        assert (REPO / kept).exists() and not ignored(kept), kept
    for left_out in ("tests/conftest.py", "node_modules", ".venv", "infra/main.bicep", "scripts/setup_identity.py"):
        assert ignored(left_out), left_out


def test_only_what_azd_knows_before_the_hooks_is_required() -> None:
    """azd resolves every parameter before the preprovision hook runs (Azure/azure-dev#5806): a
    parameter without a default must map to a variable azd itself sets on a fresh environment
    (its name, and the location it asks for), or a fresh `azd up` prompts for it
    (tests/test_infra_azd_flow.py runs the flow)."""
    declared = parameters(MAIN)
    required = {name for name, spec in declared.items() if spec.get("default") is None}
    names = parameter_environment_names()
    assert {name: names.get(name) for name in required} == {
        "environmentName": "AZURE_ENV_NAME",
        "location": "AZURE_LOCATION",
    }
    # The ids the hook creates have an empty default, and the function app module insists on them.
    for parameter in ("graphAppClientId", "signInClientId"):
        assert declared[parameter]["default"] == ""
        module = parameters(INFRA / "modules" / "function-app.bicep")[parameter]
        assert (decorator(module, "min_length"), decorator(module, "max_length")) == (36, 36)
        assert "default" not in module or module["default"] is None


def test_the_project_and_the_hook_require_the_same_azd() -> None:
    """azd passes what a hook saves to main.parameters.json from 1.10.2 (Azure/azure-dev#4363)."""
    required = azure_yaml()["requiredVersions"]
    assert isinstance(required, dict)
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)\.(\d+)", str(required["azd"]))
    assert match, required
    source = SCRIPT.read_text()
    minimum = re.search(r"MIN_AZD_VERSION = \((\d+), (\d+), (\d+)\)", source)
    assert minimum is not None
    assert match.groups() == minimum.groups() == ("1", "10", "2")
