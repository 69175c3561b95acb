"""A stand-in for the Azure Developer CLI (azd): `azd up` over azure.yaml and infra/, for testing
that a fresh environment provisions without asking for ids that do not exist yet.

It imitates what azd's own code does, read at Azure/azure-dev ae35809f (August 2026), file by file:

- cli/azd/cmd/up.go, `upAction.Run`: `--subscription`/`--location` go into the environment, then
  `provisioningManager.Initialize` resolves every parameter *before* any hook runs
  (Azure/azure-dev#5806);
- cli/azd/internal/cmd/up_graph.go and provision_graph.go: cmdhook-preprovision, then the
  provision step (`Initialize` again, then `Deploy`), cmdhook-postprovision, then the services;
- cli/azd/pkg/ext/hooks_runner.go, `RunHooks`: the environment is reloaded from disk before and
  after each hook; a hook runs with the process environment plus the environment's values
  (pkg/exec/command_runner.go `appendEnv`), so `azd env set` in a hook writes to disk, not to the
  running azd;
- cli/azd/pkg/infra/provisioning/bicep/bicep_provider.go: `EnsureEnv` (subscription, then
  `ensureParameters`), `plan` (`ensureParameters` again before the deployment), `loadParameters`
  (`${VAR}` substitution per parameter, a parameter whose variable is unset and empty is
  dropped), `armParameterFileValue` (an empty string is no value unless it differs from the
  default; booleans and numbers from strings), `ensureParameters` (a value from the file; else a
  default; else a nullable parameter is skipped; else a value saved in config
  `infra.parameters.<name>`; else a prompt, or under `--no-prompt` a missing-inputs error);
- cli/azd/pkg/infra/provisioning/manager.go, `EnsureSubscription`;
- cli/azd/pkg/environment/environment.go, `LookupEnv`: the environment's .env first, then the
  process environment;
- cli/azd/pkg/project/project.go: `requiredVersions.azd` is a semver range the running azd must
  be in (development builds excepted);
- cli/azd/internal/env_flag.go: `-e/--environment` defaults to AZURE_ENV_NAME;
- cli/azd/cmd/version.go and pkg/contracts: `azd version --output json` prints
  {"azd": {"version", "commit"}};
- github.com/drone/envsubst (what azd substitutes with): `${VAR=default}` and `${VAR:-default}`
  give the default when VAR is empty, and the lookup still marks VAR as unset.

And what changed between versions (cli/azd/CHANGELOG.md and the commits named):
- before 1.10.2 the first `ensureParameters` result was cached for the whole run (#4363 removed
  the cache, fixing #3973): values a hook sets never reached the deployment;
- before 1.12.0 nullable parameters were prompted like required ones (#4722);
- before 1.15.0 the whole parameters file was substituted at once and an unset variable became
  "" instead of dropping the parameter (#5061).

Azure Resource Manager itself is a small stand-in (`arm_deploy`): it checks each parameter against
its declared constraints (a module's too, where main.bicep passes a parameter straight through)
and answers with made-up outputs of the declared names. No Azure is called.

Run as a program (the hooks' `azd` on PATH), it answers `azd env set|get-values|new` and
`azd version` against the project's `.azure` directory, as azd does.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CURRENT_VERSION = "1.29.0"
VERSION_VARIABLE = "FAKE_AZD_VERSION"  # the version this stand-in plays
CALL_LOG_VARIABLE = "FAKE_AZD_LOG"  # where the program records its command lines, if set
PRINCIPAL_ID = "0b9f5a8e-1d2c-4e3f-8a7b-6c5d4e3f2a1b"  # the signed-in user (AZURE_PRINCIPAL_ID)


class AzdError(Exception):
    """azd stops with this message."""


class MissingInputsError(AzdError):
    """`--no-prompt` and required inputs without a value (bicep/missing_inputs.go)."""

    def __init__(self, inputs: list[tuple[str, list[str]]]) -> None:
        self.inputs = inputs  # (parameter, the environment variables it maps to)
        names = ", ".join(name for name, _ in inputs)
        super().__init__(f"missing required inputs: {names}")


class PromptRequiredError(AzdError):
    """`--no-prompt` and no subscription or location (provisioning/manager.go)."""


class PromptUnanswered(AzdError):
    """An interactive prompt the test gave no answer for."""


class HookFailed(AzdError):
    pass


class DeploymentFailed(AzdError):
    """What Azure Resource Manager would refuse before deploying anything."""


# -- versions ------------------------------------------------------------------------------------


def parse_version(text: str) -> tuple[int, int, int, str]:
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?", text.strip())
    if not match:
        raise AzdError(f"not a semantic version: {text!r}")
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), match.group(4) or ""


def is_dev_version(version: str) -> bool:
    """A build from source (internal/version.go): azd treats it as current."""
    return version.startswith("0.0.0-dev")


def version_at_least(version: str, minimum: tuple[int, int, int]) -> bool:
    if is_dev_version(version):
        return True
    major, minor, patch, prerelease = parse_version(version)
    if (major, minor, patch) != minimum:
        return (major, minor, patch) > minimum
    return not prerelease  # a pre-release precedes its release


def in_range(version: str, spec: str) -> bool:
    """blang/semver ranges as azure.yaml uses them: `>=X.Y.Z` and `<X.Y.Z` comparators, separated
    by spaces (AND); a space may follow the operator."""
    comparators = re.findall(r"(>=|<)\s*(\d+)\.(\d+)\.(\d+)(?=\s|$)", spec)
    if not comparators or re.sub(r"(>=|<)\s*\d+\.\d+\.\d+", "", spec).strip():
        raise AzdError(f"the stand-in does not model the range {spec!r}")
    for operator, major, minor, patch in comparators:
        at_least = version_at_least(version, (int(major), int(minor), int(patch)))
        if at_least != (operator == ">="):
            return False
    return True


# -- environments ----------------------------------------------------------------------------------


def dotenv_dump(values: Mapping[str, str]) -> str:
    """KEY="value" lines, escaped as godotenv.Marshal does."""
    lines = []
    for key in sorted(values):
        value = values[key].replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("$", "\\$")
        lines.append(f'{key}="{value}"')
    return "\n".join(lines) + "\n"


def dotenv_load(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, raw = line.partition("=")
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), raw[1:-1])
        values[key.strip()] = raw
    return values


class EnvironmentStore:
    """`.azure/` of a project: config.json (the default environment) and one directory per
    environment with its `.env` and its `config.json` (prompted parameter values)."""

    def __init__(self, project: Path) -> None:
        self.root = project / ".azure"

    def directory(self, name: str) -> Path:
        return self.root / name

    def exists(self, name: str) -> bool:
        return (self.directory(name) / ".env").is_file()

    def default(self) -> str | None:
        config = self.root / "config.json"
        value = json.loads(config.read_text()).get("defaultEnvironment") if config.is_file() else None
        return str(value) if value else None

    def create(self, name: str, values: Mapping[str, str] | None = None) -> None:
        if not re.fullmatch(r"[a-zA-Z0-9\-()_.]{1,64}", name):
            raise AzdError(f"invalid environment name {name!r}")
        if self.exists(name):
            raise AzdError(f"environment '{name}' already exists")
        self.directory(name).mkdir(parents=True)
        self.save(name, {"AZURE_ENV_NAME": name, **(values or {})})
        if self.default() is None:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "config.json").write_text(json.dumps({"version": 1, "defaultEnvironment": name}))

    def load(self, name: str) -> dict[str, str]:
        if not self.exists(name):
            raise AzdError(f"environment '{name}' does not exist")
        return dotenv_load((self.directory(name) / ".env").read_text())

    def save(self, name: str, values: Mapping[str, str]) -> None:
        (self.directory(name) / ".env").write_text(dotenv_dump(values))

    def config(self, name: str) -> dict[str, Any]:
        path = self.directory(name) / "config.json"
        loaded: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
        return loaded

    def save_config(self, name: str, config: Mapping[str, Any]) -> None:
        (self.directory(name) / "config.json").write_text(json.dumps(config, indent=1))


class Environment:
    """One azd environment as the running azd holds it in memory (environment.Environment):
    `dotenv` is what it last loaded or set; `reload` reads the disk again."""

    def __init__(self, store: EnvironmentStore, name: str, process_env: Mapping[str, str]) -> None:
        self.store = store
        self.name = name
        self.process_env = process_env
        self.dotenv = store.load(name)
        self.config = store.config(name)

    def lookup(self, key: str) -> tuple[str, bool]:
        """LookupEnv: the .env first, then the process environment."""
        if key in self.dotenv:
            return self.dotenv[key], True
        if key in self.process_env:
            return self.process_env[key], True
        return "", False

    def get(self, key: str) -> str:
        return self.lookup(key)[0]

    def set(self, key: str, value: str) -> None:
        self.dotenv[key] = value

    def save(self) -> None:
        self.store.save(self.name, self.dotenv)
        self.store.save_config(self.name, self.config)

    def reload(self) -> None:
        self.dotenv = self.store.load(self.name)
        self.config = self.store.config(self.name)


# -- the template, as azd sees it after `bicep build` ------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # string, bool, int, object, array (Bicep names)
    has_default: bool
    default: Any
    nullable: bool
    constraints: dict[str, Any]  # min_length, max_length, min_value, max_value, allowed
    location: bool  # @metadata({azd: {type: 'location'}})


@dataclass(frozen=True)
class Template:
    parameters: dict[str, Parameter]
    outputs: dict[str, tuple[str, Any]]  # name -> (type, value expression)
    module_passthrough: list[tuple[str, dict[str, str]]]  # (module file, module param -> main param)


def _parameters_of(path: Path) -> dict[str, Parameter]:
    from pycep import BicepParser  # the test environment's parser; the program path never needs it

    document = BicepParser().parse(file_path=path)
    text = path.read_text()
    parameters: dict[str, Parameter] = {}
    for name, declared in (document.get("parameters") or {}).items():
        # pycep drops the `?` of a nullable type: read it from the declaration itself.
        nullable = re.search(rf"^\s*param\s+{re.escape(name)}\s+\w+\?", text, re.MULTILINE) is not None
        constraints: dict[str, Any] = {}
        location = False
        for decorator in declared.get("decorators", []):
            kind, argument = decorator["type"], decorator.get("argument")
            if kind in ("min_length", "max_length", "min_value", "max_value", "allowed"):
                constraints[kind] = argument
            if kind == "metadata" and "location" in json.dumps(argument):
                location = True
            if kind == "secure":
                raise AzdError(f"{path.name}: the stand-in does not model @secure() parameter {name}")
        default = declared.get("default")
        declared_type = declared["type"]
        if not isinstance(declared_type, str):
            raise AzdError(f"{path.name}: the stand-in does not model the type of parameter {name}")
        parameters[name] = Parameter(name, declared_type, default is not None, default, nullable, constraints, location)
    return parameters


def compile_template(main: Path) -> Template:
    """What azd needs from `bicep build`: parameters, outputs, and the module parameters main.bicep
    passes straight through (for the ARM stand-in's constraint checks)."""
    from pycep import BicepParser

    document: dict[str, Any] = dict(BicepParser().parse(file_path=main))
    outputs = {name: (str(spec["type"]), spec.get("value")) for name, spec in (document.get("outputs") or {}).items()}
    passthrough: list[tuple[str, dict[str, str]]] = []
    parameters = _parameters_of(main)
    for module in (document.get("modules") or {}).values():
        given = module["config"].get("params") or {}
        direct = {key: value for key, value in given.items() if isinstance(value, str) and value in parameters}
        passthrough.append((str(module["detail"]["path"]), direct))
    return Template(parameters, outputs, passthrough)


# -- parameter resolution (bicep_provider.go) ----------------------------------------------------------


_SUBSTITUTION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-=])([^}]*))?\}")


