"""docs/cheatsheets/ is what the generator writes, each sheet fits its page budget, every concept is in one area."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from lab.catalog import Concept, load_catalog
from lab.cheat_sheets import (
    AREAS,
    OUT_DIR,
    SHEET_BUDGET,
    Area,
    AreaError,
    check_areas,
    id_ranges,
    page_name,
    render_all,
    render_area,
)

CATALOG = load_catalog()
BY_ID = {c.id: c for c in CATALOG}
LINK_RE = re.compile(r"\]\(([^)\s]+)\)")
REGENERATE = "regenerate them: uv run mlops-lab docs"


def test_committed_sheets_are_the_generators_output() -> None:
    expected = render_all(CATALOG)
    committed = {p.name: p.read_text(encoding="utf-8") for p in OUT_DIR.glob("*.md")}
    assert sorted(committed) == sorted(expected), REGENERATE
    stale = [name for name, text in expected.items() if committed[name] != text]
    assert stale == [], f"out of date: {stale}; {REGENERATE}"


def test_every_concept_is_in_exactly_one_area() -> None:
    placed = [cid for area in AREAS for cid in area.concepts]
    assert sorted(placed) == sorted(c.id for c in CATALOG)
    assert len(placed) == len(set(placed))
    assert check_areas(AREAS, CATALOG) == []


def test_areas_are_numbered_in_order_with_three_to_five_traps() -> None:
    assert [a.number for a in AREAS] == list(range(1, len(AREAS) + 1))
    assert len({a.slug for a in AREAS}) == len(AREAS)
    assert all(3 <= len(a.traps) <= 5 for a in AREAS)


def test_a_concept_left_out_or_placed_twice_is_refused_by_name() -> None:
    first, second = AREAS[0], AREAS[1]
    dropped = (replace(first, concepts=first.concepts[1:]), *AREAS[1:])
    doubled = (first, replace(second, concepts=(*second.concepts, first.concepts[0])), *AREAS[2:])
    unknown = (replace(first, concepts=(*first.concepts, "C99")), *AREAS[1:])
    cid = first.concepts[0]
    assert check_areas(dropped, CATALOG) == [f"{cid} ({BY_ID[cid].title}) is in no area; add it to one in AREAS"]
    assert check_areas(doubled, CATALOG) == [f"{cid} is in area 1 and area 2; keep it in one"]
    assert check_areas(unknown, CATALOG) == ["area 1 names C99, which is not in the catalog"]
    with pytest.raises(AreaError, match="is in no area"):
        render_all(CATALOG, dropped)


@pytest.mark.parametrize("sheet", sorted(OUT_DIR.glob("*.md")), ids=lambda p: p.name)
def test_every_relative_link_target_exists(sheet: Path) -> None:
    targets = [t for t in LINK_RE.findall(sheet.read_text(encoding="utf-8")) if "://" not in t]
    assert targets, f"{sheet.name} links nothing"
    missing = [t for t in targets if not (sheet.parent / t.partition("#")[0]).exists()]
    assert missing == []


@pytest.mark.parametrize("area", AREAS, ids=lambda a: a.slug)
def test_a_sheet_fits_one_printed_page(area: Area) -> None:
    page = render_area(area, CATALOG)
    assert len(page) <= SHEET_BUDGET, (
        f"{page_name(area)} is {len(page)} characters, over the one-page budget of {SHEET_BUDGET}: "
        "shorten the longest answers in lab/catalog.yaml or the traps, or split the area"
    )


@pytest.mark.parametrize("area", AREAS, ids=lambda a: a.slug)
def test_a_sheet_has_the_traps_then_one_line_per_concept_from_the_catalog(area: Area) -> None:
    page = render_area(area, CATALOG)
    assert page.index("## Traps interviewers probe") < page.index("## Concepts")
    for trap in area.traps:
        assert f"- {trap}" in page
    concept_lines = [line for line in page.splitlines() if line.startswith("- **[")]
    assert [line.removeprefix("- **[").split()[0] for line in concept_lines] == list(area.concepts)
    for line, cid in zip(concept_lines, area.concepts, strict=True):
        c = BY_ID[cid]
        assert f"** — {c.answer} · `uv run {c.demo}`" in line
        assert line.endswith(f"`uv run {c.demo}`")
        assert f"(../concepts/{c.id}-{c.slug}.md)" in line
    for cid in area.concepts:
        c = BY_ID[cid]
        assert c.key_points[0] not in page, "one page: the key points stay on the concept page"
        assert c.at_scale not in page


def test_every_concepts_answer_appears_on_exactly_one_sheet() -> None:
    sheets = [text for name, text in render_all(CATALOG).items() if name != "README.md"]
    for c in CATALOG:
        assert sum(f"** — {c.answer} ·" in sheet for sheet in sheets) == 1, c.id


def test_id_ranges_are_compact() -> None:
    assert id_ranges(["C03", "C04", "C05", "C40", "C41", "C17"]) == "C03–C05, C17, C40–C41"


def test_index_lists_every_area_sheet() -> None:
    index = render_all(CATALOG)["README.md"]
    for area in AREAS:
        assert f"]({page_name(area)})" in index


def test_a_hand_made_catalog_renders_without_the_repository() -> None:
    lone = Concept(
        "C01", "lone", "Lone", "In short.", ("q?",) * 3, ("First.", "Second."), "More.", (), "mlops-lab demo x", (), ()
    )
    areas = (replace(AREAS[0], concepts=("C01",)),)
    files = render_all([lone], areas)
    sheet = files[page_name(areas[0])]
    assert "- **[C01 Lone](../concepts/C01-lone.md)** — In short. · `uv run mlops-lab demo x`" in sheet
    assert "First." not in sheet
    assert "More." not in sheet
