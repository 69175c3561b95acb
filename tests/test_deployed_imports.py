"""What Azure runs loads nothing of the test bench and no dev-only package (issue 13).

The deployment package is assembled as azd and Core Tools build it (the repository minus what
`.funcignore` excludes, read the way git reads a .gitignore) and run in a virtual environment
holding requirements.txt alone, as the remote build installs it (tests/deployed_package.py).
There, `function_app` and then every module of the package is imported and the app's functions
indexed; every module loaded must come from the package, the standard library or that
environment, and none may be the test bench (`testbed`, `tests`) or a dev-only package: one that
requirements-dev.txt installs and requirements.txt does not (trustme, hypothesis, pytest, …,
found by comparing the two environments). The self-tests plant such imports and watch them fail.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.deployed_package import (
    DEPLOYED_TOP_LEVELS,
    PROBE,
    ROOT,
    IgnoreRules,
    assemble,
    deployed_venv,
    distributions,
    parse_pattern,
    python_modules,
    walk,
)
from tests.functions_index import FUNCTIONS

BENCH = ("testbed", "tests")


@pytest.fixture(scope="module")
def deployed_python() -> Path:
    return deployed_venv()


@pytest.fixture(scope="module")
def dev_only(deployed_python: Path) -> dict[str, str]:
    """Top-level module → the dev-only distribution that provides it."""
    deployed = distributions(deployed_python)
    development = distributions(sys.executable)
    only = {top: name for name, tops in development.items() if name not in deployed for top in tops}
    # The derivation found what requirements-dev.txt adds, and only that.
    assert {"trustme", "hypothesis", "pytest", "schemathesis"} <= set(only)
    assert not {"azure", "httpx", "jinja2", "msgraph_core"} & set(only)
    return only


def judge(report: Mapping[str, Any], dev_only: Mapping[str, str]) -> list[str]:
    """Every way the probe's report breaks the rule, one message each."""
    problems: list[str] = []
    first_loaded_by: dict[str, str] = {}
    for entry in report["imports"]:
        for name in entry["loaded"]:
            first_loaded_by.setdefault(name, entry["module"])
        if entry["error"] is not None:
            missing = re.search(r"No module named '([^'.]+)", entry["error"])
            why = ""
            if missing and missing[1] in BENCH:
                why = f" ({missing[1]} is the test bench: not deployed, and no deployed module may import it)"
            elif missing and missing[1] in dev_only:
                why = (
                    f" ({missing[1]} is dev-only: requirements-dev.txt installs {dev_only[missing[1]]}, "
                    "requirements.txt does not)"
                )
            problems.append(f"{entry['module']} does not import in the deployed environment: {entry['error']}{why}")
    if report["index_error"] is not None:
        problems.append(f"function_app.app.get_functions() failed: {report['index_error']}")
    elif report["functions"] is not None and report["functions"] != sorted(FUNCTIONS):
        problems.append(f"the deployed app indexes {report['functions']}, the checkout {sorted(FUNCTIONS)}")

    environment = report["environment"]
    allowed = [Path(p).resolve() for p in (environment["package"], *environment["site"])]
    stdlib = [Path(p).resolve() for p in environment["stdlib"]]
    for name, location in sorted(report["modules"].items()):
        by = f"first loaded while importing {first_loaded_by.get(name, '(the interpreter)')}"
        top = name.partition(".")[0]
        if top in BENCH:
            problems.append(f"{name} ({top}, the test bench) is loaded in the deployed app, {by}")
        elif top in dev_only:
            problems.append(f"{name} (from {dev_only[top]}, dev-only) is loaded in the deployed app, {by}")
        if location is None or name == "__main__":
            continue
        path = Path(location).resolve()
        in_stdlib = any(
            path.is_relative_to(d) and path.relative_to(d).parts[:1] not in (("site-packages",), ("dist-packages",))
            for d in stdlib
        )
        if not in_stdlib and not any(path.is_relative_to(d) for d in allowed):
            problems.append(f"{name} is loaded from {location}, outside the package and its environment, {by}")
    return problems