def envsubst(text: str, lookup: Callable[[str], tuple[str, bool]]) -> tuple[str, list[str], bool]:
    """drone/envsubst over `text`: (result, the variables it names, whether one of them is unset)."""
    named: list[str] = []
    unset = False

    def replace(match: re.Match[str]) -> str:
        nonlocal unset
        name, operator, default = match.group(1), match.group(2), match.group(3)
        value, defined = lookup(name)
        named.append(name)
        unset = unset or not defined
        if operator is not None and value == "":
            return default
        return value

    if "${" in _SUBSTITUTION.sub("", text):
        raise AzdError(f"the stand-in does not model the substitution in {text!r}")
    return _SUBSTITUTION.sub(replace, text), named, unset


def arm_parameter_file_value(parameter: Parameter, value: Any) -> Any:
    """armParameterFileValue: strings relaxed into booleans and numbers; an empty string is no
    value (None) unless the parameter's default is another string."""
    if not isinstance(value, str):
        return value
    if parameter.type == "bool":  # strconv.ParseBool's spellings
        if value in ("1", "t", "T", "TRUE", "true", "True"):
            return True
        if value in ("0", "f", "F", "FALSE", "false", "False"):
            return False
        return None
    if parameter.type == "int":
        return int(value) if re.fullmatch(r"[+-]?\d+", value) else None
    if parameter.type == "string":
        if value != "":
            return value
        if parameter.has_default and isinstance(parameter.default, str) and value != parameter.default:
            return value
        return None
    return value


