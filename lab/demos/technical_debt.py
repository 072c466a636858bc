"""Demo ``technical-debt``: each hidden ML debt, the guard that pays it down here, and the proof run live.

Concept: ML technical debt (C52). The demo prints the map in ``lab/tech_debt.py`` (debt, status,
guard), checks that every file, symbol and test it names exists, shows that a planted bad pointer
is caught, runs a few of the proving unit tests for real, and ends with the debts this repository
only partly pays or does not pay at all: an honest map is worth more than a flattering one.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from lab.tech_debt import DEBTS, check_debts
from lab.test_pyramid import parse_outcome

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.narrate import Narrator

# Fast unit tests behind three guards: configuration, entanglement (the gate), feedback loops (cooldown).
LIVE_TESTS = (
    "tests/unit/core/test_params.py::test_params_reject_a_typo_with_the_key_named",
    "tests/unit/pipelines/test_quality_gate.py::test_a_clearly_worse_candidate_is_rejected_with_b_c_p_and_the_resolution",
    "tests/unit/monitoring/test_retrain_guard.py::test_cooldown_counts_from_the_last_start_even_after_release",
)
TIMEOUT_S = 90.0


def run(n: Narrator, ctx: LabContext) -> None:

    root = ctx.settings.project_dir
    n.title("Hidden technical debt in ML systems, and what pays it down here", "C52")

    n.step("The map: each debt, how far this repository addresses it, and the guard")
    n.table(
        "debts (lab/tech_debt.py)",
        ["debt", "status", "guard"],
        [[d.name, d.status, d.guard] for d in DEBTS],
    )
    n.why("the model is a small box; the debt hides in the data, glue, configuration and the world around it")

    n.step("Every pointer checked: each path, path::Symbol and test id must exist")
    problems = check_debts(DEBTS, root)
    refs = sum(len(d.code) + len(d.tests) for d in DEBTS)
    if problems:
        for p in problems:
            n.bad(p)
    else:
        n.ok(f"{refs} pointers in {len(DEBTS)} entries: every file, symbol and test exists")
    planted = replace(DEBTS[0], tests=(DEBTS[0].tests[0] + "_renamed",))
    caught = check_debts([planted], root)
    if caught:
        n.ok(f"a planted stale test id is caught: {caught[0]}")
    else:
        n.bad("a planted stale test id was not caught")
    n.code("lab/tech_debt.py::check_debts", "lab/refs.py")

    n.step("Three guards proved live: their unit tests run now")
    for test in LIVE_TESTS:
        n.say(test)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *LIVE_TESTS],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    outcome = parse_outcome(proc.stdout)
    summary = ", ".join(f"{k} {v}" for k, v in outcome.items()) or "no summary line"
    if proc.returncode == 0 and outcome.get("passed", 0) >= len(LIVE_TESTS):
        n.ok(f"guards hold: {summary}")
    else:
        n.bad(f"a guard failed (exit {proc.returncode}): {summary}")

    n.step("Where the debt is not fully paid")
    for d in DEBTS:
        if d.status != "addressed":
            n.say(f"[bold]{d.name}[/bold] ({d.status}): {d.guard}")
    n.why("naming the unpaid debt is part of the answer: it says what to build next and what to watch")
