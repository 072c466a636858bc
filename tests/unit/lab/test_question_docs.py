"""docs/questions.md is exactly what the generator writes from the question index, and its links resolve."""

from __future__ import annotations

import re

from lab.catalog import load_catalog
from lab.question_docs import OUT_PATH, render
from lab.questions import load_index

LINK_RE = re.compile(r"\]\(([^)\s]+)\)")


def test_the_committed_page_is_the_generators_output() -> None:
    assert OUT_PATH.read_text(encoding="utf-8") == render(load_index(), load_catalog()), (
        "docs/questions.md is out of date; regenerate it: uv run mlops-lab docs"
    )


def test_every_question_is_on_the_page_under_its_topic() -> None:
    index, page = load_index(), OUT_PATH.read_text(encoding="utf-8")
    for q in index.questions:
        assert page.count(q.id) == 1, q.id
        topic_at = page.index(f"\n## {q.topic}\n")
        original = index.original(q)
        assert page.index(f"### {original.id} ") > topic_at, q.id


def test_every_relative_link_resolves() -> None:
    targets = [t for t in LINK_RE.findall(OUT_PATH.read_text(encoding="utf-8")) if "://" not in t]
    files = [t for t in targets if not t.startswith("#")]
    assert files
    assert [t for t in files if not (OUT_PATH.parent / t).exists()] == []
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line[3:].lower()).replace(" ", "-")
        for line in OUT_PATH.read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    }
    assert {t[1:] for t in targets if t.startswith("#")} <= headings
