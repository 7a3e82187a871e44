"""The layers' import rules (docs/architecture.md), read from the sources with ``ast``.

Bottom to top: base (errors, modes, config, the package's ``__init__``) → engine → inputs →
recorders → control → runner → web → sweep → cli, report, ``__main__``.  A module imports its
own layer and the ones :data:`ALLOWED` names, never one above; the engine imports nothing of
I/O.  Every import counts: at the top, inside functions, under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "apis_emulator"

#: The layer of each top-level module or subpackage of the package.
LAYER_OF = {
    "__init__": "base", "errors": "base", "modes": "base", "config": "base",
    "engine": "engine", "inputs": "inputs", "recorders": "recorders", "control": "control",
    "runner": "runner", "web": "web", "sweep": "sweep",
    "cli": "top", "report": "top", "__main__": "top",
}
_BELOW_WEB = {"base", "engine", "inputs", "recorders", "control", "runner"}
#: What each layer may import besides itself.
ALLOWED = {
    "base": set(),
    "engine": {"base"},  # pure: numbers in, numbers out
    "inputs": {"base", "engine"},  # reads files into the engine's data-set arrays
    "recorders": {"base", "engine", "inputs"},  # consumes snapshots
    "control": {"base", "engine"},  # decides from what it sees: no files, no recorders
    "runner": {"base", "engine", "inputs", "recorders", "control"},
    "web": _BELOW_WEB,  # a thin adapter over everything below it
    "sweep": {"base", "engine", "inputs", "recorders", "control", "runner"},  # not web
    "top": _BELOW_WEB | {"web", "sweep"},
}
#: Modules the engine must not import: files, sockets, threads, processes, servers.
ENGINE_FORBIDDEN = (
    "os", "io", "pathlib", "socket", "sqlite3", "http", "urllib", "asyncio", "threading",
    "subprocess", "shutil", "tempfile", "csv", "importlib.resources",
    "uvicorn", "fastapi", "starlette", "httpx", "psycopg", "pyarrow", "tqdm",
)


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to an absolute module name."""

    module: str  # the importing module, e.g. apis_emulator.engine.emulator
    target: str  # what it imports, e.g. apis_emulator.config or numpy
    line: int


def find_modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``root`` by dotted name (a package by its own name)."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _longest_known(name: str, known: set[str]) -> str:
    """``name``, or the longest prefix of it that is a module (``pkg.mod.Class`` → ``pkg.mod``)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return name


def imports_of(module: str, path: Path, known: set[str]) -> Iterator[Import]:
    """The imports of one module, relative ones resolved against its package."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            stem = node.module or ""
            if node.level:  # `from ..x import y` in package a.b.c: a.b.x
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                stem = ".".join([*parts, *([node.module] if node.module else [])])
            yield Import(module, stem, node.lineno)
            for alias in node.names:  # `from pkg import sub`: the submodule counts too
                full = _longest_known(f"{stem}.{alias.name}", known)
                if full != stem:
                    yield Import(module, full, node.lineno)


def layer_of(name: str, package: str) -> str | None:
    """The layer of a module of ``package``; None outside it; ``"?"`` if it has no layer."""
    parts = name.split(".")
    if parts[0] != package:
        return None
    return LAYER_OF.get(parts[1] if len(parts) > 1 else "__init__", "?")


def _forbidden_in_engine(target: str) -> bool:
    return any(target == bad or target.startswith(bad + ".") for bad in ENGINE_FORBIDDEN)


