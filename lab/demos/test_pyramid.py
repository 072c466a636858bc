"""Demo ``test-pyramid``: the suites counted live by pytest, what each layer starts, and a unit run.

Concept: test pyramid (C39). The demo asks pytest itself how many tests each layer holds (one
bounded ``pytest --collect-only -q`` over the three folders: each pytest start imports the same
heavy test modules, so one process costs a third of three), reads which real engines each layer's
sources use, shows the markers registered in pyproject.toml, draws the pyramid, and meanwhile runs
one fast unit module for real, in a second process, to show what "fast" means at the bottom.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lab.test_pyramid import (
    LAYERS,
    count_by_layer,
    engines_used,
    is_pyramid,
    parse_collect_output,
    parse_outcome,
    registered_markers,
    render_pyramid,
)

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.narrate import Narrator

LIVE_UNIT_TESTS = "tests/unit/serving/test_router.py"
TIMEOUT_S = 90.0  # collection takes ~10 s on 2 busy cores; a hang must not hold the demo forever


def _pytest(root: Path, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    return subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen[str]) -> str:
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return out


def run(n: Narrator, ctx: LabContext) -> None:

    root = ctx.settings.project_dir
    n.title("Test pyramid: many fast unit tests, fewer integration tests, a few end-to-end runs", "C39")

    n.step("Ask pytest what it would run: `pytest --collect-only -q` over the three layers")
    n.say(f"and, in parallel, run {LIVE_UNIT_TESTS} for real: the bottom of the pyramid is fast enough to watch")
    unit_run = _pytest(root, "-q", LIVE_UNIT_TESTS)
    collected = parse_collect_output(_finish(_pytest(root, "--collect-only", "-q", *(f for _, f in LAYERS))))
    counts = count_by_layer(collected.node_ids)
    if collected.errors:
        n.bad(f"{collected.errors} test modules failed to import; their tests are not counted")
    rows = []
    for name, folder in LAYERS:
        files = sorted((root / folder).rglob("test_*.py"))  # one folder per package inside each layer
        sources = {str(f): f.read_text(encoding="utf-8") for f in files}
        uses = engines_used(sources)
        rows.append([name, folder, counts[name], len(files), ", ".join(f"{e} ({k})" for e, k in uses.items())])
    n.table(
        "tests per layer; uses = engine (test files whose code starts it)",
        ["layer", "folder", "tests", "files", "uses"],
        rows,
    )
    n.why(
        "unit tests call pure functions on tiny frames; integration tests start the real engines "
        "(an MLflow store, Prefect's API, uvicorn, PostgreSQL, Prometheus); end to end drives the CLI"
    )
    n.code("lab/test_pyramid.py", "tests/conftest.py")

    n.step("Markers registered in pyproject.toml (\\[tool.pytest.ini_options], with --strict-markers)")
    markers = registered_markers((root / "pyproject.toml").read_text(encoding="utf-8"))
    for name, description in markers.items():
        n.say(f"@pytest.mark.{name}: {description}")
    n.why("a misspelt marker is an error, not a silently unselected test; `-m 'not slow'` is the quick loop")

    n.step("The shape")
    n.console.print(render_pyramid(counts))
    if is_pyramid(counts):
        n.ok(f"a pyramid: {counts['unit']} unit > {counts['integration']} integration > {counts['e2e']} e2e > 0")
    else:
        n.bad(f"not a pyramid: {counts}")

    n.step(f"The live unit run of {LIVE_UNIT_TESTS}")
    outcome = parse_outcome(_finish(unit_run))
    summary = ", ".join(f"{k} {v}" for k, v in outcome.items()) or "no summary line"
    if outcome.get("passed", 0) > 0 and not (outcome.get("failed") or outcome.get("error")):
        n.ok(f"unit run passed: {summary}")
    else:
        n.bad(f"unit run did not pass: {summary}")
    n.why("a failure here names one function in one file; the same bug found end to end names only the command")
