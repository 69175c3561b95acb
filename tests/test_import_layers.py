"""Imports run only downward (issue 13): entry points → jobs and API → composition root → use cases
→ collect, checks, store, notify → foundation.

Every product module is parsed (not imported) and every import in it is checked: module-level
ones, ones inside functions and ones under `if TYPE_CHECKING:` alike, since each is a dependency
someone has to know about. Relative imports are resolved, and `from package import name` counts
as an import of `package.name` when that is a module.

`LAYERS` below is the one place that says where a module sits; a module may import its own layer
and lower ones, never a higher one. `NEVER` adds the rules the layers alone do not state. A module
the table does not place fails the test: a new module gets a layer when it is written.
"""

from __future__ import annotations

import ast
import functools
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deployed_package import DEPLOYED_TOP_LEVELS

ROOT = Path(__file__).resolve().parents[1]

# Top to bottom. "x.*" is x and everything under it; a bare name is that module only.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "entry points",
        ("function_app", "partnerguard.functions.*", "partnerguard.cli", "partnerguard.__main__"),
    ),
    ("jobs and API", ("partnerguard.api.*", "partnerguard.scan_jobs", "partnerguard.alert_jobs")),
    ("composition root", ("partnerguard.services",)),
    (
        "use cases",
        (
            "partnerguard.pipeline",
            "partnerguard.alerts.*",
            "partnerguard.render.*",
            "partnerguard.scan_requests",
            "partnerguard.doctor",
            "partnerguard.doctor.*",
        ),
    ),
    (
        "collect, checks, store, notify",
        (
            "partnerguard.collect",
            "partnerguard.sign_in_collection",
            "partnerguard.sign_in_streams",
            "partnerguard.registration_fallback",
            "partnerguard.registration_read",
            "partnerguard.monitored_tenants",
            "partnerguard.evaluate",
            "partnerguard.method_strength_metrics",
            "partnerguard.graph.*",
            "partnerguard.credentials",
            "partnerguard.storage.*",
            "partnerguard.queues.*",
            "partnerguard.host_config",
            "checks.*",
            "notifiers.*",
        ),
    ),
    (
        "foundation",
        (
            "partnerguard",
            "partnerguard.model",
            "partnerguard.settings",
            "partnerguard.clouds",
            "partnerguard.clock",
            "partnerguard.text",
            "partnerguard.finding_groups",
            "partnerguard.logs",
            "partnerguard.schedule",
            "partnerguard.read_plan",
            "partnerguard.yaml_source",
            "partnerguard.settings_file",
            "partnerguard.config_validation",
        ),
    ),
)

# What azd deploys (tests/test_deployed_imports.py checks this against .funcignore), and the
# other project code: the test bench and the scripts run from a checkout, never in Azure.
DEPLOYED = DEPLOYED_TOP_LEVELS
UNDEPLOYED = ("testbed", "scripts")
PROJECT = (*DEPLOYED, *UNDEPLOYED, "tests")
STDLIB = frozenset(sys.stdlib_module_names)

# Standard-library modules that do I/O (files, network, processes, threads, logging): pure rules
# have no use for them.
IO_STDLIB = frozenset(
    {
        "asyncio", "concurrent", "ftplib", "glob", "http", "logging", "multiprocessing", "os", "pathlib",
        "select", "selectors", "shutil", "smtplib", "socket", "sqlite3", "ssl", "subprocess", "tempfile",
        "threading", "urllib",
    }
)  # fmt: skip
SDKS = ("azure", "httpx", "msgraph", "msgraph_core", "kiota_abstractions", "kiota_http", "jinja2")


def matches(module: str, pattern: str) -> bool:
    if pattern.endswith(".*"):
        package = pattern[:-2]
        return module == package or module.startswith(package + ".")
    return module == pattern


def within(module: str, *patterns: str) -> bool:
    return any(matches(module, pattern) for pattern in patterns)


def top(module: str) -> str:
    return module.partition(".")[0]