@dataclass
class Run:
    """What one `azd up` did, for the test to read."""

    prompts: list[tuple[str, str]] = field(default_factory=list)  # (kind, name)
    steps: list[str] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)  # the parameters ARM received
    hook_output: list[str] = field(default_factory=list)


class Azd:
    """`azd up` of one project, as one azd process runs it."""

    def __init__(
        self,
        project: Path,
        version: str = CURRENT_VERSION,
        process_env: Mapping[str, str] | None = None,
        tenant_id: str = "00000000-0000-0000-0000-000000000000",
    ) -> None:
        self.project = project
        self.version = version
        self.process_env = dict(process_env or {})
        self.tenant_id = tenant_id
        self.store = EnvironmentStore(project)

    # -- azure.yaml ------------------------------------------------------------------------------

    def project_config(self) -> dict[str, Any]:
        import yaml

        config: dict[str, Any] = yaml.safe_load((self.project / "azure.yaml").read_text())
        required = (config.get("requiredVersions") or {}).get("azd")
        if required and not is_dev_version(self.version) and not in_range(self.version, required):
            raise AzdError(
                f"this project requires a version of azd within the range '{required}', but you have "
                f"'{self.version}'."
            )
        return config

    # -- the commands ------------------------------------------------------------------------------

    def env_new(self, name: str, subscription: str | None = None, location: str | None = None) -> None:
        values = {}
        if subscription:
            values["AZURE_SUBSCRIPTION_ID"] = subscription
        if location:
            values["AZURE_LOCATION"] = location
        self.store.create(name, values)

    def up(
        self,
        environment: str | None = None,
        *,
        no_prompt: bool = False,
        subscription: str | None = None,
        location: str | None = None,
        answers: Mapping[str, Any] | None = None,
    ) -> Run:
        config = self.project_config()
        name = environment or self.process_env.get("AZURE_ENV_NAME") or self.store.default()
        if name is None:
            if no_prompt:
                raise PromptRequiredError("no environment: azd env new <name>, or -e <name>")
            raise PromptUnanswered("environment name")
        if not self.store.exists(name):
            self.store.create(name)
        env = Environment(self.store, name, self.process_env)
        run = Run()
        # up.go: the flags go into the environment first, and may not change what it has.
        for key, flag in (("AZURE_SUBSCRIPTION_ID", subscription), ("AZURE_LOCATION", location)):
            if flag:
                existing = env.get(key)
                if existing and existing != flag:
                    raise AzdError(f"environment '{name}' has {key}={existing}, not {flag}")
                env.set(key, flag)
        env.save()
        provider = BicepProvider(self, env, run, no_prompt, dict(answers or {}), config)
        run.steps.append("initialize")
        provider.initialize()
        self.run_hook(config, "preprovision", env, run)
        run.steps.append("provision")
        provider.initialize()
        outputs = provider.deploy()
        # provisioning.UpdateEnvironment: outputs into .env (after reloading what hooks wrote).
        env.reload()
        for key, (kind, value) in outputs.items():
            env.set(key, json.dumps(value) if kind in ("object", "array") else _string(value))
        env.save()
        self.run_hook(config, "postprovision", env, run)
        for service in config.get("services") or {}:
            run.steps.append(f"deploy {service}")
        return run

    def run_hook(self, config: Mapping[str, Any], hook: str, env: Environment, run: Run) -> None:
        """RunHooks: reload, run the posix hook with the process env plus the .env, reload."""
        declared = (config.get("hooks") or {}).get(hook)
        if not declared:
            return
        step = declared.get("posix", declared)
        if step.get("shell", "sh") != "sh":
            raise AzdError(f"the stand-in runs sh hooks only, not {step.get('shell')}")
        env.reload()
        run.steps.append(hook)
        completed = subprocess.run(
            ["sh", "-c", step["run"]],
            cwd=self.project,
            env={**self.process_env, **env.dotenv},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        run.hook_output.append(f"[{hook}]\n{completed.stdout}{completed.stderr}")
        if completed.returncode != 0 and not step.get("continueOnError", False):
            raise HookFailed(f"{hook} hook failed with exit code {completed.returncode}:\n{completed.stderr}")
        env.reload()


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class BicepProvider:
    """The bicep provider of one `azd up` (one instance for the whole run, as in azd)."""

    def __init__(
        self,
        azd: Azd,
        env: Environment,
        run: Run,
        no_prompt: bool,
        answers: dict[str, Any],
        config: Mapping[str, Any],
    ) -> None:
        self.azd = azd
        self.env = env
        self.run = run
        self.no_prompt = no_prompt
        self.answers = answers
        infra = config.get("infra") or {}
        self.infra = azd.project / infra.get("path", "infra")
        self.module = infra.get("module", "main")
        if (self.infra / f"{self.module}.bicepparam").exists():
            raise AzdError("the stand-in models main.parameters.json, not .bicepparam")
        self.template = compile_template(self.infra / f"{self.module}.bicep")
        self.cached: dict[str, Any] | None = None

    def initialize(self) -> None:
        """Initialize -> EnsureEnv: the subscription, then every parameter."""
        self.ensure_subscription()
        self.ensure_parameters()

    def ensure_subscription(self) -> None:
        if not self.env.get("AZURE_SUBSCRIPTION_ID"):
            if self.no_prompt:
                raise PromptRequiredError("subscription: set AZURE_SUBSCRIPTION_ID")
            self.env.set("AZURE_SUBSCRIPTION_ID", self.prompt("subscription", "subscription"))
        self.env.save()

    def prompt(self, kind: str, name: str) -> Any:
        self.run.prompts.append((kind, name))
        if name not in self.answers:
            raise PromptUnanswered(f"azd asked for {kind} {name!r} and the test gave no answer")
        return self.answers[name]

    def load_parameters(self) -> tuple[dict[str, Any], dict[str, list[str]]]:
        """loadParameters: the parameters file with ${VAR} substituted; (values, variables named)."""
        path = self.infra / f"{self.module}.parameters.json"
        if not path.exists():
            return {}, {}
        declared = json.loads(path.read_text())["parameters"]
        lookup = self.env.lookup

        def special(name: str) -> tuple[str, bool]:
            if name == "AZURE_PRINCIPAL_ID":
                return PRINCIPAL_ID, True
            if name == "AZURE_PRINCIPAL_TYPE":
                return "User", True
            return lookup(name)

        values: dict[str, Any] = {}
        variables: dict[str, list[str]] = {}
        if not version_at_least(self.azd.version, (1, 15, 0)):
            # Before #5061: the whole file at once, an unset variable is "" (env.Getenv).
            text, _, _ = envsubst(path.read_text(), lambda n: (special(n)[0], True))
            for name, entry in json.loads(text)["parameters"].items():
                values[name] = entry.get("value")
            for name, entry in declared.items():
                variables[name] = envsubst(json.dumps(entry), special)[1]
            return values, variables
        for name, entry in declared.items():
            if "reference" in entry:
                raise AzdError(f"the stand-in does not model Key Vault references ({name})")
            replaced, named, unset = envsubst(json.dumps(entry), special)
            variables[name] = [n for n in named if n not in ("AZURE_PRINCIPAL_ID", "AZURE_PRINCIPAL_TYPE")]
            value = json.loads(replaced).get("value")
            if value is None:
                continue
            if value == "" and unset:
                continue  # mapped to an unset variable: dropped, not ""
            parameter = self.template.parameters.get(name)
            if parameter is not None and parameter.type in ("object", "array") and isinstance(value, str):
                value = json.loads(value)
            values[name] = value
        return values, variables

    def ensure_parameters(self) -> dict[str, Any]:
        if self.cached is not None and not version_at_least(self.azd.version, (1, 10, 2)):
            return dict(self.cached)  # the in-memory cache #4363 removed
        # A location in the process environment but not in .env is saved first.
        if self.azd.process_env.get("AZURE_LOCATION") and "AZURE_LOCATION" not in self.env.dotenv:
            self.env.set("AZURE_LOCATION", self.azd.process_env["AZURE_LOCATION"])
            self.env.save()
        values, variables = self.load_parameters()
        configured: dict[str, Any] = {}
        prompts: list[Parameter] = []
        for name in sorted(self.template.parameters):
            parameter = self.template.parameters[name]
            if name in values:
                value = arm_parameter_file_value(parameter, values[name])
                if value is not None:
                    configured[name] = value
                    continue
            if parameter.has_default:
                continue
            if parameter.nullable and version_at_least(self.azd.version, (1, 12, 0)):
                continue
            saved = self.env.config.get("infra", {}).get("parameters", {}).get(name)
            if saved is not None:
                configured[name] = saved
                continue
            prompts.append(parameter)
        if prompts and self.no_prompt:
            raise MissingInputsError([(p.name, variables.get(p.name, [])) for p in prompts])
        for parameter in prompts:
            is_location = parameter.location or "AZURE_LOCATION" in variables.get(parameter.name, [])
            value = self.prompt("location" if is_location else "parameter", parameter.name)
            if is_location:
                self.env.set("AZURE_LOCATION", str(value))
            else:
                self.env.config.setdefault("infra", {}).setdefault("parameters", {})[parameter.name] = value
            configured[parameter.name] = value
        if prompts:
            self.env.save()
        self.cached = dict(configured)
        return configured

    def deploy(self) -> dict[str, tuple[str, Any]]:
        """Deploy -> plan (ensureParameters again, reading the file and .env anew), then ARM."""
        configured = self.ensure_parameters()
        self.run.deployments.append(dict(configured))
        return arm_deploy(self.template, self.infra, configured, self.env, self.azd.tenant_id)


# -- Azure Resource Manager, as far as these tests need it -------------------------------------------


def check_constraints(where: str, parameter: Parameter, value: Any) -> None:
    """What ARM checks of a parameter value before deploying: its type and declared constraints
    (https://learn.microsoft.com/azure/azure-resource-manager/bicep/parameters#use-decorators)."""
    types = {"string": str, "bool": bool, "int": int, "object": dict, "array": list}
    expected = types.get(parameter.type)
    if expected is not None and (not isinstance(value, expected) or (expected is int and isinstance(value, bool))):
        raise DeploymentFailed(f"{where}: parameter '{parameter.name}' expects a {parameter.type}, got {value!r}")
    rules = parameter.constraints
    if "allowed" in rules and value not in rules["allowed"]:
        raise DeploymentFailed(f"{where}: the value of '{parameter.name}' is not part of the allowed value(s)")
    if isinstance(value, str | list):
        if "min_length" in rules and len(value) < rules["min_length"]:
            raise DeploymentFailed(
                f"{where}: the provided value for the template parameter '{parameter.name}' is not valid. "
                f"Length of the value should be greater than or equal to '{rules['min_length']}'."
            )
        if "max_length" in rules and len(value) > rules["max_length"]:
            raise DeploymentFailed(f"{where}: '{parameter.name}' is longer than {rules['max_length']}")
    if isinstance(value, int) and not isinstance(value, bool):
        if "min_value" in rules and value < rules["min_value"]:
            raise DeploymentFailed(f"{where}: '{parameter.name}' is below {rules['min_value']}")
        if "max_value" in rules and value > rules["max_value"]:
            raise DeploymentFailed(f"{where}: '{parameter.name}' is above {rules['max_value']}")


def arm_deploy(
    template: Template, infra: Path, configured: Mapping[str, Any], env: Environment, tenant_id: str
) -> dict[str, tuple[str, Any]]:
    values: dict[str, Any] = {}
    for name, parameter in template.parameters.items():
        if name in configured:
            values[name] = configured[name]
        elif parameter.has_default:
            if isinstance(parameter.default, str | bool | int | list):
                values[name] = parameter.default
            continue  # an expression default: ARM evaluates it; nothing to check here
        elif parameter.nullable:
            values[name] = None
            continue
        else:
            raise DeploymentFailed(f"main.bicep: the value for the template parameter '{name}' is not provided")
        check_constraints("main.bicep", parameter, values[name])
    for module, passthrough in template.module_passthrough:
        declared = _parameters_of(infra / module)
        for module_parameter, main_parameter in passthrough.items():
            if main_parameter in values and module_parameter in declared:
                check_constraints(module, declared[module_parameter], values[main_parameter])
    subscription = env.get("AZURE_SUBSCRIPTION_ID")
    seed = f"{subscription}/{values.get('environmentName')}/{values.get('location')}"
    token = hashlib.sha256(seed.encode()).hexdigest()[:13]
    outputs: dict[str, tuple[str, Any]] = {}
    for name, (kind, expression) in template.outputs.items():
        if isinstance(expression, str) and expression in values:
            outputs[name] = (kind, values[expression])
        elif name == "AZURE_TENANT_ID":
            outputs[name] = (kind, tenant_id)
        elif name.endswith(("_PRINCIPAL_ID", "_CLIENT_ID")):
            outputs[name] = (kind, str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}/{name}")))
        elif name == "PARTNERGUARD_APP_HOSTNAME":
            outputs[name] = (kind, f"func-pg-{token}.azurewebsites.net")
        elif name == "PARTNERGUARD_RESOURCE_TOKEN":
            outputs[name] = (kind, token)
        else:
            outputs[name] = (kind, {"bool": False, "object": {}, "array": []}.get(kind, f"{name.lower()}-{token}"))
    return outputs


# -- the program: what a hook's `azd` answers ----------------------------------------------------------


def environment_flag(args: list[str]) -> tuple[str | None, list[str]]:
    rest: list[str] = []
    name = None
    iterator = iter(args)
    for arg in iterator:
        if arg in ("-e", "--environment"):
            name = next(iterator, None)
        elif arg.startswith("--environment="):
            name = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return name or os.environ.get("AZURE_ENV_NAME") or None, rest


def main(argv: list[str]) -> int:
    log = os.environ.get(CALL_LOG_VARIABLE)
    if log:
        with Path(log).open("a", encoding="utf-8") as file:
            file.write(json.dumps(argv) + "\n")
    version = os.environ.get(VERSION_VARIABLE, CURRENT_VERSION)
    store = EnvironmentStore(Path.cwd())
    try:
        if argv[:1] == ["version"]:
            if "--output" in argv and argv[argv.index("--output") + 1 :][:1] == ["json"]:
                print(json.dumps({"azd": {"version": version, "commit": "0" * 40}}))
            else:
                print(f"azd version {version} (commit {'0' * 40})")
            return 0
        if argv[:2] == ["env", "set"]:
            name, rest = environment_flag(argv[2:])
            name = name or store.default()
            if name is None or len(rest) != 2:
                raise AzdError("usage: azd env set <key> <value> [-e <environment>]")
            values = store.load(name)
            values[rest[0]] = rest[1]
            store.save(name, values)
            return 0
        if argv[:2] == ["env", "get-values"]:
            name, _ = environment_flag(argv[2:])
            name = name or store.default()
            if name is None:
                raise AzdError("no environment")
            sys.stdout.write(dotenv_dump(store.load(name)))
            return 0
        raise AzdError(f"the stand-in does not model `azd {' '.join(argv)}`")
    except AzdError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
