"""The concept catalog: each MLOps interview concept mapped to its code, demo and tests.

Concept: the repository as an answer key. Every concept row in DESIGN.md (C01–C53) becomes one
entry in ``lab/catalog.yaml``, which names the code that does it, the demo that shows it in under
30 seconds and the tests that fail if it stops working. The catalog is plain data, not code, so
it is reviewed like any other diff and checked by a test (every path, demo and test must exist).
Every entry carries a one-line ``answer`` (at most 140 characters, the line a cheat sheet prints),
shaped ``<Term>: <what it is>, unlike <nearest neighbour> ...; here <how this system does it>``: the
term, a colon, a definition that names its nearest neighbour with the word "unlike", then "; here"
and how this repository does it (``ANSWER_SHAPE``; tests/unit/lab/test_catalog.py holds every answer
to it). A senior interviewer probes the definition before the implementation, so it comes first;
three questions, five to eight key points and an ``at_scale`` paragraph (what changes with many
models, high traffic or several regions, and what this repository does not have), because a strong
interview answer says where the design stops as well as how it works.
The file ships inside the ``lab`` package and is read with ``importlib.resources``, so the
installed CLI finds it wherever it runs. Only stdlib and PyYAML are imported: ``mlops-lab
concepts`` must answer instantly.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

DEMO_PREFIX = "mlops-lab demo "
FIELDS = ("id", "slug", "title", "answer", "questions", "key_points", "at_scale", "code", "demo", "tests", "related")
_LIST_FIELDS = ("questions", "key_points", "code", "tests", "related")
_TEXT_FIELDS = ("id", "slug", "title", "answer", "at_scale", "demo")
QUESTIONS = 3  # questions per entry
KEY_POINTS = (5, 8)  # fewest and most key points per entry
ANSWER_MAX = 140  # characters: one line on a printed cheat sheet
# "<Term>: <definition, unlike <neighbour>>; here <how this system does it>" (see the module docstring)
ANSWER_SHAPE = re.compile(r"(?P<term>[^:;]{2,40}): (?P<definition>[^;]*\bunlike\b[^;]*); here (?P<how>\S.*)")
_ID_RE = re.compile(r"C\d{2}")
_SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_ID_QUERY_RE = re.compile(r"[cC]?0*(\d{1,2})")


class CatalogError(ValueError):
    """The catalog file is malformed; the message names the entry and the field."""


class UnknownConceptError(LookupError):
    """No concept (or more than one) matches a query; the message says what to try."""


@dataclass(frozen=True)
class Concept:
    """One catalog entry."""

    id: str
    slug: str
    title: str
    answer: str
    questions: tuple[str, ...]
    key_points: tuple[str, ...]
    at_scale: str
    code: tuple[str, ...]
    demo: str
    tests: tuple[str, ...]
    related: tuple[str, ...]

    @property
    def demo_name(self) -> str:
        """The demo's name, e.g. ``data-validation`` for ``mlops-lab demo data-validation``."""
        return self.demo.removeprefix(DEMO_PREFIX).strip()

    @property
    def code_files(self) -> list[str]:
        """The code references without their ``::symbol`` suffixes."""
        return [ref.partition("::")[0] for ref in self.code]

    def haystack(self) -> str:
        """All searchable text of the entry, lower-cased."""
        parts = [
            self.id,
            self.slug,
            self.title,
            self.answer,
            self.demo,
            *self.questions,
            *self.key_points,
            self.at_scale,
            *self.code,
        ]
        return "\n".join(parts).lower()


def _entry(raw: object, index: int, source: str) -> Concept:
    if not isinstance(raw, dict):
        raise CatalogError(f"{source}: entry #{index + 1} is not a mapping; each entry is `- id: C..` with fields")
    where = f"{source}: entry {raw.get('id', f'#{index + 1}')}"
    missing = [f for f in FIELDS if f not in raw]
    unknown = sorted(set(raw) - set(FIELDS))
    if missing or unknown:
        raise CatalogError(f"{where}: missing fields {missing}, unknown fields {unknown}; allowed: {list(FIELDS)}")
    for field in _TEXT_FIELDS:
        if not isinstance(raw[field], str) or not raw[field].strip():
            raise CatalogError(f"{where}: `{field}` must be a non-empty string")
    for field in _LIST_FIELDS:
        value = raw[field]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise CatalogError(f"{where}: `{field}` must be a list of non-empty strings (use [] for none)")
    if len(raw["questions"]) != QUESTIONS:
        raise CatalogError(f"{where}: `questions` has {len(raw['questions'])} entries; write exactly {QUESTIONS}")
    fewest, most = KEY_POINTS
    if not fewest <= len(raw["key_points"]) <= most:
        raise CatalogError(
            f"{where}: `key_points` has {len(raw['key_points'])} entries; a strong answer has {fewest} to {most}"
        )
    answer = " ".join(raw["answer"].split())
    if len(answer) > ANSWER_MAX:
        raise CatalogError(
            f"{where}: `answer` has {len(answer)} characters; keep it to one line of at most {ANSWER_MAX} "
            "(the detail belongs in key_points)"
        )
    if not _ID_RE.fullmatch(raw["id"]):
        raise CatalogError(f"{where}: id must look like C06 (a C and two digits)")
    if not _SLUG_RE.fullmatch(raw["slug"]):
        raise CatalogError(f"{where}: slug {raw['slug']!r} must be lower-case words joined by hyphens")
    if not raw["demo"].startswith(DEMO_PREFIX):
        raise CatalogError(f"{where}: demo must be the exact command, e.g. `{DEMO_PREFIX}{raw['slug']}`")
    return Concept(
        id=raw["id"],
        slug=raw["slug"],
        title=raw["title"].strip(),
        answer=answer,
        questions=tuple(raw["questions"]),
        key_points=tuple(raw["key_points"]),
        at_scale=" ".join(raw["at_scale"].split()),
        code=tuple(raw["code"]),
        demo=raw["demo"].strip(),
        tests=tuple(raw["tests"]),
        related=tuple(raw["related"]),
    )


