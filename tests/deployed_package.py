"""The deployment package and the Python environment Azure runs it in, rebuilt locally for
tests/test_deployed_imports.py.

- `IgnoreRules`: `.funcignore` read the way git reads a `.gitignore` (azd and Core Tools package the
  app directory minus what it lists), and `assemble` copying the package into a directory;
- `deployed_venv`: a virtual environment holding requirements.txt alone (what the remote build
  installs), built once under .venv/deployed and rebuilt when requirements.txt changes;
- `PROBE`: what runs in that environment: it imports the app and every module, indexes the
  functions and reports every module loaded, with where it was loaded from.

`python -m tests.deployed_package` builds the environment (`make install` does, so the tests find
it ready; they build it themselves when it is missing).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEPLOYED_VENV = ROOT / ".venv" / "deployed"
# The Python the package holds (tests/test_deployed_imports.py checks it against .funcignore;
# tests/test_import_layers.py gives each of its modules a layer).
DEPLOYED_TOP_LEVELS = ("function_app", "partnerguard", "checks", "notifiers")
STAMP = ".requirements.sha256"

# --- .funcignore ------------------------------------------------------------------------------

_CLASSES = {
    "alnum": r"a-zA-Z0-9",
    "alpha": r"a-zA-Z",
    "blank": r" \t",
    "cntrl": r"\x00-\x1f\x7f",
    "digit": r"0-9",
    "graph": r"!-~",
    "lower": r"a-z",
    "print": r" -~",
    "punct": r"!-/:-@\[-`{-~",
    "space": r" \t\n\r\f\v",
    "upper": r"A-Z",
    "xdigit": r"0-9A-Fa-f",
}


def _bracket(glob: str, start: int) -> tuple[str, int] | None:
    """The regex for the bracket expression at glob[start] ('['), and the index after it; None
    when it is not closed (git then matches '[' literally)."""
    i = start + 1
    negate = i < len(glob) and glob[i] in "!^"
    if negate:
        i += 1
    parts: list[str] = []
    first = True
    while i < len(glob):
        char = glob[i]
        if char == "]" and not first:
            body = "".join(parts)
            return (f"[^/{body}]" if negate else f"(?!/)[{body}]"), i + 1
        first = False
        if char == "[" and glob.startswith("[:", i):
            end = glob.find(":]", i + 2)
            if end != -1 and glob[i + 2 : end] in _CLASSES:
                parts.append(_CLASSES[glob[i + 2 : end]])
                i = end + 2
                continue
        if char == "\\" and i + 1 < len(glob):
            i += 1
            char = glob[i]
        if i + 2 < len(glob) and glob[i + 1] == "-" and glob[i + 2] != "]":
            high = glob[i + 2]
            step = 3
            if high == "\\" and i + 3 < len(glob):
                high = glob[i + 3]
                step = 4
            parts.append(f"{re.escape(char)}-{re.escape(high)}")
            i += step
            continue
        parts.append(re.escape(char))
        i += 1
    return None


def _glob_regex(glob: str) -> str:
    """git's wildmatch with WM_PATHNAME: `*`, `?` and brackets never match '/', `**` between
    slashes (or at either end) matches any number of directories; other `**` is a `*`."""
    out: list[str] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if char == "*":
            run = len(glob[i:]) - len(glob[i:].lstrip("*"))
            before_ok = i == 0 or glob[i - 1] == "/"
            after = i + run
            if run >= 2 and before_ok and (after == len(glob) or glob[after] == "/"):
                if after == len(glob):
                    out.append(".*")  # `foo/**`: everything inside; a lone `**`: everything
                    i = after
                else:
                    out.append("(?:.*/)?")  # `**/`: zero or more directories
                    i = after + 1
                continue
            out.append("[^/]*")
            i = after
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            bracket = _bracket(glob, i)
            if bracket is None:
                out.append(re.escape("["))
                i += 1
            else:
                out.append(bracket[0])
                i = bracket[1]
        elif char == "\\" and i + 1 < len(glob):
            out.append(re.escape(glob[i + 1]))
            i += 2
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class Pattern:
    text: str  # the line as written
    regex: re.Pattern[str]
    negated: bool
    directories_only: bool


def _strip_trailing_spaces(line: str) -> str:
    # Trailing spaces go unless escaped with a backslash ("a\ " keeps one).
    while line.endswith(" ") and not line.endswith("\\ "):
        line = line[:-1]
    return line


def parse_pattern(line: str) -> Pattern | None:
    """One line of a .gitignore-style file; None for blank lines and comments."""
    raw = line
    line = _strip_trailing_spaces(line.rstrip("\r\n"))
    if not line or line.startswith("#"):
        return None
    negated = line.startswith("!")
    if negated or line.startswith(("\\#", "\\!")):  # a backslash escapes a leading # or !
        line = line[1:]
    directories_only = line.endswith("/")
    line = line.rstrip("/") if directories_only else line
    if not line:
        return None
    # A slash at the start or in the middle anchors the pattern to the file's directory; without
    # one it matches a name at any depth.
    anchored = "/" in line
    glob = line.lstrip("/") if line.startswith("/") else line
    prefix = "" if anchored else "(?:.*/)?"
    regex = re.compile(prefix + _glob_regex(glob), re.DOTALL)
    return Pattern(raw.rstrip("\r\n"), regex, negated, directories_only)


@dataclass(frozen=True)
class IgnoreRules:
    patterns: tuple[Pattern, ...]

    @classmethod
    def parse(cls, text: str) -> IgnoreRules:
        return cls(tuple(p for p in (parse_pattern(line) for line in text.splitlines()) if p is not None))

    @classmethod
    def read(cls, root: Path) -> IgnoreRules:
        file = root / ".funcignore"
        return cls.parse(file.read_text(encoding="utf-8")) if file.is_file() else cls(())

    def ignores(self, path: str, *, is_dir: bool) -> bool:
        """Whether `path` (relative, '/'-separated) is excluded; the last matching line decides.
        A path inside an excluded directory is never asked: `walk` does not enter it, and, as in
        git, no later '!' line can bring its contents back."""
        ignored = False
        for pattern in self.patterns:
            if pattern.directories_only and not is_dir:
                continue
            if pattern.regex.fullmatch(path):
                ignored = not pattern.negated
        return ignored


def walk(root: Path, rules: IgnoreRules) -> Iterator[str]:
    """Every file of the package under `root`, relative and '/'-separated, directory by directory."""
    for directory, dirnames, filenames in os.walk(root):
        base = Path(directory).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        dirnames[:] = sorted(d for d in dirnames if not rules.ignores(prefix + d, is_dir=True))
        for name in sorted(filenames):
            if not rules.ignores(prefix + name, is_dir=False):
                yield prefix + name


def assemble(source: Path, destination: Path, rules: IgnoreRules | None = None) -> list[str]:
    """Copy the deployment package of `source` into `destination`; the files copied."""
    rules = IgnoreRules.read(source) if rules is None else rules
    files = list(walk(source, rules))
    for relative in files:
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / relative, target)
    return files


def python_modules(package: Path, files: Iterable[str]) -> list[str]:
    """The dotted names of the package's Python modules, in file order; `__main__` modules are
    left out (importing one runs the program: `python -m partnerguard` is the command line)."""
    names: list[str] = []
    for relative in files:
        path = Path(relative)
        if path.suffix != ".py" or path.stem == "__main__" or not (package / relative).is_file():
            continue
        parts = list(path.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if all(part.isidentifier() for part in parts):
            names.append(".".join(parts))
    return names


# --- the deployed environment -----------------------------------------------------------------


def _key(requirements: Path) -> str:
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    return f"{digest} python {platform.python_version()}\n"


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def deployed_venv(venv: Path = DEPLOYED_VENV, requirements: Path = ROOT / "requirements.txt") -> Path:
    """The virtual environment with requirements.txt installed and nothing else; built when
    missing or when requirements.txt (or Python) changed since. Returns its python."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    key = _key(requirements)
    stamp = venv / STAMP
    # One builder at a time (parallel test workers, `make` and a test run started together).
    with (venv.parent / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text(encoding="utf-8") == key and venv_python(venv).exists():
            os.utime(stamp)  # for make, whose rule compares this file's time with requirements.txt's
            return venv_python(venv)
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(venv_python(venv)),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "-r",
                str(requirements),
            ],
            check=True,
        )
        stamp.write_text(key, encoding="utf-8")
    return venv_python(venv)


