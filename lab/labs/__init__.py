"""Workshop labs: exercises a learner does by hand, checked against the real state they leave.

Concept: learning by doing, verified. A demo shows a concept; a lab asks the learner to make it
happen (block a bad batch, abort a canary, roll back) and ``mlops-lab lab check N`` then reads the
state the learner's commands left behind (registry aliases and tags, the audit log, the prediction
log, saved findings and reports) and says, condition by condition, what is met and, when it is
not, a hint pointing at the next step. Some labs also ask for a conclusion (``--answer``), which the
checker compares with what the real state supports, never with a stored string.

Every lab starts with ``mlops-lab lab setup N``: it records when the lab started
(``lab/labs/progress.py``) and, when the lab needs a prepared scenario such as a planted bad model,
prepares it. ``lab check N`` judges only a started lab, and only on what happened after its start:
an earlier attempt, another lab or the learner's own experiments in the same state never count.

Each lab is a module ``lab.labs.labNN_<slug>`` with a ``check(ctx, answer, since) -> list[Check]``
function (``since``: when the lab started) and, when it prepares something, a
``setup(ctx) -> list[str]`` that does so and returns what it did; and a page
``docs/labs/NN-<slug>.md`` with goals, steps and expected output. ``LABS`` lists them; modules are
imported only when their lab is set up or checked, so the CLI stays instant.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from lab.labs.progress import mark_started, started_at, wait_for_the_next_second

if TYPE_CHECKING:
    from core.context import LabContext


@dataclass(frozen=True)
class Check:
    """One verified condition of a lab: met or not, what was found, and a hint when it is not met."""

    name: str
    passed: bool
    detail: str
    hint: str = ""


@dataclass(frozen=True)
class Lab:
    """One workshop lab: its number, page, the concepts it practises and the module that checks it."""

    number: int
    slug: str
    title: str
    concepts: tuple[str, ...]
    module: str

    @property
    def doc(self) -> str:
        """The lab's page, relative to the repository root."""
        return f"docs/labs/{self.number:02d}-{self.slug}.md"


CheckFn = Callable[["LabContext", "str | None", datetime], list[Check]]
SetupFn = Callable[["LabContext"], list[str]]

LABS: dict[int, Lab] = {
    lab.number: lab
    for lab in (
        Lab(1, "block-a-bad-batch", "Block a bad batch", ("C06", "C07"), "lab.labs.lab01_bad_batch"),
        Lab(2, "trace-a-model", "Trace a model to its data and code", ("C13", "C04", "C05"), "lab.labs.lab02_trace"),
        Lab(3, "abort-a-canary", "Run a canary and watch it abort", ("C21", "C26"), "lab.labs.lab03_canary"),
        Lab(4, "read-an-ab-test", "Read an A/B result and decide", ("C24", "C38"), "lab.labs.lab04_ab_test"),
        Lab(5, "bandit-vs-ab", "Bandit against A/B: count the regret", ("C25", "C24"), "lab.labs.lab05_bandit"),
        Lab(6, "drift-to-retrain", "Trigger drift, watch the retrain", ("C32", "C37", "C01"), "lab.labs.lab06_drift"),
        Lab(7, "roll-back", "Roll back a bad release", ("C15", "C16", "C28"), "lab.labs.lab07_rollback"),
        Lab(8, "review-k8s", "Render and review the Kubernetes overlay", ("C47", "C48", "C51"), "lab.labs.lab08_k8s"),
        Lab(
            9,
            "bring-your-own-dataset",
            "Bring your own dataset",
            ("C06", "C07", "C48"),
            "lab.labs.lab09_own_dataset",
        ),
    )
}


class UnknownLabError(LookupError):
    """No lab has that number; the message lists the labs."""


def get_lab(number: int) -> Lab:
    """The lab with this number."""
    try:
        return LABS[number]
    except KeyError:
        listing = ", ".join(f"{n} {lab.title}" for n, lab in LABS.items())
        raise UnknownLabError(f"no lab {number}; the labs are: {listing}") from None


def started_check(number: int, since: datetime | None) -> Check:
    """The first condition of every lab: it was started with ``lab setup``, which is when counting begins."""
    name = f"the lab was started (`mlops-lab lab setup {number}`)"
    if since is None:
        hint = f"run `mlops-lab lab setup {number}`: the check then counts only what you do after it"
        return Check(name, False, "never started in this state", hint)
    return Check(name, True, f"at {since:%Y-%m-%d %H:%M:%S} UTC; what happened before does not count")


def run_check(number: int, ctx: LabContext, answer: str | None = None) -> list[Check]:
    """Check lab ``number`` on the real state of ``ctx``, counting only what happened since it started.

    A lab that was never started is not judged: the one condition returned says to start it.
    """
    lab = get_lab(number)
    since = started_at(ctx.settings, number)
    if since is None:
        return [started_check(number, None)]
    fn: CheckFn = importlib.import_module(lab.module).check
    return [started_check(number, since), *fn(ctx, answer, since)]


def run_setup(number: int, ctx: LabContext, now: datetime | None = None) -> list[str]:
    """Start lab ``number`` on the state of ``ctx``: prepare its scenario, record the start; what was done.

    The start is recorded after the scenario is ready, so nothing the setup itself does (a rollback, an
    abort) counts as the learner's; running it again starts the lab over. It returns once the next whole
    second has begun, so second-resolution stamps tell before the start from after it.
    """
    lab = get_lab(number)
    prepare: SetupFn | None = getattr(importlib.import_module(lab.module), "setup", None)
    lines = prepare(ctx) if prepare is not None else []
    started = mark_started(ctx.settings, number, now)
    wait_for_the_next_second(started)
    return [
        *lines,
        f"lab {number} started at {started:%H:%M:%S} UTC: `mlops-lab lab check {number}` counts only what "
        f"happens from now on (steps: `mlops-lab lab show {number}`)",
    ]
