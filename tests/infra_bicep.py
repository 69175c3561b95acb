"""The Bicep templates of infra/, parsed offline with pycep-parser, for the infra tests.

pycep turns a template into JSON-like data: `parameters`, `variables`, `resources`, `modules`,
`outputs`, each by symbolic name. A resource's body is under `config`; a resource in a loop or
behind a condition has one more `config` level. Expressions stay as pycep's operator/function
trees; interpolated strings stay as their text ('${name}'). pycep does not tell an identifier
from a string literal of the same text (`name` and `'name'` both become "name"): tests compare
against symbol names, which no template uses as a literal.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

from pycep import BicepParser

REPO = Path(__file__).resolve().parent.parent
INFRA = REPO / "infra"
MAIN = INFRA / "main.bicep"
PARAMETERS_FILE = INFRA / "main.parameters.json"


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@cache
def template(path: Path) -> dict[str, Any]:
    return cast(dict[str, Any], BicepParser().parse(file_path=path))


@dataclass(frozen=True)
class Resource:
    file: Path
    symbol: str
    type: str
    body: dict[str, Any]  # the resource's properties (name, properties, ...), loops and conditions unwrapped
    loop_over: str | None  # the array a `for` loop runs over, by name
    condition: Any  # the `if` condition's expression, or None

    @property
    def name(self) -> Any:
        return self.body.get("name")

    @property
    def properties(self) -> dict[str, Any]:
        properties: dict[str, Any] = self.body.get("properties") or {}
        return properties


def resources(resource_type: str | None = None) -> list[Resource]:
    """Every resource in infra/ (of one type), loops and conditions unwrapped."""
    found: list[Resource] = []
    for path in bicep_files():
        for symbol, declared in template(path).get("resources", {}).items():
            if resource_type is not None and declared["type"] != resource_type:
                continue
            body = declared["config"]
            loop_over = None
            condition = None
            if "loop_type" in body:
                loop_over = body["loop_type"]["detail"]["array_name"]
                condition = body.get("condition")
                body = body["config"]
            elif "condition" in body and "config" in body:
                condition = body["condition"]
                body = body["config"]
            found.append(Resource(path, symbol, declared["type"], body, loop_over, condition))
    return found


def the_resource(resource_type: str, name: str | None = None) -> Resource:
    """The one resource of this type (and name)."""
    matches = [r for r in resources(resource_type) if name is None or r.name == name]
    assert len(matches) == 1, f"expected one {resource_type} {name or ''}, found {[r.symbol for r in matches]}"
    return matches[0]


def module_file(resource: Resource) -> dict[str, Any]:
    return template(resource.file)


def variable(path: Path, name: str) -> Any:
    """A variable's value, with list items that name other variables replaced by their values."""
    value = template(path)["variables"][name]["value"]
    variables = template(path)["variables"]
    if isinstance(value, list):
        return [variables[item]["value"] if isinstance(item, str) and item in variables else item for item in value]
    return value


def parameters(path: Path) -> dict[str, dict[str, Any]]:
    declared: dict[str, dict[str, Any]] = template(path).get("parameters", {})
    return declared


def decorator(parameter: dict[str, Any], kind: str) -> Any:
    for found in parameter.get("decorators", []):
        if found["type"] == kind:
            return found["argument"]
    return None


def role_definition_ids(path: Path) -> dict[str, set[str]]:
    """Role definition ids assigned in a file, by the principal they are assigned to. A custom
    role defined in the same file (`<symbol>.id`) is given as "custom:<symbol>"."""
    assigned: dict[str, set[str]] = {}
    for resource in resources("Microsoft.Authorization/roleAssignments"):
        if resource.file != path:
            continue
        reference = resource.properties["roleDefinitionId"]
        if "operator" in reference and reference["operator"]["type"] == "property_accessor":
            operands = reference["operator"]["operands"]
            assert operands["operand_2"] == "id", reference
            assigned.setdefault(resource.properties["principalId"], set()).add(f"custom:{operands['operand_1']}")
            continue
        role = reference["function"]["parameters"]["resource_name_1"]
        if resource.loop_over is not None:
            role_ids = set(variable(path, resource.loop_over))
        else:
            role_ids = {variable(path, role) if role in template(path)["variables"] else role}
        assigned.setdefault(resource.properties["principalId"], set()).update(role_ids)
    return assigned


def module_calls() -> dict[str, dict[str, Any]]:
    """main.bicep's module declarations by symbolic name."""
    modules: dict[str, dict[str, Any]] = template(MAIN)["modules"]
    return modules
