"""The technical-debt map (C52): every pointer is real, and a bad entry is caught."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lab.refs import code_ref_problem, node_id_exists
from lab.tech_debt import DEBTS, STATUSES, Debt, check_debts

REPO = Path(__file__).resolve().parents[3]
GOOD = DEBTS[0]


def test_every_mapped_path_symbol_and_test_exists() -> None:
    assert check_debts(DEBTS, REPO) == []


def test_the_classic_debts_are_all_mapped() -> None:
    names = " ".join(d.name.lower() for d in DEBTS)
    for word in (
        "entanglement",
        "correction cascades",
        "undeclared consumers",
        "unstable data",
        "underutilised data",
        "feedback loops",
        "glue code",
        "pipeline jungles",
        "dead experimental",
        "configuration",
        "external world",
        "monitoring",
    ):
        assert word in names, word
    assert {d.status for d in DEBTS} <= set(STATUSES)
    assert len({d.name for d in DEBTS}) == len(DEBTS)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (replace(GOOD, code=("pipelines/no_such_module.py",)), "no such file"),
        (replace(GOOD, code=("pipelines/quality_gate.py::no_such_function",)), "no symbol no_such_function"),
        (replace(GOOD, tests=("tests/unit/pipelines/test_quality_gate.py::test_that_was_renamed",)), "no such test"),
        (replace(GOOD, status="mostly"), "status 'mostly'"),
        (replace(GOOD, tests=()), "needs code and a test"),
    ],
    ids=["missing-file", "missing-symbol", "missing-test", "bad-status", "guard-without-proof"],
)
def test_a_bad_entry_is_caught_and_named(bad: Debt, message: str) -> None:
    problems = check_debts([bad], REPO)
    assert problems
    assert any(message in p and p.startswith(bad.name) for p in problems), problems


def test_an_unpaid_debt_needs_no_pointers() -> None:
    assert check_debts([Debt("Cultural debt", "risk", "not built", "not addressed")], REPO) == []


def test_reference_checks_accept_real_pointers_and_reject_fakes() -> None:
    assert code_ref_problem("lab/tech_debt.py::Debt", REPO) is None
    assert code_ref_problem("params.yaml", REPO) is None
    assert (
        code_ref_problem("params.yaml::monitoring", REPO)
        == "params.yaml::monitoring (no symbol monitoring in params.yaml)"
    )
    here = "tests/unit/lab/test_tech_debt.py"
    assert node_id_exists(f"{here}::test_a_bad_entry_is_caught_and_named[missing-file]", REPO)
    assert node_id_exists(here, REPO)
    assert not node_id_exists(f"{here}::GOOD", REPO)
    assert not node_id_exists("lab/tech_debt.py::Debt", REPO)
