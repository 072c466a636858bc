"""The comparison facts of lab/comparisons.yaml, read and checked against the catalog.

Concept: documentation as a build product (C01). A comparison page ("canary vs blue-green vs ...")
is a table whose rows are catalog concepts; only the cells live in ``lab/comparisons.yaml``, keyed
by concept id, and this module refuses a row that names a concept the catalog lacks or misses a
column. It is plain data, imported by the concept pages and cheat sheets (to link the comparisons)
and by ``lab.comparisons`` (to render them); only stdlib and PyYAML, so it loads instantly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from lab.catalog import Concept, load_catalog

STRATEGIES, DRIFT = "deployment-strategies", "drift-kinds"


class ComparisonError(ValueError):
    """lab/comparisons.yaml is malformed or names a concept the catalog lacks."""


@dataclass(frozen=True)
class Comparison:
    """One comparison page: its columns (key -> header) and one row of cells per concept id."""

    key: str
    title: str
    intro: str
    columns: dict[str, str]
    rows: tuple[dict[str, str], ...]
    notes: tuple[str, ...]

    @property
    def file(self) -> str:
        return f"{self.key}.md"

    @property
    def name(self) -> str:
        """The short name, e.g. "Deployment strategies" (the title up to its colon)."""
        return self.title.partition(":")[0]

    @property
    def concept_ids(self) -> list[str]:
        """The concept of every row, in row order."""
        return [row["concept"] for row in self.rows]

    @property
    def linked_ids(self) -> list[str]:
        """Every concept the page links: the rows' and those named under ``also``."""
        also = [cid for row in self.rows for cid in row.get("also", "").split()]
        return list(dict.fromkeys([*self.concept_ids, *also]))


def parse(text: str, concepts: Sequence[Concept], source: str = "comparisons.yaml") -> dict[str, Comparison]:
    """Parse and check the comparisons: every row has every column and names a catalogued concept."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ComparisonError(f"{source}: expected a mapping of comparison name -> page")
    known = {c.id for c in concepts}
    out: dict[str, Comparison] = {}
    for key, raw in data.items():
        columns = dict(raw["columns"])
        rows = tuple(dict(row) for row in raw["rows"])
        for row in rows:
            cid = row.get("concept")
            for named in [cid, *row.get("also", "").split()]:
                if named not in known:
                    raise ComparisonError(f"{source}: {key} names {named!r}, which is not in lab/catalog.yaml")
            missing = [col for col in columns if col not in row]
            if missing:
                raise ComparisonError(f"{source}: {key} row {cid} has no {missing}")
        notes = tuple(" ".join(n.split()) for n in raw.get("notes", []))
        out[key] = Comparison(key, raw["title"], " ".join(raw["intro"].split()), columns, rows, notes)
    return out


@lru_cache(maxsize=1)
def _packaged() -> dict[str, Comparison]:
    text = resources.files("lab").joinpath("comparisons.yaml").read_text(encoding="utf-8")
    return parse(text, load_catalog(), "lab/comparisons.yaml")


def load_comparisons() -> dict[str, Comparison]:
    """The comparisons shipped in the package, checked against the catalog."""
    return dict(_packaged())
