"""``mlops-lab ask`` end to end through the CLI: the answer, the demo and the code, within 80 columns."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.app import app
from lab.ask import ask, code_paths

NARROW = {"COLUMNS": "80"}


def test_ask_prints_the_answer_demo_and_code_within_80_columns() -> None:
    query = "how do you roll back a model?"
    best = ask(query)[0]
    result = CliRunner(env=NARROW).invoke(app, ["ask", query])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert best.question.id in out
    assert f"mlops-lab demo {best.demo}" in out
    assert " ".join(best.concepts[0].key_points[0].split()) in " ".join(out.split())
    assert code_paths(best)[0] in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_a_prose_answer_is_printed_for_a_question_no_concept_covers() -> None:
    result = CliRunner(env=NARROW).invoke(app, ["ask", "containers or virtual machines?"])
    assert result.exit_code == 0, result.output
    assert "A virtual machine emulates a whole computer" in " ".join(result.stdout.split())


@pytest.mark.parametrize("query", ["what is a good lasagna recipe", "who won the football world cup"])
def test_an_off_topic_question_says_so_and_exits_1(query: str) -> None:
    result = CliRunner(env=NARROW).invoke(app, ["ask", query])
    assert result.exit_code == 1
    assert "Nothing in the question index is close" in result.stdout
    assert "Answer" not in result.stdout


def test_brief_keeps_the_one_line_answers_and_drops_the_key_points() -> None:
    query = "how do you roll back a model?"
    best = ask(query)[0]
    result = CliRunner(env=NARROW).invoke(app, ["ask", query, "--brief", "--top", "1"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())  # lines wrap at 80 columns
    assert best.concepts[0].answer in out
    assert " ".join(best.concepts[0].key_points[0].split()) not in out
    assert "Also close" not in out