def layer_of(module: str) -> int | None:
    """1 (entry points) to 6 (foundation); None for a module the table does not place."""
    found = [number for number, (_, patterns) in enumerate(LAYERS, 1) if within(module, *patterns)]
    # A pattern list that placed a module twice is a mistake in the table (test_table_is_unambiguous).
    return found[0] if len(found) == 1 else None


@dataclass(frozen=True)
class Import:
    path: str  # relative to the repository, as error messages print it
    line: int
    statement: str  # the import as written
    importer: str  # dotted name of the importing module
    target: str  # dotted name of the imported module, relative imports resolved
    in_function: bool  # inside a def (runs when called, not when the module is imported)
    type_checking: bool = False  # under `if TYPE_CHECKING:` (read by type checkers only)


@dataclass(frozen=True)
class Rule:
    text: str  # what an error message quotes
    applies: Callable[[str], bool]  # to the importing module
    allows: Callable[[Import], bool]


def _is_io_or_sdk(target: str) -> bool:
    return top(target) in IO_STDLIB or top(target) in SDKS or top(target).startswith(("msgraph", "kiota"))


NEVER: tuple[Rule, ...] = (
    Rule(
        "checks are pure rules: checks.* import only the standard library (no I/O modules), checks.* and "
        "partnerguard.model; no SDK (azure.*, httpx, msgraph*, kiota*), no storage, Graph or settings",
        lambda importer: within(importer, "checks.*"),
        lambda i: (
            within(i.target, "checks.*", "partnerguard.model")
            or (top(i.target) in STDLIB and not _is_io_or_sdk(i.target))
        ),
    ),
    Rule(
        "partnerguard.model imports nothing of the project and nothing outside the standard library "
        "(everything imports it; the checks, which must stay pure, through it)",
        lambda importer: importer == "partnerguard.model",
        lambda i: top(i.target) in STDLIB,
    ),
    Rule(
        "storage keeps records, it does not evaluate, read Graph or send: partnerguard.storage.* never imports "
        "checks, partnerguard.graph, notifiers or partnerguard.alerts",
        lambda importer: within(importer, "partnerguard.storage.*"),
        lambda i: not within(i.target, "checks.*", "partnerguard.graph.*", "notifiers.*", "partnerguard.alerts.*"),
    ),
    Rule(
        "no deployed module imports the test bench (testbed.*) or the tests; the one exception is "
        "partnerguard.cli importing testbed.demo inside the demo command",
        lambda importer: within(importer, *(f"{name}.*" for name in DEPLOYED)),
        lambda i: (
            not within(i.target, "testbed.*", "tests.*")
            or (i.importer == "partnerguard.cli" and i.target == "testbed.demo" and i.in_function)
        ),
    ),
    Rule(
        "the test bench never imports the tests (testbed may import the product, the tests import both)",
        lambda importer: within(importer, "testbed.*"),
        lambda i: not within(i.target, "tests.*"),
    ),
    Rule(
        "scripts import only the standard library: they run with any Python 3.9+ and the Azure CLI, "
        "outside the project's virtual environment",
        lambda importer: within(importer, "scripts.*"),
        lambda i: top(i.target) in STDLIB,
    ),
)


# --- reading the modules ----------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    module: str
    path: str  # relative to the repository
    text: str

    @property
    def is_package(self) -> bool:
        return Path(self.path).name == "__init__.py"


def module_name(relative: Path) -> str:
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_sources(root: Path = ROOT, tops: Iterable[str] = (*DEPLOYED, *UNDEPLOYED)) -> list[Source]:
    sources: list[Source] = []
    for name in tops:
        files = [root / f"{name}.py"] if (root / f"{name}.py").is_file() else sorted((root / name).rglob("*.py"))
        for file in files:
            relative = file.relative_to(root)
            if "__pycache__" in relative.parts:
                continue
            sources.append(Source(module_name(relative), relative.as_posix(), file.read_text(encoding="utf-8")))
    return sources