def probe(package: Path, python: Path, output: Path) -> dict[str, Any]:
    modules = [m for m in python_modules(package, walk(package, IgnoreRules(()))) if m != "function_app"]
    result = subprocess.run(
        [str(python), "-E", "-s", "-B", "-c", PROBE, str(output), str(package), *modules],
        cwd=package,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"the probe failed:\n{result.stdout}\n{result.stderr}"
    report: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    return report


def test_the_package_holds_the_app_and_nothing_of_the_bench(tmp_path: Path) -> None:
    files = assemble(ROOT, tmp_path)
    for needed in (
        "function_app.py",
        "host.json",
        "requirements.txt",
        "partnerguard/services.py",
        "checks/__init__.py",
    ):
        assert needed in files
    tops = {Path(f).parts[0].removesuffix(".py") for f in files if f.endswith(".py")}
    assert tops == set(DEPLOYED_TOP_LEVELS)
    left_out = ("testbed/", "tests/", "scripts/", "docs/", "infra/", ".venv/", "node_modules/", ".git/")
    assert not [f for f in files if f.startswith(left_out)]
    assert not {"requirements-dev.txt", "requirements-tools.txt", "Makefile", "local.settings.json"} & set(files)


def test_deployed_modules_load_nothing_of_the_bench_or_dev_packages(
    tmp_path: Path, deployed_python: Path, dev_only: dict[str, str]
) -> None:
    package = tmp_path / "package"
    assemble(ROOT, package)
    report = probe(package, deployed_python, tmp_path / "report.json")
    imported = [entry["module"] for entry in report["imports"]]
    assert len(imported) > 50 and "partnerguard.cli" in imported and "checks.mfa_enforcement" in imported
    assert report["functions"] == sorted(FUNCTIONS) and report["functions"]
    problems = judge(report, dev_only)
    assert not problems, "the deployed app loads what it must not:\n" + "\n".join(problems)


PLANTED = "# planted by tests/test_deployed_imports.py\n"


@pytest.mark.parametrize(
    ("include_testbed", "planted", "code", "expected"),
    [
        pytest.param(
            True,  # as if .funcignore stopped leaving testbed/ out
            "partnerguard/planted.py",
            "import testbed.azurite\n",
            [
                "testbed.azurite (testbed, the test bench) is loaded",
                "first loaded while importing partnerguard.planted",
            ],
            id="bench-deployed-and-imported",
        ),
        pytest.param(
            False,
            "partnerguard/functions/planted.py",
            "from testbed.demo import run_demo\n",
            ["partnerguard.functions.planted does not import", "testbed is the test bench"],
            id="bench-imported-not-deployed",
        ),
        pytest.param(
            False,
            "notifiers/planted.py",
            "import trustme\n",
            ["notifiers.planted does not import", "trustme is dev-only: requirements-dev.txt installs trustme"],
            id="dev-package-imported",
        ),
        pytest.param(
            False,
            "checks/support/planted.py",
            f"import sys\nsys.path.append({sysconfig.get_paths()['purelib']!r})\nimport hypothesis\n",
            ["hypothesis (from hypothesis, dev-only) is loaded", "checks.support.planted", "outside the package"],
            id="dev-package-loaded-from-elsewhere",
        ),
    ],
)
def test_the_check_catches_a_planted_import(
    tmp_path: Path,
    deployed_python: Path,
    dev_only: dict[str, str],
    include_testbed: bool,
    planted: str,
    code: str,
    expected: list[str],
) -> None:
    funcignore = (ROOT / ".funcignore").read_text(encoding="utf-8")
    if include_testbed:
        funcignore = "\n".join(line for line in funcignore.splitlines() if line.strip() != "testbed/")
    package = tmp_path / "package"
    files = assemble(ROOT, package, IgnoreRules.parse(funcignore))
    assert any(f.startswith("testbed/") for f in files) == include_testbed
    (package / planted).write_text(PLANTED + code, encoding="utf-8")
    problems = judge(probe(package, deployed_python, tmp_path / "report.json"), dev_only)
    joined = "\n".join(problems)
    for fragment in expected:
        assert fragment in joined, f"{fragment!r} missing from:\n{joined}"


# .funcignore is read as git reads a .gitignore; the expectations below are what
# `git ls-files --others --exclude-from=<these patterns>` lists for the same tree.
TRICKY_PATTERNS = r"""
# comment
\#hash.txt
*.log
!keep.log
/root_only.txt
build/
docs/**/*.md
**/cache
deep/**
!deep/kept.txt
under/*/x.txt
anchored/sub
[ab]c.txt
[!q]z.txt
?.cfg
trailing.txt<3 spaces>
space\ .txt
.git*
!/.github/
lone
data/*.csv
!data/keep.csv
neg/
!neg/inside.txt
""".replace("<3 spaces>", "   ")  # trailing spaces: ignored unless escaped
TRICKY_TREE = """
#hash.txt
a.log
keep.log
sub/b.log
sub/keep.log
root_only.txt
sub/root_only.txt
build/out.bin
src/build/out.bin
other/build
docs/a.md
docs/x/y/z.md
docs/a.txt
cache/c.bin
src/cache/c.bin
deep/a.txt
deep/kept.txt
under/one/x.txt
under/one/two/x.txt
anchored/sub
x/anchored/sub
ac.txt
bc.txt
cc.txt
qz.txt
rz.txt
a.cfg
ab.cfg
trailing.txt
space .txt
space.txt
.gitignore
.github/workflow.yml
.gitattributes
lone/inner.txt
x/lone
data/a.csv
data/keep.csv
data/sub/b.csv
neg/inside.txt
plain.txt
"""
TRICKY_KEPT = """
.github/workflow.yml
ab.cfg
cc.txt
data/keep.csv
data/sub/b.csv
deep/kept.txt
docs/a.txt
keep.log
other/build
plain.txt
qz.txt
space.txt
sub/keep.log
sub/root_only.txt
under/one/two/x.txt
x/anchored/sub
"""


def test_funcignore_reads_like_gitignore(tmp_path: Path) -> None:
    for relative in TRICKY_TREE.split("\n"):
        if relative:
            (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / relative).write_text(relative, encoding="utf-8")
    kept = list(walk(tmp_path, IgnoreRules.parse(TRICKY_PATTERNS)))
    assert set(kept) == {line for line in TRICKY_KEPT.split("\n") if line}


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "ignored"),
    [
        ("*.py", "a/b/c.py", False, True),
        ("a/*.py", "a/b/c.py", False, False),  # `*` stops at '/'
        ("/a", "x/a", False, False),
        ("a", "x/a", True, True),
        ("a/", "x/a", False, False),
        ("**/a", "a", False, True),
        ("a/**/b", "a/b", False, True),
        ("a/**/b", "a/x/y/b", False, True),
        ("a/**", "a", True, False),
        ("a**b", "axx/b", False, False),  # `**` not between slashes is a `*`
        ("[a-c]", "b", False, True),
        ("[!a-c]", "b", False, False),
        ("[[:digit:]]x", "7x", False, True),
        ("?", "/", False, False),
        ("\\!bang", "!bang", False, True),
        ("\\*", "*", False, True),
        ("\\*", "x", False, False),
        ("  ", "x", False, False),
    ],
)
def test_one_pattern(pattern: str, path: str, is_dir: bool, ignored: bool) -> None:
    assert IgnoreRules.parse(pattern).ignores(path, is_dir=is_dir) is ignored
    assert pattern.strip() == "" or parse_pattern(pattern) is not None
