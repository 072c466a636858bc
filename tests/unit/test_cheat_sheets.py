"""docs/cheatsheets/ is exactly what the generator writes, every concept is in one area, and links resolve."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from lab.catalog import Concept, load_catalog
from lab.cheat_sheets import (
    AREAS,
    OUT_DIR,
    Area,
    AreaError,
    check_areas,
    id_ranges,
    page_name,
    render_all,
    render_area,
    scale_line,
)

CATALOG = load_catalog()
BY_ID = {c.id: c for c in CATALOG}
LINK_RE = re.compile(r"\]\(([^)\s]+)\)")
REGENERATE = "regenerate them: uv run --frozen python -m lab.cheat_sheets"


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
def test_a_sheet_has_the_traps_and_a_block_per_concept_from_the_catalog(area: Area) -> None:
    page = render_area(area, CATALOG)
    blocks = page.split("\n### ")[1:]
    assert [b.split("]")[0].lstrip("[").split()[0] for b in blocks] == list(area.concepts)
    assert page.index("## Traps interviewers probe") < page.index("## Concepts")
    for trap in area.traps:
        assert f"- {trap}" in page
    for block, cid in zip(blocks, area.concepts, strict=True):
        c = BY_ID[cid]
        assert f"**Answer:** {c.key_points[0]}" in block
        assert all(point not in block for point in c.key_points[1:]), "one page: the rest is on the concept page"
        assert f"**At scale:** {scale_line(c.at_scale)}" in block
        assert f"`uv run {c.demo}`" in block


def test_scale_line_is_the_first_sentence_without_the_label() -> None:
    assert scale_line("At scale the API has replicas. The log is one primary.") == "The API has replicas. …"
    assert scale_line("At scale, nothing changes.") == "Nothing changes."


def test_id_ranges_are_compact() -> None:
    assert id_ranges(["C03", "C04", "C05", "C40", "C41", "C17"]) == "C03–C05, C17, C40–C41"


def test_index_lists_every_area_sheet() -> None:
    index = render_all(CATALOG)["README.md"]
    for area in AREAS:
        assert f"]({page_name(area)})" in index


def test_a_hand_made_catalog_renders_without_the_repository() -> None:
    lone = Concept(
        "C01", "lone", "Lone", ("q?",) * 3, ("First.", "Second."), "At scale more.", (), "mlops-lab demo x", (), ()
    )
    areas = (replace(AREAS[0], concepts=("C01",)),)
    files = render_all([lone], areas)
    sheet = files[page_name(areas[0])]
    assert "**Answer:** First." in sheet
    assert "Second." not in sheet
    assert "**At scale:** More." in sheet
