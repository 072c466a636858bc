"""`mlops-lab quiz` end to end through the Typer app: the --answer mode and the interactive mode."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from cli.app import app
from lab.catalog import find

pytestmark = pytest.mark.integration

WIDE = {"COLUMNS": "400"}  # no wrapping, so assertions can match whole sentences
GOOD_C21 = (
    "The routing key (X-User-Id) is hashed with blake2b into a uniform bucket; the challenger serves when the "
    "bucket is below the weight, the same in every worker and replica. Raising the weight only moves users from "
    "champion to challenger, monotone."
)


def counts(output: str) -> tuple[int, int]:
    m = re.search(r"Key points: (\d+) of (\d+) covered", output)
    assert m, output
    return int(m.group(1)), int(m.group(2))


def test_answer_option_prints_covered_and_missed_points_and_the_demo() -> None:
    c21 = find("C21")
    result = CliRunner().invoke(app, ["quiz", "C21", "--seed", "0", "--answer", GOOD_C21], env=WIDE)
    assert result.exit_code == 0, result.output
    assert any(q in result.output for q in c21.questions)
    covered, total = counts(result.output)
    assert total == len(c21.key_points)
    assert 2 <= covered < total
    assert "covered" in result.output
    assert "missed" in result.output
    assert "Rule: " in result.output
    assert "30%" in result.output
    assert "See it run: mlops-lab demo canary" in result.output
    assert "mlops-lab explain C21" in result.output


def test_interactive_answer_is_read_from_stdin_until_an_empty_line() -> None:
    runner = CliRunner()
    typed = runner.invoke(app, ["quiz", "canary", "--seed", "1"], input=GOOD_C21 + "\n\nignored\n", env=WIDE)
    given = runner.invoke(app, ["quiz", "C21", "--seed", "1", "--answer", GOOD_C21], env=WIDE)
    assert typed.exit_code == 0, typed.output
    assert "Type your answer" in typed.output
    assert counts(typed.output) == counts(given.output)
    assert counts(typed.output)[0] >= 2


def test_empty_interactive_answer_covers_nothing_and_still_exits_0() -> None:
    result = CliRunner().invoke(app, ["quiz", "C21", "--seed", "2"], input="\n", env=WIDE)
    assert result.exit_code == 0, result.output
    assert counts(result.output) == (0, len(find("C21").key_points))


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
