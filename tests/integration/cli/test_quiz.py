"""`mlops-lab quiz` end to end through the Typer app: the --answer mode, the interactive mode and the grades."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from cli.app import app
from lab.catalog import find
from lab.quiz_rubrics import rubric_for

pytestmark = pytest.mark.integration

WIDE = {"COLUMNS": "400"}  # no wrapping, so assertions can match whole sentences
GOOD_C21 = (  # a good answer to C21 question 2 (why sticky, and how across replicas)
    "A user should keep getting the same model, otherwise their experience flips between versions. We hash the "
    "stable user id into a bucket and compare it with the weight. Every replica computes the same hash against the "
    "same shared weight, so no session state is needed."
)


def grade(output: str) -> tuple[str, int, int]:
    m = re.search(r"Grade: ([a-z ]+) \(rubric: (\d+) of (\d+) points met\)", output)
    assert m, output
    return m.group(1), int(m.group(2)), int(m.group(3))


def question_index(output: str) -> int:
    asked = [i for i, q in enumerate(find("C21").questions) if q in output]
    assert len(asked) == 1, output
    return asked[0]


def seed_for(index: int) -> int:
    """A seed that asks C21's question ``index`` (the pick is seeded, so this is stable)."""
    from lab.quiz import pick_question

    return next(s for s in range(100) if pick_question([find("C21")], s).index == index)


def test_answer_option_grades_against_the_question_asked_and_shows_the_model_answer() -> None:
    rubric = rubric_for("C21", 2)
    result = CliRunner().invoke(app, ["quiz", "C21", "--seed", str(seed_for(2)), "--answer", GOOD_C21], env=WIDE)
    assert result.exit_code == 0, result.output
    assert question_index(result.output) == 2
    assert grade(result.output) == ("good", len(rubric.points), len(rubric.points))
    for point in rubric.points:  # every point in words, and the model answer
        assert point.text in result.output
    assert f"Model answer: {rubric.model_answer}" in result.output
    assert "Rule: " in result.output
    assert "See it run: mlops-lab demo canary" in result.output
    assert "mlops-lab explain C21" in result.output


def test_the_same_answer_to_another_question_is_weak_and_says_what_was_missed() -> None:
    result = CliRunner().invoke(app, ["quiz", "C21", "--seed", str(seed_for(0)), "--answer", GOOD_C21], env=WIDE)
    assert result.exit_code == 0, result.output
    assert question_index(result.output) == 0
    verdict, met, total = grade(result.output)
    assert (verdict, met) == ("weak", 0)
    assert result.output.count("missed") == total


def test_a_keyword_list_scores_nothing_and_is_told_why() -> None:
    terms = "hash, user id, bucket, weight, replica, shared, stateless, sticky, same model"
    result = CliRunner().invoke(app, ["quiz", "C21", "--seed", str(seed_for(2)), "--answer", terms], env=WIDE)
    assert grade(result.output) == ("keyword list", 0, len(rubric_for("C21", 2).points))
    assert "list of terms, not sentences" in result.output
    assert "not graded" in result.output


def test_interactive_answer_is_read_from_stdin_until_an_empty_line() -> None:
    runner = CliRunner()
    seed = str(seed_for(2))
    typed = runner.invoke(app, ["quiz", "canary", "--seed", seed], input=GOOD_C21 + "\n\nignored\n", env=WIDE)
    given = runner.invoke(app, ["quiz", "C21", "--seed", seed, "--answer", GOOD_C21], env=WIDE)
    assert typed.exit_code == 0, typed.output
    assert "Type your answer" in typed.output
    assert grade(typed.output) == grade(given.output)
    assert grade(typed.output)[0] == "good"


def test_empty_interactive_answer_is_no_answer_and_still_exits_0() -> None:
    result = CliRunner().invoke(app, ["quiz", "C21", "--seed", "2"], input="\n", env=WIDE)
    assert result.exit_code == 0, result.output
    verdict, met, _ = grade(result.output)
    assert (verdict, met) == ("no answer", 0)
    assert "Nothing to grade" in result.output


def test_without_a_concept_the_seed_fixes_the_question() -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["quiz", "--seed", "7", "--answer", ""], env=WIDE)
    second = runner.invoke(app, ["quiz", "--seed", "7", "--answer", ""], env=WIDE)
    assert first.exit_code == 0, first.output
    assert first.output == second.output


def test_unknown_concept_fails_with_a_hint() -> None:
    result = CliRunner().invoke(app, ["quiz", "C97", "--answer", "x"], env=WIDE)
    assert result.exit_code == 1
    assert "mlops-lab concepts" in result.output
