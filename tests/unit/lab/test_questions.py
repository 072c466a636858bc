"""The question index (lab/questions.yaml) is complete and every way in it names exists.

The project's copy of the interview list declares its own structure: how many questions each seed
file has, the total and the number of distinct questions. These tests hold the entries to that
declaration (every id exactly once, no id it does not declare), and to the repository: every
concept is in the catalog, every demo is registered, every code path exists, and every distinct
question has concepts or a prose answer.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lab.catalog import load_catalog
from lab.demos import DEMOS
from lab.questions import QuestionIndex, check_index, demo_of, expected_ids, load_index

REPO = Path(__file__).resolve().parents[3]
INDEX = load_index()
CONCEPTS = load_catalog()


def problems(index: QuestionIndex) -> list[str]:
    return check_index(index, CONCEPTS, list(DEMOS), REPO)


def test_the_index_is_complete_and_consistent() -> None:
    assert problems(INDEX) == []


def test_every_declared_id_is_listed_exactly_once_and_the_totals_agree() -> None:
    ids = [q.id for q in INDEX.questions]
    assert sorted(ids) == expected_ids(INDEX.seeds)
    assert len(ids) == INDEX.total == sum(INDEX.seeds.values())
    distinct = [q for q in INDEX.questions if q.same_as is None]
    assert len(distinct) == INDEX.distinct
    assert INDEX.total - INDEX.distinct == sum(1 for q in INDEX.questions if q.same_as)


def test_the_totals_are_those_of_the_shared_list() -> None:
    # ../shared/QUESTIONS.md states 127 questions (000: 15, 001: 15, 002: 33, 003: 29, 004: 35), 92 distinct.
    assert INDEX.seeds == {"000": 15, "001": 15, "002": 33, "003": 29, "004": 35}
    assert (INDEX.total, INDEX.distinct) == (127, 92)


def test_every_distinct_question_has_a_way_in() -> None:
    by_id = {c.id: c for c in CONCEPTS}
    for q in INDEX.questions:
        if q.same_as is None:
            assert q.concepts or q.answer, q.id
            if q.concepts:  # only a prose answer with nothing to run (database schema design) may have no demo
                assert demo_of(q, by_id) in DEMOS, q.id


def test_the_questions_without_a_concept_have_prose_answers_that_lead_with_the_thing() -> None:
    wanted = {
        "Q-000-07": "DataOps",
        "Q-001-01": "MLOps is",
        "Q-004-07": "An MLOps engineer",
        "Q-000-13": "Match the hardware",
        "Q-000-10": "A virtual machine",
        "Q-003-04": "Microservices",
        "Q-003-13": "Vertical scaling",
        "Q-002-16": "AWS Lambda",
        "Q-002-23": "Azure Functions",
        "Q-002-29": "Key Vault",
        "Q-002-19": "CloudTrail",
        "Q-002-25": "Data Factory",
        "Q-002-17": "Model Monitor",
        "Q-004-06": "Measure it",
    }
    by_id = INDEX.by_id()
    for qid, opening in wanted.items():
        answer = by_id[qid].answer
        assert answer is not None, qid
        assert answer.startswith(opening), qid


BAD_CASES = {
    "missing-id": lambda ix: replace(ix, questions=ix.questions[1:]),
    "twice": lambda ix: replace(ix, questions=(*ix.questions, ix.questions[0])),
    "unknown-concept": lambda ix: replace(
        ix, questions=(replace(ix.questions[0], concepts=("C99",)), *ix.questions[1:])
    ),
    "no-way-in": lambda ix: replace(
        ix, questions=(replace(ix.questions[0], concepts=(), answer=None, demo="loop"), *ix.questions[1:])
    ),
    "unknown-demo": lambda ix: replace(
        ix, questions=(replace(ix.questions[0], demo="no-such-demo"), *ix.questions[1:])
    ),
    "missing-code": lambda ix: replace(
        ix, questions=(replace(ix.questions[0], code=("lab/nope.py",)), *ix.questions[1:])
    ),
    "wrong-total": lambda ix: replace(ix, distinct=ix.distinct + 1),
    "dangling-same-as": lambda ix: replace(
        ix, questions=(*ix.questions[:1], replace(ix.questions[1], same_as="Q-009-01"), *ix.questions[2:])
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_a_broken_index_is_caught(case: str) -> None:
    assert problems(BAD_CASES[case](INDEX)), case
