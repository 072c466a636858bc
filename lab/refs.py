"""Checks that a reference into the repository (a code path, a symbol, a pytest node id) is real.

Concept: claims that are checked. The concept catalog, the technical-debt map and the cloud map all
point at files, ``path::Symbol`` definitions and tests; a pointer that rots turns an answer key into
fiction. These two checks are the one place that decides whether a pointer is real, so every map is
held to the same rule. Files are parsed with ``ast``, never imported: checking a map must not load
mlflow or start anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

from lab.catalog import find_symbol


def code_ref_problem(ref: str, root: Path) -> str | None:
    """Why ``path`` or ``path::Symbol`` (relative to ``root``) does not exist, or None if it does."""
    file, _, symbol = ref.partition("::")
    path = root / file
    if not path.is_file():
        return f"{ref} (no such file)"
    if symbol and (path.suffix != ".py" or find_symbol(ast.parse(path.read_text(encoding="utf-8")), symbol) is None):
        return f"{ref} (no symbol {symbol} in {file})"
    return None


def node_id_exists(node_id: str, root: Path) -> bool:
    """Whether a pytest node id (``file::func``, ``file::Class::method``, ``[params]`` allowed) exists.

    The file must live under ``tests/``; every name after the file must be a test function or class
    defined at that level (parametrize ids in brackets are not checked, pytest generates them).
    """
    file, *names = node_id.split("[", 1)[0].split("::")
    path = root / file
    if not (file.startswith("tests/") and path.is_file() and path.suffix == ".py"):
        return False
    node: ast.AST | None = ast.parse(path.read_text(encoding="utf-8"))
    for name in names:
        scope = node.body if isinstance(node, ast.Module | ast.ClassDef) else []
        found = [s for s in scope if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
        node = next((s for s in found if s.name == name), None)
        if node is None or not name.lower().startswith("test"):
            return False
    return True


def reference_problems(code: tuple[str, ...], tests: tuple[str, ...], root: Path, where: str) -> list[str]:
    """Every missing code reference and test id, each prefixed with ``where`` (the entry's name)."""
    problems = [f"{where}: {p}" for ref in code if (p := code_ref_problem(ref, root))]
    problems += [f"{where}: no such test {t}" for t in tests if not node_id_exists(t, root)]
    return problems
