"""The package's layering, checked on its source: capabilities talk through public names only,
the CLI and dev tooling sit on top of the library and never under it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "medvault"
PRESENTATION = ("medvault.cli", "medvault.dev")  # may import click, and medvault.dev
# Private attributes of other objects that are public API despite the underscore.
PUBLIC_UNDERSCORED = {"_replace", "_asdict", "_fields", "_exit"}
MAX_LINES = 500
MAX_LARGE_LINES = 900  # even a coherent capability is split past this
# Modules allowed past MAX_LINES, and why (the same reason is in their docstring).
LARGE = {
    "medvault.index": "one coherent capability: the event index's schema, sync, reorg handling and queries",
    "medvault.dev.vectors": "one coherent capability: one short builder per vectors file, sharing test accounts",
}


def _modules() -> dict[str, ast.Module]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = ast.parse(path.read_text(), str(path))
    return modules


MODULES = _modules()


def _imports(tree: ast.Module) -> list[tuple[str, list[str], int]]:
    """(module, names, line) of every import in ``tree``, lazy ones inside functions included."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [alias.name for alias in node.names], node.lineno))
    return found


def _in(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_walk_finds_the_package() -> None:
    assert {"medvault", "medvault.client", "medvault.cli", "medvault.dev", "medvault.formats"} <= set(MODULES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_is_imported_from_another_module(module: str) -> None:
    bad = [
        f"line {line}: from {source} import {name}"
        for source, names, line in _imports(MODULES[module])
        if source.startswith("medvault")
        for name in names
        if name.startswith("_")
    ]
    bad += [
        f"line {line}: import {source}"
        for source, _, line in _imports(MODULES[module])
        if source.startswith("medvault") and any(part.startswith("_") for part in source.split(".")[1:])
    ]
    assert not bad, f"{module} imports private names: {bad}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_attribute_of_another_object_is_used(module: str) -> None:
    bad = []
    for node in ast.walk(MODULES[module]):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or name.startswith("__") or name in PUBLIC_UNDERSCORED:
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
            continue
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
            continue
        bad.append(f"line {node.lineno}: .{name} of {ast.unparse(owner)}")
    assert not bad, f"{module} reaches into private attributes: {bad}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not _in(m, PRESENTATION)))
def test_the_library_never_imports_click_or_dev_tooling(module: str) -> None:
    bad = [
        f"line {line}: {source}"
        for source, _, line in _imports(MODULES[module])
        if _in(source, ("click", "medvault.dev", "medvault.cli"))
    ]
    assert not bad, f"library module {module} imports presentation or dev tooling: {bad}"


def test_importing_the_library_loads_neither_the_cli_nor_dev_tooling() -> None:
    import subprocess
    import sys

    # (click itself may load: httpx imports it for its own optional command line.)
    code = (
        "import sys, medvault; "
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in (['medvault', 'dev'], ['medvault', 'cli'])))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_readable_in_size(module: str) -> None:
    tree = MODULES[module]
    lines = max((getattr(node, "end_lineno", 0) or 0) for node in tree.body) if tree.body else 0
    if module in LARGE:
        docstring = ast.get_docstring(tree) or ""
        assert "one coherent capability" in docstring, f"{module} is large: its docstring must say why"
        assert lines <= MAX_LARGE_LINES, f"{module} has {lines} lines: split it, coherent or not"
        return
    assert lines <= MAX_LINES, f"{module} has {lines} lines (at most {MAX_LINES}): split it by concern"