def known_modules(sources: Iterable[Source]) -> frozenset[str]:
    """Every module and package (namespace packages included: each prefix of a module's name)."""
    names: set[str] = set()
    for source in sources:
        parts = source.module.split(".")
        names.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))
    return frozenset(names)


class _Collector(ast.NodeVisitor):
    def __init__(self, source: Source, known: frozenset[str]) -> None:
        self.source = source
        self.known = known
        self.lines = source.text.splitlines()
        self.depth = 0
        self.type_checking = 0
        self.found: list[Import] = []

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            self.visit(test)
            self.type_checking += 1
            for statement in node.body:
                self.visit(statement)
            self.type_checking -= 1
            for statement in node.orelse:
                self.visit(statement)
        else:
            self.generic_visit(node)

    def _add(self, node: ast.Import | ast.ImportFrom, target: str) -> None:
        # The statement as written (ast.get_source_segment re-splits the whole file on every call);
        # offsets count UTF-8 bytes.
        lines = [line.encode() for line in self.lines[node.lineno - 1 : node.end_lineno or node.lineno]]
        lines[-1] = lines[-1][: node.end_col_offset]
        lines[0] = lines[0][node.col_offset :]
        segment = b" ".join(lines).decode()
        self.found.append(
            Import(
                path=self.source.path,
                line=node.lineno,
                statement=" ".join(segment.split()),
                importer=self.source.module,
                target=target,
                in_function=self.depth > 0,
                type_checking=self.type_checking > 0,
            )
        )

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self._base(node)
        if base == "__future__":
            return
        for alias in node.names:
            candidate = f"{base}.{alias.name}" if base else alias.name
            self._add(node, candidate if candidate in self.known else base)

    def _base(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        package = self.source.module.split(".")
        if not self.source.is_package:
            package = package[:-1]
        if node.level - 1 > len(package):
            raise ValueError(f"{self.source.path}:{node.lineno}: relative import beyond the top-level package")
        package = package[: len(package) - (node.level - 1)]
        return ".".join([*package, *([node.module] if node.module else [])])


def imports_of(source: Source, known: frozenset[str]) -> list[Import]:
    collector = _Collector(source, known)
    collector.visit(ast.parse(source.text, filename=source.path))
    return collector.found


def _describe(found: Import) -> str:
    where = (
        "under TYPE_CHECKING" if found.type_checking else "inside a function" if found.in_function else "at import time"
    )
    return f"{found.path}:{found.line}: `{found.statement}` ({found.importer} imports {found.target}, {where})"


def violations(sources: Iterable[Source], extra_known: Iterable[str] = ()) -> list[str]:
    """One message per broken rule: file, line, the import as written, and the rule."""
    sources = list(sources)
    known = known_modules(sources) | frozenset(extra_known)
    problems: list[str] = []
    for source in sources:
        deployed = top(source.module) in DEPLOYED
        importer_layer = layer_of(source.module)
        if deployed and importer_layer is None:
            problems.append(
                f"{source.path}: module {source.module} has no layer; add it to LAYERS in tests/test_import_layers.py"
            )
        for found in imports_of(source, known):
            problems.extend(_check(found, importer_layer))
    # `from x import a, b` is one message, not one per name.
    return list(dict.fromkeys(problems))


def _check(found: Import, importer_layer: int | None) -> Iterator[str]:
    project = top(found.target) in PROJECT
    target_layer = layer_of(found.target) if project else None
    if importer_layer is not None and project and top(found.target) in DEPLOYED:
        if target_layer is None:
            yield f"{_describe(found)}: {found.target} has no layer in LAYERS (tests/test_import_layers.py)"
        elif target_layer < importer_layer:
            yield (
                f"{_describe(found)}: imports run only downward, and layer {importer_layer} "
                f"({LAYERS[importer_layer - 1][0]}) may not import layer {target_layer} ({LAYERS[target_layer - 1][0]})"
            )
    for rule in NEVER:
        if rule.applies(found.importer) and not rule.allows(found):
            yield f"{_describe(found)}: {rule.text}"


# --- the tests ----------------------------------------------------------------------------------


def test_table_is_unambiguous() -> None:
    patterns = [pattern for _, layer in LAYERS for pattern in layer]
    assert len(patterns) == len(set(patterns))
    for source in project_sources(tops=DEPLOYED):
        placed = [name for name, layer in LAYERS if within(source.module, *layer)]
        assert len(placed) == 1, f"{source.path}: {source.module} is placed in {placed or 'no layer'} (LAYERS)"


def test_imports_run_only_downward() -> None:
    sources = project_sources()
    assert len([s for s in sources if top(s.module) in DEPLOYED]) > 50  # the walk found the product
    problems = violations(sources)
    assert not problems, "import rules broken:\n" + "\n".join(problems)


def test_every_import_is_seen() -> None:
    """The walk reads function-level, TYPE_CHECKING and relative imports, which the rules rely on."""
    sources = project_sources()
    everything = [i for s in sources for i in imports_of(s, known_modules(sources))]
    cli_demo = [i for i in everything if i.importer == "partnerguard.cli" and i.target == "testbed.demo"]
    assert [i.in_function for i in cli_demo] == [True]
    assert any(i.importer == "checks" and i.target == "checks.apps_client_secrets" for i in everything)


# Synthetic modules the checker must reject: (module, path, source, what the message must say).
BAD: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "partnerguard.storage.synthetic",
        "partnerguard/storage/synthetic.py",
        "import json\n\nfrom partnerguard.pipeline import run_scan\n",
        (
            "partnerguard/storage/synthetic.py:3:",
            "`from partnerguard.pipeline import run_scan`",
            "layer 5 (collect, checks, store, notify) may not import layer 4 (use cases)",
        ),
    ),
    (
        "partnerguard.storage.synthetic",
        "partnerguard/storage/synthetic.py",
        "def f():\n    from ..alerts import policy\n    return policy\n",
        (
            "synthetic.py:2:",
            "`from ..alerts import policy`",
            "partnerguard.alerts.policy, inside a function",
            "may not import layer 4",
            "partnerguard.storage.* never imports",
        ),
    ),
    (
        "partnerguard.storage.synthetic",
        "partnerguard/storage/synthetic.py",
        "from checks import CHECK_IDS\n",
        ("`from checks import CHECK_IDS`", "partnerguard.storage.* never imports checks"),
    ),
    (
        "partnerguard.model",
        "partnerguard/model.py",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from partnerguard.settings import Settings\n",
        (
            "partnerguard/model.py:3:",
            "`from partnerguard.settings import Settings`",
            "under TYPE_CHECKING",
            "partnerguard.model imports nothing",
        ),
    ),
    (
        "checks.synthetic",
        "checks/synthetic.py",
        "def execute(snapshot, context):\n    import httpx\n    return httpx\n",
        ("checks/synthetic.py:2:", "`import httpx`", "checks are pure rules"),
    ),
    (
        "checks.synthetic",
        "checks/synthetic.py",
        "from pathlib import Path\n",
        ("`from pathlib import Path`", "checks are pure rules"),
    ),
    (
        "checks.support.synthetic",
        "checks/support/synthetic.py",
        "from partnerguard.text import safe_text\n",
        ("`from partnerguard.text import safe_text`", "checks are pure rules"),
    ),
    (
        "notifiers.synthetic",
        "notifiers/synthetic.py",
        "import testbed.acs_fake\n",
        ("notifiers/synthetic.py:1:", "`import testbed.acs_fake`", "no deployed module imports the test bench"),
    ),
    (
        "partnerguard.cli",
        "partnerguard/cli.py",
        "from testbed.demo import run_demo\n",  # the demo's import, but at import time
        ("`from testbed.demo import run_demo`", "at import time", "no deployed module imports the test bench"),
    ),
    (
        "partnerguard.graph.synthetic",
        "partnerguard/graph/synthetic.py",
        "from tests.graph_sim import fast_pacer\n",
        ("`from tests.graph_sim import fast_pacer`", "no deployed module imports the test bench"),
    ),
    (
        "function_app",
        "function_app.py",
        "from partnerguard import services\n",
        (),  # allowed: the entry point may import any lower layer (checked below)
    ),
    (
        "partnerguard.graph.synthetic",
        "partnerguard/graph/synthetic.py",
        "import partnerguard.api.handlers\n",
        ("`import partnerguard.api.handlers`", "layer 5 (collect, checks, store, notify) may not import layer 2"),
    ),
    (
        "partnerguard.brand_new",
        "partnerguard/brand_new.py",
        "from partnerguard.model import Finding\n",
        ("partnerguard/brand_new.py: module partnerguard.brand_new has no layer",),
    ),
    (
        "testbed.synthetic",
        "testbed/synthetic.py",
        "from tests import conftest\n",
        ("`from tests import conftest`", "the test bench never imports the tests"),
    ),
    (
        "scripts.synthetic",
        "scripts/synthetic.py",
        "import httpx\n",
        ("scripts/synthetic.py:1:", "`import httpx`", "scripts import only the standard library"),
    ),
)


