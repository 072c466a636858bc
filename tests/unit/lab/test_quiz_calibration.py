"""The quiz's grades agree with a person's on the committed calibration set, and docs/quiz.md says how often."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.quiz import GRADES, grade_answer
from lab.quiz_rubrics import rubric_for

ROOT = Path(__file__).resolve().parents[3]
ITEMS: list[dict[str, Any]] = yaml.safe_load((ROOT / "tests/data/quiz_calibration.yaml").read_text(encoding="utf-8"))
TUNING = [i for i in ITEMS if i.get("set") != "holdout"]
HOLDOUT = [i for i in ITEMS if i.get("set") == "holdout"]
KINDS = {"good", "partial", "keyword list", "wrong", "off-topic", "empty"}


def graded(item: dict[str, Any]) -> str:
    return grade_answer(item["answer"], rubric_for(item["concept"], item["question"])).grade


def test_the_set_is_big_varied_and_well_formed() -> None:
    assert len(TUNING) >= 60
    assert len({i["concept"] for i in TUNING}) >= 10
    assert {i["kind"] for i in TUNING} == KINDS
    assert all(i["expected"] in GRADES for i in ITEMS)
    assert not {i["concept"] for i in HOLDOUT} & {i["concept"] for i in TUNING}, "held-out concepts are unseen"
    assert len({i["answer"] for i in ITEMS if i["answer"].strip()}) == sum(bool(i["answer"].strip()) for i in ITEMS)


@pytest.mark.parametrize("item", TUNING, ids=[f"{i['concept']}-q{i['question']}-{i['kind']}" for i in TUNING])
def test_each_tuning_answer_gets_its_band(item: dict[str, Any]) -> None:
    assert graded(item) == item["expected"], item["answer"]


def test_docs_quote_the_agreement_the_grader_reaches() -> None:
    tuning = sum(graded(i) == i["expected"] for i in TUNING)
    holdout = sum(graded(i) == i["expected"] for i in HOLDOUT)
    doc = (ROOT / "docs/quiz.md").read_text(encoding="utf-8")
    assert f"tuning set: **{tuning} of {len(TUNING)}**" in doc
    assert f"held-out set: **{holdout} of {len(HOLDOUT)}**" in doc
    assert holdout >= 0.9 * len(HOLDOUT)
    misses = [i for i in HOLDOUT if graded(i) != i["expected"]]
    for miss in misses:  # every held-out disagreement is named in the doc, with what the grader said
        assert re.search(rf"{miss['concept']} question {miss['question']}.*graded {graded(miss)}", doc), miss
