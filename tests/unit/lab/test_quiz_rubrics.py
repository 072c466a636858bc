"""The rubric file is complete and consistent with the catalog and with itself."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from lab.catalog import load_catalog
from lab.quiz import GOOD, grade_answer, is_keyword_list, point_met, sentences
from lab.quiz_rubrics import POINTS, load_rubrics

ROOT = Path(__file__).resolve().parents[3]


def test_every_catalog_question_has_a_rubric_with_the_catalogs_wording() -> None:
    rubrics = load_rubrics()
    asked = {(c.id, i): q for c in load_catalog() for i, q in enumerate(c.questions)}
    assert set(rubrics) == set(asked), "lab/quiz_rubrics.yaml must have one rubric per catalog question"
    reworded = [key for key, q in asked.items() if rubrics[key].question != q]
    assert reworded == [], f"these questions changed in the catalog; review their rubrics: {reworded}"
    assert all(POINTS[0] <= len(r.points) <= POINTS[1] for r in rubrics.values())


def test_each_point_is_met_by_its_own_sentence_so_the_model_answer_is_good() -> None:
    for key, rubric in load_rubrics().items():
        for point in rubric.points:
            assert point_met(point, sentences(point.text)), f"{key}: {point.text!r} does not meet its own phrasings"
        assert grade_answer(rubric.model_answer, rubric).grade == GOOD, key


def test_a_model_answer_rarely_passes_another_question_and_docs_say_how_often() -> None:
    rubrics = load_rubrics()
    keys = sorted(rubrics)
    # Each question's rubric, graded on the model answers of its sibling questions (same concept) and of
    # the question 30 places on in the sorted list (always another concept).
    siblings = Counter(
        grade_answer(rubrics[(cid, j)].model_answer, rubrics[(cid, i)]).grade
        for cid, i in keys
        for j in range(3)
        if j != i
    )
    others = Counter(
        grade_answer(rubrics[keys[(n + 30) % len(keys)]].model_answer, rubrics[key]).grade for n, key in enumerate(keys)
    )
    assert all(keys[(n + 30) % len(keys)][0] != key[0] for n, key in enumerate(keys))
    assert others[GOOD] <= 0.05 * len(keys), others
    assert siblings[GOOD] <= 0.3 * siblings.total(), siblings
    doc = (ROOT / "docs/quiz.md").read_text(encoding="utf-8")
    assert f"graded good on {siblings[GOOD]} of {siblings.total()} pairs" in doc
    assert f"on {others[GOOD]} of {len(keys)} (" in doc


def test_docs_say_how_many_terse_point_sentences_read_as_keyword_lists() -> None:
    points = [p.text for r in load_rubrics().values() for p in r.points]
    flagged = sum(is_keyword_list(text) for text in points)
    assert flagged <= 0.02 * len(points)
    doc = (ROOT / "docs/quiz.md").read_text(encoding="utf-8")
    assert f"{flagged} of the\n  {len(points)} rubric point sentences" in doc