def distributions(python: Path | str) -> dict[str, list[str]]:
    """Installed distributions of an environment (normalised name → its top-level modules)."""
    result = subprocess.run(
        [str(python), "-E", "-s", "-c", DISTRIBUTIONS],
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        name, _, modules = line.partition("\t")
        found[name] = modules.split()
    return found


DISTRIBUTIONS = r"""
import re
from importlib import metadata

for dist in metadata.distributions():
    name = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()
    tops = set((dist.read_text("top_level.txt") or "").split())
    for file in dist.files or ():
        parts = file.parts
        if parts[0].endswith((".dist-info", ".egg-info", ".data")) or parts[0] in ("..", "__pycache__"):
            continue
        if len(parts) > 1 or file.suffix in (".py", ".so", ".pyd"):
            tops.add(parts[0].split(".")[0])
    print(name + "\t" + " ".join(sorted(t for t in tops if t.isidentifier())))
"""

# Runs in the deployed environment: argv = the report file, the package directory, then the modules
# to import. Writes one JSON document (to a file: a module may print): each module's import error
# (if any) and the modules it loaded first, the functions the app indexes, every loaded module with
# the file or directory it came from, and the environment's own directories.
PROBE = r"""
import importlib, json, sys, sysconfig, traceback

output, package = sys.argv[1], sys.argv[2]
sys.path.insert(0, package)  # the Functions worker puts the app directory first on sys.path

def where(module):
    spec = getattr(module, "__spec__", None)
    origin = getattr(module, "__file__", None) or (spec.origin if spec is not None else None)
    if origin in (None, "built-in", "frozen"):
        locations = list(getattr(module, "__path__", None) or [])
        return locations[0] if locations else None
    return origin

report = {"imports": [], "functions": None, "index_error": None}
for name in ["function_app", *sys.argv[3:]]:
    before = set(sys.modules)
    error = None
    try:
        importlib.import_module(name)
    except BaseException as failure:
        error = "".join(traceback.format_exception_only(failure)).strip()
    report["imports"].append({"module": name, "error": error, "loaded": sorted(set(sys.modules) - before)})
    if name == "function_app" and error is None:
        try:
            report["functions"] = sorted(str(f.get_function_name()) for f in sys.modules[name].app.get_functions())
        except BaseException as failure:
            report["index_error"] = "".join(traceback.format_exception_only(failure)).strip()

paths = sysconfig.get_paths()
report["modules"] = {name: where(module) for name, module in list(sys.modules.items())}
report["environment"] = {
    "package": package,
    "site": sorted({paths["purelib"], paths["platlib"]}),
    "stdlib": sorted({paths["stdlib"], paths["platstdlib"]}),
}
with open(output, "w", encoding="utf-8") as file:
    json.dump(report, file)
"""


if __name__ == "__main__":
    print(f"deployed environment ready: {deployed_venv()}")
