"""docs/concepts/ is exactly what the generator writes from the catalog, and no link points nowhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab.catalog import Concept, load_catalog
from lab.concept_docs import OUT_DIR, page_name, render_all, render_page

REPO = Path(__file__).resolve().parents[3]
ARCHITECTURE = REPO / "docs" / "architecture.md"
LINK_RE = re.compile(r"\]\(([^)\s]+)\)")
REGENERATE = "regenerate them: uv run mlops-lab docs"


def test_committed_pages_are_the_generators_output() -> None:
    expected = render_all(load_catalog())
    committed = {p.name: p.read_text(encoding="utf-8") for p in OUT_DIR.glob("*.md")}
    assert sorted(committed) == sorted(expected), REGENERATE
    stale = [name for name, text in expected.items() if committed[name] != text]
    assert stale == [], f"out of date: {stale}; {REGENERATE}"


@pytest.mark.parametrize("doc", [*sorted(OUT_DIR.glob("*.md")), ARCHITECTURE], ids=lambda p: p.name)
def test_every_relative_link_target_exists(doc: Path) -> None:
    targets = [t for t in LINK_RE.findall(doc.read_text(encoding="utf-8")) if "://" not in t]
    assert targets, f"{doc.name} links nothing"
    missing = [t for t in targets if not (doc.parent / t.partition("#")[0]).exists()]
    assert missing == []


def test_a_page_has_every_section_and_links_code_tests_and_related() -> None:
    catalog = load_catalog()
    c = next(c for c in catalog if c.id == "C21")
    page = render_page(c, catalog)
    sections = [line for line in page.splitlines() if line.startswith("## ")]
    assert f"**Short answer:** {c.answer}" in page
    assert page.index("**Short answer:**") < page.index("## Questions it answers"), "the answer comes first"
    assert sections == [
        "## Questions it answers",
        "## Key points of a strong answer",
        "## What would change at scale",
        "## Code",
        "## Demo",
        "## Tests",
        "## Related",
    ]
    assert c.at_scale in page
    assert "Not written" not in page
    assert "](../../serving/router.py)" in page
    assert "](../../tests/unit/serving/test_router.py)" in page
    assert f"]({page_name(next(o for o in catalog if o.id == c.related[0]))})" in page
    assert "uv run mlops-lab demo canary" in page


def test_a_related_id_without_an_entry_is_named_not_linked() -> None:
    lone = Concept("C90", "lone", "Lone", "Short.", ("q?",), ("p",), "Bigger.", (), "mlops-lab demo x", (), ("C91",))
    page = render_page(lone, [lone])
    assert "C91 (no entry yet)" in page
    assert "](C91" not in page


def test_the_index_links_the_cheat_sheets() -> None:
    index = render_all(load_catalog())["README.md"]
    assert "](../cheatsheets/README.md)" in index


def test_architecture_has_its_three_diagrams_and_names_real_modules() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    assert text.count("```mermaid") == 3  # the layers, the closed loop, the scaled deployment
    layers = text.split("```mermaid")[1].split("```")[0]
    packages = [p.parent.name for p in REPO.glob("*/__init__.py") if p.parent.name != "tests"]
    assert all(f'{name}["{name}/' in layers for name in packages), "every package is a box of the layer diagram"
    roots = "|".join([*packages, "k8s/base", "docker"])
    pattern = rf"(?<![\w/])((?:{roots})/[\w/.-]+\.(?:py|yaml|yml))"
    paths = set(re.findall(pattern, text))
    assert len(paths) >= 15
    assert [p for p in paths if not (REPO / p).exists()] == []


def test_the_counts_the_readme_and_the_quiz_page_state_are_the_catalogs() -> None:
    repo = Path(__file__).resolve().parents[3]
    concepts = len(load_catalog())
    readme = (repo / "README.md").read_text(encoding="utf-8")
    quiz = (repo / "docs" / "quiz.md").read_text(encoding="utf-8")
    assert re.findall(r"the (\d+) concepts", readme) == [str(concepts)]
    assert f"the {3 * concepts} catalog questions ({concepts} concepts × 3)" in quiz