@functools.cache
def _real_modules() -> frozenset[str]:
    return known_modules(project_sources()) | {"tests.conftest"}


@pytest.mark.parametrize(
    ("module", "path", "text", "expected"), BAD, ids=[f"{n}-{case[1]}" for n, case in enumerate(BAD)]
)
def test_a_synthetic_module_is_judged(module: str, path: str, text: str, expected: tuple[str, ...]) -> None:
    problems = violations([Source(module, path, text)], extra_known=_real_modules())
    if not expected:
        assert problems == []
        return
    assert problems, f"the checker let {path} through:\n{text}"
    joined = "\n".join(problems)
    for fragment in expected:
        assert fragment in joined, f"{fragment!r} missing from:\n{joined}"


def test_the_allowed_demo_import_is_allowed_only_there() -> None:
    demo = "def command_demo():\n    from testbed.demo import run_demo\n    return run_demo()\n"
    assert violations([Source("partnerguard.cli", "partnerguard/cli.py", demo)]) == []
    elsewhere = violations([Source("partnerguard.api.synthetic", "partnerguard/api/synthetic.py", demo)])
    assert len(elsewhere) == 1 and "partnerguard/api/synthetic.py:2:" in elsewhere[0]


def test_a_real_module_with_a_planted_import_fails(tmp_path: Path) -> None:
    """The whole path, files on disk included: a copy of the product with one upward import."""
    for name in DEPLOYED:
        source = ROOT / name if (ROOT / name).is_dir() else ROOT / f"{name}.py"
        target = tmp_path / source.name
        if source.is_dir():
            for file in source.rglob("*.py"):
                (target / file.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
                (target / file.relative_to(source)).write_text(file.read_text(encoding="utf-8"), encoding="utf-8")
        else:
            target.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    before = violations(project_sources(tmp_path, DEPLOYED))  # what test_imports_run_only_downward reports
    clock = tmp_path / "partnerguard" / "clock.py"
    lines = clock.read_text(encoding="utf-8").splitlines()
    at = next(n for n, line in enumerate(lines) if line.startswith(("import ", "from "))) + 1
    lines.insert(at - 1, "from partnerguard.services import Services  # planted")
    clock.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (problem,) = [p for p in violations(project_sources(tmp_path, DEPLOYED)) if p not in before]
    assert problem.startswith(f"partnerguard/clock.py:{at}: `from partnerguard.services import Services`")
    assert "layer 6 (foundation) may not import layer 3 (composition root)" in problem


def test_relative_imports_resolve() -> None:
    package = Source("partnerguard.storage", "partnerguard/storage/__init__.py", "from .store import ScanStore\n")
    module = Source("partnerguard.storage.store", "partnerguard/storage/store.py", "from ..model import Finding\n")
    known = _real_modules()
    assert [i.target for i in imports_of(package, known)] == ["partnerguard.storage.store"]
    assert [i.target for i in imports_of(module, known)] == ["partnerguard.model"]