def parse_catalog(text: str, source: str = "catalog.yaml") -> list[Concept]:
    """Parse and check catalog YAML: required fields, types, id format, unique ids and slugs."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise CatalogError(
            f"{source}: not valid YAML (quote text that contains ': ' or starts with `):\n{err}"
        ) from err
    if not isinstance(data, list):
        raise CatalogError(f"{source}: the catalog must be a YAML list of entries")
    concepts = [_entry(raw, i, source) for i, raw in enumerate(data)]
    for attr in ("id", "slug"):
        seen: set[str] = set()
        for c in concepts:
            value = getattr(c, attr)
            if value in seen:
                raise CatalogError(f"{source}: duplicate {attr} {value!r}; {attr}s must be unique")
            seen.add(value)
    return concepts


@lru_cache(maxsize=1)
def _packaged() -> tuple[Concept, ...]:
    text = resources.files("lab").joinpath("catalog.yaml").read_text(encoding="utf-8")
    return tuple(parse_catalog(text, "lab/catalog.yaml"))


def load_catalog(path: str | Path | None = None) -> list[Concept]:
    """The catalog shipped in the package, or the one at ``path``, in file order."""
    if path is None:
        return list(_packaged())
    p = Path(path)
    return parse_catalog(p.read_text(encoding="utf-8"), str(p))


def find(query: str, concepts: Sequence[Concept] | None = None) -> Concept:
    """One concept by id (``C06``, ``c6``, ``6``), slug (``data-validation``) or title words.

    Raises:
        UnknownConceptError: nothing matches, or the title words match several concepts.
    """
    items = list(concepts) if concepts is not None else load_catalog()
    q = query.strip()
    if m := _ID_QUERY_RE.fullmatch(q):
        wanted = f"C{int(m.group(1)):02d}"
        for c in items:
            if c.id == wanted:
                return c
        raise UnknownConceptError(f"no concept {wanted} in the catalog; `mlops-lab concepts` lists the ids")
    slug = "-".join(q.lower().split())
    for c in items:
        if c.slug == slug or c.title.lower() == q.lower():
            return c
    words = q.lower().split()
    hits = [c for c in items if words and all(w in c.title.lower() for w in words)]
    if len(hits) == 1:
        return hits[0]
    if hits:
        names = ", ".join(f"{c.id} {c.title}" for c in hits)
        raise UnknownConceptError(f"{query!r} matches several concepts ({names}); use an id")
    raise UnknownConceptError(
        f"no concept matches {query!r}; try `mlops-lab concepts --search {q.split()[0] if q else 'TEXT'}`"
    )


def search(text: str, concepts: Sequence[Concept] | None = None) -> list[Concept]:
    """Concepts whose text contains every word of ``text``; title and slug hits come first."""
    items = list(concepts) if concepts is not None else load_catalog()
    words = text.lower().split()
    hits = [c for c in items if all(w in c.haystack() for w in words)]
    in_name = [c for c in hits if all(w in f"{c.title} {c.slug}".lower() for w in words)]
    return in_name + [c for c in hits if c not in in_name]


def find_symbol(tree: ast.Module, dotted: str) -> ast.AST | None:
    """The definition of ``name`` or ``Class.method`` at module level in a parsed file, if any."""
    scope: list[ast.stmt] = tree.body
    node: ast.AST | None = None
    for part in dotted.split("."):
        node = None
        for stmt in scope:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and stmt.name == part:
                node = stmt
            elif isinstance(stmt, ast.Assign | ast.AnnAssign):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                if any(isinstance(t, ast.Name) and t.id == part for t in targets):
                    node = stmt
        if node is None:
            return None
        scope = node.body if isinstance(node, ast.ClassDef) else []
    return node


_SENTENCE_END_RE = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)[.!?](?=\s|$)")


def first_sentence(text: str) -> str:
    """The first sentence of the first paragraph, its wrapped lines joined; never cut inside a sentence.

    A paragraph without a sentence end (a heading, a title line) is returned whole.
    """
    paragraph = " ".join(text.strip().split("\n\n", 1)[0].split())
    end = _SENTENCE_END_RE.search(paragraph)
    return paragraph[: end.end()] if end else paragraph


def code_summary(ref: str, root: Path) -> str | None:
    """First sentence of the docstring (or leading comment) of a code reference; None if it is missing.

    ``ref`` is ``path`` or ``path::symbol``, relative to ``root``. Files are parsed, never imported,
    so explaining a concept does not load mlflow or prefect. A sentence that wraps over several lines
    is joined, never cut at the line break.
    """
    file, _, symbol = ref.partition("::")
    path = root / file
    if not path.is_file():
        return None
    if path.suffix == ".py":
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        node = find_symbol(tree, symbol) if symbol else tree
        if node is None:
            return None
        documented = ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
        doc = ast.get_docstring(node) if isinstance(node, documented) else None
        return first_sentence(doc) if doc else ""
    comment: list[str] = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:  # lock files are large: stop at the first line that is not a comment
            stripped = line.strip()
            if stripped.startswith("#!") and not comment:
                continue  # a shebang is not a description
            if not stripped.startswith("#") or not stripped.strip("# "):
                break  # code, a blank line or an empty comment line ends the leading comment
            comment.append(stripped.strip("# "))
    return first_sentence("\n".join(comment)) if comment else ""
