"""Data flows one way: features -> models -> screening; experiments is a leaf only the CLI module reaches."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "features": set(),
    "models": {"features"},
    "screening": {"features", "models"},
    "experiments": {"features", "models"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_only_downstream(package: str) -> None:
    problems = []
    files = list((ROOT / package).rglob("*.py"))
    assert files, f"package {package} has no modules"
    for path in files:
        for lineno, name in _imports(path):
            parts = name.split(".")
            if parts[0] in ALLOWED:
                problems.append(f"{path.relative_to(ROOT)}:{lineno} imports {name} outside the sse_screen namespace")
                continue
            head = parts[1] if parts[0] == "sse_screen" and len(parts) > 1 else parts[0]
            if head == "experiments" and path.stem == "cli":
                continue  # the command line dispatches `sse-screen train` to experiments
            if head in ALLOWED and head != package and head not in ALLOWED[package]:
                problems.append(f"{path.relative_to(ROOT)}:{lineno} imports {name}")
    assert not problems, "\n".join(problems)


def test_modules_stay_small() -> None:
    long = [
        f"{p.relative_to(ROOT)} ({n} lines)"
        for pkg in ALLOWED
        for p in (ROOT / pkg).rglob("*.py")
        if (n := p.read_text().count("\n")) > 500
    ]
    assert not long, long