def check(root: Path, package: str) -> tuple[list[Import], list[str]]:
    """All imports of ``package`` and the violations of the rules, as readable lines."""
    modules = find_modules(root, package)
    known = set(modules)
    found = [imp for name, path in modules.items() for imp in imports_of(name, path, known)]
    problems = []
    for imp in found:
        mine, theirs = layer_of(imp.module, package), layer_of(imp.target, package)
        where = f"{imp.module} (line {imp.line}) imports {imp.target}"
        if mine == "?":
            problems.append(f"{imp.module} has no layer: add it to LAYER_OF")
        elif mine == "engine" and _forbidden_in_engine(imp.target):
            problems.append(f"{where}: I/O in the engine")
        elif theirs == "?":
            problems.append(f"{where}, which has no layer: add it to LAYER_OF")
        elif theirs is not None and theirs != mine and theirs not in ALLOWED[str(mine)]:
            problems.append(f"{where}: {mine} may not import {theirs}")
    return found, sorted(set(problems))


def report(found: list[Import], package: str) -> str:
    """Which module imports what of the package (and, for the engine, of the world)."""
    lines = []
    for module in sorted({imp.module for imp in found}):
        engine = layer_of(module, package) == "engine"
        targets = sorted({imp.target if layer_of(imp.target, package) else
                          imp.target.split(".")[0] for imp in found if imp.module == module
                          and (engine or layer_of(imp.target, package))} - {"__future__"})
        lines.append(f"{module} [{layer_of(module, package)}] → {', '.join(targets) or '-'}")
    return "\n".join(lines)


def test_the_package_keeps_its_layers() -> None:
    """No import goes up a layer, and the engine imports nothing of I/O."""
    found, problems = check(SRC, PACKAGE)
    print(report(found, PACKAGE))
    assert len(found) > 50  # the sources were read
    assert not problems, "\n".join(problems)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


FAKE = {  # a small package in the project's shape; each test adds its own imports
    "fake/__init__.py": "", "fake/errors.py": "", "fake/config.py": "from .errors import x\n",
    "fake/engine/__init__.py": "", "fake/engine/step.py": "import numpy\nfrom .. import config\n",
    "fake/inputs/__init__.py": "from ..engine import step\n",
    "fake/control/__init__.py": "", "fake/web/__init__.py": "", "fake/web/app.py": "",
    "fake/cli.py": "from .web import app\nfrom . import __version__\n",
}


def test_a_package_in_shape_has_no_violation(tmp_path: Path) -> None:
    """The fake package's own imports all go down or sideways."""
    found, problems = check(_write(tmp_path, FAKE), "fake")
    assert problems == []
    assert {(i.module, i.target) for i in found} >= {
        ("fake.config", "fake.errors"), ("fake.engine.step", "fake.config"),
        ("fake.inputs", "fake.engine.step"), ("fake.cli", "fake.web.app"),
        ("fake.cli", "fake")}


@pytest.mark.parametrize(("module", "source", "expected"), [
    # the engine reaches up into the web layer, relative import two levels up
    ("fake/engine/grid.py", "from ..web.app import route\n",
     "fake.engine.grid (line 1) imports fake.web.app: engine may not import web"),
    # the engine opens files
    ("fake/engine/grid.py", "import os.path\n", "imports os.path: I/O in the engine"),
    # the engine reads a packaged file: `from importlib import resources`
    ("fake/engine/grid.py", "from importlib import resources\n",
     "imports importlib.resources: I/O in the engine"),
    # a third-party server in the engine, inside a function
    ("fake/engine/grid.py", "def f():\n    import uvicorn\n", "imports uvicorn: I/O in the engine"),
    # a controller reads a data set (control may import the engine only)
    ("fake/control/deal.py", "from fake.inputs import load\n",
     "fake.control.deal (line 1) imports fake.inputs: control may not import inputs"),
    # base imports the engine, as a type only: still counted
    ("fake/config.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
     "    from .engine import step\n", "imports fake.engine.step: base may not import engine"),
    # a module nobody placed in a layer
    ("fake/extra.py", "from . import config\n", "fake.extra has no layer"),
])
def test_a_violation_is_reported(tmp_path: Path, module: str, source: str,
                                 expected: str) -> None:
    """Each kind of broken rule is found and named, with the module and what it imports."""
    _, problems = check(_write(tmp_path, {**FAKE, module: source}), "fake")
    assert any(expected in p for p in problems), problems
